// Swift's large objects as the edge sees them: which objects a manifest's answer is assembled
// from, as dependencies of its cache entry (cache/dependencies.h), so that a write of a segment
// purges the assembled object. Pure functions; SharedFetch does the fetching.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace edge {

// A static large object's manifest is read up to this size and this many segments (Swift's
// default max_manifest_segments); a larger one is relayed, not stored.
inline constexpr size_t kMaxSloManifestBytes = 1 << 20;
inline constexpr size_t kMaxSloSegments = 1000;

// The DLO dependency of an answer with X-Object-Manifest ("container/prefix", URL-encoded), in
// the manifest's (cache) account; nullopt without the header, an error if it is malformed.
absl::StatusOr<std::optional<std::string>> DloDependency(
    std::string_view account, std::span<const std::pair<std::string_view, std::string_view>> headers);
// Whether the answer is a static large object's (X-Static-Large-Object: true): its segments are
// learnt from SloManifestUrl's answer.
bool IsSlo(std::span<const std::pair<std::string_view, std::string_view>> headers);
// The URL of the manifest itself (multipart-manifest=get) for an object's URL.
std::string SloManifestUrl(std::string_view object_url);
// The dependencies listed by a manifest (a JSON list of {"name": "/container/object", ...}):
// one per segment. A segment that is itself an SLO counts as the object it is (its manifest);
// its own segments are not followed (first level only). Inline data segments name nothing.
absl::StatusOr<std::vector<std::string>> SloDependencies(std::string_view account, std::string_view manifest);

}  // namespace edge
