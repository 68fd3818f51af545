// What a write invalidates, as pure functions from values to invalidations. The edge that proxied
// the write applies the plan to its own cache at once; the purge daemon plans the same event for
// every edge.
#pragma once

#include <string_view>
#include <vector>

#include "cache/invalidation.h"
#include "purge-daemon/bus/protocol.h"

namespace purge {

// The directory a listing of `object_name`'s container shows it in: "a/b/" for "a/b/c.jpg", ""
// for a name at the top.
std::string_view DirectoryOf(std::string_view object_name);

// The (hard) invalidations for one successful write:
//  - an object written, posted to or deleted: the object (every variant, its cached 404), and the
//    listings and staticweb pages of its directory and their ancestors, and the account's listings;
//  - COPY: the same for the destination (the source does not change);
//  - a container created, posted to (ACL, metadata) or deleted: everything cached for it, and the
//    account's listings;
//  - the account itself: its listings;
//  - a bulk delete: each object (or container) its body named, as above; without its body
//    (`paths`: too large to read), everything, soft. An archive extracted: the container (or
//    everything, soft, at the account).
// An event whose status is 0 (the origin's answer never came) is planned as if it succeeded.
// A large object's segment is planned as any object: each edge's cache invalidates the entries
// assembled from it (cache/dependencies.h).
std::vector<cache::Invalidation> PlanWrite(const bus::WriteEvent& event);

// Makes a burst small: each invalidation once, nothing a container or an all invalidation in the
// same list already covers. Listings are planned per directory, so a thousand uploads into one
// directory leave one listings invalidation.
void Coalesce(std::vector<cache::Invalidation>* invalidations);

// Tags are kept per tenant (tenant, a separator, tag), so a tenant's tag purge reaches only its
// own entries.
std::string ScopedTag(std::string_view tenant, std::string_view tag);

// The listings invalidations of a plan: Swift updates listings asynchronously, so these are
// applied again a little later.
std::vector<cache::Invalidation> ListingsOf(const std::vector<cache::Invalidation>& invalidations);

}  // namespace purge
