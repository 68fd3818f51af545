#include "cache/memory_tier.h"

namespace cache {

uint64_t CachedEntry::MemoryBytes() const {
  uint64_t bytes = sizeof(CachedEntry) + body.size() + metadata.key.size() + metadata.tenant.size() +
                   metadata.etag.size() + metadata.last_modified.size();
  for (const auto& [name, value] : metadata.headers) bytes += name.size() + value.size() + 64;
  for (const std::string& tag : metadata.tags) bytes += tag.size() + 32;
  return bytes;
}

MemoryTier::MemoryTier(uint64_t max_bytes) : max_bytes_(max_bytes) {}

std::shared_ptr<const CachedEntry> MemoryTier::Find(const FileRef& file) {
  if (!enabled()) return nullptr;
  const Key key{file.hash, file.serial, file.zone};
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return nullptr;
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->second;
}

void MemoryTier::Insert(const FileRef& file, std::shared_ptr<const CachedEntry> entry) {
  const uint64_t size = entry->MemoryBytes();
  const uint64_t shard_limit = max_bytes_ / kShards;
  if (!enabled() || size > shard_limit) return;
  const Key key{file.hash, file.serial, file.zone};
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  if (shard.map.contains(key)) return;
  shard.lru.emplace_front(key, std::move(entry));
  shard.map.emplace(key, shard.lru.begin());
  shard.bytes += size;
  while (shard.bytes > shard_limit) {
    auto& [old_key, old_entry] = shard.lru.back();
    shard.bytes -= old_entry->MemoryBytes();
    shard.map.erase(old_key);
    shard.lru.pop_back();
  }
}

void MemoryTier::Erase(const FileRef& file) {
  if (!enabled()) return;
  const Key key{file.hash, file.serial, file.zone};
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return;
  shard.bytes -= it->second->second->MemoryBytes();
  shard.lru.erase(it->second);
  shard.map.erase(it);
}

void MemoryTier::EraseZone(int zone) {
  if (!enabled()) return;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (auto it = shard.lru.begin(); it != shard.lru.end();) {
      if (it->first.zone != zone) {
        ++it;
        continue;
      }
      shard.bytes -= it->second->MemoryBytes();
      shard.map.erase(it->first);
      it = shard.lru.erase(it);
    }
  }
}

uint64_t MemoryTier::bytes() const {
  uint64_t total = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    total += shard.bytes;
  }
  return total;
}

}  // namespace cache
