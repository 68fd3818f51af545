// What the purge subscriber lets the request path assume, each until a point on the monotonic
// clock: that the cache holds no version a write has replaced (trust: hits are served without
// revalidation), and that the purge bus answers (writes are let through). The subscriber extends
// both after every read that reached the end of the log and was reported (bus::ReportProgress),
// by the lease; writers on other nodes count on that bound (bus::MayServeOlder). Lock-free: read
// on every hit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace edge {

class BusLease {
 public:
  using Clock = std::chrono::steady_clock;

  bool trusted() const { return Clock::now().time_since_epoch().count() < trusted_until_.load(kOrder); }
  bool reachable() const { return Clock::now().time_since_epoch().count() < reachable_until_.load(kOrder); }

  void Trust(Clock::time_point until) { trusted_until_.store(until.time_since_epoch().count(), kOrder); }
  void Reach(Clock::time_point until) { reachable_until_.store(until.time_since_epoch().count(), kOrder); }
  void Revoke() {
    trusted_until_.store(0, kOrder);
    reachable_until_.store(0, kOrder);
  }
  // No bus at all: the cache is this edge's alone, and writes need nobody else.
  void Forever() {
    trusted_until_.store(kForever, kOrder);
    reachable_until_.store(kForever, kOrder);
  }

 private:
  static constexpr std::memory_order kOrder = std::memory_order_relaxed;
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> trusted_until_{kForever};
  std::atomic<int64_t> reachable_until_{kForever};
};

}  // namespace edge
