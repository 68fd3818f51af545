#include "purge-daemon/rate_limiter.h"

#include <doctest/doctest.h>

#include "absl/strings/str_cat.h"

namespace purge {

TEST_CASE("token buckets: a burst, then the rate, Wait looks without taking") {
  absl::Time now = absl::FromUnixSeconds(1000);
  RateLimiter limiter([&] { return now; });
  CHECK(limiter.Wait("a", 1, 2) == absl::ZeroDuration());
  CHECK(limiter.size() == 0);  // looking makes no bucket
  CHECK(limiter.Take("a", 1, 2) == absl::ZeroDuration());
  CHECK(limiter.Take("a", 1, 2) == absl::ZeroDuration());
  CHECK(limiter.Wait("a", 1, 2) == absl::Seconds(1));
  CHECK(limiter.Take("a", 1, 2) == absl::Seconds(1));      // refused: nothing taken
  CHECK(limiter.Take("b", 1, 2) == absl::ZeroDuration());  // per key
  now += absl::Milliseconds(500);
  CHECK(limiter.Wait("a", 1, 2) == absl::Milliseconds(500));
  now += absl::Milliseconds(500);
  CHECK(limiter.Wait("a", 1, 2) == absl::ZeroDuration());
  CHECK(limiter.Take("a", 1, 2) == absl::ZeroDuration());
}

TEST_CASE("a bounded limiter forgets the key used longest ago") {
  absl::Time now = absl::FromUnixSeconds(1000);
  RateLimiter limiter([&] { return now; }, 2);
  CHECK(limiter.Take("a", 1, 1) == absl::ZeroDuration());
  CHECK(limiter.Take("b", 1, 1) == absl::ZeroDuration());
  CHECK(limiter.Take("a", 1, 1) > absl::ZeroDuration());  // a is used again: b is now the oldest
  CHECK(limiter.Take("c", 1, 1) == absl::ZeroDuration());
  CHECK(limiter.size() == 2);
  CHECK(limiter.Wait("a", 1, 1) > absl::ZeroDuration());   // kept
  CHECK(limiter.Wait("b", 1, 1) == absl::ZeroDuration());  // dropped
  for (int i = 0; i < 1000; ++i) limiter.Take(absl::StrCat("k", i), 1, 1);
  CHECK(limiter.size() == 2);
}

}  // namespace purge
