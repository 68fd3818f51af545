#include "cache/sorted_keys.h"

#include <doctest/doctest.h>

#include <random>
#include <set>

#include "absl/strings/str_cat.h"

namespace cache {

namespace {

std::vector<std::string> WithPrefix(const SortedKeys& keys, std::string_view prefix) {
  std::vector<std::string> seen;
  keys.ForPrefix(prefix, [&](std::string_view key) { seen.emplace_back(key); });
  std::sort(seen.begin(), seen.end());
  return seen;
}

}  // namespace

TEST_CASE("sorted keys: added keys are found by prefix before and after a rebuild") {
  SortedKeys keys;
  for (const char* key : {"a/x", "a/b/1", "a/b/2", "a/c", "b/1", "a/b/2"}) keys.Add(key);
  CHECK(WithPrefix(keys, "a/b/") == std::vector<std::string>{"a/b/1", "a/b/2"});
  CHECK(keys.Contains("a/c"));
  CHECK_FALSE(keys.Contains("a/"));

  keys.Rebuild([](std::string_view key) { return key != "a/c"; });
  CHECK(WithPrefix(keys, "a/") == std::vector<std::string>{"a/b/1", "a/b/2", "a/x"});
  CHECK(WithPrefix(keys, "") == std::vector<std::string>{"a/b/1", "a/b/2", "a/x", "b/1"});
  CHECK(WithPrefix(keys, "c").empty());
  CHECK_FALSE(keys.Contains("a/c"));
  CHECK(keys.Contains("b/1"));

  // A key added again after a rebuild is visited once.
  keys.Add("a/b/1");
  CHECK(WithPrefix(keys, "a/b/1") == std::vector<std::string>{"a/b/1"});
}

TEST_CASE("sorted keys: a bulk load merges sorted keys with duplicates, and dead ones are dropped") {
  SortedKeys keys;
  keys.Add("m");
  keys.Rebuild([](std::string_view key) { return key != "dead"; }, {"a", "dead", "m", "m", "z"});
  CHECK(WithPrefix(keys, "") == std::vector<std::string>{"a", "m", "z"});
}

TEST_CASE("sorted keys: many keys across rebuilds match a model, for every prefix asked") {
  std::mt19937 random(7);
  SortedKeys keys;
  std::set<std::string> model;
  const std::string directory = "AUTH_t/c/dir";
  auto name = [&] {
    const auto dir = random() % 30;
    return absl::StrCat(directory, dir, "/file", random() % 3000);
  };
  size_t removed = 0;
  for (int round = 0; round < 20'000; ++round) {
    const std::string key = name();
    if (random() % 3 == 0) {
      removed += model.erase(key);
    } else {
      model.insert(key);
      keys.Add(key);
    }
    if (keys.WantsRebuild(removed)) {
      keys.Rebuild([&](std::string_view k) { return model.contains(std::string(k)); });
      removed = 0;
    }
  }
  keys.Rebuild([&](std::string_view k) { return model.contains(std::string(k)); });
  for (const std::string& prefix :
       {std::string(""), directory + "1", directory + "12/file1", std::string("p")}) {
    std::vector<std::string> expected;
    for (auto it = model.lower_bound(prefix); it != model.end() && it->starts_with(prefix); ++it) {
      expected.push_back(*it);
    }
    CHECK(WithPrefix(keys, prefix) == expected);
  }
  for (int i = 0; i < 1000; ++i) {
    const std::string key = name();
    CHECK(keys.Contains(key) == model.contains(key));
  }
  // Front-coded: well under the keys' own size.
  size_t raw = 0;
  for (const std::string& key : model) raw += key.size();
  CHECK(keys.MemoryBytes() < raw / 2);
}

}  // namespace cache
