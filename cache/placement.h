// Which zone holds a key: weighted rendezvous (highest random weight) hashing over the healthy
// zones, so adding or losing a zone moves only that zone's share of keys.
#pragma once

#include <cstdint>
#include <span>

namespace cache {

struct ZoneCandidate {
  uint64_t zone_seed;  // stable per zone (a hash of its path), independent of list order
  double weight;       // capacity; zero or negative never wins
  bool healthy;
};

// Index into `zones` of the winner for `key_hash`, or -1 if no zone is healthy with weight > 0.
int PickZone(uint64_t key_hash, std::span<const ZoneCandidate> zones);

}  // namespace cache
