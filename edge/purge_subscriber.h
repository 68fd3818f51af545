// The edge's end of the purge log. A thread reads the log from this edge's cursor (kept in a
// file, so a restart resumes where it stopped), applies every entry to the cache, and reports its
// progress in Redis after every read (bus::ReportProgress). The edge trusts its cache only under
// a lease (BusLease): for `lease` from the sending of a read that reached the end of the log, once
// that read's report is in. Reads block for a quarter of the lease, so a connected edge renews
// it all the time; a lost connection revokes it at once, and one that hangs lets it run out. So a
// writer that stops waiting for this edge after its lease knows it revalidates every hit. Trust
// comes back after a start or an outage only once the writers that spooled events meanwhile have
// sent them (bus::kSpoolingSet). A cursor the trimmed log no longer reaches (or no cursor, with
// a cache that holds entries) invalidates the whole cache first: what it missed is unknown.
// Each saved cursor goes to the store too (Store::NotePurgePosition): every zone keeps how far it
// is along the log. A zone that returns (Store::ZonesCatchingUp) is replayed what it missed, from
// its position to the cursor, a batch between reads, or emptied (edge/zone_catch_up.h), as it is
// when the bus cannot be read.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/store.h"
#include "edge/bus_lease.h"
#include "edge/zone_catch_up.h"
#include "purge-daemon/bus/protocol.h"

namespace edge {

struct SubscriberOptions {
  std::string node_id;
  std::string redis_host;
  int redis_port = 6379;
  std::string cursor_path;
  absl::Duration lease = absl::Seconds(1);
  // After a start or an outage: at least the writers' retry interval, see ReadBatch.
  absl::Duration settle = absl::Seconds(1);
};

class PurgeSubscriber {
 public:
  // `lease` is granted and revoked from the subscriber's thread; `on_trust` is called there
  // whenever being caught up changes (it starts false).
  PurgeSubscriber(SubscriberOptions options, cache::Store& store, BusLease& lease,
                  std::function<void(bool trusted)> on_trust);
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
  absl::StatusOr<LogBounds> ReadLogBounds(bus::RedisConnection& redis);
  // A zone catching up is replayed the log entries after its position up to the cursor.
  struct Replay {
    int zone;
    uint64_t session;
    bus::SavedCursor from;  // the last entry applied to it
    bus::StreamId to;
  };
  absl::Status CatchUpZones(bus::RedisConnection& redis);
  absl::Status ReplayStep(bus::RedisConnection& redis, Replay& replay);
  // The bus cannot be read: zones catching up are emptied (DecideZoneCatchUp without the log).
  void EmptyZonesCatchingUp();
  absl::Status Report(bus::RedisConnection& redis, bool caught_up);
  absl::Duration Block() const;  // how long a read waits for new entries
  void SetTrusted(bool trusted);
  void SaveCursor();
  void PurgeWholeCache(const char* why);

  const SubscriberOptions options_;
  cache::Store& store_;
  BusLease& lease_;
  const std::function<void(bool)> on_trust_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  // The thread's own state: the last entry applied, and its sequence number (0: not known).
  std::optional<bus::StreamId> cursor_;
  uint64_t cursor_seq_ = 0;
  bool synchronized_ = false;
  bool read_to_end_ = false;  // the last read reached the end of the log: the next one blocks
  std::vector<Replay> replays_;
  bool recovering_ = true;  // from a start or an outage: writers' spools may be on their way
  absl::Time reconnected_;

  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge
