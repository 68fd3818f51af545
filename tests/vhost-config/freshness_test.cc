#include "vhost-config/freshness.h"

#include <doctest/doctest.h>

#include <vector>

namespace vhost {

namespace {

constexpr int64_t kNow = 1'800'000'000;

// Stored 100 s ago, fresh for 60 s from now, then 30 s of stale-while-revalidate and 300 s of
// stale-if-error.
StoredFreshness Entry(int64_t fresh_left, bool invalidated = false) {
  return {.stored_at = kNow - 100,
          .fresh_until = kNow + fresh_left,
          .stale_while_revalidate = 30,
          .stale_if_error = 300,
          .invalidated = invalidated};
}

CacheDirectives Request(std::string_view cache_control) {
  CacheDirectives d;
  ParseCacheControl(cache_control, &d);
  return d;
}

struct UseRule {
  const char* rule;
  StoredFreshness entry;
  std::string_view request;
  bool trusted;
  Use use;
};

}  // namespace

TEST_CASE("what a stored response may be used for, one row per rule") {
  const std::vector<UseRule> rules = {
      {"4.2: fresh is served", Entry(60), "", true, Use::kFresh},
      {"RFC 5861 3: stale inside stale-while-revalidate: served, revalidated behind", Entry(-10), "", true,
       Use::kStaleWhileRevalidate},
      {"4.2.4: stale past every window: revalidate first", Entry(-40), "", true, Use::kRevalidate},
      {"a soft purge: revalidate first, fresh or not", Entry(60, true), "", true, Use::kRevalidate},
      {"a soft purge: no stale window either", Entry(-10, true), "", true, Use::kRevalidate},
      {"an edge behind the purge log trusts nothing", Entry(60), "", false, Use::kRevalidate},
      {"5.2.1.4: request no-cache", Entry(60), "no-cache", true, Use::kRevalidate},
      {"5.2.1.1: request max-age older than the entry's age", Entry(60), "max-age=50", true,
       Use::kRevalidate},
      {"5.2.1.1: request max-age within the entry's age", Entry(60), "max-age=500", true, Use::kFresh},
      {"5.2.1.3: min-fresh longer than what is left", Entry(60), "min-fresh=120", true, Use::kRevalidate},
      {"5.2.1.3: min-fresh within what is left", Entry(60), "min-fresh=30", true, Use::kFresh},
      {"5.2.1.7: only-if-cached serves a stale entry as it is", Entry(-40), "only-if-cached", true,
       Use::kOnlyIfCached},
      {"5.2.1.7: only-if-cached, fresh", Entry(60), "only-if-cached", true, Use::kFresh},
      {"5.2: request directives over several lines (no-cache on the second)", Entry(60),
       "max-age=500, no-cache", true, Use::kRevalidate},
  };
  for (const UseRule& r : rules) {
    CAPTURE(r.rule);
    CHECK(DecideUse(r.entry, Request(r.request), kNow, r.trusted) == r.use);
  }
}

TEST_CASE("stale-if-error: usable on an origin error within its window, never once soft-purged") {
  CHECK(UsableOnError(Entry(60), kNow));
  CHECK(UsableOnError(Entry(-299), kNow));
  CHECK_FALSE(UsableOnError(Entry(-300), kNow));
  CHECK_FALSE(UsableOnError(Entry(-10, true), kNow));
}

TEST_CASE("Cache-Control parsing: lines add up, first occurrence counts, quoted commas") {
  CacheDirectives d;
  ParseCacheControl("max-age=10, private=\"Set-Cookie, X\"", &d);
  ParseCacheControl("s-maxage=20, max-age=30, no-cache", &d);
  CHECK(d.max_age == 10);
  CHECK(d.s_maxage == 20);
  CHECK(d.is_private);
  CHECK(d.no_cache);
  CHECK_FALSE(d.no_store);
  d = {};
  ParseCacheControl("stale-while-revalidate=abc, stale-if-error=\"60\", NO-STORE", &d);
  CHECK_FALSE(d.stale_while_revalidate.has_value());  // an invalid window is ignored
  CHECK(d.stale_if_error == 60);
  CHECK(d.no_store);
  d = {};
  ParseCacheControl("max-age=99999999999999999999", &d);
  CHECK(d.max_age == kMaxDeltaSeconds);
  d = {};
  ParseCacheControl(",,  , max-age=\"unterminated", &d);
  CHECK(d.max_age == 0);
}

TEST_CASE("targeted fields are Dictionary Structured Fields") {
  CacheDirectives d;
  CHECK(ParseTargetedField("max-age=60, no-cache=\"x\", private, foo=(1 2);a=?0, bar=:AQID:", &d));
  CHECK(d.max_age == 60);
  CHECK(d.no_cache);
  CHECK(d.is_private);
  d = {};
  CHECK(ParseTargetedField("max-age=1, max-age=60", &d));
  CHECK(d.max_age == 60);  // a Dictionary: the last member of a name
  CHECK(ParseTargetedField("no-store=?0", &d));
  CHECK_FALSE(d.no_store);
  for (std::string_view invalid :
       {"", "   ", "MaX-aGe=60", "max-age=60,", "max-age= 60", "max-age=-1", "max-age=1.5", "no-store=3",
        "max-age=1234567890123456", "a=\"unterminated", "a=(1 2", "&"}) {
    CAPTURE(invalid);
    CHECK_FALSE(ParseTargetedField(invalid, &d));
  }
}

}  // namespace vhost
