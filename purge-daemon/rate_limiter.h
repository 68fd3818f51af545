// Token buckets keyed by a name (a tenant, a client address): `rate` takes a second on average,
// `burst` at once. Thread-safe; the clock comes from outside so tests can drive it. With a bound,
// the table holds at most that many buckets and drops the one used longest ago for a new one, so
// a client inventing keys (addresses) costs a bounded amount of memory.
#pragma once

#include <cstddef>
#include <limits>
#include <list>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/store.h"

namespace purge {

class RateLimiter {
 public:
  explicit RateLimiter(cache::Clock clock, size_t max_keys = std::numeric_limits<size_t>::max())
      : clock_(std::move(clock)), max_keys_(std::max<size_t>(max_keys, 1)) {}

  // Zero when a request of `key` may go now (it takes a token), else how long until one may.
  absl::Duration Take(std::string_view key, double rate, int burst);
  // The same without taking a token (and without making a bucket for a key that has none).
  absl::Duration Wait(std::string_view key, double rate, int burst);

  size_t size();

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
    std::list<std::string>::iterator use;  // its place in uses_
  };
  // How long until a token, after refilling `b` to now.
  static absl::Duration Refill(Bucket& b, absl::Time now, double rate, int burst);

  const cache::Clock clock_;
  const size_t max_keys_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> uses_ ABSL_GUARDED_BY(mu_);  // keys, the one used longest ago first
};

}  // namespace purge
