#include "cache/dependencies.h"

#include "cache/invalidation.h"

namespace cache {

namespace {

constexpr char kMarker = '\x1d';
constexpr char kExact = '=';
constexpr char kPrefix = '*';

std::string InContainer(std::string_view account, std::string_view container) {
  std::string tag(1, kMarker);
  tag.append(account).push_back('\0');
  tag.append(container).push_back('\0');
  return tag;
}

std::string Make(std::string_view account, std::string_view container, char kind, std::string_view name) {
  std::string tag = InContainer(account, container);
  tag.push_back(kind);
  tag.append(name);
  return tag;
}

}  // namespace

std::string SegmentTag(std::string_view account, std::string_view container, std::string_view object) {
  return Make(account, container, kExact, object);
}

std::string SegmentPrefixTag(std::string_view account, std::string_view container, std::string_view prefix) {
  return Make(account, container, kPrefix, prefix);
}

std::string DependenciesInContainer(std::string_view account, std::string_view container) {
  return InContainer(account, container);
}

std::string PrefixDependenciesInContainer(std::string_view account, std::string_view container) {
  return Make(account, container, kPrefix, "");
}

bool IsDependencyTag(std::string_view tag) {
  return !tag.empty() && tag.front() == kMarker;
}

bool DecodeDependency(std::string_view tag, Dependency* out) {
  if (!IsDependencyTag(tag)) return false;
  tag.remove_prefix(1);
  const size_t account_end = tag.find('\0');
  if (account_end == std::string_view::npos) return false;
  const size_t container_end = tag.find('\0', account_end + 1);
  if (container_end == std::string_view::npos || container_end + 1 >= tag.size()) return false;
  const char kind = tag[container_end + 1];
  if (kind != kExact && kind != kPrefix) return false;
  out->prefix = kind == kPrefix;
  out->account = tag.substr(0, account_end);
  out->container = tag.substr(account_end + 1, container_end - account_end - 1);
  out->name = tag.substr(container_end + 2);
  return true;
}

bool InvalidatesDependency(const Invalidation& inv, const Dependency& dep) {
  if (dep.account != inv.account || dep.container != inv.container) return false;
  switch (inv.kind) {
    case Invalidation::Kind::kObject:
      return dep.prefix ? inv.name.starts_with(dep.name) : inv.name == dep.name;
    case Invalidation::Kind::kListings:
      // A DLO is its prefix's listing, read by Swift: what changes the listing changes the object.
      return dep.prefix && ListingShows(inv.name, dep.name);
    case Invalidation::Kind::kPrefix:
      return dep.name.starts_with(inv.name) || (dep.prefix && inv.name.starts_with(dep.name));
    case Invalidation::Kind::kContainer:
      return true;
    case Invalidation::Kind::kTenant:
    case Invalidation::Kind::kTag:
    case Invalidation::Kind::kAll:
      return false;  // they name entries, not objects: the entries themselves match them or not
  }
  return false;
}

bool InvalidatesDependencies(const Invalidation& inv, std::span<const std::string> tags) {
  for (const std::string& tag : tags) {
    Dependency dep;
    if (DecodeDependency(tag, &dep) && InvalidatesDependency(inv, dep)) return true;
  }
  return false;
}

}  // namespace cache
