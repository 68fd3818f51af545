// Read-your-writes: a writer's wait until no live edge can serve what a write replaced. A thread
// appends planned writes to the purge log (or takes an entry another step appended) and watches
// the edges' reports until every edge that may still serve an older version (bus::MayServeOlder)
// has applied the entry, or `timeout` has passed. An edge that dies stops being waited for once
// its lease has run out, so a dead edge holds a write up for at most its lease and the margin.
// Used by the edge for the writes it proxies and by the daemon for the Swift middleware's.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "purge-daemon/bus/protocol.h"
#include "purge-daemon/bus/redis.h"

namespace bus {

struct ConfirmerOptions {
  std::string redis_host;
  int redis_port = 6379;
  uint64_t max_log_length = 100000;
  absl::Duration repeat_delay = absl::Seconds(2);
  // The most a write waits, whatever the edges report (Redis slow or away while waiting).
  absl::Duration timeout = absl::Seconds(5);
  // Added to every edge's lease: how long a read may take from the edge to Redis.
  absl::Duration margin = absl::Milliseconds(250);
  absl::Duration poll = absl::Milliseconds(1);
};

struct ConfirmResult {
  bool appended = true;  // false: the entry could not be appended (Redis unreachable)
  int confirmed = 0;     // edges that applied it
  int pending = 0;       // edges that may still serve an older version (the wait timed out)
  absl::Duration waited;
};

class Confirmer {
 public:
  // Called once per wait on the confirmer's thread, with its Redis connection (for a reply that
  // goes back through Redis).
  using Done = std::function<void(const ConfirmResult&, RedisConnection&)>;

  explicit Confirmer(ConfirmerOptions options);
  ~Confirmer();  // stops; waits still open are answered as timed out
  Confirmer(const Confirmer&) = delete;

  // Appends `invalidations` as log entry `job` (bus::AppendPlan), then waits for the edges.
  void AppendAndWait(std::string job, std::vector<cache::Invalidation> invalidations, Done done);
  // Waits for the edges to apply `entry`, already in the log.
  void Wait(StreamId entry, Done done);

 private:
  struct Job {
    std::string name;  // empty: `entry` is already in the log
    std::vector<cache::Invalidation> invalidations;
    std::optional<StreamId> entry;
    Done done;
    absl::Time start;
  };
  void Submit(Job job);
  void Run();
  // Answers the waits the edges' reports settle (all of them when `all`, as timed out).
  void Settle(RedisConnection& redis, bool all);

  const ConfirmerOptions options_;
  absl::Mutex mu_;
  std::deque<Job> incoming_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Job> waiting_;  // the thread's own
  std::thread thread_;
};

}  // namespace bus
