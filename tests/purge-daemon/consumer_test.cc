// The planner loop against a real redis-server: events become purge-log entries and are then
// acknowledged; a dead daemon's events are claimed; listings are purged again after the delay;
// a burst into one directory stays a few listings invalidations.
#include "purge-daemon/consumer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "purge-daemon/bus/protocol.h"
#include "tests/support/eventually.h"
#include "tests/support/redis_server.h"

namespace purge {

namespace {

using testing_support::Eventually;
using testing_support::RedisServer;

ConsumerOptions Options(const RedisServer& redis, std::string name = "daemon-1") {
  ConsumerOptions options;
  options.name = std::move(name);
  options.redis_host = "127.0.0.1";
  options.redis_port = redis.port();
  options.repeat_delay = absl::Milliseconds(300);
  options.claim_idle = absl::Milliseconds(300);
  return options;
}

void Write(bus::RedisConnection& redis, const std::string& object) {
  const bus::WriteEvent event{"edge-1", "PUT", "AUTH_test", "public", object, "", "", "",
                              201,      1,     "tx",        "",       "",     "", ""};
  REQUIRE(redis.Command(bus::XAddArgs(bus::kEventStream, bus::EventFields(event), 0)).ok());
}

std::vector<bus::LogEntry> LogEntries(bus::RedisConnection& redis) {
  std::vector<bus::LogEntry> out;
  for (const bus::StreamEntry& entry :
       bus::StreamEntries(*redis.Command({"XRANGE", std::string(bus::kPurgeLog), "-", "+"}))) {
    out.push_back(*bus::ParseLogEntry(entry.fields));
  }
  return out;
}

int64_t Pending(bus::RedisConnection& redis) {
  auto reply = redis.Command({"XPENDING", std::string(bus::kEventStream), std::string(bus::kPlannerGroup)});
  return reply.ok() && !reply->elements.empty() ? reply->elements[0].integer : -1;
}

}  // namespace

TEST_CASE("a write event becomes a numbered purge-log entry, is acknowledged, and its listings come again") {
  RedisServer server;
  auto redis = server.Connect();
  EventConsumer consumer(Options(server));
  consumer.Start();
  Write(redis, "images/party/new.jpg");
  REQUIRE(Eventually([&] { return LogEntries(redis).size() == 1; }));
  const bus::LogEntry first = LogEntries(redis)[0];
  CHECK(first.seq == 1);
  REQUIRE(first.invalidations.size() == 2);
  CHECK(first.invalidations[0].kind == cache::Invalidation::Kind::kObject);
  CHECK(first.invalidations[1].name == "images/party/");
  CHECK(Eventually([&] { return Pending(redis) == 0; }));
  CHECK(redis.Command({"XLEN", std::string(bus::kEventStream)})->integer == 0);  // acknowledged and dropped
  // After the delay, the listings once more.
  REQUIRE(Eventually([&] { return LogEntries(redis).size() == 2; }));
  const bus::LogEntry repeat = LogEntries(redis)[1];
  CHECK(repeat.seq == 2);
  REQUIRE(repeat.invalidations.size() == 1);
  CHECK(repeat.invalidations[0].kind == cache::Invalidation::Kind::kListings);
  CHECK(consumer.GetStats().repeats_moved == 1);
}

TEST_CASE("a listings repeat outlives the daemon that planned it: another daemon appends it when due") {
  RedisServer server;
  auto redis = server.Connect();
  auto scheduled = [&] { return redis.Command({"ZCARD", std::string(bus::kRepeatSet)})->integer; };
  {
    ConsumerOptions options = Options(server, "daemon-1");
    options.repeat_delay = absl::Seconds(1);
    EventConsumer planner(options);
    planner.Start();
    Write(redis, "images/party/new.jpg");
    REQUIRE(Eventually([&] { return LogEntries(redis).size() == 1; }));
    CHECK(scheduled() == 1);
    CHECK(planner.GetStats().repeats_moved == 0);
  }  // the daemon is gone before its repeat is due
  CHECK(LogEntries(redis).size() == 1);
  CHECK(scheduled() == 1);  // what it planned waits in Redis, not in the daemon
  EventConsumer survivor(Options(server, "daemon-2"));
  survivor.Start();
  REQUIRE(Eventually([&] { return LogEntries(redis).size() == 2; }, std::chrono::seconds(10)));
  const bus::LogEntry repeat = LogEntries(redis)[1];
  CHECK(repeat.seq == 2);
  CHECK(repeat.job == LogEntries(redis)[0].job + "-repeat");
  REQUIRE(repeat.invalidations.size() == 1);
  CHECK(repeat.invalidations[0].kind == cache::Invalidation::Kind::kListings);
  CHECK(repeat.invalidations[0].name == "images/party/");
  CHECK(survivor.GetStats().repeats_moved == 1);
  CHECK(scheduled() == 0);
}

TEST_CASE("events a dead daemon took and never acknowledged are claimed by a live one") {
  RedisServer server;
  auto redis = server.Connect();
  REQUIRE(redis
              .Command({"XGROUP", "CREATE", std::string(bus::kEventStream), std::string(bus::kPlannerGroup),
                        "0", "MKSTREAM"})
              .ok());
  Write(redis, "a.jpg");
  Write(redis, "b.jpg");
  // A daemon reads them and dies before it acknowledges.
  auto taken = redis.Command({"XREADGROUP", "GROUP", std::string(bus::kPlannerGroup), "dead-daemon", "COUNT",
                              "10", "STREAMS", std::string(bus::kEventStream), ">"});
  REQUIRE(bus::StreamEntries(*taken).size() == 2);
  EventConsumer survivor(Options(server, "daemon-2"));
  survivor.Start();
  CHECK(Eventually([&] { return Pending(redis) == 0; }));
  CHECK(survivor.GetStats().claimed == 2);
  CHECK(LogEntries(redis).at(0).invalidations.size() == 3);  // two objects, one directory
}

TEST_CASE("a burst of uploads into one directory is a few listings invalidations, not one each") {
  RedisServer server;
  auto redis = server.Connect();
  // Half the burst waits when the daemon starts, half comes while it plans. However the second
  // half falls into batch windows (that is the machine's speed), each entry invalidates the
  // directory's listings once (that covers its ancestors').
  for (int i = 0; i < 500; ++i) Write(redis, absl::StrCat("photos/2024/", i, ".jpg"));
  EventConsumer consumer(Options(server));
  consumer.Start();
  for (int i = 500; i < 1000; ++i) Write(redis, absl::StrCat("photos/2024/", i, ".jpg"));
  REQUIRE(Eventually([&] { return consumer.GetStats().events == 1000; }, std::chrono::seconds(10)));
  size_t objects = 0, listings = 0, largest_batch = 0;
  for (const bus::LogEntry& entry : LogEntries(redis)) {
    size_t entry_objects = 0, entry_listings = 0;
    for (const cache::Invalidation& inv : entry.invalidations) {
      (inv.kind == cache::Invalidation::Kind::kObject ? entry_objects : entry_listings) += 1;
    }
    CHECK(entry_listings <= 1);
    objects += entry_objects;
    listings += entry_listings;
    largest_batch = std::max(largest_batch, entry_objects);
  }
  CHECK(objects == 1000);
  CHECK(largest_batch >= 500);  // the waiting half was planned as one batch
  MESSAGE("1000 uploads into one directory: ", listings, " listings invalidations (repeats included)");
}

}  // namespace purge
