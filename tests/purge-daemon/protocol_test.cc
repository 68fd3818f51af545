#include "purge-daemon/bus/protocol.h"

#include <doctest/doctest.h>

#include "purge-daemon/rate_limiter.h"
#include "tests/support/golden_events.h"

namespace bus {

TEST_CASE("write events survive the stream and the spool unchanged") {
  WriteEvent e{"edge-1", "COPY", "AUTH_test", "public",      "a b/ü.jpg", "AUTH_x",
               "c/d",    "x=1",  201,         1795500000123, "tx1",       "x-container-read",
               "east",   "c-1",  "/c/a.txt\n"};
  CHECK(*ParseEvent(EventFields(e)) == e);
  CHECK(*ParseEventJson(EventJson(e)) == e);
  // An event from a writer that knows no clusters is one of the default cluster.
  Fields old_writer = EventFields(e);
  std::erase_if(old_writer, [](const auto& field) { return field.first == "cluster"; });
  CHECK(ParseEvent(old_writer)->cluster.empty());
  // The cluster field: last, and only when named (as swift_middleware_test.py's case).
  CHECK(EventFields(e).back() == std::pair<std::string, std::string>("cluster", "east"));
  CHECK(EventJson(e).find("\"cluster\":\"east\"") != std::string::npos);
  e.cluster.clear();
  for (const auto& [name, value] : EventFields(e)) CHECK(name != "cluster");
  CHECK(EventJson(e).find("cluster") == std::string::npos);
  CHECK_FALSE(ParseEvent({{"method", "PUT"}}).ok());
  CHECK_FALSE(ParseEventJson("{not json").ok());
  CHECK_FALSE(ParseEventJson("[1]").ok());
}

TEST_CASE("write events are encoded as the golden file has them (the middleware's test reads it too)") {
  const auto golden = testing_support::GoldenEvents();
  REQUIRE(golden.size() >= 8);
  for (const testing_support::GoldenEvent& g : golden) {
    CAPTURE(g.name);
    absl::StatusOr<WriteEvent> event = ParseEvent(g.fields);
    REQUIRE(event.ok());
    CHECK(EventFields(*event) == g.fields);
    CHECK(EventJson(*event) == g.spool);
    CHECK(*ParseEventJson(g.spool) == *event);
    // Settings are named by one rule in both writers; objects carry none.
    std::vector<std::string_view> names;
    for (const auto& [name, value] : g.request["headers"].items()) names.push_back(name);
    CHECK(event->settings == (event->object.empty() ? SettingHeaders(names) : ""));
  }
}

TEST_CASE("an event from an older or newer writer decodes: missing fields are empty, unknown ones ignored") {
  Fields fields = {{"method", "PUT"}, {"account", "A"}, {"status", "201"}, {"time_ms", "5"}};
  CHECK(ParseEvent(fields)->settings.empty());
  fields.emplace_back("a_field_of_tomorrow", "x");
  CHECK(ParseEvent(fields)->account == "A");
  CHECK(ParseEventJson(R"({"method":"PUT","account":"A","status":201,"time_ms":5,"later":[1]})").ok());
}

TEST_CASE("settings: what an account or container keeps, in the X-Remove form too, each once, sorted") {
  const std::vector<std::string_view> names = {"X-Container-Read",
                                               "x_container_meta_a",
                                               "X-Remove-Versions-Location",
                                               "X-History-Location",
                                               "X-Account-Meta-K",
                                               "X-Container-Read",
                                               "X-Storage-Policy",
                                               "X-Auth-Token",
                                               "X-Remove-Foo",
                                               "Content-Type",
                                               "X-Object-Meta-C",
                                               "X-Versions-Enabled",
                                               "X-Container-Sysmeta-Versions-Location",
                                               "X-Remove-Account-Sysmeta-X",
                                               "X-Container-Transient-Sysmeta-Y"};
  CHECK(SettingHeaders(names) ==
        "x-account-meta-k,x-container-meta-a,x-container-read,x-history-location,x-remove-versions-location,"
        "x-versions-enabled");
  CHECK(SettingHeaders({}).empty());
}

TEST_CASE("invalidations of every kind survive the log unchanged") {
  using cache::Invalidation;
  const std::vector<Invalidation> all = {Invalidation::Object("A", "c", "o", false),
                                         Invalidation::Listings("A", "c", "d/", true),
                                         Invalidation::Prefix("A", "c", "p/", false),
                                         Invalidation::Container("A", "c", true),
                                         Invalidation::Tenant("demo", false),
                                         Invalidation::Tag("demo:t", true),
                                         Invalidation::All(false)};
  auto parsed = ParseInvalidationsJson(InvalidationsJson(all));
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK((*parsed)[i].kind == all[i].kind);
    CHECK((*parsed)[i].soft == all[i].soft);
    CHECK((*parsed)[i].account == all[i].account);
    CHECK((*parsed)[i].container == all[i].container);
    CHECK((*parsed)[i].name == all[i].name);
    CHECK((*parsed)[i].tenant == all[i].tenant);
    CHECK((*parsed)[i].tag == all[i].tag);
  }
  auto entry = ParseLogEntry(LogFields({"job1", true, all}));
  REQUIRE(entry.ok());
  CHECK(entry->job == "job1");
  CHECK(entry->track);
  CHECK_FALSE(ParseInvalidationsJson(R"([{"kind": "everything"}])").ok());
  CHECK_FALSE(ParseInvalidationsJson(R"([{"account": "A"}])").ok());
  CHECK_FALSE(ParseLogEntry({{"job", "x"}}).ok());
}

TEST_CASE("stream ids parse and order") {
  CHECK(*ParseStreamId("1795500000123-7") == StreamId{1795500000123, 7});
  CHECK(*ParseStreamId("5") == StreamId{5, 0});
  CHECK(StreamId{1, 9} < StreamId{2, 0});
  CHECK(StreamId{2, 1} > StreamId{2, 0});
  CHECK_FALSE(ParseStreamId("abc").ok());
  CHECK_FALSE(ParseStreamId("1-x").ok());
  // Damaged: a number with something after it is no number.
  CHECK_FALSE(ParseStreamId("1-2x").ok());
  CHECK_FALSE(ParseStreamId("1x-2").ok());
  CHECK_FALSE(ParseStreamId("1-2-3").ok());
  CHECK_FALSE(ParseStreamId("1-").ok());
  CHECK_FALSE(ParseStreamId("-1").ok());
  CHECK(StreamId{3, 4}.ToString() == "3-4");
}

TEST_CASE("an edge's cursor file gives back what it saved, a damaged sequence number is not known") {
  const SavedCursor saved{{1795500000123, 7}, 42};
  CHECK(CursorFileText(saved) == "1795500000123-7 42\n");
  CHECK(*ParseCursorFile(CursorFileText(saved)) == saved);
  // Written by an edge that had not read an entry yet, or cut short: the cursor without its number.
  CHECK(*ParseCursorFile("1795500000123-7 0\n") == SavedCursor{{1795500000123, 7}, 0});
  CHECK(*ParseCursorFile("1795500000123-7") == SavedCursor{{1795500000123, 7}, 0});
  CHECK(*ParseCursorFile("1795500000123-7 4x") == SavedCursor{{1795500000123, 7}, 0});
  CHECK(*ParseCursorFile("1795500000123-7 -3") == SavedCursor{{1795500000123, 7}, 0});
  // No cursor: the edge starts as a new one (and purges a cache it cannot vouch for).
  CHECK_FALSE(ParseCursorFile("").ok());
  CHECK_FALSE(ParseCursorFile(" \n").ok());
  CHECK_FALSE(ParseCursorFile("1795500000123-7x 42").ok());
  CHECK_FALSE(ParseCursorFile("garbage 42").ok());
}

TEST_CASE("stream entries come out of XREAD and XAUTOCLAIM answers alike") {
  auto s = [](std::string text) {
    RedisReply r;
    r.type = RedisReply::Type::kString;
    r.text = std::move(text);
    return r;
  };
  auto a = [](std::vector<RedisReply> elements) {
    RedisReply r;
    r.type = RedisReply::Type::kArray;
    r.elements = std::move(elements);
    return r;
  };
  const RedisReply entry1 = a({s("1-0"), a({s("job"), s("j1"), s("inv"), s("[]")})});
  const RedisReply entry2 = a({s("2-0"), a({s("job"), s("j2")})});
  const RedisReply xread = a({a({s("edge:purge-log"), a({entry1, entry2})})});
  auto entries = StreamEntries(xread);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].id == "1-0");
  CHECK(entries[0].fields[1].second == "[]");
  const RedisReply autoclaim = a({s("0-0"), a({entry2}), a({s("3-0"), s("4-0")})});
  entries = StreamEntries(autoclaim);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].id == "2-0");
  CHECK(StreamEntries(RedisReply{}).empty());
}

TEST_CASE("edge progress round trip") {
  EdgeProgress p{"edge-1", {5, 1}, 1795500000000, true, 1000, 1795499999000};
  auto parsed = ParseProgressJson("edge-1", ProgressJson(p));
  REQUIRE(parsed.ok());
  CHECK(parsed->cursor == p.cursor);
  CHECK(parsed->heartbeat_ms == p.heartbeat_ms);
  CHECK(parsed->trusted);
  CHECK(parsed->lease_ms == 1000);
  CHECK(parsed->lease_granted_ms == 1795499999000);
  CHECK_FALSE(ParseProgressJson("x", "{}").ok());
  // An edge from before leases: it trusts while it beats, 10 s at most.
  auto old = ParseProgressJson("old", R"({"cursor":"5-1","heartbeat_ms":1000,"trusted":true})");
  REQUIRE(old.ok());
  CHECK(old->lease_ms == 10000);
  CHECK(old->lease_granted_ms == 1000);
  // What no edge writes (found by bus_protocol_fuzz): a float is no time, a wrong type no trust,
  // and a time past any clock is held where sums of times cannot overflow.
  auto odd = ParseProgressJson(
      "odd",
      R"({"cursor":"5-1","heartbeat_ms":9223372036854775807,"trusted":1,"lease_ms":1000,"lease_granted_ms":1795e00000200})");
  REQUIRE(odd.ok());
  CHECK_FALSE(odd->trusted);
  CHECK(odd->lease_granted_ms == odd->heartbeat_ms);
  CHECK(odd->heartbeat_ms == int64_t{1} << 50);
  // Wrong types (found by bus_protocol_fuzz: a number for "trusted" threw out of the parser) read
  // as the defaults.
  auto wrong = ParseProgressJson(
      "odd",
      R"({"cursor":"5-1","heartbeat_ms":1000,"trusted":1000,"lease_ms":1e300,"lease_granted_ms":"x"})");
  REQUIRE(wrong.ok());
  CHECK_FALSE(wrong->trusted);
  CHECK(wrong->lease_ms == 10000);
  CHECK(wrong->lease_granted_ms == 1000);
}

TEST_CASE("a writer waits for exactly the edges that may still serve what it replaced") {
  const StreamId entry{2000, 0};
  const absl::Duration margin = absl::Milliseconds(100);
  EdgeProgress edge{"e", {1999, 5}, 2000, true, 1000, 2000};
  CHECK(MayServeOlder(edge, entry, 2500, margin));        // behind, lease running
  CHECK(MayServeOlder(edge, entry, 3100, margin));        // lease and margin: the last instant
  CHECK_FALSE(MayServeOlder(edge, entry, 3101, margin));  // run out: it revalidates every hit
  edge.cursor = entry;
  CHECK_FALSE(MayServeOlder(edge, entry, 2500, margin));  // applied
  edge.cursor = {2000, 1};
  CHECK_FALSE(MayServeOlder(edge, entry, 2500, margin));
  // Beating but not caught up (a backlog): only the last lease it was granted counts.
  EdgeProgress behind{"b", {10, 0}, 5000, false, 1000, 2000};
  CHECK_FALSE(MayServeOlder(behind, entry, 5000, margin));
}

TEST_CASE("rate limits: a burst at once, then the rate") {
  absl::Time now = absl::FromUnixSeconds(1000);
  purge::RateLimiter limiter([&] { return now; });
  for (int i = 0; i < 3; ++i) CHECK(limiter.Take("demo", 2, 3) == absl::ZeroDuration());
  CHECK(limiter.Take("demo", 2, 3) == absl::Milliseconds(500));
  CHECK(limiter.Take("shop", 2, 3) == absl::ZeroDuration());  // per tenant
  now += absl::Milliseconds(500);
  CHECK(limiter.Take("demo", 2, 3) == absl::ZeroDuration());
  CHECK(limiter.Take("demo", 2, 3) > absl::ZeroDuration());
}

}  // namespace bus
