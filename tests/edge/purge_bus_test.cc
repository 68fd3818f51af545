// The edge's two ends of the purge bus against a real redis-server: write events survive Redis
// being away (and a restart of the edge), and the purge log is applied from a cursor that
// survives restarts, with gaps and lost cursors answered by purging the whole cache.
#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "edge/purge_subscriber.h"
#include "edge/write_events.h"
#include "purge-daemon/bus/confirmer.h"
#include "tests/support/eventually.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace edge {

namespace {

using testing_support::Eventually;
using testing_support::RedisServer;
using testing_support::TempDir;

bus::WriteEvent Event(std::string object) {
  bus::WriteEvent event;
  event.node = "edge-1";
  event.method = "PUT";
  event.account = "AUTH_test";
  event.container = "public";
  event.object = std::move(object);
  event.status = 201;
  event.time_ms = 1;
  event.transaction = "tx";
  return event;
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

// A store and a subscriber on it (node `node`, its files in `dir`), with the trust it was last told.
struct Subscribed {
  Subscribed(const RedisServer& redis, const TempDir& dir, absl::Duration lease = absl::Seconds(1),
             std::string node = "edge-1",
             const std::function<void(cache::StoreOptions&)>& configure = nullptr)
      : node_id(std::move(node)) {
    cache::StoreOptions store_options;
    store_options.zones = {{dir / (node_id + "-zone"), 16 << 20}};
    if (configure) configure(store_options);
    store = std::move(*cache::Store::Open(store_options, [] { return absl::Now(); }));
    Restart(redis, dir, lease);
  }
  void Restart(const RedisServer& redis, const TempDir& dir, absl::Duration lease = absl::Seconds(1)) {
    subscriber.reset();
    SubscriberOptions options;
    options.node_id = node_id;
    options.redis_host = "127.0.0.1";
    options.redis_port = redis.port();
    options.cursor_path = dir / (node_id + "-cursor");
    options.lease = lease;
    options.settle = absl::Milliseconds(500);
    subscriber =
        std::make_unique<PurgeSubscriber>(options, *store, bus_lease, [this](bool t) { trusted = t; });
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

  const std::string node_id;
  std::unique_ptr<cache::Store> store;
  std::atomic<bool> trusted{false};
  BusLease bus_lease;
  std::unique_ptr<PurgeSubscriber> subscriber;
};

bus::ConfirmerOptions Confirming(const RedisServer& redis) {
  bus::ConfirmerOptions options;
  options.redis_host = "127.0.0.1";
  options.redis_port = redis.port();
  options.margin = absl::Milliseconds(100);
  return options;
}

// What a Confirmer answered, for the test's thread.
struct Answer {
  absl::Mutex mu;
  std::optional<bus::ConfirmResult> result ABSL_GUARDED_BY(mu);
  bus::Confirmer::Done Done() {
    return [this](const bus::ConfirmResult& r, bus::RedisConnection&) {
      absl::MutexLock lock(&mu);
      result = r;
    };
  }
  std::optional<bus::ConfirmResult> Get() {
    absl::MutexLock lock(&mu);
    return result;
  }
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
  // Read on from the cursor: the missed entry alone, not the whole log again (both would come in
  // one read). The count follows the read's invalidations: wait for it, not for the entry.
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied > 0; }));
  CHECK(edge.subscriber->GetStats().entries_applied == 1);
  CHECK(edge.Has("b"));  // the log was not lost: no whole-cache purge
  CHECK(edge.subscriber->GetStats().whole_cache_purges == 0);
}

TEST_CASE("a cursor the trimmed log no longer reaches purges the whole cache, so does a lost cursor") {
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
  std::filesystem::remove(dir / "edge-1-cursor");
  edge.Put("no-cursor");
  edge.Restart(redis, dir);
  CHECK(Eventually([&] { return edge.subscriber->GetStats().whole_cache_purges == 1; }));
  CHECK_FALSE(edge.Has("no-cursor"));
}

TEST_CASE("a log behind the cursor (Redis lost it) purges the whole cache at the edge's start") {
  RedisServer redis;  // not persistent: a restart loses the log
  TempDir dir;
  Subscribed edge(redis, dir);
  CHECK(Eventually([&] { return edge.trusted.load(); }));
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "y", false)});
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 1; }));
  edge.subscriber.reset();
  edge.Put("kept");
  redis.Stop();
  redis.Start();  // empty: the log ends before the edge's cursor
  edge.Restart(redis, dir);
  CHECK(Eventually([&] { return edge.subscriber->GetStats().whole_cache_purges == 1; }));
  CHECK_FALSE(edge.Has("kept"));
}

TEST_CASE("numbering begun again, or a hole in it between two reads, purges the whole cache") {
  RedisServer redis;
  TempDir dir;
  Subscribed edge(redis, dir);
  CHECK(Eventually([&] { return edge.trusted.load(); }));
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "y", false)});  // #1
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "y", false)});  // #2
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 2; }));
  edge.Put("a");
  CHECK(edge.subscriber->GetStats().whole_cache_purges == 0);  // read in sequence: nothing lost

  SUBCASE("the log begun again while the edge reads it: #1 after #2") {
    REQUIRE(
        redis.Connect().Command({"DEL", std::string(bus::kPurgeLog), std::string(bus::kLogSequence)}).ok());
  }
  SUBCASE("entries #3 to #10 gone unread: #11 after #2") {
    REQUIRE(redis.Connect().Command({"SET", std::string(bus::kLogSequence), "10"}).ok());
  }
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "z", false)});
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 3; }));
  CHECK(edge.subscriber->GetStats().whole_cache_purges == 1);
  CHECK_FALSE(edge.Has("a"));
}

TEST_CASE("a lost connection to the bus revokes the lease at once, it comes back once caught up") {
  RedisServer redis(true);
  TempDir dir;
  Subscribed edge(redis, dir, absl::Milliseconds(400));
  CHECK(Eventually([&] { return edge.bus_lease.trusted() && edge.bus_lease.reachable(); }));
  redis.Stop();
  CHECK(Eventually([&] { return !edge.bus_lease.trusted() && !edge.bus_lease.reachable(); }));
  CHECK(Eventually([&] { return !edge.trusted.load(); }));  // told just after the lease goes
  redis.Start();
  CHECK(Eventually([&] { return edge.bus_lease.trusted(); }));
}

TEST_CASE("a bus that stops answering lets the lease run out: the edge revalidates every hit") {
  RedisServer redis;
  TempDir dir;
  Subscribed edge(redis, dir, absl::Milliseconds(300));
  CHECK(Eventually([&] { return edge.bus_lease.trusted(); }));
  // Every client's commands wait; the connection stays open, so only the lease can tell.
  REQUIRE(redis.Connect().Command({"CLIENT", "PAUSE", "2000", "ALL"}).ok());
  CHECK(Eventually([&] { return !edge.bus_lease.trusted(); }));
  CHECK(Eventually([&] { return edge.bus_lease.trusted(); }, std::chrono::seconds(10)));  // unpaused
}

TEST_CASE("after an outage, trust waits until the writers' spools from it are in the log") {
  RedisServer redis(true);
  TempDir dir;
  Subscribed edge(redis, dir, absl::Milliseconds(400));
  CHECK(Eventually([&] { return edge.bus_lease.trusted(); }));
  redis.Stop();
  CHECK(Eventually([&] { return !edge.bus_lease.trusted(); }));
  redis.Start();
  // A writer came back with events spooled meanwhile: while it sends them, nobody trusts.
  auto writer = redis.Connect();
  REQUIRE(bus::Mark(writer, bus::kSpoolingSet, "edge-2", absl::Seconds(30)).ok());
  CHECK(Eventually([&] {
    auto edges = bus::ReadEdges(writer);
    return edges.ok() && !edges->edges.empty() && edges->edges[0].heartbeat_ms > 0 &&
           edges->now_ms - edges->edges[0].heartbeat_ms < 200;
  }));
  absl::SleepFor(absl::Milliseconds(800));  // past the settle time, several reads all caught up
  CHECK_FALSE(edge.bus_lease.trusted());
  REQUIRE(bus::Unmark(writer, bus::kSpoolingSet, "edge-2").ok());
  CHECK(Eventually([&] { return edge.bus_lease.trusted(); }));
}

TEST_CASE("a write's wait ends when every live edge has applied its plan, and skips dead ones") {
  RedisServer redis;
  TempDir dir;
  Subscribed one(redis, dir, absl::Seconds(1), "edge-1");
  Subscribed two(redis, dir, absl::Seconds(1), "edge-2");
  one.Put("a.txt");
  two.Put("a.txt");
  CHECK(Eventually([&] { return one.bus_lease.trusted() && two.bus_lease.trusted(); }));
  {
    // An edge that died long ago: its lease ran out, nobody waits for it.
    auto connection = redis.Connect();
    bus::EdgeProgress dead{"edge-dead", {1, 0}, 1000, true, 1000, 1000};
    REQUIRE(connection.Command({"HSET", std::string(bus::kEdgesHash), "edge-dead", bus::ProgressJson(dead)})
                .ok());
  }
  bus::Confirmer confirmer(Confirming(redis));
  Answer answer;
  confirmer.AppendAndWait("w-1", {cache::Invalidation::Object("AUTH_test", "public", "a.txt", false)},
                          answer.Done());
  CHECK(Eventually([&] { return answer.Get().has_value(); }));
  const bus::ConfirmResult result = *answer.Get();
  CHECK(result.appended);
  CHECK(result.confirmed == 2);
  CHECK(result.pending == 0);
  // Confirmed means applied: neither edge holds the old entry any more.
  CHECK_FALSE(one.Has("a.txt"));
  CHECK_FALSE(two.Has("a.txt"));
}

TEST_CASE("an edge that dies while a write waits holds it up only until its lease runs out") {
  RedisServer redis;
  TempDir dir;
  Subscribed one(redis, dir, absl::Seconds(1), "edge-1");
  auto two = std::make_unique<Subscribed>(redis, dir, absl::Milliseconds(500), "edge-2");
  CHECK(Eventually([&] { return one.bus_lease.trusted() && two->bus_lease.trusted(); }));
  two.reset();  // edge-2 is gone; its last report says it may trust its cache for 500 ms more
  bus::ConfirmerOptions options = Confirming(redis);
  options.timeout = absl::Seconds(30);
  bus::Confirmer confirmer(options);
  Answer answer;
  const absl::Time start = absl::Now();
  confirmer.AppendAndWait("w-1", {cache::Invalidation::Object("AUTH_test", "public", "a.txt", false)},
                          answer.Done());
  CHECK(Eventually([&] { return answer.Get().has_value(); }, std::chrono::seconds(10)));
  CHECK(answer.Get()->confirmed == 1);
  CHECK(answer.Get()->pending == 0);              // edge-2's lease ran out: it cannot serve the old version
  CHECK(absl::Now() - start < absl::Seconds(5));  // far inside the 30 s bound
}

TEST_CASE("a plan the log cannot take is answered at once as not appended") {
  RedisServer redis;
  bus::Confirmer confirmer(Confirming(redis));
  redis.Stop();
  Answer answer;
  confirmer.AppendAndWait("w-1", {cache::Invalidation::Object("AUTH_test", "public", "a.txt", false)},
                          answer.Done());
  CHECK(Eventually([&] { return answer.Get().has_value(); }));
  CHECK_FALSE(answer.Get()->appended);
}

TEST_CASE(
    "a zone that returns is replayed the purges it missed: what they cover is never served, the rest is "
    "kept") {
  RedisServer redis;
  TempDir dir;
  std::atomic<int> failing{-1};
  Subscribed edge(redis, dir, absl::Seconds(1), "edge-1", [&](cache::StoreOptions& options) {
    options.zones = {{dir / "zone-a", 16 << 20}, {dir / "zone-b", 16 << 20}};
    options.keep_returning_zones = true;  // as the edge sets it with a bus
    options.faults = [&failing](std::string_view op, int zone) {
      return zone == failing && op == "read" ? EIO : 0;
    };
  });
  CHECK(Eventually([&] { return edge.trusted.load(); }));
  std::vector<std::string> in;  // objects zone-a holds
  for (int i = 0; i < 40; ++i) {
    const std::string name = absl::StrCat("o", i);
    edge.Put(name);
    if (edge.store->Lookup(Subscribed::Key(name))->file().zone == 0) in.push_back(name);
  }
  REQUIRE(in.size() >= 3);
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", "unrelated", false)});
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 1; }));
  edge.store->Maintain();  // the zones keep the position (written at most once a second otherwise)
  // A transient error takes zone-a out, its files and journal intact; meanwhile one of its
  // objects is purged.
  failing = 0;
  for (int i = 0; i < 10 && edge.store->GetStats().zones[0].healthy; ++i) (void)edge.Has(in[1]);
  REQUIRE_FALSE(edge.store->GetStats().zones[0].healthy);
  failing = -1;
  Log(redis, {cache::Invalidation::Object("AUTH_test", "public", in[0], false)});
  CHECK(Eventually([&] { return edge.subscriber->GetStats().entries_applied == 2; }));
  edge.store->Maintain();  // zone-a returns, catching up; the subscriber replays what it missed
  CHECK(Eventually([&] { return edge.store->GetStats().zones[0].healthy; }));
  CHECK(edge.store->ZonesCatchingUp().empty());
  CHECK_FALSE(edge.Has(in[0]));
  for (size_t i = 1; i < in.size(); ++i) {
    std::optional<cache::Hit> hit = edge.store->Lookup(Subscribed::Key(in[i]));
    CHECK(hit.has_value());
    if (hit) CHECK(hit->file().zone == 0);  // kept, not filled anew
  }
  CHECK(edge.subscriber->GetStats().whole_cache_purges == 0);

  // Out again, and back while the bus cannot be read: it is emptied rather than wait for it.
  edge.store->Maintain();  // it keeps the position again
  failing = 0;
  for (int i = 0; i < 10 && edge.store->GetStats().zones[0].healthy; ++i) (void)edge.Has(in[1]);
  REQUIRE_FALSE(edge.store->GetStats().zones[0].healthy);
  failing = -1;
  redis.Stop();
  edge.store->Maintain();
  CHECK(Eventually([&] { return edge.store->GetStats().zones[0].healthy; }));
  CHECK(edge.store->GetStats().zones[0].entries == 0);
  for (size_t i = 1; i < in.size(); ++i) CHECK_FALSE(edge.Has(in[i]));
}

}  // namespace edge
