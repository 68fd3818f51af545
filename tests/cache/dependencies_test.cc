#include "cache/dependencies.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cache/invalidation.h"

namespace cache {

TEST_CASE("a dependency tag decodes to what it was made of, and no other tag decodes") {
  Dependency dep;  // views into the tag
  const std::string slo = SegmentTag("c1/AUTH_a", "segs", "big/0001");
  REQUIRE(DecodeDependency(slo, &dep));
  CHECK_FALSE(dep.prefix);
  CHECK(dep.account == "c1/AUTH_a");
  CHECK(dep.container == "segs");
  CHECK(dep.name == "big/0001");
  const std::string dlo = SegmentPrefixTag("AUTH_a", "segs", "");
  REQUIRE(DecodeDependency(dlo, &dep));
  CHECK(dep.prefix);
  CHECK(dep.name.empty());
  CHECK(SegmentTag("AUTH_a", "segs", "x").starts_with(DependenciesInContainer("AUTH_a", "segs")));
  CHECK(SegmentPrefixTag("AUTH_a", "segs", "x").starts_with(PrefixDependenciesInContainer("AUTH_a", "segs")));
  CHECK_FALSE(SegmentTag("AUTH_a", "segs", "x").starts_with(PrefixDependenciesInContainer("AUTH_a", "segs")));
  // A container named like the start of another is not in its range.
  CHECK_FALSE(SegmentTag("AUTH_a", "segs2", "x").starts_with(DependenciesInContainer("AUTH_a", "segs")));
  for (std::string_view other :
       {std::string_view(""), std::string_view("t\x1fproduct-7"), std::string_view("\x1d"),
        std::string_view("\x1d"
                         "a\0c",
                         4),
        std::string_view("\x1d"
                         "a\0c\0?x",
                         7)}) {
    CHECK_FALSE(DecodeDependency(other, &dep));
  }
}

TEST_CASE("what reaches a DLO: a write under its prefix, its listings, a purge that overlaps it") {
  const std::string tag = SegmentPrefixTag("AUTH_a", "segs", "movie/");
  Dependency dep;
  REQUIRE(DecodeDependency(tag, &dep));
  CHECK(InvalidatesDependency(Invalidation::Object("AUTH_a", "segs", "movie/0002", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Object("AUTH_a", "segs", "movies", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Object("AUTH_a", "other", "movie/0002", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Object("AUTH_b", "segs", "movie/0002", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Listings("AUTH_a", "segs", "movie/", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Listings("AUTH_a", "segs", "", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Listings("AUTH_a", "segs", "music/", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Prefix("AUTH_a", "segs", "mov", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Prefix("AUTH_a", "segs", "movie/00", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Prefix("AUTH_a", "segs", "music", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Container("AUTH_a", "segs", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Tenant("t", false), dep));
}

TEST_CASE("what reaches an SLO: a write of a segment it lists, a purge that includes one") {
  const std::string tag = SegmentTag("AUTH_a", "segs", "movie/0002");
  Dependency dep;
  REQUIRE(DecodeDependency(tag, &dep));
  CHECK(InvalidatesDependency(Invalidation::Object("AUTH_a", "segs", "movie/0002", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Object("AUTH_a", "segs", "movie/0003", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Listings("AUTH_a", "segs", "movie/", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Prefix("AUTH_a", "segs", "movie/", false), dep));
  CHECK_FALSE(InvalidatesDependency(Invalidation::Prefix("AUTH_a", "segs", "movie/0002/", false), dep));
  CHECK(InvalidatesDependency(Invalidation::Container("AUTH_a", "segs", false), dep));
}

TEST_CASE("the fence rule covers an entry through its dependencies") {
  const std::string key = Key{KeyKind::kObject, "AUTH_a", "films", "movie.mp4", ""}.Encode();
  KeyParts parts;
  REQUIRE(DecodeKey(key, &parts));
  const std::vector<std::string> tags = {"t\x1fproduct", SegmentTag("AUTH_a", "segs", "movie/0001")};
  const Invalidation segment = Invalidation::Object("AUTH_a", "segs", "movie/0001", false);
  CHECK(Covers(segment, parts, "t", tags));
  CHECK_FALSE(Covers(segment, parts, "t", {}));
  CHECK_FALSE(Covers(Invalidation::Object("AUTH_a", "segs", "movie/0002", false), parts, "t", tags));
}

}  // namespace cache
