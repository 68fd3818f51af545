#include "purge-daemon/rate_limiter.h"

#include <algorithm>

namespace purge {

absl::Duration RateLimiter::Take(std::string_view tenant, double rate, int burst) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(std::string(tenant), Bucket{static_cast<double>(burst), now});
  Bucket& b = it->second;
  b.tokens = std::min<double>(burst, b.tokens + absl::ToDoubleSeconds(now - b.updated) * rate);
  b.updated = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::ZeroDuration();
  }
  return absl::Seconds((1 - b.tokens) / rate);
}

}  // namespace purge
