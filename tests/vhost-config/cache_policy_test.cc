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
  CHECK(c.Run().fresh_for == absl::Minutes(5));  // 10% of 10 h, capped by the default TTL
  c.headers = {};
  CHECK(c.Run().fresh_for == absl::Minutes(5));
  CHECK(c.Run().reason == "tenant default TTL");
}

TEST_CASE("heuristic freshness is 10% of the Last-Modified age, at most the default TTL") {
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
  c.request.auth_token = true;
  CHECK(c.Run().reason == "request carries Swift credentials");
  c = Case{};
  c.request.temp_url = true;
  CHECK_FALSE(c.Run().store);
  c = Case{};
  c.request.cache_control = "no-store";
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

TEST_CASE("no-cache stores with zero freshness; must-revalidate removes the stale windows") {
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

TEST_CASE("X-Delete-At caps the lifetime; surrogate keys become tags") {
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

TEST_CASE("globs") {
  CHECK(GlobMatch("/images/*", "/images/a/b.jpg"));
  CHECK(GlobMatch("*.jpg", "/x/y.jpg"));
  CHECK(GlobMatch("/a?c", "/abc"));
  CHECK_FALSE(GlobMatch("/a?c", "/abbc"));
  CHECK_FALSE(GlobMatch("/images/*", "/img/a"));
}

}  // namespace vhost
