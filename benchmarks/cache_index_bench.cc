// The cache index at a million entries: lookup and insert cost, memory per entry, prefix purge
// cost against the number of matches, and warm-restart time (journal replay into the index).
//   build/release/cache_index_bench
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cache/generations.h"
#include "cache/index.h"
#include "cache/journal.h"
#include "cache/key.h"
#include "cache/store.h"
#include "tests/support/temp_dir.h"

namespace {

constexpr int kEntries = 1'000'000;

// Realistic names: 100 directories of 10 000 files, "photos/dir042/IMG_004711.jpg".
std::string Name(int i) {
  char name[64];
  std::snprintf(name, sizeof(name), "photos/dir%03d/IMG_%06d.jpg", i % 100, i);
  return name;
}

std::string EncodedKey(int i) {
  return cache::Key{cache::KeyKind::kObject, "AUTH_demo", "public", Name(i), ""}.Encode();
}

cache::IndexedEntry Entry(uint64_t hash) {
  return cache::IndexedEntry{{hash, 1, 0, 64 * 1024}, 2'000'000'000, 1, 0, 0, false};
}

size_t HeapBytesInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// The heap the index of a million entries took as it was built (allocator overhead included).
size_t million_entry_heap_bytes = 0;

// One index of a million entries shared by the benchmarks below (built once).
cache::Index& MillionEntryIndex() {
  static cache::Index* index = [] {
    const size_t heap_before = HeapBytesInUse();
    auto* built = new cache::Index();
    for (int i = 0; i < kEntries; ++i) {
      const std::string key = EncodedKey(i);
      built->Insert({key, {}, Entry(cache::HashEncodedKey(key))});
    }
    million_entry_heap_bytes = HeapBytesInUse() - heap_before;
    return built;
  }();
  return *index;
}

void BM_IndexFind(benchmark::State& state) {
  cache::Index& index = MillionEntryIndex();
  std::vector<std::string> keys;
  std::mt19937 random(42);
  for (int i = 0; i < 4096; ++i) keys.push_back(EncodedKey(static_cast<int>(random() % kEntries)));
  size_t i = 0;
  for (auto _ : state) {
    const std::string& key = keys[i++ & 4095];
    benchmark::DoNotOptimize(index.Find(cache::HashEncodedKey(key)));
  }
}
BENCHMARK(BM_IndexFind);

void BM_IndexInsertReplace(benchmark::State& state) {
  cache::Index& index = MillionEntryIndex();
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back(EncodedKey(i * 241));
  size_t i = 0;
  for (auto _ : state) {
    const std::string& key = keys[i++ & 4095];
    benchmark::DoNotOptimize(index.Insert({key, {}, Entry(cache::HashEncodedKey(key))}));
  }
}
BENCHMARK(BM_IndexInsertReplace);

void BM_IndexMemoryPerEntry(benchmark::State& state) {
  cache::Index& index = MillionEntryIndex();
  cache::Index::Memory memory;
  for (auto _ : state) memory = index.MemoryUsage();
  const double n = static_cast<double>(index.size());
  state.counters["table_B_per_entry"] = static_cast<double>(memory.table_bytes) / n;
  state.counters["key_B_per_entry"] = static_cast<double>(memory.key_bytes) / n;
  state.counters["heap_B_per_entry"] = static_cast<double>(million_entry_heap_bytes) / n;
  state.counters["entries"] = n;
}
BENCHMARK(BM_IndexMemoryPerEntry)->Iterations(1)->Unit(benchmark::kMillisecond);

// Soft purges mark and keep, so every iteration matches the same entries.
void BM_PrefixPurge(benchmark::State& state) {
  cache::Index& index = MillionEntryIndex();
  // dir000 holds the 10 000 multiples of 100; longer prefixes narrow that to 1000, 100, 10.
  const int matches = static_cast<int>(state.range(0));
  std::string prefix = "photos/dir000/";
  if (matches == 10) prefix += "IMG_000";  // i < 1000
  if (matches == 100) prefix += "IMG_00";  // i < 10000
  if (matches == 1000) prefix += "IMG_0";  // i < 100000
  const std::string range = cache::NamePrefixRange(cache::KeyKind::kObject, "AUTH_demo", "public", prefix);
  std::vector<cache::IndexedEntry> removed;
  std::vector<cache::FileRef> staled;
  size_t matched = 0;
  for (auto _ : state) {
    staled.clear();
    matched = index.ApplyToRange(range, true, &removed, &staled);
  }
  state.counters["matched"] = static_cast<double>(matched);
}
BENCHMARK(BM_PrefixPurge)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// A zone journal of a million entries, replayed by Store::Open as at a restart.
void BM_RestartMillionEntries(benchmark::State& state) {
  testing_support::TempDir dir;
  const std::string zone = dir / "zone0";
  std::filesystem::create_directories(zone);
  {
    std::vector<cache::JournalRecord> records;
    records.reserve(kEntries);
    for (int i = 0; i < kEntries; ++i) {
      const std::string key = EncodedKey(i);
      cache::JournalRecord r =
          cache::JournalRecord::ForFile(cache::JournalRecord::Type::kAdd, cache::HashEncodedKey(key), i + 1);
      r.file_bytes = 16 * 1024;
      r.useful_until = 2'000'000'000;
      r.stored_epoch = 1;
      r.key = key;
      r.tenant = "demo";
      records.push_back(std::move(r));
    }
    auto journal = cache::Journal::Open(zone + "/journal", [](const cache::JournalRecord&) {});
    if (!journal.ok() || !journal->Rewrite(records).ok()) state.SkipWithError("cannot write the journal");
  }
  cache::StoreOptions options;
  options.zones.push_back({zone, uint64_t{1} << 40});
  size_t entries = 0;
  for (auto _ : state) {
    auto store = cache::Store::Open(options, [] { return absl::FromUnixSeconds(1'800'000'000); });
    if (!store.ok()) state.SkipWithError("open failed");
    entries = (*store)->GetStats().entries;
    state.PauseTiming();  // tearing down the previous process's index is not part of a restart
    store->reset();
    state.ResumeTiming();
  }
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["journal_MiB"] =
      static_cast<double>(std::filesystem::file_size(zone + "/journal")) / (1 << 20);
}
BENCHMARK(BM_RestartMillionEntries)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
