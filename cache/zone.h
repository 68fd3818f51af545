// One cache zone: one drive's directory, its size limit and space accounting, its health, and its
// restart journal. Space is reserved before a fill writes, so a zone never goes over its limit.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "cache/journal.h"

namespace cache {

struct ZoneConfig {
  std::string path;
  uint64_t max_bytes = 0;
};

// Tests inject I/O faults through this: given an operation name ("open", "write", "rename",
// "read", "journal") and a zone id, it returns an errno to fail that operation with, or 0.
using FaultInjector = std::function<int(std::string_view operation, int zone)>;

enum class ZoneState { kHealthy, kFailed };

// Whether an errno from a zone's file operation says something about the drive. Running out of
// descriptors (EMFILE, ENFILE) or memory is the process's shortage: counted against the zones, it
// took every zone out and emptied the cache.
bool IsDriveError(int error);

// What a zone may hold once its filesystem has run out of space (ENOSPC): what it holds plus what
// the filesystem still has, at most the filesystem's size (a fill in progress is reserved whole
// while the filesystem already counts what it wrote), and 5% less, so that fills have room while
// others write there too; never more than its configured size.
uint64_t LimitWhenFull(uint64_t max_bytes, uint64_t used_bytes, uint64_t available_bytes,
                       uint64_t filesystem_bytes);

// Reads and writes fail apart: a drive that fails every write while it still reads must leave
// service, so only a success of the same kind clears a count of errors.
enum class IoKind { kRead, kWrite };

// Where a zone is: its size and the filesystem that holds its path (or the nearest existing
// parent), for OvercommittedFilesystems.
struct ZonePlacement {
  std::string path;
  uint64_t max_bytes = 0;
  uint64_t filesystem = 0;        // an id: zones with the same one share a filesystem
  uint64_t filesystem_bytes = 0;  // its size
};
std::vector<ZonePlacement> PlaceZones(std::span<const ZoneConfig> zones);
// A message per filesystem whose zones add up to more than it holds (they would fill it and
// shrink, ENOSPC by ENOSPC); none when they fit.
std::vector<std::string> OvercommittedFilesystems(std::span<const ZonePlacement> zones);

// Writes `text` to `path` (a temp file renamed over it): a crash leaves the old or the new one.
void ReplaceFile(const std::string& path, std::string_view text);
// Writes `epoch` to `path`, as ReplaceFile.
void WriteEpochFile(const std::string& path, uint64_t epoch);

// Thread-safe.
class Zone {
 public:
  Zone(int id, ZoneConfig config, int error_threshold, FaultInjector faults);
  ~Zone();

  int id() const { return id_; }
  const ZoneConfig& config() const { return config_; }
  uint64_t seed() const { return seed_; }

  // Takes the zone for this process (an exclusive lock on a file in its directory, held until the
  // Zone is destroyed): FailedPrecondition if another process has it. Two processes sharing a
  // zone would delete each other's fills in progress and undo each other's evictions.
  // Also reads the zone's identity (the file `zone-id`: an id made at first use and the id of
  // the filesystem it was made on, statfs f_fsid), making it on first use; a zone found on
  // another filesystem than its marker names starts failed (Open says why).
  absl::Status Lock();
  // Makes the directories, deletes partial files left by a crash, and replays the journal into
  // `on_record`. On failure the zone is left failed, to be probed later.
  absl::Status Open(const std::function<void(const JournalRecord&)>& on_record);
  // Whether the zone works again (a write, read and delete of a probe file). Only the drive it
  // was: its directory must still exist (it is never made anew after start: that would write onto
  // whatever disk the path falls to while a drive is away), hold the same identity, on the same
  // filesystem, and be locked again. Then the zone is emptied (Reset: it missed invalidations
  // while it was out) and reopened with `initial_records`, or it keeps its files and journal
  // (Reopen) while it catches up on the purges it missed (Store::CatchUp).
  bool Probe();
  bool Reset(const std::vector<JournalRecord>& initial_records);
  // Opens the zone again as it is, its journal replayed into `on_record` (its space counted anew).
  absl::Status Reopen(const std::function<void(const JournalRecord&)>& on_record);
  // A zone catching up (Store::CatchUp) is open but serves nothing, takes no fills and keeps no
  // new purge position or epoch until it has caught up: its entries may have missed purges.
  bool catching_up() const { return catching_up_.load(std::memory_order_acquire); }
  void SetCatchingUp(bool catching_up) { catching_up_.store(catching_up, std::memory_order_release); }
  // In service and caught up: lookups and fills may use it.
  bool serving() const { return healthy() && !catching_up(); }
  // An append to the journal failed since the zone was last emptied: the journal may lack a
  // record (an entry marked stale), so the zone cannot keep its entries when it returns.
  bool journal_incomplete() const { return journal_incomplete_.load(std::memory_order_acquire); }

  // The store's epoch the zone was last in service at (the file `epoch`; 0 if none), moved on
  // whenever a zone leaves service: a zone behind the others at start missed invalidations.
  uint64_t ReadEpoch() const;
  void WriteEpoch(uint64_t epoch) const;
  // Deletes the zone's entries, journal and purge position before Open: they may have missed
  // invalidations.
  void Discard();
  // How far along the purge log the zone's entries are known to be (Store::NotePurgePosition;
  // opaque here): a zone that returns can catch up from it rather than start empty. Empty when
  // none was written since the zone was last emptied.
  std::string ReadPurgePosition() const;
  // Not written where the zone's marker is not (a drive gone: the disk under its mount point).
  void WritePurgePosition(std::string_view position) const;

  std::string FilePath(uint64_t hash, uint32_t serial) const;
  // The same into `out`, whose capacity is reused (a hit opens a file by it).
  void FilePath(uint64_t hash, uint32_t serial, std::string* out) const;
  std::string TempPath(uint64_t hash, uint32_t serial) const;
  uint32_t NextSerial() { return serial_.fetch_add(1, std::memory_order_relaxed); }
  void SeeSerial(uint32_t serial);

  // Space: used (committed files) + the journal + reserved (fills in flight) + freeing (deleted
  // files still open) never exceeds limit_bytes() before a reservation (the journal may grow
  // past it; the next one evicts).
  bool TryReserve(uint64_t bytes);
  void Unreserve(uint64_t bytes);
  // Gives back the reservation of a fill whose file was deleted unstored (aborted, failed,
  // fenced): its `file_bytes` count as freeing at once, as clients streaming the fill may hold it,
  // until the next measure says otherwise.
  void Unreserve(uint64_t reserved, uint64_t file_bytes);
  void CommitReservation(uint64_t reserved, uint64_t file_bytes);
  // One entry file of `bytes` appears (loaded from the journal) or goes.
  void AddUsed(uint64_t bytes);
  void ReleaseUsed(uint64_t bytes);
  // How much must be freed before `bytes` more can be reserved.
  uint64_t Shortfall(uint64_t bytes) const;
  uint64_t used_bytes() const;
  uint64_t entries() const;
  // The zone's files deleted (evicted, invalidated, aborted) but still open: read by a hit, being
  // sent, or queued in the file closer. Their blocks come back only at their last close, so
  // until then they take the zone's space as much as its entries do (HeldAfterDelete measures).
  // A measure begins at FreeingMark() and is set with it: files deleted meanwhile (Unreserve) stay
  // counted on top, as the scan may have missed them.
  uint64_t FreeingMark() const;
  void SetFreeing(uint64_t measured, uint64_t mark);
  uint64_t freeing_bytes() const;
  // What the zone may hold now: its size, or less once its filesystem ran out of space.
  uint64_t limit_bytes() const;
  // Sets the limit to LimitWhenFull of what the filesystem has now; `lower_only` keeps a higher
  // limit (on ENOSPC) where Maintain lets it rise again. Returns the bytes to evict to fit.
  uint64_t FitToFilesystem(bool lower_only);
  void CountFullEvictions(uint64_t entries) { full_evictions_.fetch_add(entries, std::memory_order_relaxed); }
  uint64_t full_evictions() const { return full_evictions_.load(std::memory_order_relaxed); }

  // An errno the fault injector wants for `operation`, or 0.
  int InjectedFault(std::string_view operation) const;
  // Counts an I/O failure; returns true when this one takes the zone out of service.
  bool RecordError(IoKind kind);
  void RecordSuccess(IoKind kind) {
    consecutive_errors_[static_cast<int>(kind)].store(0, std::memory_order_relaxed);
  }
  bool healthy() const { return state_.load(std::memory_order_acquire) == ZoneState::kHealthy; }
  uint64_t errors() const { return total_errors_.load(std::memory_order_relaxed); }

  absl::Status JournalAppend(const JournalRecord& record);
  // Rewrites the journal from `records` when it has grown past twice their number.
  absl::Status MaybeCompact(size_t live_records, const std::function<std::vector<JournalRecord>()>& records);

 private:
  void MarkFailed();
  void NoteJournalBytes(uint64_t bytes);  // REQUIRES: journal_mu_ held

  // Whether the directory holds this zone's marker, on the filesystem it names.
  bool SameIdentity() const;
  // Writes a new marker; false if it cannot.
  bool MakeIdentity();

  const int id_;
  const ZoneConfig config_;
  int lock_fd_ = -1;
  std::string identity_;        // the marker's id, read (or made) by Lock
  bool identity_made_ = false;  // the marker exists (read or written)
  uint64_t filesystem_id_ = 0;  // the marker's f_fsid; 0: the filesystem has none
  std::string identity_error_;  // set by Lock: why the zone must not be opened
  const uint64_t seed_;
  const int error_threshold_;
  const FaultInjector faults_;
  std::atomic<uint32_t> serial_{1};
  std::atomic<ZoneState> state_{ZoneState::kFailed};
  std::atomic<bool> catching_up_{false};
  std::atomic<bool> journal_incomplete_{false};
  std::atomic<int> consecutive_errors_[2] = {0, 0};  // by IoKind
  std::atomic<uint64_t> full_evictions_{0};
  std::atomic<uint64_t> total_errors_{0};

  mutable absl::Mutex space_mu_;
  uint64_t used_ ABSL_GUARDED_BY(space_mu_) = 0;
  uint64_t reserved_ ABSL_GUARDED_BY(space_mu_) = 0;
  uint64_t entries_ ABSL_GUARDED_BY(space_mu_) = 0;
  uint64_t limit_ ABSL_GUARDED_BY(space_mu_);
  uint64_t journal_bytes_ ABSL_GUARDED_BY(space_mu_) = 0;
  uint64_t freeing_ ABSL_GUARDED_BY(space_mu_) = 0;
  uint64_t freeing_added_ ABSL_GUARDED_BY(space_mu_) = 0;  // every Unreserve's file_bytes, summed

  absl::Mutex journal_mu_;
  std::optional<Journal> journal_ ABSL_GUARDED_BY(journal_mu_);
};

}  // namespace cache
