// The cache as the edge sees it: per-drive zones behind one facade.
//
// Thread safety: every method may be called from any thread at once.
// Ownership: a Hit owns an open file descriptor (the entry stays readable until the Hit is gone,
// even if it is invalidated or evicted meanwhile); a Fill owns its temp file and its reserved space,
// and dropping it without Commit aborts.
// Fences: take a FenceToken when the origin fetch starts and pass it to BeginFill. If an
// invalidation covering the key is applied after that token, the Fill can still hand its bytes to
// waiting clients but Commit refuses to store it, so an in-flight fetch of an old version can never
// land after a purge.
// Dependencies: an entry whose metadata tags name objects it is made of (dependencies.h: a large
// object's segments) is invalidated, and its fill fenced, by what invalidates those objects too.
// Failures: an I/O error on a zone is counted against it and reported as a miss (or a refused fill),
// never as a client error; past a threshold the zone is taken out and its keys go to the others.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/entry_format.h"
#include "cache/generations.h"
#include "cache/index.h"
#include "cache/invalidation.h"
#include "cache/key.h"
#include "cache/memory_tier.h"
#include "cache/zone.h"

namespace cache {

struct StoreOptions {
  std::vector<ZoneConfig> zones;
  size_t index_shards = 64;
  int zone_error_threshold = 3;  // consecutive I/O errors that take a zone out
  bool fsync_on_commit = false;  // durability against power loss, at a cost per fill
  uint64_t memory_bytes = 0;     // memory tier for small entries; 0 for none
  uint64_t held_body_bytes = 0;  // memory for larger bodies held for HoldBody; 0 for none
  FaultInjector faults;          // tests only
  // Where the store keeps its epoch besides the zones (Zone::ReadEpoch), so that the absence of
  // the only zone is known at restart too; empty: in the zones only.
  std::string epoch_file;
  // A zone that returns (re-admitted after an error, or behind the others' epoch at start) with a
  // purge position keeps its files and journal and catches up (ZonesCatchingUp) before it serves:
  // set where a purge log is read. Otherwise it is emptied at once (no log to catch up from).
  bool keep_returning_zones = false;
};

using Clock = std::function<absl::Time()>;

// A found entry, fresh or not: what it may be used for is vhost::DecideUse's decision, from its
// metadata's times and invalidated(). Movable, not copyable; closes its descriptor when destroyed.
// Small entries come from the memory tier with their body in memory and no descriptor.
class Hit {
 public:
  Hit(const FileRef& file, int fd, uint32_t body_offset, std::shared_ptr<const CachedEntry> entry,
      bool invalidated, bool read_before);
  Hit(Hit&& other) noexcept;
  Hit& operator=(Hit&& other) noexcept;
  Hit(const Hit&) = delete;
  ~Hit();

  // The entry file, or -1 when the body is in memory.
  int fd() const { return fd_; }
  uint64_t body_offset() const { return body_offset_; }
  uint64_t body_length() const { return entry_->metadata.body_length; }
  const EntryMetadata& metadata() const { return entry_->metadata; }
  // The body, when it is held in memory (valid as long as the Hit).
  std::optional<std::string_view> body_in_memory() const {
    return entry_->body_in_memory ? std::optional<std::string_view>(entry_->body) : std::nullopt;
  }
  // A soft invalidation covers it: stale windows do not apply, revalidate first.
  bool invalidated() const { return invalidated_; }
  // Another handle on the same entry (a duplicated descriptor); nullopt if dup fails.
  std::optional<Hit> Duplicate() const;
  // Hands the descriptor over (to a send buffer that closes it); fd() is -1 afterwards.
  int ReleaseFd() { return std::exchange(fd_, -1); }
  // The entry file it was read from.
  const FileRef& file() const { return file_; }
  // Whether its entry had been looked up before (its header came from the memory tier).
  bool read_before() const { return read_before_; }

 private:
  FileRef file_;
  int fd_;
  uint64_t body_offset_;
  std::shared_ptr<const CachedEntry> entry_;
  bool invalidated_;
  bool read_before_;
};

class Store;

// The only way to write an entry. Not thread-safe by itself (one writer owns it).
class Fill {
 public:
  ~Fill();  // aborts unless committed
  Fill(const Fill&) = delete;

  // Writes at position(), which moves past the bytes.
  absl::Status Append(std::string_view bytes);
  // Appends `length` bytes of `fd` from `offset` (copy_file_range: a 304 refreshes an entry's
  // header without the body passing through memory).
  absl::Status AppendFromFile(int fd, uint64_t offset, uint64_t length);
  // The next Append writes at body byte `offset`: a body may be written out of order (a slice
  // fetched from a client's seek into it, its bytes before that after).
  void Seek(uint64_t offset) { position_ = offset; }
  // The temp file, open for reading too: the body is at body_offset() on. A dup of it stays
  // readable after Commit or Abort, so clients can stream a fill while it is written.
  int fd() const { return fd_; }
  uint32_t body_offset() const { return body_offset_; }
  uint64_t position() const { return position_; }
  uint64_t written() const { return written_; }  // the end of the furthest byte written
  // Stores the entry, of written() body bytes (a hole left by Seek is the writer's to fill first).
  // FailedPrecondition if fenced, Unavailable on I/O failure; the fill is over either way.
  absl::Status Commit();
  void Abort();

 private:
  friend class Store;
  Fill(Store* store, Zone* zone, std::string encoded_key, uint64_t hash, uint32_t serial,
       uint64_t fence_token, EntryMetadata metadata, int fd, uint32_t body_offset, uint64_t reserved);
  absl::Status Fail(absl::Status status);
  // Reserves room for `bytes` more body bytes; false (and the fill aborted) if the zone is full.
  absl::Status ReserveFor(uint64_t bytes);
  absl::Status WriteFailed(int error);

  Store* store_;
  Zone* zone_;
  std::string encoded_key_;
  uint64_t hash_;
  uint32_t serial_;
  uint64_t fence_token_;
  EntryMetadata metadata_;
  int fd_;
  uint32_t body_offset_;
  uint64_t reserved_;
  uint64_t position_ = 0;
  uint64_t written_ = 0;
  bool done_ = false;
  std::optional<FileRef> replaces_;  // a refresh: committed only while the index holds this file
};

struct ZoneStats {
  std::string path;
  bool healthy;
  uint64_t used_bytes;
  uint64_t max_bytes;
  uint64_t entries;
  uint64_t errors;
  uint64_t limit_bytes;     // max_bytes, or less while the filesystem cannot hold that
  uint64_t full_evictions;  // entries evicted because the filesystem was full (ENOSPC)
  uint64_t freeing_bytes;   // deleted files still open, as last measured (Zone::SetFreeing)
};

struct StoreStats {
  uint64_t entries;
  std::vector<ZoneStats> zones;
  uint64_t memory_bytes;     // the memory tier's copies of entries
  uint64_t held_body_bytes;  // bodies held by HoldBody
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(StoreOptions options, Clock clock);
  ~Store();

  // The entry for `key`, if any. Small entries are kept in the memory tier after a first read.
  std::optional<Hit> Lookup(const Key& key);
  // A copy in memory of the body of `hit` (one with a file), for answers that would read the file
  // into memory anyway: HTTPS without kernel TLS encrypts from memory, where plain HTTP sends the
  // file with sendfile. Held from the entry's second hit on, within StoreOptions::held_body_bytes
  // (a body of up to a sixteenth of it), least recently used first out; null if it is not held.
  // Reads the body at once when it is not held yet.
  std::shared_ptr<const CachedEntry> HoldBody(const Hit& hit);
  // The point in the invalidation sequence now: take it when the origin fetch starts.
  uint64_t FenceToken();
  // Whether an invalidation applied after `fence_token` may cover `key` filled through `tenant`
  // (whatever its tags): a fetch that began before it must not be joined by new clients. With
  // `dependencies` (the fill's tags, once its answer's head is known) only those count beside the
  // key; without, the answer may still turn out to be a large object's manifest, so any object,
  // prefix or container invalidation in the key's account counts.
  bool InvalidatedSince(const Key& key, std::string_view tenant, uint64_t fence_token,
                        const std::vector<std::string>* dependencies = nullptr);
  // Starts writing `key` with `metadata` (key, body_length and stored_epoch are set by the store).
  // `expected_body_bytes` reserves space up front when the length is known. Fails if no zone is
  // healthy or the entry cannot fit.
  absl::StatusOr<std::unique_ptr<Fill>> BeginFill(const Key& key, EntryMetadata metadata,
                                                  std::optional<uint64_t> expected_body_bytes,
                                                  uint64_t fence_token);
  // Applies an invalidation; returns how many entries it hit. For container, tenant and all (O(1)
  // generation bumps) that is the count of entries stored in the scope since its last hard
  // invalidation and not yet removed: an upper bound if a narrower scope was invalidated since.
  uint64_t Apply(const Invalidation& invalidation);
  // Stores `source`'s body again under `metadata` (refreshed, as by a 304), replacing the entry
  // `source` was read from. A body in memory is stored at once; one in a file is copied on the
  // store's copier thread, so a large body does not hold up the caller's event loop, and its
  // space is reserved only when its copy starts. Dropped (a later request revalidates again): a
  // refresh of a key already being copied or beyond a bounded queue, one fenced by an
  // invalidation since `fence_token`, one whose entry was replaced meanwhile, one that fails, and
  // what is queued or under way when the store closes.
  void Refresh(const Key& key, EntryMetadata metadata, uint64_t fence_token, Hit source);
  // Records that every purge-log entry up to `position` (the subscriber's, opaque here) has been
  // applied. Each zone in service keeps it (Zone::ReadPurgePosition), written at most once a
  // second (and by Maintain), never per entry: a position older than applied only costs a
  // longer catch-up. The position a zone keeps is never ahead of what it applied.
  void NotePurgePosition(std::string position);
  // A returning zone (StoreOptions::keep_returning_zones) catches up: its entries are indexed but
  // never served, it takes no fills and keeps no new position or epoch, while invalidations
  // applied meanwhile reach its entries as any others. Whoever reads the purge log applies to it
  // what it missed since `position` (CatchUp), then FinishCatchUp, or else EmptyZone. `session`
  // tells one return from the next: a zone that fails while catching up and returns again starts
  // over, and calls for an earlier session do nothing (they return false).
  struct CatchingUpZone {
    int zone;
    std::string position;  // Zone::ReadPurgePosition
    uint64_t session;
  };
  std::vector<CatchingUpZone> ZonesCatchingUp();
  // Applies `invalidations` to `zone`'s entries only (each one an entry's invalidation Covers).
  bool CatchUp(int zone, uint64_t session, std::span<const Invalidation> invalidations);
  // The zone is caught up: it serves, takes fills, and keeps the epoch and position from now on.
  bool FinishCatchUp(int zone, uint64_t session);
  // The zone cannot catch up: it is emptied and serves from then on.
  bool EmptyZone(int zone, uint64_t session);
  // Periodic upkeep: probes failed zones, compacts journals. Call every few seconds.
  void Maintain();
  StoreStats GetStats() const;

 private:
  friend class Fill;
  Store(StoreOptions options, Clock clock);
  absl::Status Load();
  // Consecutive journal records mostly share a container and a tenant: the last ids, kept.
  struct LoadIds {
    std::string container, tenant;
    uint32_t container_id = 0, tenant_id = 0;
    bool known = false;
  };
  // Indexes one of `zone`'s journal records. `returning`: the zone was away, so an entry another
  // zone holds for the same key is newer, and stays.
  void LoadRecord(Zone& zone, const JournalRecord& r, LoadIds& ids, bool returning);
  // Once a zone's journal is read: drops what the scopes invalidated, counts the rest.
  void DropGone(Zone& zone);
  // Brings a failed zone that works again (Zone::Probe) back: catching up or emptied.
  void Readmit(Zone& zone);
  // Gives the zone catching up a new session (after Open), and returns it.
  uint64_t BeginCatchUp(Zone& zone);
  // Whether `zone` is catching up in `session`.
  bool InCatchUp(int zone, uint64_t session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(catch_up_mu_);
  // Empties a zone in service anew (its entries dropped) and writes the epoch to it.
  void ResetZone(Zone& zone);
  Zone* PickZone(uint64_t hash);
  // Reserves `bytes` in `zone`, evicting first if needed.
  bool Reserve(Zone& zone, uint64_t bytes);
  void DeleteFiles(const std::vector<IndexedEntry>& entries);
  void Remove(const IndexedEntry& entry);
  void OnZoneError(Zone& zone, IoKind kind);
  // A zone left service: the epoch moves on in every zone still in it, so the one that left is
  // found behind at the next start, and emptied.
  void NextEpoch();
  // A write found the filesystem full (ENOSPC): not an error of the drive.
  void OnZoneFull(Zone& zone);
  // Sets the zone's limit from what its filesystem has (FitToFilesystem) and evicts past it.
  void FitZone(Zone& zone, bool lower_only);
  // Measures each zone's deleted files still open (HeldAfterDelete): a scan of the process's
  // descriptors, so on Maintain and ENOSPC only (a failed write already), never per request.
  void MeasureFreeing();
  void JournalAppend(Zone& zone, const JournalRecord& record);
  absl::Status CommitFill(Fill& fill, uint64_t file_bytes);
  bool FencedLocked(const Fill& fill) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fence_mu_);
  std::vector<JournalRecord> ZoneSnapshot(int zone);
  int64_t NowSeconds() const { return absl::ToUnixSeconds(clock_()); }
  void RunCopies();  // the copier thread
  // Refresh's work, on whichever thread: begins, copies and commits the fill.
  void CopyAndCommit(const Key& key, EntryMetadata metadata, uint64_t fence_token, const Hit& source);

  const StoreOptions options_;
  const Clock clock_;
  absl::Mutex epoch_mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(epoch_mu_) = 0;
  std::vector<std::unique_ptr<Zone>> zones_;
  std::vector<std::string> zone_roots_;  // the zones' paths, absolute and canonical
  // NotePurgePosition's latest, and whether the zones have it yet.
  void WritePurgePosition() ABSL_EXCLUSIVE_LOCKS_REQUIRED(position_mu_);
  absl::Mutex position_mu_;
  std::string position_ ABSL_GUARDED_BY(position_mu_);
  bool position_written_ ABSL_GUARDED_BY(position_mu_) = true;
  std::chrono::steady_clock::time_point position_written_at_ ABSL_GUARDED_BY(position_mu_);
  // Serialises catching up with the zone's return and emptying; the sessions, by zone (0: none).
  absl::Mutex catch_up_mu_;
  std::vector<uint64_t> catch_up_sessions_ ABSL_GUARDED_BY(catch_up_mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(catch_up_mu_) = 0;
  Index index_;
  Generations generations_;
  MemoryTier memory_;
  MemoryTier held_bodies_;  // bodies alone, by file: no header, never found by Lookup

  // Objects with entries of a non-empty variant (a query string, a Vary value), by
  // ExactNameRange: an object invalidation of any other name is one lookup, not a scan of every
  // shard for variants. Names are not forgotten when their entries go (a later scan finds none).
  bool HasVariants(std::string_view exact_name_range);
  void NoteVariant(const KeyParts& parts);
  absl::Mutex variants_mu_;
  absl::flat_hash_set<std::string> names_with_variants_ ABSL_GUARDED_BY(variants_mu_);

  // Containers whose objects some entry depends on (dependencies.h), by DependenciesInContainer:
  // an invalidation in any other container does not scan the index's tags for dependents. Kept
  // like names_with_variants_, and as few: the containers that hold large objects' segments.
  bool HasDependents(std::string_view account, std::string_view container);
  void NoteDependencies(std::span<const std::string> tags);
  // The entries that depend on objects `inv` names; returns how many it hit.
  size_t ApplyToDependents(const Invalidation& inv, std::vector<IndexedEntry>* removed,
                           std::vector<FileRef>* staled);
  absl::Mutex dependents_mu_;
  absl::flat_hash_set<std::string> containers_with_dependents_ ABSL_GUARDED_BY(dependents_mu_);

  // Recent invalidations, for fences. Apply records an invalidation here before it touches the
  // index; Commit checks this log and indexes its entry under the same lock, so a fill is either
  // fenced or indexed in time for the invalidation to remove it.
  static constexpr size_t kFenceLogSize = 16384;
  absl::Mutex fence_mu_;
  uint64_t fence_seq_ ABSL_GUARDED_BY(fence_mu_) = 0;
  std::vector<Invalidation> fence_log_ ABSL_GUARDED_BY(fence_mu_);  // ring, slot = seq % size

  // Refresh's queue, and the key hashes queued or being copied. The thread starts with the first
  // copy.
  struct Copy {
    Key key;
    EntryMetadata metadata;
    uint64_t fence_token;
    Hit source;
  };
  static constexpr size_t kMaxQueuedCopies = 64;
  absl::Mutex copies_mu_;
  std::deque<Copy> copies_ ABSL_GUARDED_BY(copies_mu_);
  absl::flat_hash_set<uint64_t> copying_ ABSL_GUARDED_BY(copies_mu_);
  std::atomic<bool> closing_{false};  // set under copies_mu_; read without it by a copy under way
  std::thread copier_;
};

}  // namespace cache
