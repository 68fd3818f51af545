#include "vhost-config/freshness.h"

namespace vhost {

Use DecideUse(const StoredFreshness& entry, const CacheDirectives& request, int64_t now, bool trusted) {
  // RFC 9111 5.2.1: no-cache asks for a revalidation, max-age for an entry no older, min-fresh for
  // one still fresh that much longer.
  const bool client_wants_fresher = !trusted || request.no_cache ||
                                    (request.max_age && now - entry.stored_at > *request.max_age) ||
                                    (request.min_fresh && entry.fresh_until - now < *request.min_fresh);
  if (!client_wants_fresher && !entry.invalidated) {
    if (now < entry.fresh_until) return Use::kFresh;
    if (now < entry.fresh_until + entry.stale_while_revalidate) return Use::kStaleWhileRevalidate;
  }
  return request.only_if_cached ? Use::kOnlyIfCached : Use::kRevalidate;
}

bool UsableOnError(const StoredFreshness& entry, int64_t now) {
  return !entry.invalidated && now < entry.fresh_until + entry.stale_if_error;
}

}  // namespace vhost
