// What an invalidation names, and which entries it covers. Object, listing, prefix and tag
// invalidations remove (hard) or mark stale (soft) the matching entries; container, tenant and all
// are generation bumps, O(1) whatever the cache holds.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "cache/key.h"

namespace cache {

struct Invalidation {
  enum class Kind {
    kObject,     // every variant of one object, and its cached 404
    kListings,   // what shows the contents of the directory `name` ("dir/", or "" for the root):
                 // the container's listings whose prefix is a prefix of `name` or starts with it,
                 // staticweb pages (objects named `name` or an ancestor directory of it), and the
                 // account's container listings
    kPrefix,     // objects and listings of the container whose name starts with `name`
    kContainer,  // everything cached for the container
    kTenant,     // everything filled through the tenant
    kTag,        // entries whose origin response carried the tag
    kAll,        // the whole cache
  };
  Kind kind = Kind::kObject;
  bool soft = false;  // soft: entries stay but must be revalidated before they are served again
  std::string account;
  std::string container;
  std::string name;  // object name (kObject, kListings) or name prefix (kPrefix)
  std::string tenant;
  std::string tag;

  static Invalidation Object(std::string account, std::string container, std::string name, bool soft);
  static Invalidation Listings(std::string account, std::string container, std::string name, bool soft);
  static Invalidation Prefix(std::string account, std::string container, std::string prefix, bool soft);
  static Invalidation Container(std::string account, std::string container, bool soft);
  static Invalidation Tenant(std::string tenant, bool soft);
  static Invalidation Tag(std::string tag, bool soft);
  static Invalidation All(bool soft);
};

// kListings: whether a listing with this prefix may show something in `directory`.
bool ListingShows(std::string_view directory, std::string_view listing_prefix);
// kListings: whether an object of this name is a staticweb page of `directory` or an ancestor.
bool ListsDirectory(std::string_view directory, std::string_view object_name);

// Whether `inv` covers an entry with this key, tenant and tags, the dependencies among its tags
// included (dependencies.h: a large object's manifest and its segments). Pure; the index uses
// ranges and generations instead, this decides fences for fills in flight.
bool Covers(const Invalidation& inv, const KeyParts& key, std::string_view tenant,
            std::span<const std::string> tags);

}  // namespace cache
