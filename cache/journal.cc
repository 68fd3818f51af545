#include "cache/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cache/byte_codec.h"

namespace cache {

// Record framing: u32 payload length, u32 XXH32 of the payload, payload (u8 type, fields).
namespace {

constexpr uint32_t kMaxRecordBytes = 1 << 20;

absl::Status ErrnoStatus(const char* what, const std::string& path) {
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(errno));
  // A full filesystem is told apart: the zone shrinks instead of being taken for broken.
  return errno == ENOSPC ? absl::ResourceExhaustedError(message) : absl::UnavailableError(message);
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

JournalRecord JournalRecord::ForFile(Type type, uint64_t hash, uint32_t serial) {
  JournalRecord record;
  record.type = type;
  record.hash = hash;
  record.serial = serial;
  return record;
}

JournalRecord JournalRecord::ForScope(ScopeRecord scope) {
  JournalRecord record;
  record.type = Type::kScope;
  record.scope = std::move(scope);
  return record;
}

std::string EncodeRecord(const JournalRecord& r) {
  std::string payload;
  ByteWriter w(&payload);
  w.Int(static_cast<uint8_t>(r.type));
  switch (r.type) {
    case JournalRecord::Type::kAdd:
      w.Int(static_cast<uint64_t>(r.hash));
      w.Int(static_cast<uint32_t>(r.serial));
      w.Int(static_cast<uint64_t>(r.file_bytes));
      w.Int(static_cast<uint64_t>(static_cast<uint64_t>(r.useful_until)));
      w.Int(static_cast<uint32_t>(r.stored_epoch));
      w.Str(r.key);
      w.Str(r.tenant);
      w.Int(static_cast<uint32_t>(r.tags.size()));
      for (const auto& tag : r.tags) w.Str(tag);
      break;
    case JournalRecord::Type::kRemove:
    case JournalRecord::Type::kStale:
      w.Int(static_cast<uint64_t>(r.hash));
      w.Int(static_cast<uint32_t>(r.serial));
      break;
    case JournalRecord::Type::kScope:
      w.Int(static_cast<uint8_t>(r.scope.kind));
      w.Str(r.scope.name);
      w.Int(static_cast<uint32_t>(r.scope.epochs.hard));
      w.Int(static_cast<uint32_t>(r.scope.epochs.soft));
      break;
  }
  std::string out;
  out.reserve(payload.size() + 8);
  ByteWriter frame(&out);
  frame.Int(static_cast<uint32_t>(payload.size()));
  frame.Int(static_cast<uint32_t>(XXH32(payload.data(), payload.size(), 0)));
  out += payload;
  return out;
}

size_t DecodeRecords(std::string_view data, const std::function<void(const JournalRecord&)>& on_record) {
  size_t consumed = 0;
  JournalRecord r;  // reused: its strings keep their capacity from record to record
  while (data.size() - consumed >= 8) {
    uint32_t size, crc;
    std::memcpy(&size, data.data() + consumed, 4);
    std::memcpy(&crc, data.data() + consumed + 4, 4);
    if (size == 0 || size > kMaxRecordBytes || data.size() - consumed - 8 < size) break;
    const std::string_view payload = data.substr(consumed + 8, size);
    if (XXH32(payload.data(), payload.size(), 0) != crc) break;

    ByteReader c(payload);
    r.tags.clear();
    uint8_t type = 0;
    bool ok = c.Int(&type);
    r.type = static_cast<JournalRecord::Type>(type);
    switch (r.type) {
      case JournalRecord::Type::kAdd: {
        uint32_t tags = 0;
        ok = ok && c.Int(&r.hash) && c.Int(&r.serial) && c.Int(&r.file_bytes) && c.Int(&r.useful_until) &&
             c.Int(&r.stored_epoch) && c.Str(&r.key) && c.Str(&r.tenant) && c.Int(&tags) && tags <= size;
        for (uint32_t i = 0; ok && i < tags; ++i) ok = c.Str(&r.tags.emplace_back());
        break;
      }
      case JournalRecord::Type::kRemove:
      case JournalRecord::Type::kStale:
        ok = ok && c.Int(&r.hash) && c.Int(&r.serial);
        break;
      case JournalRecord::Type::kScope: {
        uint8_t kind = 0;
        ok = ok && c.Int(&kind) && kind >= 1 && kind <= 3 && c.Str(&r.scope.name) &&
             c.Int(&r.scope.epochs.hard) && c.Int(&r.scope.epochs.soft);
        r.scope.kind = static_cast<ScopeKind>(kind);
        break;
      }
      default:
        ok = false;
    }
    if (!ok || !c.empty()) break;
    on_record(r);
    consumed += 8 + size;
  }
  return consumed;
}

absl::StatusOr<Journal> Journal::Open(std::string path,
                                      const std::function<void(const JournalRecord&)>& on_record) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open journal", path);
  struct stat st;
  const size_t file_size = ::fstat(fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  // Read in one piece, without zero-filling first: a journal is tens of megabytes at a million entries.
  auto data = std::make_unique_for_overwrite<char[]>(file_size);
  size_t size = 0;
  while (size < file_size) {
    const ssize_t n = ::pread(fd, data.get() + size, file_size - size, static_cast<off_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const absl::Status status = ErrnoStatus("read journal", path);
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  uint64_t records = 0;
  const size_t intact = DecodeRecords(std::string_view(data.get(), size), [&](const JournalRecord& r) {
    ++records;
    on_record(r);
  });
  if (intact != size && ::ftruncate(fd, static_cast<off_t>(intact)) != 0) {
    const absl::Status status = ErrnoStatus("truncate journal", path);
    ::close(fd);
    return status;
  }
  return Journal(std::move(path), fd, records, intact);
}

Journal::Journal(Journal&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      records_(other.records_),
      bytes_(other.bytes_) {}

Journal& Journal::operator=(Journal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    records_ = other.records_;
    bytes_ = other.bytes_;
  }
  return *this;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Journal::Append(const JournalRecord& record) {
  // One write per record: a crash leaves at most one torn record at the tail, which Open cuts.
  const std::string encoded = EncodeRecord(record);
  absl::Status status = WriteAll(fd_, encoded, path_);
  if (status.ok()) {
    ++records_;
    bytes_ += encoded.size();
  } else {
    // A part written (ENOSPC) would be a torn record before the ones that follow, and replay
    // stops at it: cut it off, so only this record is missing.
    (void)::ftruncate(fd_, static_cast<off_t>(bytes_));
  }
  return status;
}

absl::Status Journal::Rewrite(const std::vector<JournalRecord>& records) {
  const std::string temp = path_ + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", temp);
  std::string buffer;
  absl::Status status;
  uint64_t bytes = 0;
  for (const auto& record : records) {
    const size_t before = buffer.size();
    buffer += EncodeRecord(record);
    bytes += buffer.size() - before;
    if (buffer.size() > (1 << 20)) {
      status.Update(WriteAll(fd, buffer, temp));
      buffer.clear();
    }
  }
  status.Update(WriteAll(fd, buffer, temp));
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoStatus("fsync", temp);
  ::close(fd);
  if (status.ok() && ::rename(temp.c_str(), path_.c_str()) != 0) status = ErrnoStatus("rename", temp);
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  const int new_fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (new_fd < 0) return ErrnoStatus("reopen journal", path_);
  ::close(fd_);
  fd_ = new_fd;
  records_ = records.size();
  bytes_ = bytes;
  return absl::OkStatus();
}

}  // namespace cache
