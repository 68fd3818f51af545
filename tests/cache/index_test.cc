#include "cache/index.h"

#include <doctest/doctest.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "cache/key.h"

namespace cache {

namespace {

std::string ObjectKey(int i) {
  return Key{KeyKind::kObject, "AUTH_t", "c", absl::StrCat("d", i % 10, "/", i), ""}.Encode();
}

IndexedEntry EntryFor(uint64_t hash, uint32_t serial, int zone = 0) {
  return IndexedEntry{{hash, serial, zone, 4096}, 2'000'000'000, 1, 0, 0, false};
}

}  // namespace

TEST_CASE("index: inserts, finds, erases and range purges agree with a model through growth and removal") {
  // One shard, so that its table grows, probes and shifts buckets back as a full index would.
  Index index(1);
  std::map<std::string, uint32_t> model;  // key -> serial
  std::mt19937 random(11);
  uint32_t serial = 1;
  for (int step = 0; step < 60'000; ++step) {
    const std::string key = ObjectKey(static_cast<int>(random() % 5000));
    const uint64_t hash = HashEncodedKey(key);
    switch (random() % 4) {
      case 0:
      case 1: {
        const auto replaced = index.Insert({key, {}, EntryFor(hash, ++serial)});
        CHECK(replaced.has_value() == model.contains(key));
        model[key] = serial;
        break;
      }
      case 2: {
        auto it = model.find(key);
        const auto erased = index.Erase({hash, it == model.end() ? 0 : it->second, 0, 4096});
        CHECK(erased.has_value() == (it != model.end()));
        if (it != model.end()) model.erase(it);
        break;
      }
      default: {
        const auto found = index.Find(hash);
        auto it = model.find(key);
        REQUIRE(found.has_value() == (it != model.end()));
        if (found) CHECK(found->file.serial == it->second);
      }
    }
  }
  CHECK(index.size() == model.size());
  for (const auto& [key, s] : model) CHECK(index.Find(HashEncodedKey(key))->file.serial == s);

  // A prefix purge removes exactly the model's keys under it, once.
  const std::string range = NamePrefixRange(KeyKind::kObject, "AUTH_t", "c", "d3/");
  size_t expected = 0;
  for (const auto& [key, s] : model) expected += key.starts_with(range) ? 1 : 0;
  std::vector<IndexedEntry> removed;
  std::vector<FileRef> staled;
  CHECK(index.ApplyToRange(range, false, &removed, &staled) == expected);
  CHECK(removed.size() == expected);
  CHECK(index.ApplyToRange(range, false, &removed, &staled) == 0);
  CHECK(index.size() == model.size() - expected);
}

TEST_CASE("index: hashes that share their low bits (long probe chains) are found and removed one by one") {
  Index index(1);
  std::vector<uint64_t> hashes;
  for (uint64_t i = 1; i <= 3000; ++i) hashes.push_back(i << 40 | 0x5);  // one home bucket for all
  for (uint64_t hash : hashes) CHECK_FALSE(index.Insert({absl::StrCat("k", hash), {}, EntryFor(hash, 1)}));
  std::mt19937 random(3);
  std::shuffle(hashes.begin(), hashes.end(), random);
  for (size_t i = 0; i < hashes.size(); ++i) {
    REQUIRE(index.Erase({hashes[i], 1, 0, 4096}));
    if (i % 500 == 0) {
      for (size_t j = i + 1; j < hashes.size(); ++j) REQUIRE(index.Find(hashes[j]));
    }
  }
  CHECK(index.size() == 0);
}

TEST_CASE("index: eviction and a zone's removal take the zone's entries and keep the others") {
  Index index(4);
  Generations generations;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = ObjectKey(i);
    IndexedEntry entry = EntryFor(HashEncodedKey(key), 1, i % 2);
    entry.container_id = generations.ContainerId("AUTH_t", "c");
    entry.tenant_id = generations.TenantId("t");
    index.Insert({key, {}, entry});
  }
  const auto evicted = index.Evict(1, 100 * 4096, 0, generations);
  CHECK(evicted.size() == 100);
  for (const auto& e : evicted) CHECK(e.file.zone == 1);
  const auto removed = index.RemoveZone(1);
  CHECK(removed.size() == 900);
  CHECK(index.size() == 1000);
  size_t visited = 0;
  index.ForEachInZone(0, [&](const Index::Visit& visit) {
    CHECK(HashEncodedKey(visit.key) == visit.entry.file.hash);
    ++visited;
  });
  CHECK(visited == 1000);
}

TEST_CASE("index: tags follow their entries through replacement and removal") {
  Index index(2);
  const std::string a = ObjectKey(1), b = ObjectKey(2);
  const std::vector<std::string> red{"red"}, blue{"blue"};
  index.Insert({a, red, EntryFor(HashEncodedKey(a), 1)});
  index.Insert({b, red, EntryFor(HashEncodedKey(b), 1)});
  index.Insert({a, blue, EntryFor(HashEncodedKey(a), 2)});  // a is blue now
  std::vector<IndexedEntry> removed;
  std::vector<FileRef> staled;
  CHECK(index.ApplyToTag("red", false, &removed, &staled) == 1);
  CHECK(index.ApplyToTag("red", false, &removed, &staled) == 0);
  std::vector<std::string> tags_seen;
  index.ForEachInZone(0, [&](const Index::Visit& visit) { tags_seen = visit.tags; });
  CHECK(tags_seen == blue);
  CHECK(index.ApplyToTag("blue", true, &removed, &staled) == 1);
  CHECK(index.Find(HashEncodedKey(a))->soft_stale);
}

}  // namespace cache
