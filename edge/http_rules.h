// HTTP rules the edge applies to stored responses, as pure functions: which headers are stored,
// byte ranges (RFC 9110 14), entity tags (RFC 9110 8.8.3) and conditional requests (RFC 9110 13).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace edge {

// `s` without the optional whitespace (spaces, tabs) around a field value or list item (RFC 9110 5.6.3).
std::string_view Trim(std::string_view s);
// Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade; and, given the
// message's Connection field, every field it names (RFC 9110 7.6.1). Never passed on, never stored.
bool IsHopByHop(std::string_view name, std::string_view connection = {});
// Whether a stored response keeps this origin header: not hop-by-hop, not one the edge writes per
// response (Content-Length, Age, X-Cache), not one client's (Set-Cookie).
bool IsStoredHeader(std::string_view name, std::string_view connection = {});
// The headers a 304 repeats from the entry (RFC 9110 15.4.5).
bool IsNotModifiedHeader(std::string_view name);

// Entity-tag comparison (RFC 9110 8.8.3.2). Swift sends a plain object's ETag unquoted (its MD5 in
// hex) and a large object's quoted: an unquoted value is read as the opaque tag it would be
// quoted, so `d41d8...` and `"d41d8..."` are the same tag, on either side. Strong: both strong and
// the same opaque tag; weak: the same opaque tag.
enum class TagComparison { kStrong, kWeak };
bool EntityTagsMatch(std::string_view a, std::string_view b, TagComparison comparison);

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
};
// Inline room for the default limit of ranges: a request with one range (or none) allocates nothing.
using ByteRanges = absl::InlinedVector<ByteRange, 16>;

enum class RangeResult {
  kWhole,          // no Range, one the edge ignores (other units, malformed, more than the limit)
  kPartial,        // 206: one range, or several as multipart/byteranges
  kUnsatisfiable,  // 416: none of the ranges overlaps the body
};
// RFC 9110 14.1.2 and 14.2 for a body of `length` bytes. More than `max_ranges` range specs are
// answered with the whole body, as nginx's max_ranges (0 ignores every Range). Unsatisfiable specs
// are dropped. Ranges that overlap or touch are coalesced (sorted, merged), so a client cannot make
// the answer larger than the body plus the framing of at most `max_ranges` parts (RFC 9110 14.2's
// guard against overlapping and many small ranges); otherwise they stay in the order asked (14.6).
RangeResult EvaluateRanges(std::string_view range, uint64_t length, size_t max_ranges, ByteRanges* out);
// If-Range: the Range applies only when this validator is the entry's (strong ETag or exact date).
bool IfRangeMatches(std::string_view if_range, std::string_view etag, std::string_view last_modified);

// The framing of a multipart/byteranges body (RFC 9110 14.6) for `ranges` of a `length`-byte
// body: each part is `part_heads[i]` then the part's bytes, and `close` ends the body.
struct MultipartFraming {
  std::vector<std::string> part_heads;
  std::string close;
  uint64_t content_length = 0;  // of the whole multipart body, parts included
};
// `content_type` (the entry's; may be empty) is repeated in each part; `boundary` must not occur in
// the body (a random one does not, in practice: RFC 2046 5.1.1).
MultipartFraming FrameByteRanges(std::span<const ByteRange> ranges, uint64_t length,
                                 std::string_view content_type, std::string_view boundary);

enum class Precondition { kProceed, kNotModified, kFailed };
struct ConditionalHeaders {
  std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since;
};
// A stored entry's validators: its ETag and Last-Modified, and its Date, which stands for
// Last-Modified in If-Modified-Since when there is none (RFC 9111 4.3.2).
struct Validators {
  std::string_view etag, last_modified, date;
};
// RFC 9110 13.2.2 for GET and HEAD against a stored entry's validators: If-Match (strong
// comparison), then If-Unmodified-Since (412 when they fail), then If-None-Match (weak
// comparison), else If-Modified-Since (304 when they match).
Precondition EvaluatePreconditions(const ConditionalHeaders& request, const Validators& entry);

}  // namespace edge
