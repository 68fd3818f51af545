// The encoded keys of one index shard in order, so that a range invalidation visits only the keys
// it matches, in about a tenth of the memory of one string per key: a sorted run, front-coded
// (each key stored as the length it shares with the previous one and the rest, every 16th key in
// full so that a lookup can binary-search), plus the keys added since the run was last rebuilt.
//
// Removing a key is lazy: the owner says, when it rebuilds, which keys are still live. Until then a
// removed key is still visited, so a visitor checks the key is live. Not thread-safe (the shard's
// mutex guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"

namespace cache {

class SortedKeys {
 public:
  // Adds `key` unless it is already here (live or not yet dropped by a rebuild).
  void Add(std::string_view key);
  bool Contains(std::string_view key) const;

  // Calls `visit` for every key starting with `prefix`, in order; the view lasts for the call.
  void ForPrefix(std::string_view prefix, absl::FunctionRef<void(std::string_view)> visit) const;
  void ForEach(absl::FunctionRef<void(std::string_view)> visit) const { ForPrefix("", visit); }

  // Whether enough keys were added (or, per `removed_since_rebuild`, removed) since the last
  // rebuild that rebuilding now costs a bounded amount per change.
  bool WantsRebuild(size_t removed_since_rebuild) const;
  // Rewrites the run with the keys `live` accepts, the added ones merged in, and `more` (sorted;
  // duplicates allowed): a restart loads its keys this way in one pass.
  void Rebuild(absl::FunctionRef<bool(std::string_view)> live, const std::vector<std::string>& more = {});

  size_t MemoryBytes() const;

 private:
  static constexpr size_t kRestartInterval = 16;

  // The first position in the run whose key is >= `key`: the restart to decode from.
  size_t RestartFor(std::string_view key) const;

  std::string run_;                 // [varint shared][varint rest length][rest bytes] per key
  std::vector<uint32_t> restarts_;  // offsets of the keys stored in full
  size_t run_keys_ = 0;
  absl::btree_set<std::string, std::less<>> added_;  // std::less<>: found by std::string_view
};

}  // namespace cache
