#include "cache/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/dependencies.h"
#include "cache/file_closer.h"
#include "cache/placement.h"

namespace cache {

namespace {

constexpr size_t kMaxZones = 255;
// A fill of unknown length reserves space in steps of this size as its body grows.
constexpr uint64_t kReserveStep = 1 << 20;

uint64_t RoundUpToPage(uint64_t bytes) {
  return (bytes + kPageSize - 1) / kPageSize * kPageSize;
}

bool ReadAt(int fd, char* out, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads up to `size` bytes from the start of `fd`: fewer only at the end of the file. -1 on error.
ssize_t ReadSome(int fd, char* out, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool WriteAt(int fd, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

JournalRecord AddRecord(const IndexedEntry& e, std::string key, std::string tenant,
                        std::vector<std::string> tags) {
  JournalRecord record = JournalRecord::ForFile(JournalRecord::Type::kAdd, e.file.hash, e.file.serial);
  record.file_bytes = e.file.file_bytes;
  record.useful_until = e.useful_until;
  record.stored_epoch = e.stored_epoch;
  record.key = std::move(key);
  record.tenant = std::move(tenant);
  record.tags = std::move(tags);
  return record;
}

}  // namespace

// ---- Hit -----------------------------------------------------------------------------------------

Hit::Hit(const FileRef& file, int fd, uint32_t body_offset, std::shared_ptr<const CachedEntry> entry,
         bool invalidated, bool read_before)
    : file_(file),
      fd_(fd),
      body_offset_(body_offset),
      entry_(std::move(entry)),
      invalidated_(invalidated),
      read_before_(read_before) {}

Hit::Hit(Hit&& other) noexcept
    : file_(other.file_),
      fd_(std::exchange(other.fd_, -1)),
      body_offset_(other.body_offset_),
      entry_(other.entry_),
      invalidated_(other.invalidated_),
      read_before_(other.read_before_) {}

Hit& Hit::operator=(Hit&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) CloseFile(fd_);
    file_ = other.file_;
    fd_ = std::exchange(other.fd_, -1);
    body_offset_ = other.body_offset_;
    entry_ = other.entry_;
    invalidated_ = other.invalidated_;
    read_before_ = other.read_before_;
  }
  return *this;
}

std::optional<Hit> Hit::Duplicate() const {
  const int fd = fd_ >= 0 ? ::dup(fd_) : -1;
  if (fd_ >= 0 && fd < 0) return std::nullopt;
  return Hit(file_, fd, static_cast<uint32_t>(body_offset_), entry_, invalidated_, read_before_);
}

Hit::~Hit() {
  if (fd_ >= 0) CloseFile(fd_);  // the last descriptor of an entry deleted meanwhile
}

// ---- Fill ----------------------------------------------------------------------------------------

Fill::Fill(Store* store, Zone* zone, std::string encoded_key, uint64_t hash, uint32_t serial,
           uint64_t fence_token, EntryMetadata metadata, int fd, uint32_t body_offset, uint64_t reserved)
    : store_(store),
      zone_(zone),
      encoded_key_(std::move(encoded_key)),
      hash_(hash),
      serial_(serial),
      fence_token_(fence_token),
      metadata_(std::move(metadata)),
      fd_(fd),
      body_offset_(body_offset),
      reserved_(reserved) {}

Fill::~Fill() {
  Abort();
}

void Fill::Abort() {
  if (done_) return;
  done_ = true;
  ::unlink(zone_->TempPath(hash_, serial_).c_str());
  CloseFile(fd_);
  zone_->Unreserve(reserved_, written_ > 0 ? RoundUpToPage(body_offset_ + written_) : 0);
}

absl::Status Fill::Fail(absl::Status status) {
  Abort();
  return status;
}

absl::Status Fill::ReserveFor(uint64_t bytes) {
  const uint64_t needed = RoundUpToPage(body_offset_ + std::max(written_, position_ + bytes));
  if (needed > reserved_) {
    const uint64_t more = std::max(needed - reserved_, kReserveStep);
    if (!store_->Reserve(*zone_, more)) {
      return Fail(
          absl::ResourceExhaustedError(absl::StrCat("entry does not fit in zone ", zone_->config().path)));
    }
    reserved_ += more;
  }
  return absl::OkStatus();
}

absl::Status Fill::WriteFailed(int error) {
  absl::Status status = Fail(absl::UnavailableError(
      absl::StrCat("write to zone ", zone_->config().path, ": ", std::strerror(error))));
  if (error == ENOSPC) {
    store_->OnZoneFull(*zone_);  // after Fail: the fill's reservation is given back first
  } else if (IsDriveError(error)) {
    store_->OnZoneError(*zone_, IoKind::kWrite);
  }
  return status;
}

absl::Status Fill::Append(std::string_view bytes) {
  if (done_) return absl::FailedPreconditionError("fill is over");
  if (absl::Status status = ReserveFor(bytes.size()); !status.ok()) return status;
  if (const int err = zone_->InjectedFault("write");
      err != 0 || !WriteAt(fd_, bytes, body_offset_ + position_)) {
    return WriteFailed(err != 0 ? err : errno);
  }
  position_ += bytes.size();
  written_ = std::max(written_, position_);
  return absl::OkStatus();
}

absl::Status Fill::AppendFromFile(int fd, uint64_t offset, uint64_t length) {
  if (done_) return absl::FailedPreconditionError("fill is over");
  if (absl::Status status = ReserveFor(length); !status.ok()) return status;
  if (const int err = zone_->InjectedFault("write"); err != 0) return WriteFailed(err);
  loff_t in = static_cast<loff_t>(offset);
  loff_t out = static_cast<loff_t>(body_offset_ + position_);
  char buffer[64 * 1024];
  while (length > 0) {
    ssize_t n = ::copy_file_range(fd, &in, fd_, &out, length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      // Not between these files: copy through a buffer.
      n = ::pread(fd, buffer, std::min<uint64_t>(length, sizeof(buffer)), in);
      if (n > 0 &&
          !WriteAt(fd_, std::string_view(buffer, static_cast<size_t>(n)), static_cast<uint64_t>(out))) {
        return WriteFailed(errno);
      }
      if (n > 0) {
        in += n;
        out += n;
      }
    }
    if (n == 0) return Fail(absl::DataLossError("source file is shorter than its entry says"));
    if (n < 0) return WriteFailed(errno);
    length -= static_cast<uint64_t>(n);
    position_ += static_cast<uint64_t>(n);
    written_ = std::max(written_, position_);
  }
  return absl::OkStatus();
}

absl::Status Fill::Commit() {
  if (done_) return absl::FailedPreconditionError("fill is over");
  done_ = true;
  metadata_.body_length = written_;
  const EncodedHeader header = EncodeHeader(metadata_);
  const std::string temp = zone_->TempPath(hash_, serial_);
  const std::string path = zone_->FilePath(hash_, serial_);
  // body_length is a fixed-width field, so the header keeps the size it had in BeginFill.
  int error = zone_->InjectedFault("write");
  if (error == 0 && (header.body_offset != body_offset_ || !WriteAt(fd_, header.bytes, 0) ||
                     (store_->options_.fsync_on_commit && ::fdatasync(fd_) != 0))) {
    error = errno;
  }
  ::close(fd_);
  if (error == 0) error = zone_->InjectedFault("rename");
  if (error == 0 && ::rename(temp.c_str(), path.c_str()) != 0) {
    // The fan-out directory is made on first use.
    ::mkdir(path.substr(0, path.rfind('/')).c_str(), 0755);
    if (::rename(temp.c_str(), path.c_str()) != 0) error = errno;
  }
  if (error != 0) {
    RemoveFile(temp.c_str(), body_offset_ + written_);
    zone_->Unreserve(reserved_, RoundUpToPage(body_offset_ + written_));
    if (error == ENOSPC) {
      store_->OnZoneFull(*zone_);
    } else if (IsDriveError(error)) {
      store_->OnZoneError(*zone_, IoKind::kWrite);
    }
    return absl::UnavailableError(
        absl::StrCat("commit to zone ", zone_->config().path, ": ", std::strerror(error)));
  }
  zone_->RecordSuccess(IoKind::kWrite);
  return store_->CommitFill(*this, RoundUpToPage(body_offset_ + written_));
}

// ---- Store ---------------------------------------------------------------------------------------

Store::Store(StoreOptions options, Clock clock)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      index_(options_.index_shards),
      memory_(options_.memory_bytes),
      held_bodies_(options_.held_body_bytes) {
  fence_log_.resize(kFenceLogSize);
}

Store::~Store() {
  {
    absl::MutexLock lock(&copies_mu_);
    closing_ = true;
  }
  if (copier_.joinable()) copier_.join();
}

void Store::Refresh(const Key& key, EntryMetadata metadata, uint64_t fence_token, Hit source) {
  if (source.body_in_memory()) {
    CopyAndCommit(key, std::move(metadata), fence_token, source);
    return;
  }
  absl::MutexLock lock(&copies_mu_);
  if (closing_ || copies_.size() >= kMaxQueuedCopies || !copying_.insert(source.file().hash).second) return;
  if (!copier_.joinable()) {
    try {
      copier_ = std::thread([this] { RunCopies(); });
    } catch (const std::system_error&) {
      copying_.erase(source.file().hash);
      return;  // no thread, no refresh: a later request revalidates again
    }
  }
  copies_.push_back(Copy{key, std::move(metadata), fence_token, std::move(source)});
}

void Store::RunCopies() {
  while (true) {
    std::optional<Copy> copy;
    {
      absl::MutexLock lock(&copies_mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(copies_mu_) { return closing_ || !copies_.empty(); };
      copies_mu_.Await(absl::Condition(&ready));
      if (closing_) return;
      copy.emplace(std::move(copies_.front()));
      copies_.pop_front();
    }
    CopyAndCommit(copy->key, std::move(copy->metadata), copy->fence_token, copy->source);
    const uint64_t hash = copy->source.file().hash;
    copy.reset();
    absl::MutexLock lock(&copies_mu_);
    copying_.erase(hash);
  }
}

void Store::CopyAndCommit(const Key& key, EntryMetadata metadata, uint64_t fence_token, const Hit& source) {
  absl::StatusOr<std::unique_ptr<Fill>> fill =
      BeginFill(key, std::move(metadata), source.body_length(), fence_token);
  if (!fill.ok()) return;
  (*fill)->replaces_ = source.file();
  if (const std::optional<std::string_view> body = source.body_in_memory()) {
    if ((*fill)->Append(*body).ok()) (void)(*fill)->Commit();
    return;
  }
  // In pieces, so that closing the store does not wait for the whole of a very large body.
  constexpr uint64_t kPiece = 64 << 20;
  for (uint64_t done = 0; done < source.body_length(); done += kPiece) {
    if (closing_) return;
    const uint64_t length = std::min(kPiece, source.body_length() - done);
    if (!(*fill)->AppendFromFile(source.fd(), source.body_offset() + done, length).ok()) return;
  }
  (void)(*fill)->Commit();  // fenced, replaced meanwhile, or failed: dropped
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(StoreOptions options, Clock clock) {
  if (options.zones.empty()) return absl::InvalidArgumentError("the cache needs at least one zone");
  if (options.zones.size() > kMaxZones) return absl::InvalidArgumentError("at most 255 cache zones");
  for (const auto& zone : options.zones) {
    if (zone.path.empty()) return absl::InvalidArgumentError("cache zone with an empty path");
    if (zone.max_bytes < kPageSize) {
      return absl::InvalidArgumentError(absl::StrCat("cache zone ", zone.path, ": size below one page"));
    }
  }
  std::unique_ptr<Store> store(new Store(std::move(options), std::move(clock)));
  if (absl::Status status = store->Load(); !status.ok()) return status;
  return store;
}

absl::Status Store::Load() {
  for (size_t i = 0; i < options_.zones.size(); ++i) {
    zones_.push_back(std::make_unique<Zone>(static_cast<int>(i), options_.zones[i],
                                            options_.zone_error_threshold, options_.faults));
    if (absl::Status status = zones_.back()->Lock(); !status.ok()) return status;
    std::error_code ec;
    std::filesystem::path root =
        std::filesystem::weakly_canonical(std::filesystem::absolute(options_.zones[i].path), ec);
    zone_roots_.push_back(ec ? options_.zones[i].path : root.string());
  }
  // A zone behind the store's epoch was out of service while the others took invalidations.
  uint64_t epoch = 0;
  if (!options_.epoch_file.empty()) {
    std::ifstream in(options_.epoch_file);
    if (!(in >> epoch)) epoch = 0;
  }
  for (const auto& zone : zones_) epoch = std::max(epoch, zone->ReadEpoch());
  // A zone behind with a position catches up (it keeps its entries, served once it has), or is
  // emptied. Its journal is read after the others': what they hold for the same keys is newer.
  std::vector<Zone*> order, returning;
  for (const auto& zone : zones_) {
    if (zone->ReadEpoch() >= epoch) {
      order.push_back(zone.get());
    } else if (options_.keep_returning_zones && !zone->ReadPurgePosition().empty()) {
      returning.push_back(zone.get());
    } else {
      zone->Discard();
      order.push_back(zone.get());
    }
  }
  {
    absl::MutexLock lock(&epoch_mu_);
    epoch_ = epoch;
  }
  {
    absl::MutexLock lock(&catch_up_mu_);
    catch_up_sessions_.assign(zones_.size(), 0);
  }
  // Journal records average well over 64 bytes: a bound on the entries to expect.
  uint64_t journal_bytes = 0;
  for (const auto& zone : zones_) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(zone->config().path + "/journal", ec);
    if (!ec) journal_bytes += size;
  }
  index_.BeginBulkLoad(journal_bytes / 64);
  LoadIds ids;
  for (Zone* zone : order) {
    // A zone that cannot be opened starts out of service; Maintain probes it.
    (void)zone->Open([&](const JournalRecord& r) { LoadRecord(*zone, r, ids, false); });
  }
  for (Zone* zone : returning) {
    zone->SetCatchingUp(true);
    if (zone->Open([&](const JournalRecord& r) { LoadRecord(*zone, r, ids, true); }).ok())
      BeginCatchUp(*zone);
  }
  index_.EndBulkLoad();
  // Scopes are known only once every journal is read.
  for (auto& zone : zones_) DropGone(*zone);
  // A zone larger than its filesystem can give it starts at what fits.
  for (auto& zone : zones_) FitZone(*zone, /*lower_only=*/false);
  bool all_in = true;  // a zone catching up is in: it takes invalidations, not the epoch yet
  for (const auto& zone : zones_) all_in = all_in && zone->healthy();
  if (all_in) {
    absl::MutexLock lock(&epoch_mu_);
    for (const auto& zone : zones_) {
      if (zone->serving()) zone->WriteEpoch(epoch_);
    }
    if (!options_.epoch_file.empty()) WriteEpochFile(options_.epoch_file, epoch_);
  } else {
    NextEpoch();  // one starts out of service: it misses what the others take from now on
  }
  return absl::OkStatus();
}

void Store::LoadRecord(Zone& zone, const JournalRecord& r, LoadIds& ids, bool returning) {
  const FileRef file{r.hash, r.serial & kSerialMask, zone.id(), r.file_bytes};
  switch (r.type) {
    case JournalRecord::Type::kAdd: {
      KeyParts parts;
      if (!DecodeKey(r.key, &parts)) return;
      zone.SeeSerial(r.serial);
      if (returning) {
        const std::optional<IndexedEntry> held = index_.Find(r.hash);
        if (held && held->file.zone != zone.id()) {
          // Stored in another zone while this one was away: newer.
          RemoveFile(zone.FilePath(r.hash, r.serial & kSerialMask).c_str(), r.file_bytes);
          return;
        }
      }
      NoteVariant(parts);
      NoteDependencies(r.tags);
      zone.AddUsed(r.file_bytes);
      const std::string_view container_key(r.key.data() + 1, parts.container.end() - r.key.data() - 1);
      if (!ids.known || container_key != ids.container) {
        ids.container_id = generations_.ContainerId(parts.account, parts.container);
        ids.container.assign(container_key);
      }
      if (!ids.known || r.tenant != ids.tenant) {
        ids.tenant_id = generations_.TenantId(r.tenant);
        ids.tenant = r.tenant;
      }
      ids.known = true;
      const IndexedEntry entry{file, r.useful_until, r.stored_epoch, ids.container_id, ids.tenant_id, false};
      if (auto replaced = index_.Insert({r.key, r.tags, entry})) {
        // Only possible after a crash between a commit and the journal record of its
        // replacement: the newer record wins.
        zones_[replaced->file.zone]->ReleaseUsed(replaced->file.file_bytes);
        RemoveFile(zones_[replaced->file.zone]->FilePath(replaced->file.hash, replaced->file.serial).c_str(),
                   replaced->file.file_bytes);
      }
      break;
    }
    case JournalRecord::Type::kRemove:
      if (auto erased = index_.Erase(file)) zone.ReleaseUsed(erased->file.file_bytes);
      break;
    case JournalRecord::Type::kStale:
      index_.MarkStale(file);
      break;
    case JournalRecord::Type::kScope:
      generations_.Restore(r.scope);
      break;
  }
}

void Store::DropGone(Zone& zone) {
  std::vector<IndexedEntry> gone;
  index_.ForEachInZone(zone.id(), [&](const Index::Visit& visit) {
    const IndexedEntry& e = visit.entry;
    if (generations_.Check(e.container_id, e.tenant_id, e.stored_epoch) == Validity::kGone) {
      gone.push_back(e);
    } else {
      generations_.Added(e.container_id, e.tenant_id, e.stored_epoch);
    }
  });
  for (const IndexedEntry& e : gone) {
    if (index_.Erase(e.file)) {
      zone.ReleaseUsed(e.file.file_bytes);
      RemoveFile(zone.FilePath(e.file.hash, e.file.serial).c_str(), e.file.file_bytes);
    }
  }
}

bool Store::HasVariants(std::string_view exact_name_range) {
  absl::MutexLock lock(&variants_mu_);
  return names_with_variants_.contains(absl::string_view(exact_name_range.data(), exact_name_range.size()));
}

void Store::NoteVariant(const KeyParts& parts) {
  if (parts.kind != KeyKind::kObject || parts.variant.empty()) return;
  std::string range = ExactNameRange(KeyKind::kObject, parts.account, parts.container, parts.name);
  absl::MutexLock lock(&variants_mu_);
  names_with_variants_.insert(std::move(range));
}

bool Store::HasDependents(std::string_view account, std::string_view container) {
  const std::string range = DependenciesInContainer(account, container);
  absl::MutexLock lock(&dependents_mu_);
  return containers_with_dependents_.contains(range);
}

void Store::NoteDependencies(std::span<const std::string> tags) {
  for (const std::string& tag : tags) {
    Dependency dep;
    if (!DecodeDependency(tag, &dep)) continue;
    std::string range = DependenciesInContainer(dep.account, dep.container);
    absl::MutexLock lock(&dependents_mu_);
    containers_with_dependents_.insert(std::move(range));
  }
}

size_t Store::ApplyToDependents(const Invalidation& inv, std::vector<IndexedEntry>* removed,
                                std::vector<FileRef>* staled) {
  auto covered = [&inv](std::string_view tag) {
    Dependency dep;
    return DecodeDependency(tag, &dep) && InvalidatesDependency(inv, dep);
  };
  if (inv.kind != Invalidation::Kind::kObject) {
    return index_.ApplyToTagRange(DependenciesInContainer(inv.account, inv.container), covered, inv.soft,
                                  removed, staled);
  }
  // An object: the SLOs that list it by name, and the DLOs whose prefix it is under.
  return index_.ApplyToTag(SegmentTag(inv.account, inv.container, inv.name), inv.soft, removed, staled) +
         index_.ApplyToTagRange(PrefixDependenciesInContainer(inv.account, inv.container), covered, inv.soft,
                                removed, staled);
}

Zone* Store::PickZone(uint64_t hash) {
  absl::InlinedVector<ZoneCandidate, 16> candidates;
  for (const auto& zone : zones_) {
    candidates.push_back({zone->seed(), static_cast<double>(zone->config().max_bytes), zone->serving()});
  }
  const int picked = cache::PickZone(hash, candidates);
  return picked < 0 ? nullptr : zones_[picked].get();
}

bool Store::Reserve(Zone& zone, uint64_t bytes) {
  if (bytes > zone.limit_bytes()) return false;
  // Evict before writing, never after: the zone never holds more than its limit.
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (zone.TryReserve(bytes)) return true;
    std::vector<IndexedEntry> victims =
        index_.Evict(zone.id(), zone.Shortfall(bytes), NowSeconds(), generations_);
    if (victims.empty()) return false;  // what is left is reserved by fills in flight
    DeleteFiles(victims);
  }
  return zone.TryReserve(bytes);
}

void Store::JournalAppend(Zone& zone, const JournalRecord& record) {
  if (!zone.healthy()) return;
  const absl::Status status = zone.JournalAppend(record);
  if (status.ok()) return;
  // Still an error when the filesystem is full: a record missing from the journal is wrong
  // after a restart, so a journal that keeps failing takes the zone out (it returns empty).
  if (absl::IsResourceExhausted(status)) OnZoneFull(zone);
  OnZoneError(zone, IoKind::kWrite);
}

void Store::DeleteFiles(const std::vector<IndexedEntry>& entries) {
  for (const IndexedEntry& e : entries) {
    Zone& zone = *zones_[e.file.zone];
    memory_.Erase(e.file);
    held_bodies_.Erase(e.file);
    generations_.Removed(e.container_id, e.tenant_id, e.stored_epoch);
    zone.ReleaseUsed(e.file.file_bytes);
    if (!zone.healthy()) continue;
    RemoveFile(zone.FilePath(e.file.hash, e.file.serial).c_str(), e.file.file_bytes);
    JournalAppend(zone, JournalRecord::ForFile(JournalRecord::Type::kRemove, e.file.hash, e.file.serial));
  }
}

void Store::Remove(const IndexedEntry& entry) {
  if (auto erased = index_.Erase(entry.file)) DeleteFiles({*erased});
}

void Store::OnZoneFull(Zone& zone) {
  // The filesystem holds less than the zone's size (it is smaller, or shared): the zone shrinks
  // to what it can hold, and what no longer fits goes now, so the next fills have room.
  // Measured anew each time: an eviction a moment ago (of entries readers hold) is space that
  // comes back only later, and a limit lowered on a stale count stays low until Maintain. Two
  // workers' fills that fail at once were such a count: one's file, aborted between the other's
  // measure and its statvfs, was neither reserved nor freeing (Unreserve counts it now).
  MeasureFreeing();
  FitZone(zone, /*lower_only=*/true);
}

void Store::MeasureFreeing() {
  std::vector<uint64_t> marks;
  for (const auto& zone : zones_) marks.push_back(zone->FreeingMark());
  const std::vector<uint64_t> held = HeldAfterDelete(zone_roots_);
  for (size_t i = 0; i < zones_.size(); ++i) zones_[i]->SetFreeing(held[i], marks[i]);
}

void Store::FitZone(Zone& zone, bool lower_only) {
  const uint64_t excess = zone.FitToFilesystem(lower_only);
  if (excess == 0 || !zone.healthy()) return;
  std::vector<IndexedEntry> victims = index_.Evict(zone.id(), excess, NowSeconds(), generations_);
  zone.CountFullEvictions(victims.size());
  DeleteFiles(victims);
}

void Store::NextEpoch() {
  absl::MutexLock lock(&epoch_mu_);
  ++epoch_;
  for (const auto& zone : zones_) {
    if (zone->serving()) zone->WriteEpoch(epoch_);  // one catching up gets it once caught up
  }
  if (!options_.epoch_file.empty()) WriteEpochFile(options_.epoch_file, epoch_);
}

void Store::OnZoneError(Zone& zone, IoKind kind) {
  if (!zone.RecordError(kind)) return;
  NextEpoch();
  memory_.EraseZone(zone.id());
  held_bodies_.EraseZone(zone.id());
  // The zone just went out of service: its keys fall to the other zones (or the origin).
  for (const IndexedEntry& e : index_.RemoveZone(zone.id())) {
    generations_.Removed(e.container_id, e.tenant_id, e.stored_epoch);
    zone.ReleaseUsed(e.file.file_bytes);
  }
}

std::optional<Hit> Store::Lookup(const Key& key) {
  // Per thread and reused: a lookup is on every request's path.
  thread_local std::string encoded;
  key.EncodeTo(&encoded);
  const uint64_t hash = HashEncodedKey(encoded);
  std::optional<IndexedEntry> entry = index_.Find(hash);
  if (!entry) return std::nullopt;
  Zone& zone = *zones_[entry->file.zone];
  if (!zone.serving()) return std::nullopt;  // out, or catching up: it may have missed a purge
  const Validity validity = generations_.Check(entry->container_id, entry->tenant_id, entry->stored_epoch);
  if (validity == Validity::kGone) {
    Remove(*entry);
    return std::nullopt;
  }
  const bool invalidated = entry->soft_stale || validity == Validity::kStale;
  std::shared_ptr<const CachedEntry> known = memory_.Find(entry->file);
  if (known) {
    // The index finds entries by hash alone: the key is compared here, as on opening a file.
    if (known->metadata.key != encoded) return std::nullopt;
    if (known->body_in_memory) return Hit(entry->file, -1, 0, known, invalidated, true);
  }

  thread_local std::string path;
  zone.FilePath(hash, entry->file.serial, &path);
  const int injected = zone.InjectedFault("read");
  const int fd = injected != 0 ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = injected != 0 ? injected : errno;
    if (error == ENOENT) {
      Remove(*entry);  // the index outlived its file (deleted by hand, or a crash before the journal)
    } else if (IsDriveError(error)) {
      OnZoneError(zone, IoKind::kRead);
    }
    return std::nullopt;
  }
  if (known) {  // the header was read and checked before: only the body is needed, from the file
    zone.RecordSuccess(IoKind::kRead);
    return Hit(entry->file, fd, known->body_offset, known, invalidated, true);
  }
  // One read of the header page and what follows: for a small entry that is the body too. Only a
  // longer header allocates.
  char buffer[4 * kPageSize];
  std::string longer;
  std::string_view header;
  absl::StatusOr<uint32_t> header_length = absl::DataLossError("entry file truncated");
  absl::StatusOr<EntryMetadata> metadata = header_length.status();
  const ssize_t got = ReadSome(fd, buffer, sizeof(buffer));
  // A short read is the file's end: its length is known without a stat.
  uint64_t file_length =
      got >= 0 && static_cast<size_t>(got) < sizeof(buffer) ? static_cast<uint64_t>(got) : 0;
  if (got >= static_cast<ssize_t>(kFixedHeaderBytes)) {
    header = std::string_view(buffer, static_cast<size_t>(got));
    header_length = PeekHeaderLength(header);
    if (header_length.ok() && BodyOffsetFor(*header_length) > header.size()) {
      longer.resize(BodyOffsetFor(*header_length));
      std::memcpy(longer.data(), header.data(), header.size());
      if (!ReadAt(fd, longer.data() + header.size(), longer.size() - header.size(), header.size())) {
        header_length = absl::DataLossError("entry file truncated");
      }
      header = longer;
    }
    if (header_length.ok()) metadata = DecodeHeader(header.substr(0, BodyOffsetFor(*header_length)));
  }
  auto cached = std::make_shared<CachedEntry>();
  if (metadata.ok()) {
    const uint64_t body_offset = BodyOffsetFor(*header_length);
    const uint64_t needed = body_offset + metadata->body_length;
    if (longer.empty() && needed <= static_cast<uint64_t>(got)) {
      file_length = needed;  // all there
      if (memory_.enabled()) {
        cached->body.assign(buffer + body_offset, metadata->body_length);
        cached->body_in_memory = true;
      }
    } else if (file_length == 0) {
      struct stat st;
      if (::fstat(fd, &st) == 0) file_length = static_cast<uint64_t>(st.st_size);
    }
    if (metadata->key != encoded || file_length < needed) {
      metadata = absl::DataLossError("entry file does not hold this key in full");
    } else if (!cached->body_in_memory && memory_.enabled() &&
               metadata->body_length <= MemoryTier::kMaxEntryBody) {
      cached->body.resize(metadata->body_length);
      cached->body_in_memory = ReadAt(fd, cached->body.data(), cached->body.size(), body_offset);
      if (!cached->body_in_memory) cached->body.clear();
    }
  }
  if (!metadata.ok()) {
    ::close(fd);
    Remove(*entry);  // corrupt or colliding: never served
    return std::nullopt;
  }
  zone.RecordSuccess(IoKind::kRead);
  cached->metadata = std::move(*metadata);
  cached->body_offset = BodyOffsetFor(*header_length);
  memory_.Insert(entry->file, cached);  // with its body, or its header alone: the next hit reads neither
  if (cached->body_in_memory) {
    ::close(fd);
    return Hit(entry->file, -1, 0, std::move(cached), invalidated, false);
  }
  const uint32_t body_offset = cached->body_offset;
  return Hit(entry->file, fd, body_offset, std::move(cached), invalidated, false);
}

std::shared_ptr<const CachedEntry> Store::HoldBody(const Hit& hit) {
  if (!held_bodies_.enabled() || hit.fd() < 0) return nullptr;
  if (std::shared_ptr<const CachedEntry> held = held_bodies_.Find(hit.file())) return held;
  // A first hit may be the only one: read into memory only once the entry is read again.
  if (!hit.read_before() || hit.body_length() + sizeof(CachedEntry) > held_bodies_.largest_entry()) {
    return nullptr;
  }
  auto held = std::make_shared<CachedEntry>();
  held->body.resize(hit.body_length());
  // A failed read holds nothing: the answer is sent from the file, and fails there if it must.
  if (!ReadAt(hit.fd(), held->body.data(), held->body.size(), hit.body_offset())) return nullptr;
  held->body_in_memory = true;
  held_bodies_.Insert(hit.file(), held);
  return held;
}

uint64_t Store::FenceToken() {
  absl::MutexLock lock(&fence_mu_);
  return fence_seq_;
}

absl::StatusOr<std::unique_ptr<Fill>> Store::BeginFill(const Key& key, EntryMetadata metadata,
                                                       std::optional<uint64_t> expected_body_bytes,
                                                       uint64_t fence_token) {
  std::string encoded = key.Encode();
  const uint64_t hash = HashEncodedKey(encoded);
  Zone* zone = PickZone(hash);
  if (zone == nullptr) return absl::UnavailableError("no cache zone is in service");
  metadata.key = encoded;
  metadata.stored_epoch = generations_.CurrentEpoch();
  metadata.body_length = 0;
  const uint32_t body_offset = EncodeHeader(metadata).body_offset;
  const uint64_t reserve = RoundUpToPage(body_offset + expected_body_bytes.value_or(0));
  if (!Reserve(*zone, reserve)) {
    return absl::ResourceExhaustedError(absl::StrCat("entry does not fit in zone ", zone->config().path));
  }
  const uint32_t serial = zone->NextSerial() & kSerialMask;
  const std::string temp = zone->TempPath(hash, serial);
  const int injected = zone->InjectedFault("open");
  const int fd = injected != 0 ? -1 : ::open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = injected != 0 ? injected : errno;
    zone->Unreserve(reserve);
    if (error == ENOSPC) {
      OnZoneFull(*zone);  // no inode left
    } else if (IsDriveError(error)) {
      OnZoneError(*zone, IoKind::kWrite);
    }
    return absl::UnavailableError(absl::StrCat("open ", temp, ": ", std::strerror(error)));
  }
  return std::unique_ptr<Fill>(new Fill(this, zone, std::move(encoded), hash, serial, fence_token,
                                        std::move(metadata), fd, body_offset, reserve));
}

bool Store::InvalidatedSince(const Key& key, std::string_view tenant, uint64_t fence_token,
                             const std::vector<std::string>* dependencies) {
  const std::string encoded = key.Encode();
  KeyParts parts;
  if (!DecodeKey(encoded, &parts)) return true;
  const std::span<const std::string> tags =
      dependencies != nullptr ? std::span<const std::string>(*dependencies) : std::span<const std::string>();
  // Before the head, an object may still be a manifest whose segments are anywhere in its account.
  auto may_name_a_segment = [&](const Invalidation& inv) {
    return dependencies == nullptr && parts.kind == KeyKind::kObject && inv.account == parts.account &&
           (inv.kind == Invalidation::Kind::kObject || inv.kind == Invalidation::Kind::kPrefix ||
            inv.kind == Invalidation::Kind::kContainer);
  };
  absl::MutexLock lock(&fence_mu_);
  if (fence_seq_ - fence_token > kFenceLogSize) return true;
  for (uint64_t seq = fence_token + 1; seq <= fence_seq_; ++seq) {
    const Invalidation& inv = fence_log_[seq % kFenceLogSize];
    if (inv.kind == Invalidation::Kind::kTag || may_name_a_segment(inv) || Covers(inv, parts, tenant, tags))
      return true;
  }
  return false;
}

bool Store::FencedLocked(const Fill& fill) {
  if (fence_seq_ - fill.fence_token_ > kFenceLogSize) return true;  // too old to tell: do not store
  KeyParts parts;
  if (!DecodeKey(fill.encoded_key_, &parts)) return true;
  for (uint64_t seq = fill.fence_token_ + 1; seq <= fence_seq_; ++seq) {
    if (Covers(fence_log_[seq % kFenceLogSize], parts, fill.metadata_.tenant, fill.metadata_.tags))
      return true;
  }
  return false;
}

absl::Status Store::CommitFill(Fill& fill, uint64_t file_bytes) {
  Zone& zone = *fill.zone_;
  const EntryMetadata& meta = fill.metadata_;
  KeyParts parts;
  DecodeKey(fill.encoded_key_, &parts);
  NoteVariant(parts);           // before the entry is indexed: an invalidation from now on scans for it
  NoteDependencies(meta.tags);  // likewise
  const IndexedEntry entry{{fill.hash_, fill.serial_, zone.id(), file_bytes},
                           meta.UsefulUntil(),
                           meta.stored_epoch,
                           generations_.ContainerId(parts.account, parts.container),
                           generations_.TenantId(meta.tenant),
                           false};
  std::optional<IndexedEntry> replaced;
  {
    absl::MutexLock lock(&fence_mu_);
    // A refresh stands only for the entry it was read from: one stored since is newer.
    bool replaced_since = false;
    if (fill.replaces_) {
      const std::optional<IndexedEntry> current = index_.Find(fill.hash_);
      replaced_since = !current || current->file != *fill.replaces_;
    }
    if (FencedLocked(fill) || !zone.serving() || replaced_since) {
      RemoveFile(zone.FilePath(fill.hash_, fill.serial_).c_str(), file_bytes);
      zone.Unreserve(fill.reserved_, file_bytes);
      return absl::FailedPreconditionError("an invalidation covering this key arrived during the fill");
    }
    replaced = index_.Insert({fill.encoded_key_, meta.tags, entry});
  }
  generations_.Added(entry.container_id, entry.tenant_id, entry.stored_epoch);
  zone.CommitReservation(fill.reserved_, file_bytes);
  JournalAppend(zone, AddRecord(entry, fill.encoded_key_, meta.tenant, meta.tags));
  if (replaced) DeleteFiles({*replaced});
  return absl::OkStatus();
}

uint64_t Store::Apply(const Invalidation& inv) {
  {
    absl::MutexLock lock(&fence_mu_);
    ++fence_seq_;
    fence_log_[fence_seq_ % kFenceLogSize] = inv;
  }
  std::vector<IndexedEntry> removed;
  std::vector<FileRef> staled;
  uint64_t hit = 0;
  std::optional<ScopeRecord> scope;
  auto bump = [&](ScopeKind kind, std::string_view name) {
    Generations::BumpResult result = generations_.Bump(kind, name, inv.soft);
    scope = std::move(result.record);
    return result.entries_hit;
  };
  switch (inv.kind) {
    case Invalidation::Kind::kObject: {
      const std::string range = ExactNameRange(KeyKind::kObject, inv.account, inv.container, inv.name);
      if (HasVariants(range)) {
        hit = index_.ApplyToRange(range, inv.soft, &removed, &staled);
      } else {
        const std::string encoded = Key{KeyKind::kObject, inv.account, inv.container, inv.name, ""}.Encode();
        hit = index_.ApplyToKey(HashEncodedKey(encoded), inv.soft, &removed, &staled);
      }
      break;
    }
    case Invalidation::Kind::kListings: {
      // One pass over the container's cached listings, however long the directory's name.
      hit += index_.ApplyToRangeIf(
          ContainerRange(KeyKind::kListing, inv.account, inv.container),
          [&](std::string_view encoded) {
            KeyParts parts;
            return DecodeKey(encoded, &parts) && ListingShows(inv.name, parts.name);
          },
          inv.soft, &removed, &staled);
      // staticweb pages of the directory and its ancestors.
      for (size_t length = 0; length <= inv.name.size(); ++length) {
        if (length > 0 && inv.name[length - 1] != '/') continue;
        hit += index_.ApplyToRange(ExactNameRange(KeyKind::kObject, inv.account, inv.container,
                                                  std::string_view(inv.name).substr(0, length)),
                                   inv.soft, &removed, &staled);
      }
      hit += index_.ApplyToRange(ContainerRange(KeyKind::kListing, inv.account, ""), inv.soft, &removed,
                                 &staled);
      break;
    }
    case Invalidation::Kind::kPrefix:
      for (KeyKind kind : {KeyKind::kObject, KeyKind::kListing}) {
        hit += index_.ApplyToRange(NamePrefixRange(kind, inv.account, inv.container, inv.name), inv.soft,
                                   &removed, &staled);
      }
      break;
    case Invalidation::Kind::kContainer:
      hit = bump(ScopeKind::kContainer, ContainerScopeName(inv.account, inv.container));
      break;
    case Invalidation::Kind::kTenant:
      hit = bump(ScopeKind::kTenant, inv.tenant);
      break;
    case Invalidation::Kind::kTag:
      hit = index_.ApplyToTag(inv.tag, inv.soft, &removed, &staled);
      break;
    case Invalidation::Kind::kAll:
      hit = bump(ScopeKind::kAll, "");
      break;
  }
  const bool names_objects =
      inv.kind == Invalidation::Kind::kObject || inv.kind == Invalidation::Kind::kListings ||
      inv.kind == Invalidation::Kind::kPrefix || inv.kind == Invalidation::Kind::kContainer;
  if (names_objects && HasDependents(inv.account, inv.container))
    hit += ApplyToDependents(inv, &removed, &staled);
  DeleteFiles(removed);
  for (const FileRef& file : staled) {
    JournalAppend(*zones_[file.zone],
                  JournalRecord::ForFile(JournalRecord::Type::kStale, file.hash, file.serial));
  }
  if (scope) {
    for (auto& zone : zones_) JournalAppend(*zone, JournalRecord::ForScope(*scope));
  }
  return hit;
}

std::vector<JournalRecord> Store::ZoneSnapshot(int zone) {
  std::vector<JournalRecord> records;
  for (ScopeRecord& scope : generations_.Snapshot()) {
    records.push_back(JournalRecord::ForScope(std::move(scope)));
  }
  index_.ForEachInZone(zone, [&](const Index::Visit& visit) {
    const IndexedEntry& e = visit.entry;
    records.push_back(AddRecord(e, std::string(visit.key), generations_.TenantName(e.tenant_id), visit.tags));
    if (e.soft_stale) {
      records.push_back(JournalRecord::ForFile(JournalRecord::Type::kStale, e.file.hash, e.file.serial));
    }
  });
  return records;
}

void Store::NotePurgePosition(std::string position) {
  absl::MutexLock lock(&position_mu_);
  position_ = std::move(position);
  position_written_ = false;
  if (std::chrono::steady_clock::now() - position_written_at_ >= std::chrono::seconds(1))
    WritePurgePosition();
}

void Store::WritePurgePosition() {
  // Only zones in service: one out missed what was applied meanwhile, and keeps the position it
  // had when it left (one catching up too, until it has).
  for (auto& zone : zones_) {
    if (zone->serving()) zone->WritePurgePosition(position_);
  }
  position_written_ = true;
  position_written_at_ = std::chrono::steady_clock::now();
}

void Store::Maintain() {
  MeasureFreeing();
  {
    absl::MutexLock lock(&position_mu_);
    if (!position_written_) WritePurgePosition();
  }
  for (auto& zone : zones_) {
    if (zone->healthy()) {
      if (!zone->MaybeCompact(zone->entries(), [&] { return ZoneSnapshot(zone->id()); }).ok())
        OnZoneError(*zone, IoKind::kWrite);
      FitZone(*zone, /*lower_only=*/false);  // space the filesystem has again, or has no more
      continue;
    }
    // Entries committed while the zone was failing are dropped with the rest of its content.
    for (const IndexedEntry& e : index_.RemoveZone(zone->id())) {
      generations_.Removed(e.container_id, e.tenant_id, e.stored_epoch);
    }
    if (zone->Probe()) Readmit(*zone);
  }
}

void Store::Readmit(Zone& zone) {
  if (!options_.keep_returning_zones || zone.ReadPurgePosition().empty() || zone.journal_incomplete()) {
    zone.SetCatchingUp(false);
    ResetZone(zone);
    return;
  }
  // Its journal is read first, and indexed once the zone is open: an invalidation applied from
  // then on reaches its entries (their files and journal too), and one applied since `token`
  // (while the journal was read, or before its entries were indexed) is applied to them again.
  {
    absl::MutexLock lock(&catch_up_mu_);
    catch_up_sessions_[zone.id()] = 0;  // none until its entries are indexed
  }
  zone.SetCatchingUp(true);
  const uint64_t token = FenceToken();
  std::vector<JournalRecord> records;
  if (!zone.Reopen([&](const JournalRecord& r) { records.push_back(r); }).ok()) {
    zone.SetCatchingUp(false);  // failed again: probed again later
    return;
  }
  LoadIds ids;
  for (const JournalRecord& r : records) LoadRecord(zone, r, ids, true);
  records.clear();
  DropGone(zone);
  std::vector<Invalidation> since;
  bool too_many = false;
  {
    absl::MutexLock lock(&fence_mu_);
    too_many = fence_seq_ - token > kFenceLogSize;
    for (uint64_t seq = token + 1; !too_many && seq <= fence_seq_; ++seq)
      since.push_back(fence_log_[seq % kFenceLogSize]);
  }
  if (too_many) {
    for (const IndexedEntry& e : index_.RemoveZone(zone.id())) {
      generations_.Removed(e.container_id, e.tenant_id, e.stored_epoch);
    }
    ResetZone(zone);
    zone.SetCatchingUp(false);
    return;
  }
  // The scopes bumped while it was out are in memory only: its journal gets them, for a restart.
  for (ScopeRecord& scope : generations_.Snapshot())
    JournalAppend(zone, JournalRecord::ForScope(std::move(scope)));
  CatchUp(zone.id(), BeginCatchUp(zone), since);
}

void Store::ResetZone(Zone& zone) {
  std::vector<JournalRecord> scopes;
  for (ScopeRecord& scope : generations_.Snapshot()) {
    scopes.push_back(JournalRecord::ForScope(std::move(scope)));
  }
  if (zone.Reset(scopes)) {
    absl::MutexLock lock(&epoch_mu_);
    zone.WriteEpoch(epoch_);  // emptied: nothing in it is behind
  }
}

uint64_t Store::BeginCatchUp(Zone& zone) {
  absl::MutexLock lock(&catch_up_mu_);
  return catch_up_sessions_[zone.id()] = ++next_session_;
}

bool Store::InCatchUp(int zone, uint64_t session) {
  return zone >= 0 && static_cast<size_t>(zone) < zones_.size() && session != 0 &&
         catch_up_sessions_[zone] == session && zones_[zone]->healthy() && zones_[zone]->catching_up();
}

std::vector<Store::CatchingUpZone> Store::ZonesCatchingUp() {
  std::vector<CatchingUpZone> zones;
  absl::MutexLock lock(&catch_up_mu_);
  for (const auto& zone : zones_) {
    if (InCatchUp(zone->id(), catch_up_sessions_[zone->id()]))
      zones.push_back({zone->id(), zone->ReadPurgePosition(), catch_up_sessions_[zone->id()]});
  }
  return zones;
}

bool Store::CatchUp(int zone_id, uint64_t session, std::span<const Invalidation> invalidations) {
  absl::MutexLock lock(&catch_up_mu_);
  if (!InCatchUp(zone_id, session)) return false;
  Zone& zone = *zones_[zone_id];
  std::vector<IndexedEntry> removed;
  std::vector<FileRef> staled;
  index_.ForEachInZone(zone_id, [&](const Index::Visit& visit) {
    KeyParts parts;
    if (!DecodeKey(visit.key, &parts)) return;
    const std::string tenant = generations_.TenantName(visit.entry.tenant_id);
    bool hard = false, soft = false;
    for (const Invalidation& inv : invalidations) {
      if (!Covers(inv, parts, tenant, visit.tags)) continue;
      (inv.soft ? soft : hard) = true;
    }
    if (hard) {
      removed.push_back(visit.entry);
    } else if (soft && !visit.entry.soft_stale) {
      staled.push_back(visit.entry.file);
    }
  });
  for (const IndexedEntry& entry : removed) Remove(entry);
  for (const FileRef& file : staled) {
    if (index_.MarkStale(file)) {
      JournalAppend(zone, JournalRecord::ForFile(JournalRecord::Type::kStale, file.hash, file.serial));
    }
  }
  return true;
}

bool Store::FinishCatchUp(int zone_id, uint64_t session) {
  absl::MutexLock lock(&catch_up_mu_);
  if (!InCatchUp(zone_id, session)) return false;
  Zone& zone = *zones_[zone_id];
  {
    absl::MutexLock epoch_lock(&epoch_mu_);
    zone.WriteEpoch(epoch_);  // it has missed nothing the others took
    zone.SetCatchingUp(false);
  }
  absl::MutexLock position_lock(&position_mu_);
  position_written_ = false;  // it keeps the position from the next write on
  return true;
}

bool Store::EmptyZone(int zone_id, uint64_t session) {
  absl::MutexLock lock(&catch_up_mu_);
  if (!InCatchUp(zone_id, session)) return false;
  Zone& zone = *zones_[zone_id];
  memory_.EraseZone(zone_id);
  held_bodies_.EraseZone(zone_id);
  for (const IndexedEntry& e : index_.RemoveZone(zone_id)) {
    generations_.Removed(e.container_id, e.tenant_id, e.stored_epoch);
  }
  ResetZone(zone);
  zone.SetCatchingUp(false);
  return true;
}

StoreStats Store::GetStats() const {
  StoreStats stats{index_.size(), {}, memory_.bytes(), held_bodies_.bytes()};
  for (const auto& zone : zones_) {
    stats.zones.push_back({zone->config().path, zone->serving(), zone->used_bytes(), zone->config().max_bytes,
                           zone->entries(), zone->errors(), zone->limit_bytes(), zone->full_evictions(),
                           zone->freeing_bytes()});
  }
  return stats;
}

}  // namespace cache
