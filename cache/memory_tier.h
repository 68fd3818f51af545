// Small entries kept in memory as well as on disk, so a hit on them costs no file open and no
// read; of larger entries the header alone, so a hit on them opens the file for its body but
// neither reads nor parses the header again. An entry is found by its file's identity (zone, hash, serial):
// files are never reused, so a copy here can never stand for a newer entry. The index still decides what is
// current and whether it is valid; this only saves reading it. Least recently used copies go first.
// Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cache/entry_format.h"
#include "cache/index.h"

namespace cache {

// An entry's header and, for entries read into memory, its body.
struct CachedEntry {
  EntryMetadata metadata;
  bool body_in_memory = false;
  std::string body;          // the body, when body_in_memory
  uint32_t body_offset = 0;  // where the body starts in the entry file
  uint64_t MemoryBytes() const;
};

class MemoryTier {
 public:
  // `max_bytes` 0 keeps nothing.
  explicit MemoryTier(uint64_t max_bytes);

  std::shared_ptr<const CachedEntry> Find(const FileRef& file);
  void Insert(const FileRef& file, std::shared_ptr<const CachedEntry> entry);
  void Erase(const FileRef& file);
  // Drops every copy from `zone` (the zone was taken out).
  void EraseZone(int zone);
  // Entries up to this size are worth keeping in memory.
  static constexpr uint64_t kMaxEntryBody = 64 * 1024;
  bool enabled() const { return max_bytes_ > 0; }
  // The largest copy Insert keeps (what one shard may hold).
  uint64_t largest_entry() const { return max_bytes_ / kShards; }
  uint64_t bytes() const;

 private:
  static constexpr size_t kShards = 16;
  struct Key {
    uint64_t hash;
    uint32_t serial;
    int zone;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.hash, k.serial, k.zone);
    }
  };
  struct Shard {
    mutable absl::Mutex mu;
    std::list<std::pair<Key, std::shared_ptr<const CachedEntry>>> lru ABSL_GUARDED_BY(mu);  // front: newest
    absl::flat_hash_map<Key, decltype(lru)::iterator> map ABSL_GUARDED_BY(mu);
    uint64_t bytes ABSL_GUARDED_BY(mu) = 0;
  };
  Shard& ShardFor(const Key& key) { return shards_[key.hash % kShards]; }

  const uint64_t max_bytes_;
  Shard shards_[kShards];
};

}  // namespace cache
