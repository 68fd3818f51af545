#include "edge/large_objects.h"

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "cache/dependencies.h"
#include "edge/http/request_parser.h"
#include "vhost-config/cache_control.h"
#include "vhost-config/path_mapping.h"

namespace edge {

namespace {

// "container/name" (a leading '/' dropped) split at its first '/'; false without a container.
bool SplitPath(std::string_view path, std::string_view* container, std::string_view* name) {
  if (path.starts_with('/')) path.remove_prefix(1);
  const size_t slash = path.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  *container = path.substr(0, slash);
  *name = path.substr(slash + 1);
  return true;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> DloDependency(
    std::string_view account, std::span<const std::pair<std::string_view, std::string_view>> headers) {
  const std::string manifest = vhost::CombinedField(headers, "x-object-manifest");
  if (manifest.empty()) return std::nullopt;
  absl::StatusOr<std::string> decoded = vhost::PercentDecode(manifest, /*plus_is_space=*/false);
  std::string_view container, prefix;
  if (!decoded.ok() || !SplitPath(*decoded, &container, &prefix)) {
    return absl::InvalidArgumentError("X-Object-Manifest is not container/prefix");
  }
  return cache::SegmentPrefixTag(account, container, prefix);
}

bool IsSlo(std::span<const std::pair<std::string_view, std::string_view>> headers) {
  return http::EqualsIgnoreCase(vhost::CombinedField(headers, "x-static-large-object"), "true");
}

std::string SloManifestUrl(std::string_view object_url) {
  std::string url(object_url);
  url += object_url.find('?') == std::string_view::npos ? '?' : '&';
  url += "multipart-manifest=get";
  return url;
}

absl::StatusOr<std::vector<std::string>> SloDependencies(std::string_view account,
                                                         std::string_view manifest) {
  const nlohmann::json list = nlohmann::json::parse(manifest, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return absl::InvalidArgumentError("an SLO manifest is a JSON list");
  if (list.size() > kMaxSloSegments) return absl::ResourceExhaustedError("too many segments to follow");
  std::vector<std::string> tags;
  for (const nlohmann::json& segment : list) {
    if (!segment.is_object()) return absl::InvalidArgumentError("an SLO segment is a JSON object");
    const auto name = segment.find("name");
    if (name == segment.end()) {
      if (segment.contains("data")) continue;  // inline data: part of the manifest itself
      return absl::InvalidArgumentError("an SLO segment without a name");
    }
    if (!name->is_string()) return absl::InvalidArgumentError("an SLO segment's name is a string");
    const std::string& path = name->get_ref<const std::string&>();
    std::string_view container, object;
    if (!SplitPath(path, &container, &object) || object.empty()) {
      return absl::InvalidArgumentError("an SLO segment's name is /container/object");
    }
    tags.push_back(cache::SegmentTag(account, container, object));
  }
  return tags;
}

}  // namespace edge
