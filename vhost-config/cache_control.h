// Cache directives as they are written: Cache-Control (RFC 9111 5.2, a request's or a response's,
// over any number of field lines), targeted fields such as CDN-Cache-Control (RFC 9213, Dictionary
// Structured Fields, RFC 8941) and Age (RFC 9111 5.1). Parsing only: what the directives mean for
// storing is in cache_policy.h, for using a stored response in freshness.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace vhost {

using HeaderViews = std::span<const std::pair<std::string_view, std::string_view>>;

// RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31.
inline constexpr int64_t kMaxDeltaSeconds = 2147483648;

struct CacheDirectives {
  bool no_store = false;
  bool no_cache = false;    // qualified (no-cache="field") or not: the whole response
  bool is_private = false;  // likewise: a shared cache stores none of it
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;  // request
  // Seconds; the first occurrence counts. A max-age or s-maxage whose value is not delta-seconds
  // is 0: the response is stale at once (safer than the default TTL an absent one would give).
  std::optional<int64_t> max_age, s_maxage, stale_while_revalidate, stale_if_error, min_fresh;
};

// Adds one Cache-Control field line's directives to `out`. Several lines are one list (RFC 9110
// 5.3), so calling this for each line reads them as if they were joined with ",".
void ParseCacheControl(std::string_view line, CacheDirectives* out);
// All of `headers`' Cache-Control lines.
CacheDirectives ResponseCacheControl(HeaderViews headers);

// A targeted field's value (its lines joined with ","): true, with `out` filled, when it is a valid
// and non-empty Dictionary whose cache directives have values of their types (RFC 9213 2.1: an
// integer max-age, a boolean no-store...). False means the field is to be ignored.
bool ParseTargetedField(std::string_view value, CacheDirectives* out);

// Every line of field `name` joined with ",", as RFC 9110 5.3 combines them; empty if none.
std::string CombinedField(HeaderViews headers, std::string_view name);
// The number of lines of field `name`.
size_t FieldLines(HeaderViews headers, std::string_view name);

// RFC 9111 5.1: the Age, in seconds, from the first member of the first Age line; an invalid value
// is ignored (0), a too large one is kMaxDeltaSeconds.
int64_t AgeSeconds(HeaderViews headers);

// delta-seconds (RFC 9111 1.2.2), also in the quoted form RFC 9111 5.2 asks recipients to accept.
std::optional<int64_t> DeltaSeconds(std::string_view text);

}  // namespace vhost
