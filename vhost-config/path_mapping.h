// Request target -> origin request. Percent-decoding is canonical and safe: ".." segments (also
// encoded), encoded slashes, NUL and control characters and malformed escapes are refused, never
// passed on; "." segments and empty segments ("//") are dropped. The origin path is re-encoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vhost-config/tenant.h"

namespace vhost {

// The origin identity (account, container, name, variant) is what the cache keys and the purge
// daemon invalidate, so both map requests through this one function. http origins use the
// account "~http" and the tenant's name as container.
struct OriginTarget {
  std::string account;
  std::string container;       // empty for an account listing (swift-api)
  std::string name;            // decoded object name, or the listing prefix; for http origins the path
  std::string variant;         // what tells entries of one name apart: the query string of an object,
                               // or the listing query without its prefix, in canonical order
  bool listing = false;        // a listing of the `name` prefix
  bool pass = false;           // swift-api paths outside /v1/ (auth, info): never cached
  std::string listing_format;  // "json", "xml", "plain", or empty when the client did not say
  std::string path;            // the request path decoded and normalised ("/a/b/"): what the
                               // tenant's path rules match, so no spelling of a path escapes them
  std::string query;           // the request's query string, unchanged
  std::string url;             // the absolute origin URL to fetch
  bool operator==(const OriginTarget&) const = default;
};

inline constexpr std::string_view kHttpAccount = "~http";

// InvalidArgument naming the problem for a target that must not reach the origin;
// PermissionDenied for a swift-api path of an account the host does not serve. `accept` is the
// request's Accept header: Swift picks a listing's format by it when the query does not say, so
// the edge makes that choice explicit in the origin URL and the key.
// `target` is origin-form ("/path?query"): the HTTP parser turns an absolute-form target into one.
absl::StatusOr<OriginTarget> MapRequest(const Tenant& tenant, std::string_view target,
                                        std::string_view accept = {});
// The same into `result`, reusing its strings' capacity: a caller that maps every request into
// one OriginTarget of its own does not allocate once the strings have grown. On error `result`
// holds nothing meaningful.
absl::Status MapRequest(const Tenant& tenant, std::string_view target, std::string_view accept,
                        OriginTarget* result);

// The account as the cache and the purge log know it: the Swift account, qualified by its
// cluster's name unless that is the default ("" -> "AUTH_x", "east" -> "east/AUTH_x"; no Swift
// account name holds a '/'), assigned into `out` (its capacity reused).
void AssignCacheAccount(std::string_view cluster, std::string_view account, std::string* out);
std::string CacheAccount(std::string_view cluster, std::string_view account);

// Percent-decodes `text` (a query parameter value when `plus_is_space`); InvalidArgument if an
// escape is malformed or the result holds NUL or control characters.
absl::StatusOr<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Percent-encodes everything but RFC 3986 unreserved characters and, if `keep_slash`, '/'.
std::string PercentEncode(std::string_view text, bool keep_slash);

// Whether a query string ("a=1&b") has a parameter named `name`, its name decoded as Swift
// decodes it ("temp%5Furl%5Fsig" and "temp_url_sig" are one name).
bool QueryHasParameter(std::string_view query, std::string_view name);

}  // namespace vhost
