// Whether a response may be stored, for how long it is fresh, its stale windows and its tags.
// A pure function of the tenant's policy, the request, the response and the time (passed in):
// RFC 9111 rules for a shared cache when the tenant honours the origin, clamped by its TTLs, with
// targeted fields (RFC 9213: the tenant's own, then CDN-Cache-Control) before Cache-Control.
// Whether a stored response may answer a request is freshness.h's decision.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "vhost-config/tenant.h"

namespace vhost {

// The request a response answers. Requests the cache never answers (Swift credentials, temp-URL
// signatures, cookies, `no-store`) are relayed by the edge before any fetch, so they are not here.
struct RequestFacts {
  std::string_view method;
  std::string_view path;  // for the tenant's path rules
  bool listing = false;
  // Authorization was sent (http tenants only; RFC 9111 3.5): stored only when the response allows.
  bool authorization = false;
};

struct ResponseFacts {
  int status = 200;
  std::span<const std::pair<std::string_view, std::string_view>> headers;
};

struct CacheDecision {
  bool store = false;
  std::string reason;  // why not stored, or where the lifetime came from
  absl::Duration fresh_for = absl::ZeroDuration();
  absl::Duration stale_while_revalidate = absl::ZeroDuration();
  absl::Duration stale_if_error = absl::ZeroDuration();
  std::vector<std::string> tags;
  const PathRule* rule = nullptr;  // the path rule that matched, if any
  int64_t age = 0;                 // the response's Age (RFC 9111 5.1): it was made that long ago
};

CacheDecision Decide(const CachePolicy& policy, const RequestFacts& request, const ResponseFacts& response,
                     absl::Time now);

// '*' matches any run of characters (slashes included), '?' any one character.
bool GlobMatch(std::string_view glob, std::string_view text);
const PathRule* MatchRule(const CachePolicy& policy, std::string_view path);

}  // namespace vhost
