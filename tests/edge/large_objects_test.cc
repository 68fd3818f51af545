#include "edge/large_objects.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "cache/dependencies.h"

namespace edge {

namespace {
using Headers = std::vector<std::pair<std::string_view, std::string_view>>;
}  // namespace

TEST_CASE("a DLO depends on its decoded container/prefix, in the manifest's account") {
  auto dlo = DloDependency("c1/AUTH_a", Headers{{"X-Object-Manifest", "segs%20v2/movie%2Fpart-"}});
  REQUIRE(dlo.ok());
  REQUIRE(dlo->has_value());
  CHECK(**dlo == cache::SegmentPrefixTag("c1/AUTH_a", "segs v2", "movie/part-"));
  auto whole = DloDependency("AUTH_a", Headers{{"x-object-manifest", "segs/"}});
  REQUIRE(whole.ok());
  CHECK(**whole == cache::SegmentPrefixTag("AUTH_a", "segs", ""));
  auto none = DloDependency("AUTH_a", Headers{{"Content-Type", "video/mp4"}});
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  for (std::string_view bad : {"segs", "/prefix", "segs%zz/p", "segs/%00"}) {
    CHECK_FALSE(DloDependency("AUTH_a", Headers{{"X-Object-Manifest", bad}}).ok());
  }
}

TEST_CASE("an SLO is said by its header, and its manifest is asked for with multipart-manifest=get") {
  CHECK(IsSlo(Headers{{"X-Static-Large-Object", "True"}}));
  CHECK(IsSlo(Headers{{"x-static-large-object", "true"}}));
  CHECK_FALSE(IsSlo(Headers{{"X-Static-Large-Object", "False"}}));
  CHECK_FALSE(IsSlo(Headers{}));
  CHECK(SloManifestUrl("http://s/v1/A/c/o") == "http://s/v1/A/c/o?multipart-manifest=get");
  CHECK(SloManifestUrl("http://s/v1/A/c/o?x=1") == "http://s/v1/A/c/o?x=1&multipart-manifest=get");
}

TEST_CASE("an SLO depends on the segments its manifest lists, first level only") {
  auto deps = SloDependencies("AUTH_a", R"([
      {"name": "/segs/movie/0001", "bytes": 1048576, "hash": "x"},
      {"data": "aGVsbG8="},
      {"name": "/other/nested.slo", "sub_slo": true, "bytes": 5}])");
  REQUIRE(deps.ok());
  CHECK(*deps == std::vector<std::string>{cache::SegmentTag("AUTH_a", "segs", "movie/0001"),
                                          cache::SegmentTag("AUTH_a", "other", "nested.slo")});
  CHECK(SloDependencies("AUTH_a", "[]")->empty());
  for (std::string_view bad : {"", "{}", "[1]", R"([{"bytes": 1}])", R"([{"name": 7}])",
                               R"([{"name": "/segs"}])", R"([{"name": "//x"}])", "[{\"name\": \"/a/b\""}) {
    CHECK_FALSE(SloDependencies("AUTH_a", bad).ok());
  }
  std::string many = "[";
  for (size_t i = 0; i <= kMaxSloSegments; ++i) many += std::string(i ? "," : "") + R"({"name": "/s/o"})";
  CHECK(SloDependencies("AUTH_a", many + "]").status().code() == absl::StatusCode::kResourceExhausted);
}

}  // namespace edge
