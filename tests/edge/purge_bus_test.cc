// The edge's two ends of the purge bus against a real redis-server: write events survive Redis
// being away (and a restart of the edge), and the purge log is applied from a cursor that
// survives restarts, with gaps and lost cursors answered by purging the whole cache.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "edge/purge_subscriber.h"
#include "edge/write_events.h"
#include "tests/support/eventually.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace edge {

namespace {

using testing_support::Eventually;
using testing_support::RedisServer;
using testing_support::TempDir;

bus::WriteEvent Event(std::string object) {
  return bus::WriteEvent{"edge-1", "PUT", "AUTH_test", "public", std::move(object), "", "", "", 201,
                         1,        "tx",  "",          ""};
}

int64_t Length(const RedisServer& redis, std::string_view stream) {
  auto connection = redis.Connect();
  auto reply = connection.Command({"XLEN", std::string(stream)});
  return reply.ok() ? reply->integer : -1;
}

PublisherOptions Publisher(const RedisServer& redis, const TempDir& dir, uint64_t max = 1 << 20) {
  PublisherOptions options;
  options.redis_host = "127.0.0.1";
  options.redis_port = redis.port();
  options.spool_path = dir / "spool";
  options.max_spool_bytes = max;
  options.retry = absl::Milliseconds(50);
  return options;
}

// A store and a subscriber on it, with the trust it was last told.
struct Subscribed {
  Subscribed(const RedisServer& redis, const TempDir& dir,
             absl::Duration max_disconnect = absl::Seconds(10)) {
    cache::StoreOptions store_options;
    store_options.zones = {{dir / "zone", 16 << 20}};
    store = std::move(*cache::Store::Open(store_options, [] { return absl::Now(); }));
    Restart(redis, dir, max_disconnect);
  }
  void Restart(const RedisServer& redis, const TempDir& dir,
               absl::Duration max_disconnect = absl::Seconds(10)) {
    subscriber.reset();
    SubscriberOptions options;
    options.node_id = "edge-1";
    options.redis_host = "127.0.0.1";
    options.redis_port = redis.port();
    options.cursor_path = dir / "cursor";
    options.max_disconnect = max_disconnect;
    options.heartbeat = absl::Milliseconds(100);
    subscriber = std::make_unique<PurgeSubscriber>(options, *store, [this](bool t) { trusted = t; });
    subscriber->Start();
  }
  void Put(const std::string& name) {
    cache::EntryMetadata meta;
    meta.tenant = "demo";
    meta.fresh_until = absl::ToUnixSeconds(absl::Now()) + 600;
    auto fill = store->BeginFill(Key(name), meta, 1, store->FenceToken());
    REQUIRE(fill.ok());
    REQUIRE((*fill)->Append("x").ok());
    REQUIRE((*fill)->Commit().ok());
  }
  bool Has(const std::string& name) { return store->Lookup(Key(name)).has_value(); }
  static cache::Key Key(const std::string& name) {
    return cache::Key{cache::KeyKind::kObject, "AUTH_test", "public", name, ""};
  }

  std::unique_ptr<cache::Store> store;
  std::atomic<bool> trusted{false};
  std::unique_ptr<PurgeSubscriber> subscriber;
};

void Log(const RedisServer& redis, std::vector<cache::Invalidation> invalidations, bool track = false,
         std::string job = "job") {
  auto connection = redis.Connect();
  bus::LogEntry entry;
  entry.job = std::move(job);
  entry.track = track;
  entry.invalidations = std::move(invalidations);
  REQUIRE(bus::AppendToLog(connection, entry, 100000).ok());
}

}  // namespace

TEST_CASE("write events wait in the spool while Redis is away, and are all delivered when it is back") {
  RedisServer redis;
  TempDir dir;
  redis.Stop();
  auto publisher = WriteEventPublisher::Start(Publisher(redis, dir));
  REQUIRE(publisher.ok());
  for (int i = 0; i < 10; ++i) CHECK((*publisher)->Publish(Event(absl::StrCat("o", i))).ok());
  CHECK((*publisher)->spool_bytes() > 0);
  redis.Start();
  CHECK(Eventually([&] { return Length(redis, bus::kEventStream) == 10; }));
  CHECK(Eventually([&] { return (*publisher)->spool_bytes() == 0; }));
}

TEST_CASE("write events spooled before a restart of the edge are sent after it") {
  RedisServer redis;
  TempDir dir;
  redis.Stop();
  {
    auto publisher = WriteEventPublisher::Start(Publisher(redis, dir));
    for (int i = 0; i < 5; ++i) CHECK((*publisher)->Publish(Event(absl::StrCat("o", i))).ok());
  }  // the edge stops with Redis still away
  redis.Start();
  auto publisher = WriteEventPublisher::Start(Publisher(redis, dir));
  CHECK(Eventually([&] { return Length(redis, bus::kEventStream) == 5; }));
}

TEST_CASE("a full spool refuses more, rather than losing events") {
  RedisServer redis;
  TempDir dir;
  redis.Stop();
  auto publisher = WriteEventPublisher::Start(Publisher(redis, dir, 4096 + 600));
  int accepted = 0;
  while ((*publisher)->HasRoom()) {
    REQUIRE((*publisher)->Publish(Event("object")).ok());
    ++accepted;
  }
  while ((*publisher)->Publish(Event("object")).ok()) ++accepted;  // past the writes' margin
  CHECK(accepted >= 2);
  CHECK((*publisher)->Publish(Event("more")).code() == absl::StatusCode::kResourceExhausted);
  redis.Start();
  CHECK(Eventually([&] { return Length(redis, bus::kEventStream) == accepted && (*publisher)->HasRoom(); }));
}

TEST_CASE("the purge log is applied from a cursor kept across restarts") {
  RedisServer redis;
  TempDir dir;
  Subscribed edge(redis, dir);
  CHECK(Eventually([&] { return edge.trusted.load(); }));  // caught up with an empty log
  edge.Put("a");
  edge.Put("b");
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "a", false)}, true, "job-a");
  CHECK(Eventually([&] { return !edge.Has("a"); }));
  CHECK(edge.Has("b"));
  // The edge recorded how long it took, for the job's status.
  auto connection = redis.Connect();
  CHECK(Eventually([&] {
    return connection.Command({"HEXISTS", bus::JobAppliedKey("job-a"), "edge-1"})->integer == 1;
  }));
  CHECK(Eventually([&] {
    return connection.Command({"HEXISTS", std::string(bus::kEdgesHash), "edge-1"})->integer == 1;
  }));
  // Stopped, it misses an invalidation; started again, it applies it from its cursor.
  edge.subscriber.reset();
  edge.Put("c");
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "c", false)});
  edge.trusted = false;
  edge.Restart(redis, dir);
  CHECK(Eventually([&] { return !edge.Has("c"); }));
  // Read on from the cursor: the missed entry alone, not the whole log again.
  CHECK(edge.subscriber->GetStats().entries_applied == 1);
  CHECK(edge.Has("b"));  // the log was not lost: no whole-cache purge
  CHECK(edge.subscriber->GetStats().whole_cache_purges == 0);
}

TEST_CASE("a cursor the trimmed log no longer reaches purges the whole cache; so does a lost cursor") {
  RedisServer redis;
  TempDir dir;
  Subscribed edge(redis, dir);
  CHECK(Eventually([&] { return edge.trusted.load(); }));
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "y", false)});  // the edge reads #1
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 1; }));
  edge.subscriber.reset();
  edge.Put("kept-too-long");
  for (int i = 0; i < 50; ++i) Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "x", false)});
  REQUIRE(redis.Connect().Command({"XTRIM", std::string(bus::kPurgeLog), "MAXLEN", "1"}).ok());
  edge.Restart(redis, dir);
  CHECK(Eventually([&] { return edge.subscriber->GetStats().whole_cache_purges == 1; }));
  CHECK_FALSE(edge.Has("kept-too-long"));

  edge.subscriber.reset();
  std::filesystem::remove(dir / "cursor");
  edge.Put("no-cursor");
  edge.Restart(redis, dir);
  CHECK(Eventually([&] { return edge.subscriber->GetStats().whole_cache_purges == 1; }));
  CHECK_FALSE(edge.Has("no-cursor"));
}

TEST_CASE("cut off from the bus longer than the bound, the edge stops trusting its cache until caught up") {
  RedisServer redis(true);
  TempDir dir;
  Subscribed edge(redis, dir, absl::Milliseconds(300));
  CHECK(Eventually([&] { return edge.trusted.load(); }));
  redis.Stop();
  CHECK(Eventually([&] { return !edge.trusted.load(); }));
  redis.Start();
  CHECK(Eventually([&] { return edge.trusted.load(); }));
}

}  // namespace edge
