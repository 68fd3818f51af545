#include "cache/zone.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cache/key.h"

namespace cache {

namespace fs = std::filesystem;

bool IsDriveError(int error) {
  return error != EMFILE && error != ENFILE && error != ENOMEM && error != ENOBUFS;
}

namespace {

constexpr const char* kIdentityFile = "/zone-id";
constexpr const char* kPurgePositionFile = "purge-position";

// The filesystem's own id (from its UUID on ext4 and xfs; not st_dev, which a remount changes).
uint64_t FilesystemId(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return 0;
  uint64_t id = 0;
  static_assert(sizeof(st.f_fsid) == sizeof(id));
  std::memcpy(&id, &st.f_fsid, sizeof(id));
  return id;
}

// The marker's "id <hex>" and "fsid <hex>", or false if there is none readable.
bool ReadIdentity(const std::string& root, std::string* id, uint64_t* filesystem_id) {
  std::ifstream in(root + std::string(kIdentityFile));
  std::string key_id, key_fsid;
  return static_cast<bool>(in >> key_id >> *id >> key_fsid >> std::hex >> *filesystem_id) && key_id == "id" &&
         key_fsid == "fsid";
}

}  // namespace

std::vector<ZonePlacement> PlaceZones(std::span<const ZoneConfig> zones) {
  std::vector<ZonePlacement> placed;
  for (const ZoneConfig& zone : zones) {
    std::error_code ec;
    fs::path path = fs::absolute(zone.path, ec);
    while (!fs::exists(path, ec) && path.has_parent_path() && path != path.parent_path()) {
      path = path.parent_path();
    }
    struct statvfs st {};
    ZonePlacement& p = placed.emplace_back(ZonePlacement{zone.path, zone.max_bytes, 0, 0});
    if (::statvfs(path.c_str(), &st) == 0) {
      p.filesystem = st.f_fsid != 0 ? st.f_fsid : FilesystemId(path.string());
      p.filesystem_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    }
  }
  return placed;
}

std::vector<std::string> OvercommittedFilesystems(std::span<const ZonePlacement> zones) {
  std::vector<std::string> messages;
  std::vector<bool> done(zones.size(), false);
  for (size_t i = 0; i < zones.size(); ++i) {
    if (done[i] || zones[i].filesystem_bytes == 0) continue;
    uint64_t total = 0;
    std::string names;
    for (size_t j = i; j < zones.size(); ++j) {
      if (zones[j].filesystem != zones[i].filesystem) continue;
      done[j] = true;
      total += zones[j].max_bytes;
      absl::StrAppend(&names, names.empty() ? "" : ", ", zones[j].path);
    }
    if (total > zones[i].filesystem_bytes) {
      messages.push_back(absl::StrCat("cache zones ", names, " add up to ", total,
                                      " bytes on a filesystem of ", zones[i].filesystem_bytes,
                                      ": they shrink to what it holds as it fills; size them to fit"));
    }
  }
  return messages;
}

uint64_t LimitWhenFull(uint64_t max_bytes, uint64_t used_bytes, uint64_t available_bytes,
                       uint64_t filesystem_bytes) {
  const uint64_t holds = std::min(used_bytes + available_bytes, filesystem_bytes);
  return std::min(max_bytes, holds - holds / 20);
}

Zone::Zone(int id, ZoneConfig config, int error_threshold, FaultInjector faults)
    : id_(id),
      config_(std::move(config)),
      seed_(HashEncodedKey(config_.path)),
      error_threshold_(error_threshold),
      faults_(std::move(faults)),
      limit_(config_.max_bytes) {}

int Zone::InjectedFault(std::string_view operation) const {
  return faults_ ? faults_(operation, id_) : 0;
}

Zone::~Zone() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

absl::Status Zone::Lock() {
  std::error_code ec;
  fs::create_directories(config_.path, ec);  // at start only: first use
  if (ReadIdentity(config_.path, &identity_, &filesystem_id_)) {
    identity_made_ = true;
  } else {
    identity_made_ = MakeIdentity();
  }
  if (identity_made_ && filesystem_id_ != 0 && FilesystemId(config_.path) != filesystem_id_) {
    identity_error_ = absl::StrCat("zone ", config_.path,
                                   " is not on the filesystem it was made on (is its drive mounted?); if the "
                                   "drive was replaced on purpose, remove ",
                                   config_.path, kIdentityFile);
  }
  const std::string path = config_.path + "/lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    return absl::OkStatus();  // an unusable directory: Open reports it and the zone starts failed
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    return absl::FailedPreconditionError(absl::StrCat(
        "cache zone ", config_.path, " is in use by another process (another edge on this zone?)"));
  }
  return absl::OkStatus();
}

absl::Status Zone::Open(const std::function<void(const JournalRecord&)>& on_record) {
  if (!identity_error_.empty()) {
    MarkFailed();
    return absl::FailedPreconditionError(identity_error_);
  }
  std::error_code ec;
  const fs::path root(config_.path);
  fs::create_directories(root / "data", ec);
  if (!ec) fs::create_directories(root / "tmp", ec);
  // Files in tmp/ are fills that never committed: a crash left them; they are never served.
  if (!ec) {
    for (const auto& entry : fs::directory_iterator(root / "tmp", ec)) fs::remove(entry.path(), ec);
  }
  if (!ec && InjectedFault("open") != 0) ec = std::error_code(InjectedFault("open"), std::generic_category());
  if (ec) {
    MarkFailed();
    return absl::UnavailableError(absl::StrCat("zone ", config_.path, ": ", ec.message()));
  }
  absl::StatusOr<Journal> journal = Journal::Open((root / "journal").string(), on_record);
  if (!journal.ok()) {
    MarkFailed();
    return journal.status();
  }
  {
    absl::MutexLock lock(&journal_mu_);
    journal_.emplace(std::move(*journal));
    NoteJournalBytes(journal_->bytes());
  }
  for (auto& count : consecutive_errors_) count = 0;
  state_.store(ZoneState::kHealthy, std::memory_order_release);
  return absl::OkStatus();
}

bool Zone::MakeIdentity() {
  std::random_device random;
  identity_ = absl::StrFormat("%08x%08x", random(), random());
  filesystem_id_ = FilesystemId(config_.path);
  const std::string temp = config_.path + std::string(kIdentityFile) + ".new";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "id " << identity_ << "\nfsid " << std::hex << filesystem_id_ << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  fs::rename(temp, config_.path + std::string(kIdentityFile), ec);
  return !ec;
}

bool Zone::SameIdentity() const {
  std::string id;
  uint64_t filesystem_id = 0;
  return ReadIdentity(config_.path, &id, &filesystem_id) && id == identity_ &&
         filesystem_id == filesystem_id_ &&
         (filesystem_id_ == 0 || FilesystemId(config_.path) == filesystem_id_);
}

bool Zone::Probe() {
  std::error_code ec;
  const fs::path root(config_.path);
  if (!fs::is_directory(root, ec)) return false;
  // A zone unusable at start gets its identity at its first use, now.
  if (!identity_made_) identity_made_ = MakeIdentity();
  if (!identity_made_ || !SameIdentity() || InjectedFault("open") != 0) return false;
  // The lock again: the directory may not be the one locked at start. A new descriptor of the
  // same file would conflict with this process's own lock, so the old one goes first.
  if (lock_fd_ >= 0) ::close(std::exchange(lock_fd_, -1));
  const int lock_fd = ::open((root / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return false;
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return false;  // another process took it meanwhile
  }
  lock_fd_ = lock_fd;
  identity_error_.clear();
  const std::string probe = (root / "probe").string();
  const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  char byte = 'p';
  const bool works = ::pwrite(fd, &byte, 1, 0) == 1 && ::pread(fd, &byte, 1, 0) == 1 && ::fsync(fd) == 0;
  ::close(fd);
  ::unlink(probe.c_str());
  return works;
}

bool Zone::Reset(const std::vector<JournalRecord>& initial_records) {
  // Out of service until reopened: a zone emptied while catching up has its journal open, and an
  // append to it meanwhile must not count as the drive's error.
  MarkFailed();
  // Whatever the zone held may have been invalidated while it was out: start it empty.
  Discard();
  journal_incomplete_.store(false, std::memory_order_release);
  if (!Reopen([](const JournalRecord&) {}).ok()) return false;
  absl::MutexLock lock(&journal_mu_);
  const bool rewritten = journal_->Rewrite(initial_records).ok();
  NoteJournalBytes(journal_->bytes());
  return rewritten;
}

absl::Status Zone::Reopen(const std::function<void(const JournalRecord&)>& on_record) {
  {
    absl::MutexLock lock(&space_mu_);
    used_ = 0;
    entries_ = 0;
  }
  return Open(on_record);
}

uint64_t Zone::ReadEpoch() const {
  std::ifstream in(config_.path + "/epoch");
  uint64_t epoch = 0;
  return in >> epoch ? epoch : 0;
}

void Zone::WriteEpoch(uint64_t epoch) const {
  WriteEpochFile(config_.path + "/epoch", epoch);
}

void Zone::Discard() {
  std::error_code ec;
  fs::remove_all(fs::path(config_.path) / "data", ec);
  fs::remove(fs::path(config_.path) / "journal", ec);
  fs::remove(fs::path(config_.path) / kPurgePositionFile, ec);  // an empty zone has missed nothing
}

std::string Zone::ReadPurgePosition() const {
  std::ifstream in(config_.path + "/" + kPurgePositionFile);
  std::string position;
  std::getline(in, position);
  return position;
}

void Zone::WritePurgePosition(std::string_view position) const {
  // Written every second: only where the marker is, never onto the disk under a vanished drive.
  if (!SameIdentity()) return;
  ReplaceFile(config_.path + "/" + kPurgePositionFile, std::string(position) + "\n");
}

void ReplaceFile(const std::string& path, std::string_view text) {
  const std::string temp = path + ".new";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
}

void WriteEpochFile(const std::string& path, uint64_t epoch) {
  ReplaceFile(path, absl::StrCat(epoch, "\n"));
}

std::string Zone::FilePath(uint64_t hash, uint32_t serial) const {
  std::string path;
  FilePath(hash, serial, &path);
  return path;
}

void Zone::FilePath(uint64_t hash, uint32_t serial, std::string* out) const {
  out->clear();
  absl::StrAppendFormat(out, "%s/data/%02x/%016x-%06x", config_.path, hash >> 56, hash, serial & 0xffffff);
}

std::string Zone::TempPath(uint64_t hash, uint32_t serial) const {
  return absl::StrFormat("%s/tmp/%016x-%06x", config_.path, hash, serial & 0xffffff);
}

void Zone::SeeSerial(uint32_t serial) {
  uint32_t current = serial_.load(std::memory_order_relaxed);
  while (serial >= current && !serial_.compare_exchange_weak(current, serial + 1)) {
  }
}

bool Zone::TryReserve(uint64_t bytes) {
  absl::MutexLock lock(&space_mu_);
  if (used_ + journal_bytes_ + reserved_ + freeing_ + bytes > limit_) return false;
  reserved_ += bytes;
  return true;
}

void Zone::Unreserve(uint64_t bytes) {
  absl::MutexLock lock(&space_mu_);
  reserved_ -= std::min(reserved_, bytes);
}

void Zone::CommitReservation(uint64_t reserved, uint64_t file_bytes) {
  absl::MutexLock lock(&space_mu_);
  reserved_ -= std::min(reserved_, reserved);
  used_ += file_bytes;
  ++entries_;
}

void Zone::AddUsed(uint64_t bytes) {
  absl::MutexLock lock(&space_mu_);
  used_ += bytes;
  ++entries_;
}

void Zone::ReleaseUsed(uint64_t bytes) {
  absl::MutexLock lock(&space_mu_);
  used_ -= std::min(used_, bytes);
  if (entries_ > 0) --entries_;
}

uint64_t Zone::Shortfall(uint64_t bytes) const {
  absl::MutexLock lock(&space_mu_);
  const uint64_t wanted = used_ + journal_bytes_ + reserved_ + freeing_ + bytes;
  return wanted > limit_ ? wanted - limit_ : 0;
}

uint64_t Zone::used_bytes() const {
  absl::MutexLock lock(&space_mu_);
  return used_;
}

void Zone::Unreserve(uint64_t reserved, uint64_t file_bytes) {
  absl::MutexLock lock(&space_mu_);
  reserved_ -= std::min(reserved_, reserved);
  freeing_ += file_bytes;
  freeing_added_ += file_bytes;
}

uint64_t Zone::FreeingMark() const {
  absl::MutexLock lock(&space_mu_);
  return freeing_added_;
}

void Zone::SetFreeing(uint64_t measured, uint64_t mark) {
  absl::MutexLock lock(&space_mu_);
  freeing_ = measured + (freeing_added_ - mark);
}

uint64_t Zone::freeing_bytes() const {
  absl::MutexLock lock(&space_mu_);
  return freeing_;
}

uint64_t Zone::entries() const {
  absl::MutexLock lock(&space_mu_);
  return entries_;
}

void Zone::NoteJournalBytes(uint64_t bytes) {
  absl::MutexLock lock(&space_mu_);
  journal_bytes_ = bytes;
}

uint64_t Zone::limit_bytes() const {
  absl::MutexLock lock(&space_mu_);
  return limit_;
}

uint64_t Zone::FitToFilesystem(bool lower_only) {
  struct statvfs fs {};
  if (::statvfs(config_.path.c_str(), &fs) != 0) return 0;
  const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t size = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  absl::MutexLock lock(&space_mu_);
  // Deleted files still open are not free yet: without them, a full drive under readers of
  // evicted entries sank the limit to a few KB of a 20 MB zone.
  const uint64_t holds = used_ + journal_bytes_ + reserved_ + freeing_;
  const uint64_t limit = LimitWhenFull(config_.max_bytes, holds, available, size);
  if (!lower_only || limit < limit_) limit_ = limit;
  return holds > limit_ ? holds - limit_ : 0;
}

bool Zone::RecordError(IoKind kind) {
  total_errors_.fetch_add(1, std::memory_order_relaxed);
  if (consecutive_errors_[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed) + 1 <
      error_threshold_)
    return false;
  if (!healthy()) return false;
  MarkFailed();
  return true;
}

void Zone::MarkFailed() {
  state_.store(ZoneState::kFailed, std::memory_order_release);
  absl::MutexLock lock(&journal_mu_);
  journal_.reset();
  NoteJournalBytes(0);
}

absl::Status Zone::JournalAppend(const JournalRecord& record) {
  absl::MutexLock lock(&journal_mu_);
  if (!journal_) return absl::UnavailableError(absl::StrCat("zone ", config_.path, " is out of service"));
  if (const int err = InjectedFault("journal"); err != 0) {
    journal_incomplete_.store(true, std::memory_order_release);
    return absl::UnavailableError(absl::StrCat("journal append: ", std::strerror(err)));
  }
  absl::Status status = journal_->Append(record);
  NoteJournalBytes(journal_->bytes());
  if (!status.ok()) journal_incomplete_.store(true, std::memory_order_release);
  return status;
}

absl::Status Zone::MaybeCompact(size_t live_records,
                                const std::function<std::vector<JournalRecord>()>& records) {
  absl::MutexLock lock(&journal_mu_);
  if (!journal_ || journal_->records() < 2 * live_records + 1024) return absl::OkStatus();
  // Appends wait for the lock, so every change after the snapshot lands in the new file.
  absl::Status status = journal_->Rewrite(records());
  NoteJournalBytes(journal_->bytes());
  return status;
}

}  // namespace cache
