// What a stored response may be used for when a request comes: the one place that reads an
// entry's freshness at use time (RFC 9111 4.2 and 5.2.1, RFC 5861's stale windows), for the hit
// path, for a revalidation's answer and for an origin that failed. Pure: the entry's times, the
// request's directives, the time and the edge's trust in its cache are passed in.
#pragma once

#include <cstdint>

#include "vhost-config/cache_control.h"

namespace vhost {

// An entry's times as stored (unix seconds), and whether a soft purge covers it.
struct StoredFreshness {
  int64_t stored_at = 0;               // when the origin made the response (its Age counted back)
  int64_t fresh_until = 0;             // end of its freshness lifetime
  int64_t stale_while_revalidate = 0;  // seconds after fresh_until
  int64_t stale_if_error = 0;          // seconds after fresh_until
  bool invalidated = false;            // soft-purged: revalidate before any use
};

enum class Use {
  kFresh,                 // serve it as it is
  kStaleWhileRevalidate,  // serve it, and revalidate it in the background
  kRevalidate,            // revalidate first (its validators may save the body)
  kOnlyIfCached,          // only-if-cached: serve it as it is, stale or not (RFC 9111 5.2.1.7)
};

// `request` holds the directives of a request the tenant honours (empty for a Swift tenant's);
// `trusted` is false while the edge may have missed purges: then nothing is used unrevalidated.
Use DecideUse(const StoredFreshness& entry, const CacheDirectives& request, int64_t now, bool trusted);

// Whether the entry may answer for an origin that failed or sent a 5xx (RFC 5861 stale-if-error).
bool UsableOnError(const StoredFreshness& entry, int64_t now);

}  // namespace vhost
