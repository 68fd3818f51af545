#include "cache/invalidation.h"

#include <algorithm>

#include "cache/dependencies.h"

namespace cache {

namespace {
Invalidation Make(Invalidation::Kind kind, bool soft) {
  Invalidation inv;
  inv.kind = kind;
  inv.soft = soft;
  return inv;
}
Invalidation InContainer(Invalidation::Kind kind, std::string account, std::string container,
                         std::string name, bool soft) {
  Invalidation inv = Make(kind, soft);
  inv.account = std::move(account);
  inv.container = std::move(container);
  inv.name = std::move(name);
  return inv;
}
}  // namespace

bool ListingShows(std::string_view directory, std::string_view listing_prefix) {
  return directory.starts_with(listing_prefix) || listing_prefix.starts_with(directory);
}

bool ListsDirectory(std::string_view directory, std::string_view object_name) {
  return (object_name.empty() || object_name.ends_with('/')) && directory.starts_with(object_name);
}

Invalidation Invalidation::Object(std::string account, std::string container, std::string name, bool soft) {
  return InContainer(Kind::kObject, std::move(account), std::move(container), std::move(name), soft);
}
Invalidation Invalidation::Listings(std::string account, std::string container, std::string name, bool soft) {
  return InContainer(Kind::kListings, std::move(account), std::move(container), std::move(name), soft);
}
Invalidation Invalidation::Prefix(std::string account, std::string container, std::string prefix, bool soft) {
  return InContainer(Kind::kPrefix, std::move(account), std::move(container), std::move(prefix), soft);
}
Invalidation Invalidation::Container(std::string account, std::string container, bool soft) {
  return InContainer(Kind::kContainer, std::move(account), std::move(container), "", soft);
}
Invalidation Invalidation::Tenant(std::string tenant, bool soft) {
  Invalidation inv = Make(Kind::kTenant, soft);
  inv.tenant = std::move(tenant);
  return inv;
}
Invalidation Invalidation::Tag(std::string tag, bool soft) {
  Invalidation inv = Make(Kind::kTag, soft);
  inv.tag = std::move(tag);
  return inv;
}
Invalidation Invalidation::All(bool soft) {
  return Make(Kind::kAll, soft);
}

namespace {
bool CoversKey(const Invalidation& inv, const KeyParts& key, std::string_view tenant,
               std::span<const std::string> tags) {
  const bool same_container = key.account == inv.account && key.container == inv.container;
  switch (inv.kind) {
    case Invalidation::Kind::kObject:
      return key.kind == KeyKind::kObject && same_container && key.name == inv.name;
    case Invalidation::Kind::kListings:
      if (key.kind == KeyKind::kObject) return same_container && ListsDirectory(inv.name, key.name);
      return key.account == inv.account &&
             (key.container.empty() || (key.container == inv.container && ListingShows(inv.name, key.name)));
    case Invalidation::Kind::kPrefix:
      return same_container && key.name.starts_with(inv.name);
    case Invalidation::Kind::kContainer:
      return same_container;
    case Invalidation::Kind::kTenant:
      return tenant == inv.tenant;
    case Invalidation::Kind::kTag:
      return std::find(tags.begin(), tags.end(), inv.tag) != tags.end();
    case Invalidation::Kind::kAll:
      return true;
  }
  return false;
}
}  // namespace

bool Covers(const Invalidation& inv, const KeyParts& key, std::string_view tenant,
            std::span<const std::string> tags) {
  return CoversKey(inv, key, tenant, tags) || InvalidatesDependencies(inv, tags);
}

}  // namespace cache
