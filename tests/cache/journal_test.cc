#include "cache/journal.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace cache {

namespace {
JournalRecord Add(uint64_t hash) {
  JournalRecord r = JournalRecord::ForFile(JournalRecord::Type::kAdd, hash, 7);
  r.file_bytes = 8192;
  r.useful_until = 99;
  r.stored_epoch = 3;
  r.key = "okey";
  r.tenant = "demo";
  r.tags = {"t1"};
  return r;
}

std::vector<JournalRecord> Replay(const std::string& path) {
  std::vector<JournalRecord> records;
  auto journal = Journal::Open(path, [&](const JournalRecord& r) { records.push_back(r); });
  REQUIRE(journal.ok());
  return records;
}
}  // namespace

TEST_CASE("records survive a reopen in order") {
  testing_support::TempDir dir;
  const std::string path = dir / "journal";
  {
    auto journal = Journal::Open(path, [](const JournalRecord&) {});
    REQUIRE(journal.ok());
    REQUIRE(journal->Append(Add(1)).ok());
    REQUIRE(journal->Append(JournalRecord::ForFile(JournalRecord::Type::kRemove, 1, 7)).ok());
    REQUIRE(journal->Append(JournalRecord::ForScope({ScopeKind::kTenant, "demo", {5, 6}})).ok());
  }
  const auto records = Replay(path);
  REQUIRE(records.size() == 3);
  CHECK(records[0].key == "okey");
  CHECK(records[0].tags == std::vector<std::string>{"t1"});
  CHECK(records[1].type == JournalRecord::Type::kRemove);
  CHECK(records[2].scope.name == "demo");
  CHECK(records[2].scope.epochs.soft == 6);
}

TEST_CASE("a torn tail is cut off and appends continue after the last intact record") {
  testing_support::TempDir dir;
  const std::string path = dir / "journal";
  {
    auto journal = Journal::Open(path, [](const JournalRecord&) {});
    REQUIRE(journal->Append(Add(1)).ok());
    REQUIRE(journal->Append(Add(2)).ok());
  }
  const auto full = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, full - 3);  // a crash in the middle of the second write
  CHECK(Replay(path).size() == 1);
  CHECK(std::filesystem::file_size(path) < full - 3);
  {
    auto journal = Journal::Open(path, [](const JournalRecord&) {});
    REQUIRE(journal->Append(Add(3)).ok());
  }
  const auto records = Replay(path);
  REQUIRE(records.size() == 2);
  CHECK(records[1].hash == 3);
}

TEST_CASE("rewrite replaces the content") {
  testing_support::TempDir dir;
  const std::string path = dir / "journal";
  auto journal = Journal::Open(path, [](const JournalRecord&) {});
  for (uint64_t i = 0; i < 10; ++i) REQUIRE(journal->Append(Add(i)).ok());
  REQUIRE(journal->Rewrite({Add(42)}).ok());
  REQUIRE(journal->Append(Add(43)).ok());
  const auto records = Replay(path);
  REQUIRE(records.size() == 2);
  CHECK(records[0].hash == 42);
  CHECK(records[1].hash == 43);
}

}  // namespace cache
