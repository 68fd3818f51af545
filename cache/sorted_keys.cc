#include "cache/sorted_keys.h"

#include <algorithm>

namespace cache {

namespace {

void PutVarint(std::string& out, size_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

size_t GetVarint(const char*& p) {
  size_t value = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    value |= static_cast<size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
}

// Decodes a run's keys one after another, from a restart.
class RunCursor {
 public:
  RunCursor(const std::string& run, size_t offset) : p_(run.data() + offset), end_(run.data() + run.size()) {}
  bool Next() {
    if (p_ >= end_) return false;
    const size_t shared = GetVarint(p_);
    const size_t rest = GetVarint(p_);
    key_.resize(shared);
    key_.append(p_, rest);
    p_ += rest;
    return true;
  }
  std::string_view key() const { return key_; }

 private:
  const char* p_;
  const char* end_;
  std::string key_;
};

size_t SharedPrefix(std::string_view a, std::string_view b) {
  return static_cast<size_t>(
      std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size()), b.begin()).first - a.begin());
}

}  // namespace

size_t SortedKeys::RestartFor(std::string_view key) const {
  // The last restart whose key is below `key`: every key from there on may be >= key.
  auto restart_key = [this](uint32_t offset) {
    const char* p = run_.data() + offset;
    GetVarint(p);  // shared: 0 at a restart
    const size_t size = GetVarint(p);
    return std::string_view(p, size);
  };
  auto after = std::partition_point(restarts_.begin(), restarts_.end(),
                                    [&](uint32_t offset) { return restart_key(offset) < key; });
  return after == restarts_.begin() ? 0 : *(after - 1);
}

bool SortedKeys::Contains(std::string_view key) const {
  if (added_.contains(key)) return true;
  RunCursor cursor(run_, RestartFor(key));
  while (cursor.Next()) {
    if (cursor.key() >= key) return cursor.key() == key;
  }
  return false;
}

void SortedKeys::Add(std::string_view key) {
  if (!Contains(key)) added_.emplace(key);
}

void SortedKeys::ForPrefix(std::string_view prefix, absl::FunctionRef<void(std::string_view)> visit) const {
  RunCursor cursor(run_, RestartFor(prefix));
  while (cursor.Next()) {
    if (cursor.key() < prefix) continue;
    if (!cursor.key().starts_with(prefix)) break;
    visit(cursor.key());
  }
  for (auto it = added_.lower_bound(prefix); it != added_.end() && it->starts_with(prefix); ++it) visit(*it);
}

bool SortedKeys::WantsRebuild(size_t removed_since_rebuild) const {
  // Rebuilding costs the whole run: after run/8 additions that is 8 keys' work per addition.
  constexpr size_t kMinChanges = 64;
  return added_.size() >= std::max(kMinChanges, run_keys_ / 8) ||
         removed_since_rebuild >= std::max(kMinChanges, run_keys_ / 2);
}

void SortedKeys::Rebuild(absl::FunctionRef<bool(std::string_view)> live,
                         const std::vector<std::string>& more) {
  std::vector<std::string_view> extra;
  extra.reserve(added_.size() + more.size());
  std::merge(added_.begin(), added_.end(), more.begin(), more.end(), std::back_inserter(extra));
  size_t extra_bytes = 0;
  for (std::string_view key : extra) extra_bytes += key.size();

  std::string run;
  run.reserve(run_.size() + extra_bytes / 2);
  std::vector<uint32_t> restarts;
  size_t keys = 0;
  std::string previous;
  auto emit = [&](std::string_view key) {
    if (keys > 0 && key == previous) return;  // a duplicate: the first copy decided
    if (!live(key)) return;
    size_t shared = 0;
    if (keys % kRestartInterval == 0) {
      restarts.push_back(static_cast<uint32_t>(run.size()));
    } else {
      shared = SharedPrefix(previous, key);
    }
    PutVarint(run, shared);
    PutVarint(run, key.size() - shared);
    run.append(key.substr(shared));
    previous.assign(key);
    ++keys;
  };
  RunCursor cursor(run_, 0);
  bool more_in_run = cursor.Next();
  auto next_extra = extra.begin();
  while (more_in_run || next_extra != extra.end()) {
    if (more_in_run && (next_extra == extra.end() || cursor.key() <= *next_extra)) {
      emit(cursor.key());
      more_in_run = cursor.Next();
    } else {
      emit(*next_extra++);
    }
  }
  run.shrink_to_fit();
  restarts.shrink_to_fit();
  run_ = std::move(run);
  restarts_ = std::move(restarts);
  run_keys_ = keys;
  added_.clear();
}

size_t SortedKeys::MemoryBytes() const {
  size_t bytes = run_.capacity() + restarts_.capacity() * sizeof(uint32_t);
  for (const std::string& key : added_) {
    // The string in a btree node (about 3/4 full), and its heap block when it is not inline.
    bytes += sizeof(std::string) * 4 / 3 + (key.capacity() > 15 ? key.capacity() + 1 : 0);
  }
  return bytes;
}

}  // namespace cache
