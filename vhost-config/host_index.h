// Host -> tenant lookup: O(1) for exact names, O(labels) for wildcards, the most specific match
// winning (exact, then the longest wildcard suffix). No allocation per lookup.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace vhost {

class HostIndex {
 public:
  // `domain` is lowercase: "img.example.com" or "*.example.com". Returns false if already taken.
  bool Add(std::string_view domain, int tenant);
  // The tenant for a Host header value (any case, with or without port or trailing dot), or -1.
  int Find(std::string_view host) const;

 private:
  absl::flat_hash_map<std::string, int> exact_;
  absl::flat_hash_map<std::string, int> wildcard_;  // keyed by the suffix after "*."
};

// The Host value lowercased, without port and trailing dot, into `buffer` (at least 256 bytes);
// empty if it is not a plausible host name.
std::string_view NormalizeHost(std::string_view host, char* buffer, size_t size);

}  // namespace vhost
