// The edge's end of the purge log. A thread reads the log from this edge's cursor (kept in a
// file, so a restart resumes where it stopped), applies every entry to the cache, and reports its
// progress and a heartbeat in Redis. The edge trusts its cache only while this is caught up: from
// start until it has read to the end of the log, and again after it has lost Redis for longer
// than max_disconnect. A cursor the trimmed log no longer reaches (or no cursor, with a cache
// that holds entries) invalidates the whole cache first: what it missed is unknown.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/store.h"
#include "purge-daemon/bus/protocol.h"

namespace edge {

struct SubscriberOptions {
  std::string node_id;
  std::string redis_host;
  int redis_port = 6379;
  std::string cursor_path;
  absl::Duration max_disconnect = absl::Seconds(10);
  absl::Duration heartbeat = absl::Seconds(1);
};

class PurgeSubscriber {
 public:
  // `on_trust` is called (from the subscriber's thread) whenever trust changes; it starts false.
  PurgeSubscriber(SubscriberOptions options, cache::Store& store, std::function<void(bool trusted)> on_trust);
  ~PurgeSubscriber();  // stops the thread
  void Start();

  struct Stats {
    bool trusted = false;
    std::string cursor;
    uint64_t entries_applied = 0;
    uint64_t invalidations_applied = 0;
    uint64_t whole_cache_purges = 0;  // a gap in the log, or a lost cursor
    bool connected = false;
  };
  Stats GetStats() const;

 private:
  void Run();
  // Where the log stands, and what this edge must do about its cursor before reading on.
  absl::Status Synchronize(bus::RedisConnection& redis);
  absl::Status ReadBatch(bus::RedisConnection& redis);
  void Heartbeat(bus::RedisConnection& redis);
  void SetTrusted(bool trusted);
  void SaveCursor();
  void PurgeWholeCache(const char* why);

  const SubscriberOptions options_;
  cache::Store& store_;
  const std::function<void(bool)> on_trust_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  // The thread's own state: the last entry applied, and its sequence number (0: not known).
  std::optional<bus::StreamId> cursor_;
  uint64_t cursor_seq_ = 0;
  bool synchronized_ = false;
  absl::Time last_contact_;
  absl::Time last_heartbeat_;

  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge
