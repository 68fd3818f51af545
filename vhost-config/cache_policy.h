// Whether a response may be stored, for how long it is fresh, its stale windows and its tags.
// A pure function of the tenant's policy, the request, the response and the time (passed in):
// RFC 9111 rules for a shared cache when the tenant honours the origin, clamped by its TTLs.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "vhost-config/tenant.h"

namespace vhost {

struct RequestFacts {
  std::string_view method;
  std::string_view path;  // for the tenant's path rules
  bool listing = false;
  bool authorization = false;  // Authorization header
  bool auth_token = false;     // X-Auth-Token: Swift credentials, answered for this client only
  bool temp_url = false;       // temp_url_sig in the query
  std::string_view cache_control;
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
};

CacheDecision Decide(const CachePolicy& policy, const RequestFacts& request, const ResponseFacts& response,
                     absl::Time now);

// '*' matches any run of characters (slashes included), '?' any one character.
bool GlobMatch(std::string_view glob, std::string_view text);
const PathRule* MatchRule(const CachePolicy& policy, std::string_view path);

}  // namespace vhost
