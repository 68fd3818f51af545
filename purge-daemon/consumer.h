// The purge daemon's planner loop. It reads write events as a member of one consumer group, so
// several daemons share the work and none is needed; events a dead daemon had taken and not
// acknowledged are claimed by another after `claim_idle`. Events are planned and coalesced,
// appended to the purge log, and only then acknowledged: at once when a writer waits for one
// (it carries `confirm`) or after a quiet time, else (under load) in batches gathered for
// `batch_window`. An event that carries `confirm` is answered at bus::ConfirmKey once every edge that may
// serve what it replaced has applied it. Listings invalidations are repeated after `repeat_delay` (Swift
// updates its listings asynchronously) through a sorted set in Redis, so a repeat survives the daemon.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/http/prometheus.h"
#include "purge-daemon/bus/confirmer.h"
#include "purge-daemon/bus/redis.h"

namespace purge {

struct ConsumerOptions {
  std::string name;  // this daemon, as a consumer of the group
  std::string redis_host;
  int redis_port = 6379;
  uint64_t max_log_length = 100000;
  absl::Duration batch_window = absl::Milliseconds(50);
  absl::Duration repeat_delay = absl::Seconds(2);
  absl::Duration claim_idle = absl::Seconds(10);
  // The most a Swift middleware's write is held for the edges to apply it (bus::Confirmer).
  absl::Duration confirm_timeout = absl::Seconds(5);
};

class EventConsumer {
 public:
  explicit EventConsumer(ConsumerOptions options);
  ~EventConsumer();  // stops
  void Start();

  struct Stats {
    uint64_t events = 0;                 // write events planned
    uint64_t claimed = 0;                // of them, taken over from another daemon
    uint64_t log_entries = 0;            // entries appended to the purge log
    uint64_t invalidations = 0;          // invalidations in them
    uint64_t repeats_moved = 0;          // delayed listings invalidations appended
    uint64_t confirmed = 0;              // waiting writers answered: every edge applied their write
    uint64_t unconfirmed = 0;            // answered with edges still pending (the wait timed out)
    edge::http::Histogram confirm_wait;  // how long they waited
    bool connected = false;
  };
  Stats GetStats() const;

 private:
  void Run();
  absl::Status EnsureGroup(bus::RedisConnection& redis);
  // Plans, appends and acknowledges `entries` (of XREADGROUP or XAUTOCLAIM answers).
  absl::Status Process(bus::RedisConnection& redis, const std::vector<bus::StreamEntry>& entries,
                       bool claimed);
  absl::Status MoveDueRepeats(bus::RedisConnection& redis);

  const ConsumerOptions options_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<bus::Confirmer> confirmer_;  // for events that carry `confirm`
  std::thread thread_;
  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace purge
