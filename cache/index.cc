#include "cache/index.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "cache/entry_format.h"
#include "cache/key.h"
#include "cache/sorted_keys.h"

namespace cache {

namespace {

constexpr uint32_t kMaxPages = (1u << 28) - 1;

uint32_t ToPages(uint64_t bytes) {
  return static_cast<uint32_t>(std::min<uint64_t>((bytes + kPageSize - 1) / kPageSize, kMaxPages));
}

uint32_t ClampSeconds(int64_t t) {
  return static_cast<uint32_t>(std::clamp<int64_t>(t, 0, std::numeric_limits<uint32_t>::max()));
}

// 32 bytes: the memory budget per entry is spent here, so fields are packed.
struct Slot {
  uint64_t hash;
  uint32_t pages : 28;
  uint32_t clock : 2;  // GCLOCK access count, 0..3
  uint32_t soft_stale : 1;
  uint32_t has_tags : 1;
  uint32_t serial : 24;
  uint32_t zone : 8;
  uint32_t useful_until;
  uint32_t stored_epoch;
  uint32_t container_id;
  uint32_t tenant_id;

  FileRef File() const { return {hash, serial, static_cast<int>(zone), uint64_t{pages} * kPageSize}; }
  IndexedEntry Entry() const {
    return {File(), useful_until, stored_epoch, container_id, tenant_id, soft_stale != 0};
  }
};
static_assert(sizeof(Slot) == 32);

Slot MakeSlot(const IndexedEntry& e, bool has_tags) {
  return Slot{.hash = e.file.hash,
              .pages = ToPages(e.file.file_bytes),
              .clock = 0,
              .soft_stale = e.soft_stale ? 1u : 0u,
              .has_tags = has_tags ? 1u : 0u,
              .serial = e.file.serial & kSerialMask,
              .zone = static_cast<uint32_t>(e.file.zone),
              .useful_until = ClampSeconds(e.useful_until),
              .stored_epoch = e.stored_epoch,
              .container_id = e.container_id,
              .tenant_id = e.tenant_id};
}

// Slots stored densely, in chunks (no growth slack beyond one chunk), and found by hash through
// open addressing over 4-byte buckets: 26 bits of position and 6 bits of the hash, so that most
// probes that do not match are rejected without reading the slot. Linear probing, at most 80%
// full; removal shifts later buckets back (no tombstones) and moves the last slot into the hole.
class SlotTable {
 public:
  static constexpr size_t kNone = ~size_t{0};

  size_t size() const { return size_; }
  Slot& at(size_t position) { return chunks_[position / kChunk][position % kChunk]; }
  const Slot& at(size_t position) const { return chunks_[position / kChunk][position % kChunk]; }

  size_t Find(uint64_t hash) const {
    if (buckets_.empty()) return kNone;
    for (size_t i = hash & mask(); buckets_[i] != 0; i = (i + 1) & mask()) {
      if (Tag(buckets_[i]) == TagOf(hash) && at(Position(buckets_[i])).hash == hash)
        return Position(buckets_[i]);
    }
    return kNone;
  }

  // `slot.hash` must not be in the table yet, and size() below kMaxEntriesPerShard.
  void Insert(const Slot& slot) {
    if ((size_ + 1) * 5 > buckets_.size() * 4) Rehash(std::max<size_t>(16, buckets_.size() * 2));
    if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<Slot[]>(kChunk));
    at(size_) = slot;
    Place(slot.hash, size_);
    ++size_;
  }

  void Erase(size_t position) {
    RemoveBucket(BucketOf(position));
    const size_t last = size_ - 1;
    if (position != last) {
      buckets_[BucketOf(last)] = Bucket(at(last).hash, position);
      at(position) = at(last);
    }
    --size_;
    // Keep half a chunk of room so that an insert and an erase in turn do not allocate each time.
    if (chunks_.size() * kChunk >= size_ + kChunk + kChunk / 2) chunks_.pop_back();
  }

  void Reserve(size_t entries) {
    const size_t wanted = std::bit_ceil(entries * 5 / 4 + 1);
    if (wanted > buckets_.size()) Rehash(wanted);
  }

  size_t MemoryBytes() const {
    return buckets_.capacity() * sizeof(uint32_t) + chunks_.size() * kChunk * sizeof(Slot);
  }

 private:
  static constexpr size_t kChunk = 1024;
  static constexpr uint32_t kPositionBits = 26;

  size_t mask() const { return buckets_.size() - 1; }
  static uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) >> kPositionBits; }
  static uint32_t Tag(uint32_t bucket) { return bucket >> kPositionBits; }
  // Position + 1, so that 0 is an empty bucket.
  static size_t Position(uint32_t bucket) { return (bucket & ((1u << kPositionBits) - 1)) - 1; }
  static uint32_t Bucket(uint64_t hash, size_t position) {
    return TagOf(hash) << kPositionBits | static_cast<uint32_t>(position + 1);
  }

  void Place(uint64_t hash, size_t position) {
    size_t i = hash & mask();
    while (buckets_[i] != 0) i = (i + 1) & mask();
    buckets_[i] = Bucket(hash, position);
  }

  size_t BucketOf(size_t position) const {
    size_t i = at(position).hash & mask();
    while (Position(buckets_[i]) != position) i = (i + 1) & mask();
    return i;
  }

  void RemoveBucket(size_t hole) {
    for (size_t j = (hole + 1) & mask(); buckets_[j] != 0; j = (j + 1) & mask()) {
      const size_t home = at(Position(buckets_[j])).hash & mask();
      // The bucket at j may move back to the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!stays) {
        buckets_[hole] = buckets_[j];
        hole = j;
      }
    }
    buckets_[hole] = 0;
  }

  void Rehash(size_t bucket_count) {
    buckets_.assign(bucket_count, 0);
    buckets_.shrink_to_fit();
    for (size_t position = 0; position < size_; ++position) Place(at(position).hash, position);
  }

  std::vector<std::unique_ptr<Slot[]>> chunks_;
  std::vector<uint32_t> buckets_;
  size_t size_ = 0;
};

}  // namespace

struct Index::Shard {
  mutable absl::Mutex mu;
  SlotTable slots ABSL_GUARDED_BY(mu);
  SortedKeys keys ABSL_GUARDED_BY(mu);
  size_t removed_since_rebuild ABSL_GUARDED_BY(mu) = 0;
  // The tags of the entries that have any, and the entries of each tag, in order: the
  // dependencies on one container's objects are a range (dependencies.h).
  absl::flat_hash_map<uint64_t, std::vector<std::string>> entry_tags ABSL_GUARDED_BY(mu);
  absl::btree_map<std::string, absl::flat_hash_set<uint64_t>> tags ABSL_GUARDED_BY(mu);
  size_t hand ABSL_GUARDED_BY(mu) = 0;  // eviction resumes at this position
  bool bulk_load ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string> pending ABSL_GUARDED_BY(mu);  // keys to order at the end of a bulk load

  void DropTags(const Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!slot.has_tags) return;
    auto entry = entry_tags.find(slot.hash);
    if (entry == entry_tags.end()) return;
    for (const std::string& tag : entry->second) {
      auto t = tags.find(tag);
      if (t == tags.end()) continue;
      t->second.erase(slot.hash);
      if (t->second.empty()) tags.erase(t);
    }
    entry_tags.erase(entry);
  }

  void Unlink(size_t position) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    DropTags(slots.at(position));
    slots.Erase(position);
    ++removed_since_rebuild;
    MaybeRebuildKeys();
  }

  // Keys are dropped from the ordered set only here, for entries that are gone by then; `more`
  // (sorted) are merged in.
  void RebuildKeys(const std::vector<std::string>& more = {}) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    keys.Rebuild(
        [this](std::string_view key)
            ABSL_NO_THREAD_SAFETY_ANALYSIS { return slots.Find(HashEncodedKey(key)) != SlotTable::kNone; },
        more);
    removed_since_rebuild = 0;
  }

  void MaybeRebuildKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!bulk_load && keys.WantsRebuild(removed_since_rebuild)) RebuildKeys();
  }

  // Applies an invalidation to the entries with these hashes; returns how many there were.
  size_t ApplyAll(const std::vector<uint64_t>& hashes, bool soft, std::vector<IndexedEntry>* removed,
                  std::vector<FileRef>* staled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    size_t matched = 0;
    for (uint64_t hash : hashes) {
      const size_t position = slots.Find(hash);
      if (position == SlotTable::kNone) continue;
      ++matched;
      if (soft) {
        slots.at(position).soft_stale = 1;
        staled->push_back(slots.at(position).File());
      } else {
        removed->push_back(slots.at(position).Entry());
        Unlink(position);
      }
    }
    return matched;
  }
};

Index::Index(size_t shard_count) {
  shards_.reserve(shard_count);
  for (size_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
}

Index::~Index() = default;

Index::Shard& Index::ShardFor(uint64_t hash) const {
  // The high bits: the hash table inside the shard uses the low ones.
  return *shards_[(hash >> 40) % shards_.size()];
}

void Index::BeginBulkLoad(size_t expected_entries) {
  const size_t per_shard = expected_entries / shards_.size() + expected_entries / shards_.size() / 8;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->bulk_load = true;
    shard->slots.Reserve(shard->slots.size() + per_shard);
    shard->pending.reserve(per_shard);
  }
}

void Index::EndBulkLoad() {
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    std::sort(shard->pending.begin(), shard->pending.end());
    shard->RebuildKeys(shard->pending);  // keys of entries erased during the load are dropped too
    shard->pending.clear();
    shard->pending.shrink_to_fit();
    shard->bulk_load = false;
  }
}

std::optional<IndexedEntry> Index::Insert(const NewEntry& e) {
  const uint64_t hash = e.entry.file.hash;
  Shard& shard = ShardFor(hash);
  absl::MutexLock lock(&shard.mu);
  std::optional<IndexedEntry> replaced;
  const Slot slot = MakeSlot(e.entry, !e.tags.empty());
  if (const size_t position = shard.slots.Find(hash); position != SlotTable::kNone) {
    replaced = shard.slots.at(position).Entry();
    shard.DropTags(shard.slots.at(position));
    shard.slots.at(position) = slot;
  } else if (shard.slots.size() >= kMaxEntriesPerShard) {
    return e.entry;  // not indexed: the caller drops its file as it would a replaced one
  } else {
    shard.slots.Insert(slot);
  }
  if (shard.bulk_load) {
    shard.pending.emplace_back(e.key);
  } else {
    shard.keys.Add(e.key);
    shard.MaybeRebuildKeys();
  }
  if (!e.tags.empty()) {
    shard.entry_tags[hash].assign(e.tags.begin(), e.tags.end());
    for (const auto& tag : e.tags) shard.tags[tag].insert(hash);
  }
  return replaced;
}

std::optional<IndexedEntry> Index::Find(uint64_t hash) {
  Shard& shard = ShardFor(hash);
  absl::MutexLock lock(&shard.mu);
  const size_t position = shard.slots.Find(hash);
  if (position == SlotTable::kNone) return std::nullopt;
  Slot& slot = shard.slots.at(position);
  if (slot.clock < 3) ++slot.clock;
  return slot.Entry();
}

std::optional<IndexedEntry> Index::Erase(const FileRef& file) {
  Shard& shard = ShardFor(file.hash);
  absl::MutexLock lock(&shard.mu);
  const size_t position = shard.slots.Find(file.hash);
  if (position == SlotTable::kNone) return std::nullopt;
  const Slot& slot = shard.slots.at(position);
  if (slot.serial != (file.serial & kSerialMask) || static_cast<int>(slot.zone) != file.zone)
    return std::nullopt;
  IndexedEntry erased = slot.Entry();
  shard.Unlink(position);
  return erased;
}

bool Index::MarkStale(const FileRef& file) {
  Shard& shard = ShardFor(file.hash);
  absl::MutexLock lock(&shard.mu);
  const size_t position = shard.slots.Find(file.hash);
  if (position == SlotTable::kNone) return false;
  Slot& slot = shard.slots.at(position);
  if (slot.serial != (file.serial & kSerialMask) || static_cast<int>(slot.zone) != file.zone) return false;
  slot.soft_stale = 1;
  return true;
}

size_t Index::ApplyToKey(uint64_t hash, bool soft, std::vector<IndexedEntry>* removed,
                         std::vector<FileRef>* staled) {
  Shard& shard = ShardFor(hash);
  absl::MutexLock lock(&shard.mu);
  return shard.ApplyAll({hash}, soft, removed, staled);
}

size_t Index::ApplyToRange(std::string_view range, bool soft, std::vector<IndexedEntry>* removed,
                           std::vector<FileRef>* staled) {
  return ApplyToRangeIf(range, nullptr, soft, removed, staled);
}

size_t Index::ApplyToRangeIf(std::string_view range, const std::function<bool(std::string_view)>& select,
                             bool soft, std::vector<IndexedEntry>* removed, std::vector<FileRef>* staled) {
  size_t matched = 0;
  std::vector<uint64_t> hashes;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    hashes.clear();
    // A key whose entry is gone since the last rebuild hashes to no slot and counts for nothing.
    shard->keys.ForPrefix(range, [&](std::string_view key) {
      if (!select || select(key)) hashes.push_back(HashEncodedKey(key));
    });
    matched += shard->ApplyAll(hashes, soft, removed, staled);
  }
  return matched;
}

size_t Index::ApplyToTag(std::string_view tag, bool soft, std::vector<IndexedEntry>* removed,
                         std::vector<FileRef>* staled) {
  size_t matched = 0;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    auto t = shard->tags.find(absl::string_view(tag.data(), tag.size()));
    if (t == shard->tags.end()) continue;
    // Copied: applying removes hashes from this very set.
    const std::vector<uint64_t> hashes(t->second.begin(), t->second.end());
    matched += shard->ApplyAll(hashes, soft, removed, staled);
  }
  return matched;
}

size_t Index::ApplyToTagRange(std::string_view range, const std::function<bool(std::string_view)>& select,
                              bool soft, std::vector<IndexedEntry>* removed, std::vector<FileRef>* staled) {
  size_t matched = 0;
  std::vector<uint64_t> hashes;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    hashes.clear();
    for (auto t = shard->tags.lower_bound(absl::string_view(range.data(), range.size()));
         t != shard->tags.end() && std::string_view(t->first).starts_with(range); ++t) {
      if (select(t->first)) hashes.insert(hashes.end(), t->second.begin(), t->second.end());
    }
    // An entry with several matching tags is listed once per tag: ApplyAll finds it only once
    // when hard, and marking it stale twice is harmless but counted, so drop the repeats.
    std::sort(hashes.begin(), hashes.end());
    hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
    matched += shard->ApplyAll(hashes, soft, removed, staled);
  }
  return matched;
}

std::vector<IndexedEntry> Index::Evict(int zone, uint64_t bytes_wanted, int64_t now,
                                       const Generations& generations) {
  std::vector<IndexedEntry> evicted;
  uint64_t freed = 0;
  // Each pass lowers every access count by one, so four passes always find a victim if the zone
  // has entries; a shard is visited a bounded number of entries at a time.
  constexpr int kPasses = 4;
  constexpr size_t kVisitsPerShard = 256;
  for (int pass = 0; pass < kPasses && freed < bytes_wanted; ++pass) {
    bool zone_has_entries = false;
    for (auto& shard : shards_) {
      if (freed >= bytes_wanted) break;
      absl::MutexLock lock(&shard->mu);
      size_t position = shard->hand;
      for (size_t visits = 0; visits < shard->slots.size() && freed < bytes_wanted; ++visits) {
        if (position >= shard->slots.size()) position = 0;
        Slot& slot = shard->slots.at(position);
        if (static_cast<int>(slot.zone) != zone) {
          ++position;
          continue;
        }
        zone_has_entries = true;
        const bool dead =
            int64_t{slot.useful_until} < now ||
            generations.Check(slot.container_id, slot.tenant_id, slot.stored_epoch) == Validity::kGone;
        if (!dead && slot.clock > 0) {
          --slot.clock;
          ++position;
          if (visits >= kVisitsPerShard) break;
          continue;
        }
        evicted.push_back(slot.Entry());
        freed += evicted.back().file.file_bytes;
        shard->Unlink(position);  // the last slot moves here: it is visited next
      }
      shard->hand = position;
    }
    if (!zone_has_entries) break;
  }
  return evicted;
}

std::vector<IndexedEntry> Index::RemoveZone(int zone) {
  std::vector<IndexedEntry> removed;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (size_t position = 0; position < shard->slots.size();) {
      if (static_cast<int>(shard->slots.at(position).zone) == zone) {
        removed.push_back(shard->slots.at(position).Entry());
        shard->Unlink(position);
      } else {
        ++position;
      }
    }
  }
  return removed;
}

void Index::ForEachInZone(int zone, const std::function<void(const Visit&)>& fn) const {
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->keys.ForEach([&](std::string_view key) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      const size_t position = shard->slots.Find(HashEncodedKey(key));
      if (position == SlotTable::kNone) return;
      const Slot& slot = shard->slots.at(position);
      if (static_cast<int>(slot.zone) != zone) return;
      std::vector<std::string> tags;
      if (slot.has_tags) {
        if (auto t = shard->entry_tags.find(slot.hash); t != shard->entry_tags.end()) tags = t->second;
      }
      fn(Visit{key, std::move(tags), slot.Entry()});
    });
  }
}

size_t Index::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->slots.size();
  }
  return n;
}

Index::Memory Index::MemoryUsage() const {
  Memory memory;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    memory.table_bytes += shard->slots.MemoryBytes();
    memory.key_bytes += shard->keys.MemoryBytes();
    for (const auto& [hash, tags] : shard->entry_tags) {
      memory.tag_bytes += sizeof(hash) + sizeof(tags) + 16;  // the map's slot and control byte, about
      for (const std::string& tag : tags) memory.tag_bytes += sizeof(std::string) + tag.size() * 2;
    }
  }
  return memory;
}

}  // namespace cache
