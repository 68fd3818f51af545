// Request target -> origin request. Percent-decoding is canonical and safe: ".." segments (also
// encoded), encoded slashes, NUL and control characters and malformed escapes are refused, never
// passed on; "." segments and empty segments ("//") are dropped. The origin path is re-encoded.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vhost-config/tenant.h"

namespace vhost {

struct OriginTarget {
  std::string account;         // swift origins
  std::string container;       // swift origins
  std::string name;            // decoded object name, or the listing prefix; for http origins the path
  bool listing = false;        // a container listing of `name` as prefix, delimited by "/"
  std::string listing_format;  // "json", "xml" or "plain" (listings)
  std::string query;           // the request's query string, unchanged (objects)
  std::string url;             // the absolute origin URL to fetch
};

// InvalidArgument naming the problem for a target that must not reach the origin.
absl::StatusOr<OriginTarget> MapRequest(const Tenant& tenant, std::string_view target);

// Percent-encodes everything but RFC 3986 unreserved characters and, if `keep_slash`, '/'.
std::string PercentEncode(std::string_view text, bool keep_slash);

}  // namespace vhost
