// A zone's restart journal: an append-only file of checksummed records (entry added, removed,
// marked stale; scope epochs), replayed at start so a restart is warm in seconds. A torn tail
// (a crash mid-append) is detected by its checksum and cut off.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/generations.h"

namespace cache {

struct JournalRecord {
  enum class Type : uint8_t { kAdd = 1, kRemove = 2, kStale = 3, kScope = 4 };
  Type type = Type::kAdd;
  // kAdd, kRemove, kStale: which file.
  uint64_t hash = 0;
  uint32_t serial = 0;
  // kAdd
  uint64_t file_bytes = 0;
  int64_t useful_until = 0;
  uint32_t stored_epoch = 0;
  std::string key;
  std::string tenant;
  std::vector<std::string> tags;
  // kScope
  ScopeRecord scope{ScopeKind::kAll, "", {}};

  static JournalRecord ForFile(Type type, uint64_t hash, uint32_t serial);
  static JournalRecord ForScope(ScopeRecord scope);
};

std::string EncodeRecord(const JournalRecord& record);
// Calls `on_record` for each intact record (the reference is valid only during the call) from the start of
// `data`; returns the byte length of the intact prefix (everything after it is a torn or corrupt tail).
size_t DecodeRecords(std::string_view data, const std::function<void(const JournalRecord&)>& on_record);

// The journal file of one zone. Not thread-safe: the zone serialises access.
class Journal {
 public:
  // Opens (creating if needed) `path`, replays it into `on_record` and truncates a torn tail.
  static absl::StatusOr<Journal> Open(std::string path,
                                      const std::function<void(const JournalRecord&)>& on_record);
  Journal(Journal&&) noexcept;
  Journal& operator=(Journal&&) noexcept;
  ~Journal();

  absl::Status Append(const JournalRecord& record);
  // Replaces the file with exactly `records` (temp file + rename), so it stops growing.
  absl::Status Rewrite(const std::vector<JournalRecord>& records);
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }  // the file's size

 private:
  Journal(std::string path, int fd, uint64_t records, uint64_t bytes)
      : path_(std::move(path)), fd_(fd), records_(records), bytes_(bytes) {}
  std::string path_;
  int fd_ = -1;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace cache
