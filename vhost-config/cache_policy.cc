#include "vhost-config/cache_policy.h"

#include <algorithm>
#include <optional>

#include "vhost-config/cache_control.h"
#include "vhost-config/http_date.h"

namespace vhost {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view Header(const ResponseFacts& response, std::string_view name) {
  for (const auto& [n, v] : response.headers) {
    if (IEquals(n, name)) return v;
  }
  return {};
}

std::optional<int64_t> UnixSeconds(std::string_view text) {
  text = Trim(text);
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// RFC 9110 15.1: statuses a cache may store with heuristic freshness.
bool HeuristicallyCacheable(int status) {
  for (int s : {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}) {
    if (s == status) return true;
  }
  return false;
}

void AddTags(std::string_view value, char separator, std::vector<std::string>* tags) {
  while (!value.empty()) {
    const size_t end = value.find(separator);
    const std::string_view tag = Trim(value.substr(0, end));
    value = end == std::string_view::npos ? std::string_view() : value.substr(end + 1);
    if (!tag.empty() && std::find(tags->begin(), tags->end(), tag) == tags->end()) tags->emplace_back(tag);
  }
}

CacheDecision NotStored(std::string reason) {
  CacheDecision d;
  d.reason = std::move(reason);
  return d;
}

}  // namespace

bool GlobMatch(std::string_view glob, std::string_view text) {
  size_t g = 0, t = 0, star = std::string_view::npos, retry = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g;
      ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      retry = t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++retry;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

const PathRule* MatchRule(const CachePolicy& policy, std::string_view path) {
  for (const PathRule& rule : policy.rules) {
    if (GlobMatch(rule.glob, path)) return &rule;
  }
  return nullptr;
}

CacheDecision Decide(const CachePolicy& policy, const RequestFacts& request, const ResponseFacts& response,
                     absl::Time now) {
  if (request.method != "GET" && request.method != "HEAD") return NotStored("method is not GET or HEAD");
  const PathRule* rule = MatchRule(policy, request.path);
  if (rule != nullptr && rule->bypass) return NotStored("path rule says bypass");
  // An answer to one client's credentials, or to their absence: never another client's (issue 10).
  if (response.status == 401 || response.status == 403) return NotStored("status 401/403 is one client's");
  // A part of the object (an origin that answers 206 to a request the cache made without Range):
  // this cache stores whole objects only.
  if (response.status == 206) return NotStored("status 206 is a part of the object");

  // RFC 9213 2.2: the first targeted field of ours with a valid, non-empty value replaces
  // Cache-Control and Expires for this cache. Targeted fields are stored and sent on to clients
  // as they came: RFC 9213 lets a cache that used one forward it, and a CDN behind us may read it.
  CacheDirectives cc;
  bool targeted = false;
  for (std::string_view name :
       {std::string_view(policy.targeted_cache_control), std::string_view("cdn-cache-control")}) {
    if (name.empty()) continue;
    const std::string value = CombinedField(response.headers, name);
    if (!value.empty() && ParseTargetedField(value, &cc)) {
      targeted = true;
      break;
    }
  }
  if (!targeted) cc = ResponseCacheControl(response.headers);
  if (cc.no_store)
    return NotStored(targeted ? "targeted field: no-store" : "response Cache-Control: no-store");
  if (cc.is_private)
    return NotStored(targeted ? "targeted field: private" : "response Cache-Control: private");
  // A cookie is one client's: as nginx does, a response that sets one is not shared.
  if (!Header(response, "set-cookie").empty()) return NotStored("response sets a cookie");
  if (request.authorization && !(cc.is_public || cc.s_maxage || cc.must_revalidate)) {
    return NotStored("request has Authorization and the response does not allow sharing");
  }

  const std::optional<absl::Time> date = ParseHttpDate(Header(response, "date"));
  const absl::Time origin_now = date.value_or(now);
  // Several Expires lines, or one that is not an HTTP date, mean already expired (RFC 9111 5.3).
  const size_t expires_lines = targeted ? 0 : FieldLines(response.headers, "expires");
  const bool explicit_freshness = policy.honour_origin && (cc.s_maxage || cc.max_age || expires_lines > 0);
  // Errors are stored only for the time the origin gave them (RFC 9111 3: explicit freshness).
  if (response.status >= 500 && !explicit_freshness) return NotStored("origin error status");
  if (!HeuristicallyCacheable(response.status) && !explicit_freshness && !request.listing) {
    return NotStored("status is not cacheable without explicit freshness");
  }

  CacheDecision d;
  d.store = true;
  d.rule = rule;
  absl::Duration lifetime = policy.default_ttl;
  d.reason = "tenant default TTL";
  if (request.listing) {
    lifetime = policy.listing_ttl;
    d.reason = "listing TTL";
  } else if (response.status == 404 && !explicit_freshness) {
    lifetime = policy.negative_ttl;
    d.reason = "negative TTL";
  } else if (rule != nullptr) {
    lifetime = rule->ttl;
    d.reason = "path rule TTL";
  } else if (explicit_freshness) {
    if (cc.s_maxage) {
      lifetime = absl::Seconds(*cc.s_maxage);
      d.reason = "s-maxage";
    } else if (cc.max_age) {
      lifetime = absl::Seconds(*cc.max_age);
      d.reason = "max-age";
    } else {
      const std::optional<absl::Time> expires =
          expires_lines == 1 ? ParseHttpDate(Header(response, "expires")) : std::nullopt;
      lifetime = expires ? std::max(absl::ZeroDuration(), *expires - origin_now) : absl::ZeroDuration();
      d.reason = expires ? "Expires" : "invalid Expires: already expired";
    }
    if (targeted) d.reason = "targeted field " + d.reason;
  } else if (const auto modified = ParseHttpDate(Header(response, "last-modified"));
             policy.honour_origin && policy.heuristic_freshness && modified &&
             HeuristicallyCacheable(response.status)) {
    lifetime = std::min(policy.heuristic_max, std::max(absl::ZeroDuration(), (origin_now - *modified) / 10));
    d.reason = "heuristic (10% of the age of Last-Modified)";
  }
  if (!request.listing) lifetime = std::clamp(lifetime, policy.min_ttl, policy.max_ttl);
  if (policy.honour_origin && cc.no_cache) {
    lifetime = absl::ZeroDuration();
    d.reason = "no-cache: stored, revalidated on every use";
  }

  // Age already spent upstream (RFC 9111 4.2.3): the Age header, or the apparent age from Date.
  d.age = AgeSeconds(response.headers);
  const absl::Duration age = std::max(std::max(absl::ZeroDuration(), now - origin_now), absl::Seconds(d.age));
  d.fresh_for = policy.honour_origin ? std::max(absl::ZeroDuration(), lifetime - age) : lifetime;

  d.stale_while_revalidate = policy.stale_while_revalidate;
  d.stale_if_error = policy.stale_if_error;
  if (policy.honour_origin) {
    if (cc.stale_while_revalidate)
      d.stale_while_revalidate =
          std::min(d.stale_while_revalidate, absl::Seconds(*cc.stale_while_revalidate));
    if (cc.stale_if_error) d.stale_if_error = std::min(d.stale_if_error, absl::Seconds(*cc.stale_if_error));
    if (cc.must_revalidate || cc.proxy_revalidate || cc.no_cache) {
      d.stale_while_revalidate = d.stale_if_error = absl::ZeroDuration();
    }
  }

  // Swift deletes the object at X-Delete-At: never serve it past that.
  if (const auto delete_at = UnixSeconds(Header(response, "x-delete-at"))) {
    const absl::Duration left = absl::FromUnixSeconds(*delete_at) - now;
    if (left <= absl::ZeroDuration()) return NotStored("object expires (X-Delete-At is past)");
    d.fresh_for = std::min(d.fresh_for, left);
    d.stale_while_revalidate = std::min(d.stale_while_revalidate, left - d.fresh_for);
    d.stale_if_error = std::min(d.stale_if_error, left - d.fresh_for);
  }

  AddTags(Header(response, "surrogate-key"), ' ', &d.tags);
  AddTags(Header(response, "cache-tag"), ',', &d.tags);
  return d;
}

}  // namespace vhost
