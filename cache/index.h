// The in-memory index of every entry in every zone: 32 bytes of metadata per entry in a sharded
// hash table (found by the key's hash; the key itself is checked against the entry file's header
// when the file is opened), plus the encoded keys in order, front-coded, so that listing and prefix
// invalidations visit only what they match. About 50 bytes per entry in all. Thread-safe (one
// mutex per shard).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cache/generations.h"

namespace cache {

// Identifies one entry file: a zone, a key hash and a per-zone serial. A file is never reused for
// another fill, so an unlink of a removed entry can never hit a newer commit of the same key.
struct FileRef {
  uint64_t hash = 0;
  uint32_t serial = 0;
  int zone = 0;
  uint64_t file_bytes = 0;
  bool operator==(const FileRef&) const = default;
};

struct IndexedEntry {
  FileRef file;
  int64_t useful_until = 0;
  uint32_t stored_epoch = 0;
  uint32_t container_id = 0;
  uint32_t tenant_id = 0;
  bool soft_stale = false;  // a soft invalidation matched it: serve only after revalidation
};

struct NewEntry {
  std::string_view key;  // encoded
  std::span<const std::string> tags;
  IndexedEntry entry;
};

// Serials are 24 bits wide in the index.
inline constexpr uint32_t kSerialMask = (1u << 24) - 1;
inline constexpr size_t kMaxEntriesPerShard = (size_t{1} << 26) - 1;

class Index {
 public:
  explicit Index(size_t shard_count = 64);
  ~Index();

  // A restart inserts every entry at once: between these calls the ordered keys are not kept up to
  // date entry by entry but built once, from sorted keys, at EndBulkLoad. Range invalidations must
  // not run in between.
  void BeginBulkLoad(size_t expected_entries);
  void EndBulkLoad();

  // Inserts an entry; a previous entry with the same hash (the same key, or a colliding one) is
  // replaced and its file returned, for the caller to delete. A shard holds at most
  // kMaxEntriesPerShard entries: past that the new entry itself is returned, not indexed.
  std::optional<IndexedEntry> Insert(const NewEntry& entry);
  // The entry for the key whose hash is `hash`, if indexed; records the access for eviction.
  std::optional<IndexedEntry> Find(uint64_t hash);
  // Removes the entry for `file` if it is still that file. Returns whether it did.
  std::optional<IndexedEntry> Erase(const FileRef& file);
  // Marks the entry for `file` stale if it is still that file.
  bool MarkStale(const FileRef& file);

  // Every entry whose encoded key starts with `range`: removed (hard, files appended to
  // `removed`) or marked stale (soft, appended to `staled`). Returns how many matched.
  size_t ApplyToRange(std::string_view range, bool soft, std::vector<IndexedEntry>* removed,
                      std::vector<FileRef>* staled);
  // The same for the one entry of the key whose hash is `hash`, if indexed: one shard.
  size_t ApplyToKey(uint64_t hash, bool soft, std::vector<IndexedEntry>* removed,
                    std::vector<FileRef>* staled);
  // The same for the entries of the range whose encoded key `select` accepts.
  size_t ApplyToRangeIf(std::string_view range, const std::function<bool(std::string_view)>& select,
                        bool soft, std::vector<IndexedEntry>* removed, std::vector<FileRef>* staled);
  size_t ApplyToTag(std::string_view tag, bool soft, std::vector<IndexedEntry>* removed,
                    std::vector<FileRef>* staled);
  // The same for the entries with a tag that starts with `range` and that `select` accepts.
  size_t ApplyToTagRange(std::string_view range, const std::function<bool(std::string_view)>& select,
                         bool soft, std::vector<IndexedEntry>* removed, std::vector<FileRef>* staled);

  // Chooses and removes entries of `zone` until at least `bytes_wanted` are freed or nothing is
  // left to take: dead entries (expired past use, or gone by generation) first as the hand meets
  // them, then those whose access count has run down (GCLOCK: new entries start at zero, so a scan
  // of one-time objects does not push out the ones that are read again).
  std::vector<IndexedEntry> Evict(int zone, uint64_t bytes_wanted, int64_t now,
                                  const Generations& generations);
  // Removes every entry of `zone` (the zone failed).
  std::vector<IndexedEntry> RemoveZone(int zone);

  struct Visit {
    std::string_view key;
    std::vector<std::string> tags;
    IndexedEntry entry;
  };
  // Calls `fn` for every entry of `zone`, one shard locked at a time.
  void ForEachInZone(int zone, const std::function<void(const Visit&)>& fn) const;

  size_t size() const;
  // Bytes of memory the index holds, by part, for the bytes-per-entry measurement.
  struct Memory {
    size_t table_bytes = 0;  // metadata slots and hash buckets
    size_t key_bytes = 0;    // the ordered, front-coded keys
    size_t tag_bytes = 0;    // tags of the entries that have any (approximate)
  };
  Memory MemoryUsage() const;

 private:
  struct Shard;
  Shard& ShardFor(uint64_t hash) const;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace cache
