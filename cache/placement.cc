#include "cache/placement.h"

#include <cmath>
#include <limits>

namespace cache {

namespace {
// splitmix64 finaliser: mixes the key and the zone seed into a well-distributed 64-bit value.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

int PickZone(uint64_t key_hash, std::span<const ZoneCandidate> zones) {
  int best = -1;
  double best_score = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < zones.size(); ++i) {
    const ZoneCandidate& zone = zones[i];
    if (!zone.healthy || !(zone.weight > 0)) continue;
    // u in (0, 1); score = -w / ln(u) gives each zone a win probability proportional to its weight.
    const uint64_t h = Mix(key_hash ^ Mix(zone.zone_seed));
    const double u = (static_cast<double>(h >> 11) + 0.5) / 9007199254740992.0;
    const double score = -zone.weight / std::log(u);
    if (score > best_score) {
      best_score = score;
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace cache
