#include "vhost-config/cache_policy.h"

#include <doctest/doctest.h>

#include <vector>

#include "vhost-config/http_date.h"

namespace vhost {

namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

RequestFacts Get(std::string_view path) {
  RequestFacts request;
  request.method = "GET";
  request.path = path;
  return request;
}

struct Case {
  CachePolicy policy;
  RequestFacts request = Get("/a.jpg");
  int status = 200;
  std::vector<std::pair<std::string_view, std::string_view>> headers;

  CacheDecision Run() const { return Decide(policy, request, ResponseFacts{status, headers}, kNow); }
};

}  // namespace

TEST_CASE("freshness from the origin, in RFC 9111 order, minus the age already spent") {
  Case c;
  c.headers = {{"Cache-Control", "max-age=600, s-maxage=300"}};
  CHECK(c.Run().fresh_for == absl::Seconds(300));
  c.headers = {{"Cache-Control", "max-age=600"}, {"Age", "100"}};
  CHECK(c.Run().fresh_for == absl::Seconds(500));
  const std::string date = FormatHttpDate(kNow - absl::Seconds(30));
  const std::string expires = FormatHttpDate(kNow + absl::Seconds(90));
  c.headers = {{"Date", date}, {"Expires", expires}};
  CHECK(c.Run().fresh_for == absl::Seconds(90));  // Expires - Date = 120, minus apparent age 30
  c.headers = {{"Expires", "not a date"}};
  CHECK(c.Run().fresh_for == absl::ZeroDuration());
  CHECK(c.Run().store);
  const std::string modified = FormatHttpDate(kNow - absl::Hours(10));
  c.headers = {{"Last-Modified", modified}};
  CHECK(c.Run().fresh_for == absl::Hours(1));  // 10% of 10 h: not bounded by the default TTL
  c.headers = {};
  CHECK(c.Run().fresh_for == absl::Minutes(5));
  CHECK(c.Run().reason == "tenant default TTL");
}

TEST_CASE("heuristic freshness is 10% of the Last-Modified age, at most cache.heuristic_max") {
  Case c;
  c.policy.default_ttl = absl::Hours(24);
  const std::string modified = FormatHttpDate(kNow - absl::Hours(10));
  c.headers = {{"Last-Modified", modified}};
  CHECK(c.Run().fresh_for == absl::Hours(1));
  c.policy.heuristic_freshness = false;  // swift origins: writes purge, so the default TTL applies
  CHECK(c.Run().fresh_for == absl::Hours(24));
}

TEST_CASE("the tenant's bounds clamp what the origin says") {
  Case c;
  c.policy.min_ttl = absl::Minutes(1);
  c.policy.max_ttl = absl::Hours(1);
  c.headers = {{"Cache-Control", "max-age=5"}};
  CHECK(c.Run().fresh_for == absl::Minutes(1));
  c.headers = {{"Cache-Control", "max-age=86400"}};
  CHECK(c.Run().fresh_for == absl::Hours(1));
  c.policy.honour_origin = false;
  c.headers = {{"Cache-Control", "max-age=86400"}};
  CHECK(c.Run().fresh_for == absl::Minutes(5));
}

TEST_CASE("what is never stored") {
  Case c;
  c.headers = {{"Cache-Control", "no-store"}};
  CHECK_FALSE(c.Run().store);
  c.headers = {{"cache-control", "Private"}};
  CHECK_FALSE(c.Run().store);
  c.policy.honour_origin = false;  // still not stored
  CHECK_FALSE(c.Run().store);
  c = Case{};
  c.request.method = "POST";
  CHECK_FALSE(c.Run().store);
  c = Case{};
  c.status = 503;
  CHECK_FALSE(c.Run().store);
  c.status = 302;
  CHECK_FALSE(c.Run().store);  // not heuristically cacheable
  c.headers = {{"Cache-Control", "max-age=60"}};
  CHECK(c.Run().store);  // explicit freshness makes it storable
  c = Case{};
  const std::string past = std::to_string(absl::ToUnixSeconds(kNow) - 1);
  c.headers = {{"X-Delete-At", past}};
  CHECK_FALSE(c.Run().store);
}

TEST_CASE("Authorization: shared only when the response allows it") {
  Case c;
  c.request.authorization = true;
  CHECK_FALSE(c.Run().store);
  c.headers = {{"Cache-Control", "public, max-age=60"}};
  CHECK(c.Run().store);
  c.headers = {{"Cache-Control", "s-maxage=60"}};
  CHECK(c.Run().store);
}

TEST_CASE("no-cache stores with zero freshness, must-revalidate removes the stale windows") {
  Case c;
  c.policy.min_ttl = absl::Minutes(1);
  c.headers = {{"Cache-Control", "no-cache"}};
  CacheDecision d = c.Run();
  CHECK(d.store);
  CHECK(d.fresh_for == absl::ZeroDuration());
  CHECK(d.stale_if_error == absl::ZeroDuration());
  c.headers = {{"Cache-Control", "max-age=60, must-revalidate"}};
  CHECK(c.Run().stale_while_revalidate == absl::ZeroDuration());
  c.headers = {{"Cache-Control", "max-age=60, stale-while-revalidate=10, stale-if-error=99999"}};
  d = c.Run();
  CHECK(d.stale_while_revalidate == absl::Seconds(10));
  CHECK(d.stale_if_error == absl::Minutes(5));  // bounded by the tenant
}

TEST_CASE("404s, listings and path rules take their own TTLs") {
  Case c;
  c.status = 404;
  CHECK(c.Run().fresh_for == absl::Seconds(10));
  c = Case{};
  c.request.listing = true;
  CHECK(c.Run().fresh_for == absl::Seconds(30));
  c = Case{};
  c.policy.rules = {{"/static/*", false, absl::Hours(2)}, {"/live/*.m3u8", true, {}}};
  c.request.path = "/static/css/site.css";
  CHECK(c.Run().fresh_for == absl::Hours(2));
  c.request.path = "/live/stream/index.m3u8";
  CHECK_FALSE(c.Run().store);
}

TEST_CASE("X-Delete-At caps the lifetime, surrogate keys become tags") {
  Case c;
  const std::string soon = std::to_string(absl::ToUnixSeconds(kNow) + 90);
  c.headers = {{"Cache-Control", "max-age=3600"},
               {"X-Delete-At", soon},
               {"Surrogate-Key", " product-7  banner product-7"},
               {"Cache-Tag", "a, b ,banner"}};
  const CacheDecision d = c.Run();
  CHECK(d.fresh_for == absl::Seconds(90));
  CHECK(d.stale_if_error == absl::ZeroDuration());
  CHECK(d.tags == std::vector<std::string>{"product-7", "banner", "a", "b"});
}

// ---- RFC 9111 / RFC 9213 conformance, one row per rule --------------------------------------------

namespace {

using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

struct Rule {
  const char* rule;  // what the RFC says, and where
  int status;
  Headers headers;
  bool store;
  absl::Duration fresh_for;  // when stored
  bool authorization = false;
};

// The conformance suite's tenant: nothing stored fresh without freshness information.
CachePolicy RfcPolicy() {
  CachePolicy p;
  p.default_ttl = absl::ZeroDuration();
  p.targeted_cache_control = "Edge-Cache-Control";
  return p;
}

void CheckRules(const std::vector<Rule>& rules) {
  const std::string date = FormatHttpDate(kNow);
  for (const Rule& r : rules) {
    CAPTURE(r.rule);
    Headers headers = r.headers;
    headers.emplace_back("Date", date);
    RequestFacts request = Get("/a");
    request.authorization = r.authorization;
    const CacheDecision d = Decide(RfcPolicy(), request, ResponseFacts{r.status, headers}, kNow);
    CHECK(d.store == r.store);
    if (d.store && r.store) CHECK(d.fresh_for == r.fresh_for);
  }
}

const absl::Duration kHour = absl::Hours(1);

}  // namespace

TEST_CASE("RFC 9213: targeted fields come before Cache-Control and Expires") {
  CheckRules({
      {"2.2: CDN-Cache-Control max-age is used", 200, {{"CDN-Cache-Control", "max-age=3600"}}, true, kHour},
      {"2.2: CDN-Cache-Control wins over a longer Cache-Control max-age",
       200,
       {{"Cache-Control", "max-age=86400"}, {"CDN-Cache-Control", "max-age=3600"}},
       true,
       kHour},
      {"2.2: CDN-Cache-Control wins over a shorter Cache-Control max-age",
       200,
       {{"Cache-Control", "max-age=1"}, {"CDN-Cache-Control", "max-age=3600"}},
       true,
       kHour},
      {"2.2: Cache-Control no-store is ignored when CDN-Cache-Control is valid",
       200,
       {{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=3600"}},
       true,
       kHour},
      {"2.2: Expires is ignored when CDN-Cache-Control is valid",
       200,
       {{"CDN-Cache-Control", "max-age=3600"}, {"Expires", "0"}},
       true,
       kHour},
      {"2.2: CDN-Cache-Control max-age=0 with a future Expires is stale",
       200,
       {{"CDN-Cache-Control", "max-age=0"}, {"Expires", "Thu, 01 Jan 2099 00:00:00 GMT"}},
       true,
       absl::ZeroDuration()},
      {"2.2: CDN-Cache-Control no-store",
       200,
       {{"CDN-Cache-Control", "no-store"}, {"Cache-Control", "max-age=60"}},
       false,
       {}},
      {"2.2: CDN-Cache-Control private",
       200,
       {{"CDN-Cache-Control", "private"}, {"Cache-Control", "max-age=60"}},
       false,
       {}},
      {"2.2: CDN-Cache-Control no-cache: stored, revalidated on use",
       200,
       {{"CDN-Cache-Control", "no-cache"}, {"Cache-Control", "max-age=60"}},
       true,
       absl::ZeroDuration()},
      {"2.2: CDN-Cache-Control s-maxage",
       200,
       {{"CDN-Cache-Control", "s-maxage=3600, max-age=10"}},
       true,
       kHour},
      {"2.2: unknown directives are ignored",
       200,
       {{"CDN-Cache-Control", "foobar, max-age=3600"}},
       true,
       kHour},
      {"2.1: an invalid Structured Field is ignored (Cache-Control applies)",
       200,
       {{"CDN-Cache-Control", "max-age=10000, &&&&&"}, {"Cache-Control", "no-store"}},
       false,
       {}},
      {"2.1: a directive of the wrong type makes the field invalid",
       200,
       {{"CDN-Cache-Control", "max-age=\"10000\""}, {"Cache-Control", "no-store"}},
       false,
       {}},
      {"2.1: a space before = is not a Structured Field",
       200,
       {{"CDN-Cache-Control", "max-age =3600"}, {"Cache-Control", "max-age=60"}},
       true,
       absl::Minutes(1)},
      {"2.1: lines of a targeted field are combined",
       200,
       {{"CDN-Cache-Control", "max-age=3600"}, {"CDN-Cache-Control", "must-revalidate"}},
       true,
       kHour},
      {"2.2: a max-age too large to represent is 2^31 (then clamped by the tenant)",
       200,
       {{"CDN-Cache-Control", "max-age=99999999999"}},
       true,
       absl::Hours(24 * 7)},
      {"2.2: the tenant's targeted field comes first",
       200,
       {{"CDN-Cache-Control", "no-store"}, {"Edge-Cache-Control", "max-age=3600"}},
       true,
       kHour},
      {"2.2: an empty targeted field is ignored",
       200,
       {{"Edge-Cache-Control", ""}, {"CDN-Cache-Control", "max-age=3600"}},
       true,
       kHour},
  });
}

TEST_CASE("RFC 9111 5.3 and 5.1: invalid Expires is stale, Age as delta-seconds") {
  CheckRules({
      {"5.3: a valid Expires", 200, {{"Expires", FormatHttpDate(kNow + kHour)}}, true, kHour},
      {"5.3: a 1-digit hour is not an HTTP date: already expired",
       200,
       {{"Expires", "Thu, 01 Jan 2099 2:01:18 GMT"}},
       true,
       absl::ZeroDuration()},
      {"5.3: doubled spaces are not an HTTP date",
       200,
       {{"Expires", "Thu, 01  Jan  2099 02:01:18 GMT"}},
       true,
       absl::ZeroDuration()},
      {"5.3: Expires: 0", 200, {{"Expires", "0"}}, true, absl::ZeroDuration()},
      {"5.3/4.2.1: several Expires lines are invalid",
       200,
       {{"Expires", "Thu, 01 Jan 2099 02:01:18 GMT"}, {"Expires", "Thu, 01 Jan 2099 02:01:18 GMT"}},
       true,
       absl::ZeroDuration()},
      {"5.3: max-age wins over an invalid Expires",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Expires", "never"}},
       true,
       kHour},
      {"5.1: Age is subtracted",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "600"}},
       true,
       absl::Minutes(50)},
      {"5.1: an invalid Age is ignored",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "abc"}},
       true,
       kHour},
      {"5.1: a negative Age is ignored",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "-7200"}},
       true,
       kHour},
      {"5.1: a list: its first member",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "600, 0"}},
       true,
       absl::Minutes(50)},
      {"5.1: several lines: the first",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "600"}, {"Age", "0"}},
       true,
       absl::Minutes(50)},
      {"1.2.2: a too large Age is 2147483648",
       200,
       {{"Cache-Control", "max-age=3600"}, {"Age", "99999999999999999999"}},
       true,
       absl::ZeroDuration()},
  });
}

TEST_CASE("RFC 9111 5.2: Cache-Control over several lines, and what is not its grammar") {
  CheckRules({
      {"5.2/RFC 9110 5.3: s-maxage and max-age on separate lines",
       200,
       {{"Cache-Control", "max-age=60"}, {"Cache-Control", "s-maxage=3600"}},
       true,
       kHour},
      {"5.2: no-store on a second line",
       200,
       {{"Cache-Control", "max-age=60"}, {"Cache-Control", "no-store"}},
       false,
       {}},
      {"4.2.1: the first of two max-age counts",
       200,
       {{"Cache-Control", "max-age=3600, max-age=1"}},
       true,
       kHour},
      {"5.2: max-age inside a quoted string is not max-age",
       200,
       {{"Cache-Control", "extension=\"max-age=3600, x\", max-age=1"}},
       true,
       absl::Seconds(1)},
      {"5.2.2.1: a quoted max-age is accepted", 200, {{"Cache-Control", "max-age=\"3600\""}}, true, kHour},
      {"5.2.2.1: leading zeros", 200, {{"Cache-Control", "max-age=003600"}}, true, kHour},
      {"5.2.2.1: a single-quoted max-age is invalid: stale",
       200,
       {{"Cache-Control", "max-age='3600'"}},
       true,
       absl::ZeroDuration()},
      {"5.2.2.1: a space before = is not the grammar: stale",
       200,
       {{"Cache-Control", "max-age =3600"}},
       true,
       absl::ZeroDuration()},
      {"5.2.2.1: a space after = is not the grammar: stale",
       200,
       {{"Cache-Control", "max-age= 3600"}},
       true,
       absl::ZeroDuration()},
  });
}

TEST_CASE("RFC 9111 3 and 4.2.2: errors with explicit freshness, 401/403, heuristics") {
  CheckRules({
      {"3: a 500 with max-age is stored for it", 500, {{"Cache-Control", "max-age=3600"}}, true, kHour},
      {"3: a 503 with s-maxage", 503, {{"Cache-Control", "s-maxage=3600"}}, true, kHour},
      {"3: a 502 with Expires", 502, {{"Expires", FormatHttpDate(kNow + kHour)}}, true, kHour},
      {"3: a 504 with a targeted field", 504, {{"CDN-Cache-Control", "max-age=3600"}}, true, kHour},
      {"3: a 5xx without explicit freshness is not stored", 500, {}, false, {}},
      {"3: a 404 with max-age is fresh for it", 404, {{"Cache-Control", "max-age=3600"}}, true, kHour},
      {"3: a 404 with max-age=0 is stale", 404, {{"Cache-Control", "max-age=0"}}, true, absl::ZeroDuration()},
      {"3: a 404 without explicit freshness: the negative TTL", 404, {}, true, absl::Seconds(10)},
      {"issue 10: a 401 is never stored", 401, {{"Cache-Control", "public, max-age=3600"}}, false, {}},
      {"issue 10: a 403 is never stored", 403, {{"Cache-Control", "public, max-age=3600"}}, false, {}},
      {"a 206 (a part of the object) is never stored", 206, {{"Cache-Control", "max-age=3600"}}, false, {}},
      {"4.2.2: heuristics are not bounded by default_ttl (0s)",
       200,
       {{"Last-Modified", FormatHttpDate(kNow - absl::Hours(10))}},
       true,
       kHour},
      {"4.2.2: heuristics at most cache.heuristic_max (1 day)",
       200,
       {{"Last-Modified", FormatHttpDate(kNow - absl::Hours(24 * 100))}},
       true,
       absl::Hours(24)},
  });
}

TEST_CASE("RFC 9111 3.5: a request with Authorization") {
  CheckRules({
      {"3.5: not stored by default", 200, {{"Cache-Control", "max-age=3600"}}, false, {}, true},
      {"3.5: public allows it", 200, {{"Cache-Control", "max-age=3600, public"}}, true, kHour, true},
      {"3.5: s-maxage allows it", 200, {{"Cache-Control", "s-maxage=3600"}}, true, kHour, true},
      {"3.5: must-revalidate allows it",
       200,
       {{"Cache-Control", "max-age=3600, must-revalidate"}},
       true,
       kHour,
       true},
      {"3.5: proxy-revalidate does not",
       200,
       {{"Cache-Control", "max-age=3600, proxy-revalidate"}},
       false,
       {},
       true},
      {"3.5 and RFC 9213: the targeted field's public",
       200,
       {{"CDN-Cache-Control", "public, max-age=3600"}},
       true,
       kHour,
       true},
  });
}

TEST_CASE("globs") {
  CHECK(GlobMatch("/images/*", "/images/a/b.jpg"));
  CHECK(GlobMatch("*.jpg", "/x/y.jpg"));
  CHECK(GlobMatch("/a?c", "/abc"));
  CHECK_FALSE(GlobMatch("/a?c", "/abbc"));
  CHECK_FALSE(GlobMatch("/images/*", "/img/a"));
}

}  // namespace vhost
