// Vary (RFC 9110 12.5.5): an origin that varies a response on request headers gets one stored
// response per combination of their values. The key of such an entry carries the combination
// (VariantSuffix); which headers an object varies on is learnt from its responses (VaryIndex),
// since a lookup must know them before it can name the variant to look for.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace edge {

// Separates a key's variant (its query) from the Vary values appended to it.
inline constexpr char kVarySeparator = '\x1e';

// The lowercase header names of a Vary value, sorted, without duplicates; {"*"} for "*".
std::vector<std::string> VaryNames(std::string_view vary);

// The variant of a request for `names`: each name and the request's value for it (surrounding
// whitespace trimmed; absent and empty alike), in order. Accept-Language and Accept-Encoding are
// normalised: their members lowercased, without whitespace, sorted. `find` returns a request
// header's value.
std::string VariantSuffix(const std::vector<std::string>& names,
                          const std::function<std::string_view(std::string_view)>& find);

// Which headers each object varies on (by the encoded key of its base entry). Thread-safe;
// bounded (forgetting a name only costs a miss that learns it again).
class VaryIndex {
 public:
  std::vector<std::string> Find(std::string_view base_key) const;
  void Learn(std::string_view base_key, std::vector<std::string> names);
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }

 private:
  static constexpr size_t kMaxObjects = 100000;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::string>> names_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> size_{0};
};

}  // namespace edge
