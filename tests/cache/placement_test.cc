#include "cache/placement.h"

#include <doctest/doctest.h>

#include <vector>

namespace cache {

TEST_CASE("keys spread over zones in proportion to their weights") {
  const std::vector<ZoneCandidate> zones = {{1, 100, true}, {2, 300, true}};
  int counts[2] = {0, 0};
  for (uint64_t key = 0; key < 100000; ++key) ++counts[PickZone(key * 0x9e3779b97f4a7c15ULL, zones)];
  CHECK(counts[1] / static_cast<double>(counts[0]) == doctest::Approx(3.0).epsilon(0.05));
}

TEST_CASE("losing a zone moves only that zone's keys, and bringing it back moves them home") {
  std::vector<ZoneCandidate> zones = {{11, 1, true}, {22, 1, true}, {33, 1, true}};
  std::vector<int> before;
  for (uint64_t key = 0; key < 30000; ++key) before.push_back(PickZone(key * 2654435761ULL, zones));
  zones[1].healthy = false;
  int moved = 0;
  for (uint64_t key = 0; key < 30000; ++key) {
    const int now = PickZone(key * 2654435761ULL, zones);
    CHECK(now != 1);
    if (before[key] != 1) {
      CHECK(now == before[key]);
    } else {
      ++moved;
    }
  }
  CHECK(moved == doctest::Approx(10000).epsilon(0.05));
  zones[1].healthy = true;
  for (uint64_t key = 0; key < 30000; ++key) CHECK(PickZone(key * 2654435761ULL, zones) == before[key]);
}

TEST_CASE("placement does not depend on the order zones are listed in") {
  const std::vector<ZoneCandidate> ab = {{5, 1, true}, {6, 2, true}};
  const std::vector<ZoneCandidate> ba = {{6, 2, true}, {5, 1, true}};
  for (uint64_t key = 0; key < 1000; ++key)
    CHECK(ab[PickZone(key, ab)].zone_seed == ba[PickZone(key, ba)].zone_seed);
}

TEST_CASE("no healthy zone means no placement") {
  const std::vector<ZoneCandidate> zones = {{1, 1, false}, {2, 0, true}};
  CHECK(PickZone(7, zones) == -1);
}

}  // namespace cache
