// What an entry's content is made of besides its own object: Swift assembles a large object's
// manifest from other objects (its segments), so an entry stored from a manifest must go when a
// segment changes. A dynamic large object (DLO, X-Object-Manifest) is every object under a name
// prefix; a static one (SLO) is the objects its manifest lists.
//
// A dependency is kept as a tag of the entry, so it lives where tags live: in the entry's header,
// in the zone's journal (a restart has it back), and in the index's tag map, ordered, so that the
// dependencies on one container are one range. The first character is one no tenant tag can
// begin with (purge::ScopedTag starts with the tenant's name, which holds no control characters).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace cache {

struct Invalidation;

struct Dependency {
  bool prefix = false;  // DLO: every object whose name starts with `name`; SLO: the object `name`
  std::string_view account, container, name;
};

// The tag of a dependency on one object (an SLO segment), or on every object under a prefix (a
// DLO's segments), in the manifest entry's account.
std::string SegmentTag(std::string_view account, std::string_view container, std::string_view object);
std::string SegmentPrefixTag(std::string_view account, std::string_view container, std::string_view prefix);
// The tags of every dependency on objects of the container, and of its prefix dependencies only.
std::string DependenciesInContainer(std::string_view account, std::string_view container);
std::string PrefixDependenciesInContainer(std::string_view account, std::string_view container);

bool IsDependencyTag(std::string_view tag);
// The dependency a tag names (views into it); false for any other tag.
bool DecodeDependency(std::string_view tag, Dependency* out);

// Whether `inv`, applied for a write or a purge of the objects it names, reaches an entry that
// depends on `dep`: an object write of a segment (or of a name under a DLO's prefix), a listings
// invalidation of a directory a DLO's prefix lists (a new segment, and the repeat that follows
// Swift's asynchronous listing update), a prefix or a container purge that includes a segment.
bool InvalidatesDependency(const Invalidation& inv, const Dependency& dep);
// The same for any of an entry's tags.
bool InvalidatesDependencies(const Invalidation& inv, std::span<const std::string> tags);

}  // namespace cache
