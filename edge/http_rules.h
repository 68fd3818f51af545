// HTTP rules the edge applies to stored responses, as pure functions: which headers are stored,
// single byte ranges (RFC 9110 14) and conditional requests (RFC 9110 13).
#pragma once

#include <cstdint>
#include <string_view>

namespace edge {

// Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade; and, given the
// message's Connection field, every field it names (RFC 9110 7.6.1). Never passed on, never stored.
bool IsHopByHop(std::string_view name, std::string_view connection = {});
// Whether a stored response keeps this origin header: not hop-by-hop, not one the edge writes per
// response (Content-Length, Age, X-Cache), not one client's (Set-Cookie).
bool IsStoredHeader(std::string_view name, std::string_view connection = {});
// The headers a 304 repeats from the entry (RFC 9110 15.4.5).
bool IsNotModifiedHeader(std::string_view name);

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
};

enum class RangeResult {
  kWhole,          // no Range, or one the edge ignores (several ranges, other units, malformed)
  kPartial,        // 206 with *range
  kUnsatisfiable,  // 416
};
RangeResult EvaluateRange(std::string_view range, uint64_t length, ByteRange* out);
// If-Range: the Range applies only when this validator is the entry's (strong ETag or exact date).
bool IfRangeMatches(std::string_view if_range, std::string_view etag, std::string_view last_modified);

enum class Precondition { kProceed, kNotModified, kFailed };
struct ConditionalHeaders {
  std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since;
};
// RFC 9110 13.2.2 for GET and HEAD against a stored entry's validators: If-Match, then
// If-Unmodified-Since (412 when they fail), then If-None-Match (weak comparison), else
// If-Modified-Since (304 when they match).
Precondition EvaluatePreconditions(const ConditionalHeaders& request, std::string_view etag,
                                   std::string_view last_modified);

}  // namespace edge
