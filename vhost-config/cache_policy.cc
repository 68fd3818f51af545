#include "vhost-config/cache_policy.h"

#include <algorithm>
#include <optional>

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

std::optional<int64_t> Seconds(std::string_view text) {
  text = Trim(text);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

struct CacheControl {
  bool no_store = false, no_cache = false, is_private = false, is_public = false, must_revalidate = false;
  std::optional<int64_t> max_age, s_maxage, stale_while_revalidate, stale_if_error;
};

CacheControl ParseCacheControl(std::string_view value) {
  CacheControl cc;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const size_t eq = item.find('=');
    const std::string_view name = Trim(item.substr(0, eq));
    const std::string_view arg = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    if (IEquals(name, "no-store"))
      cc.no_store = true;
    else if (IEquals(name, "no-cache"))
      cc.no_cache = true;
    else if (IEquals(name, "private"))
      cc.is_private = true;
    else if (IEquals(name, "public"))
      cc.is_public = true;
    else if (IEquals(name, "must-revalidate") || IEquals(name, "proxy-revalidate"))
      cc.must_revalidate = true;
    else if (IEquals(name, "max-age"))
      cc.max_age = Seconds(arg);
    else if (IEquals(name, "s-maxage"))
      cc.s_maxage = Seconds(arg);
    else if (IEquals(name, "stale-while-revalidate"))
      cc.stale_while_revalidate = Seconds(arg);
    else if (IEquals(name, "stale-if-error"))
      cc.stale_if_error = Seconds(arg);
  }
  return cc;
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
  if (request.auth_token || request.temp_url) return NotStored("request carries Swift credentials");
  if (ParseCacheControl(request.cache_control).no_store) return NotStored("request Cache-Control: no-store");
  const CacheControl cc = ParseCacheControl(Header(response, "cache-control"));
  if (cc.no_store) return NotStored("response Cache-Control: no-store");
  if (cc.is_private) return NotStored("response Cache-Control: private");
  // A cookie is one client's: as nginx does, a response that sets one is not shared.
  if (!Header(response, "set-cookie").empty()) return NotStored("response sets a cookie");
  if (request.authorization && !(cc.is_public || cc.s_maxage || cc.must_revalidate)) {
    return NotStored("request has Authorization and the response does not allow sharing");
  }
  if (response.status >= 500) return NotStored("origin error status");

  const std::optional<absl::Time> date = ParseHttpDate(Header(response, "date"));
  const absl::Time origin_now = date.value_or(now);
  const std::string_view expires_header = Header(response, "expires");
  const bool explicit_freshness =
      policy.honour_origin && (cc.s_maxage || cc.max_age || !expires_header.empty());
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
  } else if (response.status == 404) {
    lifetime = policy.negative_ttl;
    d.reason = "negative TTL";
  } else if (rule != nullptr) {
    lifetime = rule->ttl;
    d.reason = "path rule TTL";
  } else if (policy.honour_origin) {
    if (cc.s_maxage) {
      lifetime = absl::Seconds(*cc.s_maxage);
      d.reason = "s-maxage";
    } else if (cc.max_age) {
      lifetime = absl::Seconds(*cc.max_age);
      d.reason = "max-age";
    } else if (!expires_header.empty()) {
      // An invalid Expires means already expired (RFC 9111 5.3).
      const std::optional<absl::Time> expires = ParseHttpDate(expires_header);
      lifetime = expires ? std::max(absl::ZeroDuration(), *expires - origin_now) : absl::ZeroDuration();
      d.reason = "Expires";
    } else if (const auto modified = ParseHttpDate(Header(response, "last-modified"));
               policy.heuristic_freshness && modified && HeuristicallyCacheable(response.status)) {
      lifetime = std::min(policy.default_ttl, std::max(absl::ZeroDuration(), (origin_now - *modified) / 10));
      d.reason = "heuristic (10% of the age of Last-Modified)";
    }
  }
  if (!request.listing) lifetime = std::clamp(lifetime, policy.min_ttl, policy.max_ttl);
  if (policy.honour_origin && cc.no_cache) {
    lifetime = absl::ZeroDuration();
    d.reason = "no-cache: stored, revalidated on every use";
  }

  // Age already spent upstream (RFC 9111 4.2.3): the Age header, or the apparent age from Date.
  absl::Duration age = std::max(absl::ZeroDuration(), now - origin_now);
  if (const auto age_header = Seconds(Header(response, "age")))
    age = std::max(age, absl::Seconds(*age_header));
  d.fresh_for = policy.honour_origin ? std::max(absl::ZeroDuration(), lifetime - age) : lifetime;

  d.stale_while_revalidate = policy.stale_while_revalidate;
  d.stale_if_error = policy.stale_if_error;
  if (policy.honour_origin) {
    if (cc.stale_while_revalidate)
      d.stale_while_revalidate =
          std::min(d.stale_while_revalidate, absl::Seconds(*cc.stale_while_revalidate));
    if (cc.stale_if_error) d.stale_if_error = std::min(d.stale_if_error, absl::Seconds(*cc.stale_if_error));
    if (cc.must_revalidate || cc.no_cache) {
      d.stale_while_revalidate = d.stale_if_error = absl::ZeroDuration();
    }
  }

  // Swift deletes the object at X-Delete-At: never serve it past that.
  if (const auto delete_at = Seconds(Header(response, "x-delete-at"))) {
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
