#include "purge-daemon/rate_limiter.h"

#include <algorithm>

namespace purge {

absl::Duration RateLimiter::Refill(Bucket& b, absl::Time now, double rate, int burst) {
  b.tokens = std::min<double>(burst, b.tokens + absl::ToDoubleSeconds(now - b.updated) * rate);
  b.updated = now;
  return b.tokens >= 1 ? absl::ZeroDuration() : absl::Seconds((1 - b.tokens) / rate);
}

absl::Duration RateLimiter::Take(std::string_view key, double rate, int burst) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(std::string(key), Bucket{static_cast<double>(burst), now, {}});
  if (inserted) {
    if (buckets_.size() > max_keys_) {
      buckets_.erase(uses_.front());
      uses_.pop_front();
    }
    it->second.use = uses_.insert(uses_.end(), it->first);
  } else {
    uses_.splice(uses_.end(), uses_, it->second.use);
  }
  Bucket& b = it->second;
  const absl::Duration wait = Refill(b, now, rate, burst);
  if (wait == absl::ZeroDuration()) b.tokens -= 1;
  return wait;
}

absl::Duration RateLimiter::Wait(std::string_view key, double rate, int burst) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(absl::string_view(key.data(), key.size()));
  if (it == buckets_.end()) return absl::ZeroDuration();
  return Refill(it->second, now, rate, burst);
}

size_t RateLimiter::size() {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace purge
