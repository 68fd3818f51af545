// Per-tenant token buckets for the purge API: `rate` requests a second on average, `burst` at
// once. Thread-safe; the clock comes from outside so tests can drive it.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/store.h"

namespace purge {

class RateLimiter {
 public:
  explicit RateLimiter(cache::Clock clock) : clock_(std::move(clock)) {}

  // Zero when a request of `tenant` may go now (it takes a token), else how long until one may.
  absl::Duration Take(std::string_view tenant, double rate, int burst);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const cache::Clock clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace purge
