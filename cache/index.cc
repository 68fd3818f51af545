#include "cache/index.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "cache/entry_format.h"
#include "cache/key.h"

namespace cache {

namespace {

// The encoded key and tags of one entry, in one heap block: [u32 key_len][key][u32 count]
// then count x ([u32 len][tag]). Its address is stable, so the ordered set holds views into it.
using KeyBlock = std::unique_ptr<char[]>;

KeyBlock MakeBlock(std::string_view key, std::span<const std::string> tags) {
  size_t size = 8 + key.size();
  for (const auto& tag : tags) size += 4 + tag.size();
  KeyBlock block(new char[size]);
  char* p = block.get();
  auto put = [&p](const void* data, size_t n) {
    std::memcpy(p, data, n);
    p += n;
  };
  const uint32_t key_size = static_cast<uint32_t>(key.size());
  const uint32_t count = static_cast<uint32_t>(tags.size());
  put(&key_size, 4);
  put(key.data(), key.size());
  put(&count, 4);
  for (const auto& tag : tags) {
    const uint32_t tag_size = static_cast<uint32_t>(tag.size());
    put(&tag_size, 4);
    put(tag.data(), tag.size());
  }
  return block;
}

std::string_view BlockKey(const KeyBlock& block) {
  uint32_t size;
  std::memcpy(&size, block.get(), 4);
  return {block.get() + 4, size};
}

std::vector<std::string> BlockTags(const KeyBlock& block) {
  const char* p = block.get() + 4 + BlockKey(block).size();
  uint32_t count;
  std::memcpy(&count, p, 4);
  p += 4;
  std::vector<std::string> tags;
  tags.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t size;
    std::memcpy(&size, p, 4);
    tags.emplace_back(p + 4, size);
    p += 4 + size;
  }
  return tags;
}

constexpr uint32_t kMaxPages = (1u << 28) - 1;

uint32_t ToPages(uint64_t bytes) {
  return static_cast<uint32_t>(std::min<uint64_t>((bytes + kPageSize - 1) / kPageSize, kMaxPages));
}

uint32_t ClampSeconds(int64_t t) {
  return static_cast<uint32_t>(std::clamp<int64_t>(t, 0, std::numeric_limits<uint32_t>::max()));
}

// 32 bytes: the memory budget per entry is spent here, so fields are packed.
struct Slot {
  KeyBlock block;
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

  FileRef File(uint64_t hash) const {
    return {hash, serial, static_cast<int>(zone), uint64_t{pages} * kPageSize};
  }
  IndexedEntry Entry(uint64_t hash) const {
    return {File(hash), useful_until, stored_epoch, container_id, tenant_id, soft_stale != 0};
  }
};
static_assert(sizeof(Slot) == 32);

}  // namespace

struct Index::Shard {
  mutable absl::Mutex mu;
  absl::flat_hash_map<uint64_t, Slot> slots ABSL_GUARDED_BY(mu);
  absl::btree_set<std::string_view> order ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, absl::flat_hash_set<uint64_t>> tags ABSL_GUARDED_BY(mu);
  uint64_t hand ABSL_GUARDED_BY(mu) = 0;  // eviction resumes after this hash
  bool bulk_load ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string_view> pending ABSL_GUARDED_BY(mu);  // keys to order at the end of a bulk load

  void Unlink(absl::flat_hash_map<uint64_t, Slot>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    order.erase(BlockKey(it->second.block));
    if (it->second.has_tags) {
      for (const auto& tag : BlockTags(it->second.block)) {
        auto t = tags.find(tag);
        if (t == tags.end()) continue;
        t->second.erase(it->first);
        if (t->second.empty()) tags.erase(t);
      }
    }
    slots.erase(it);
  }

  // Applies an invalidation to the entries with these hashes; returns how many there were.
  size_t ApplyAll(const std::vector<uint64_t>& hashes, bool soft, std::vector<IndexedEntry>* removed,
                  std::vector<FileRef>* staled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    size_t matched = 0;
    for (uint64_t hash : hashes) {
      auto slot = slots.find(hash);
      if (slot == slots.end()) continue;
      ++matched;
      Apply(slot, soft, removed, staled);
    }
    return matched;
  }

  // Removes or marks one entry for an invalidation.
  void Apply(absl::flat_hash_map<uint64_t, Slot>::iterator it, bool soft, std::vector<IndexedEntry>* removed,
             std::vector<FileRef>* staled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (soft) {
      it->second.soft_stale = 1;
      staled->push_back(it->second.File(it->first));
    } else {
      removed->push_back(it->second.Entry(it->first));
      Unlink(it);
    }
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
    shard->slots.reserve(shard->slots.size() + per_shard);
    shard->pending.reserve(per_shard);
  }
}

void Index::EndBulkLoad() {
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    // Keys of entries erased during the load point into freed blocks: keep only live ones.
    std::erase_if(shard->pending, [&](std::string_view key) {
      auto it = shard->slots.find(HashEncodedKey(key));
      return it == shard->slots.end() || BlockKey(it->second.block).data() != key.data();
    });
    std::sort(shard->pending.begin(), shard->pending.end());
    shard->order.insert(shard->pending.begin(), shard->pending.end());
    shard->pending.clear();
    shard->pending.shrink_to_fit();
    shard->bulk_load = false;
  }
}

std::optional<IndexedEntry> Index::Insert(const NewEntry& e) {
  Shard& shard = ShardFor(e.entry.file.hash);
  absl::MutexLock lock(&shard.mu);
  std::optional<IndexedEntry> replaced;
  if (auto it = shard.slots.find(e.entry.file.hash); it != shard.slots.end()) {
    replaced = it->second.Entry(it->first);
    shard.Unlink(it);
  }
  Slot slot{.block = MakeBlock(e.key, e.tags),
            .pages = ToPages(e.entry.file.file_bytes),
            .clock = 0,
            .soft_stale = e.entry.soft_stale ? 1u : 0u,
            .has_tags = e.tags.empty() ? 0u : 1u,
            .serial = e.entry.file.serial & kSerialMask,
            .zone = static_cast<uint32_t>(e.entry.file.zone),
            .useful_until = ClampSeconds(e.entry.useful_until),
            .stored_epoch = e.entry.stored_epoch,
            .container_id = e.entry.container_id,
            .tenant_id = e.entry.tenant_id};
  auto [it, inserted] = shard.slots.emplace(e.entry.file.hash, std::move(slot));
  if (shard.bulk_load) {
    shard.pending.push_back(BlockKey(it->second.block));
  } else {
    shard.order.insert(BlockKey(it->second.block));
  }
  for (const auto& tag : e.tags) shard.tags[tag].insert(e.entry.file.hash);
  return replaced;
}

std::optional<IndexedEntry> Index::Find(std::string_view key, uint64_t hash) {
  Shard& shard = ShardFor(hash);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.slots.find(hash);
  if (it == shard.slots.end() || BlockKey(it->second.block) != key) return std::nullopt;
  if (it->second.clock < 3) ++it->second.clock;
  return it->second.Entry(hash);
}

std::optional<IndexedEntry> Index::Erase(const FileRef& file) {
  Shard& shard = ShardFor(file.hash);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.slots.find(file.hash);
  if (it == shard.slots.end() || it->second.serial != (file.serial & kSerialMask) ||
      static_cast<int>(it->second.zone) != file.zone) {
    return std::nullopt;
  }
  IndexedEntry erased = it->second.Entry(it->first);
  shard.Unlink(it);
  return erased;
}

bool Index::MarkStale(const FileRef& file) {
  Shard& shard = ShardFor(file.hash);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.slots.find(file.hash);
  if (it == shard.slots.end() || it->second.serial != (file.serial & kSerialMask) ||
      static_cast<int>(it->second.zone) != file.zone) {
    return false;
  }
  it->second.soft_stale = 1;
  return true;
}

size_t Index::ApplyToKey(std::string_view key, uint64_t hash, bool soft, std::vector<IndexedEntry>* removed,
                         std::vector<FileRef>* staled) {
  Shard& shard = ShardFor(hash);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.slots.find(hash);
  if (it == shard.slots.end() || BlockKey(it->second.block) != key) return 0;
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
    for (auto it = shard->order.lower_bound(range); it != shard->order.end() && it->starts_with(range);
         ++it) {
      if (!select || select(*it)) hashes.push_back(HashEncodedKey(*it));
    }
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
      if (shard->slots.empty()) continue;
      auto it = shard->slots.find(shard->hand);
      if (it == shard->slots.end()) it = shard->slots.begin();
      for (size_t visits = 0; visits < shard->slots.size() && freed < bytes_wanted; ++visits) {
        if (it == shard->slots.end()) it = shard->slots.begin();
        Slot& slot = it->second;
        if (static_cast<int>(slot.zone) != zone) {
          ++it;
          continue;
        }
        zone_has_entries = true;
        const bool dead =
            int64_t{slot.useful_until} < now ||
            generations.Check(slot.container_id, slot.tenant_id, slot.stored_epoch) == Validity::kGone;
        if (!dead && slot.clock > 0) {
          --slot.clock;
          ++it;
          if (visits >= kVisitsPerShard) break;
          continue;
        }
        evicted.push_back(slot.Entry(it->first));
        freed += evicted.back().file.file_bytes;
        auto victim = it++;
        shard->Unlink(victim);
      }
      shard->hand = it == shard->slots.end() ? 0 : it->first;
    }
    if (!zone_has_entries) break;
  }
  return evicted;
}

std::vector<IndexedEntry> Index::RemoveZone(int zone) {
  std::vector<IndexedEntry> removed;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (auto it = shard->slots.begin(); it != shard->slots.end();) {
      if (static_cast<int>(it->second.zone) == zone) {
        removed.push_back(it->second.Entry(it->first));
        shard->Unlink(it++);
      } else {
        ++it;
      }
    }
  }
  return removed;
}

void Index::ForEachInZone(int zone, const std::function<void(const Visit&)>& fn) const {
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (const auto& [hash, slot] : shard->slots) {
      if (static_cast<int>(slot.zone) != zone) continue;
      fn(Visit{BlockKey(slot.block), slot.has_tags ? BlockTags(slot.block) : std::vector<std::string>{},
               slot.Entry(hash)});
    }
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
    memory.table_bytes += shard->slots.capacity() * (sizeof(std::pair<const uint64_t, Slot>) + 1);
    // absl's btree nodes are about 3/4 full on average after random inserts.
    memory.order_bytes += shard->order.size() * sizeof(std::string_view) * 4 / 3;
    for (const auto& [hash, slot] : shard->slots) {
      const std::string_view key = BlockKey(slot.block);
      size_t block = 8 + key.size();
      if (slot.has_tags) {
        for (const auto& tag : BlockTags(slot.block)) block += 4 + tag.size();
      }
      memory.key_bytes += block;
    }
  }
  return memory;
}

}  // namespace cache
