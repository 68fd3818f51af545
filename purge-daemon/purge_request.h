// The public purge API's requests as values: parsing the JSON body (strictly: unknown fields,
// wrong types and empty or oversize requests are errors that name the problem), and turning a
// request into invalidations for one caller, refusing anything outside the caller's tenant.
// Pure: authentication (key hashes, Swift tokens) happens before, in api.h.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/invalidation.h"
#include "vhost-config/loader.h"

namespace purge {

inline constexpr size_t kMaxPurgeItems = 1000;

struct PurgeRequest {
  std::vector<std::string> urls;      // one object or listing each (every variant)
  std::vector<std::string> prefixes;  // objects and listings under a path
  std::vector<std::string> hosts;     // everything of the tenant serving the host
  std::vector<std::string> tags;      // entries whose origin response carried the tag
  bool all = false;                   // everything of the caller's tenant (or the whole cache, admin)
  bool soft = false;                  // stale (revalidated on next use) rather than gone
  std::string tenant;                 // which tenant, when only tags or all say nothing of it
};

// InvalidArgument with a message naming the problem.
absl::StatusOr<PurgeRequest> ParsePurgeRequest(std::string_view body);

// The tenant the request is about: the one serving every URL, prefix and host it names (or its
// `tenant` field). InvalidArgument if they name several or none, NotFound for an unknown host.
absl::StatusOr<const vhost::Tenant*> TenantOf(const PurgeRequest& request, const vhost::TenantTable& tenants);

struct Caller {
  const vhost::Tenant* tenant = nullptr;  // whom the credentials belong to; null for an admin
  bool admin = false;
  // A Swift token: it speaks for Swift accounts, not for a tenant, so it purges only what lies in
  // the accounts of the plan (each checked with Swift). On a tenant with an account of its own
  // that account is in every plan; on a swift-api host serving every account, only URLs and
  // prefixes (whose path names the account) may be purged, never hosts, tags or all.
  bool token = false;
};

struct PurgePlan {
  std::vector<cache::Invalidation> invalidations;
  std::set<std::string> accounts;  // Swift accounts touched: a Swift token must be valid for each
};

// PermissionDenied if anything the request names is not the caller's (its URLs, hosts, or its
// `tenant` field), or a token's purge reaches beyond its accounts; InvalidArgument for URLs that
// cannot be purged.
absl::StatusOr<PurgePlan> PlanPurge(const PurgeRequest& request, const vhost::TenantTable& tenants,
                                    const Caller& caller);

}  // namespace purge
