// Whatever a client puts in the path, what reaches the origin has no ".." segment, no NUL or
// control character and no encoded slash that could climb out of the tenant's prefix, its
// container, its account or its site. Every input is mapped for every kind of tenant: a Swift
// container (with and without listings), containers from the path, the Swift API (any account,
// and one account only) and an http site.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "vhost-config/path_mapping.h"

namespace {

std::vector<vhost::Tenant> Tenants() {
  std::vector<vhost::Tenant> tenants(6);
  for (vhost::Tenant& tenant : tenants) tenant.origin.url = "http://origin";
  vhost::Tenant& listings = tenants[0];
  listings.name = "listings";
  listings.origin.account = "AUTH_a";
  listings.origin.container = "container";
  listings.origin.prefix = "site/";
  listings.cache.listings = true;
  vhost::Tenant& plain = tenants[1];
  plain = listings;
  plain.name = "plain";
  plain.cache.listings = false;
  vhost::Tenant& from_path = tenants[2];
  from_path.name = "files";
  from_path.origin.account = "AUTH_a";
  from_path.origin.container_from_path = true;
  from_path.cache.listings = true;
  vhost::Tenant& api = tenants[3];
  api.name = "api";
  api.origin.kind = vhost::OriginKind::kSwiftApi;
  api.origin.cluster = "east";
  vhost::Tenant& api_one = tenants[4];
  api_one.name = "api-one";
  api_one.origin.kind = vhost::OriginKind::kSwiftApi;
  api_one.origin.account = "AUTH_one";
  vhost::Tenant& site = tenants[5];
  site.name = "site";
  site.origin.kind = vhost::OriginKind::kHttp;
  site.origin.url = "http://site:81";
  return tenants;
}

bool ClimbsOut(std::string_view path) {
  return path == ".." || path.starts_with("../") || path.find("/../") != std::string_view::npos ||
         path.ends_with("/..");
}

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

void Check(const vhost::Tenant& tenant, const std::string& target) {
  auto mapped = vhost::MapRequest(tenant, target);
  // The edge maps every request into the same target, reusing its strings: nothing carries over.
  static vhost::OriginTarget reused;
  const absl::Status again = vhost::MapRequest(tenant, target, {}, &reused);
  if (again.ok() != mapped.ok() || (mapped.ok() && !(reused == *mapped))) std::abort();
  if (!mapped.ok()) {
    if (mapped.status().message().empty()) std::abort();
    return;
  }
  const vhost::Origin& origin = tenant.origin;
  if (!mapped->url.starts_with(origin.url + "/")) std::abort();
  const std::string_view url_path = std::string_view(mapped->url).substr(0, mapped->url.find('?'));
  if (ClimbsOut(url_path) || url_path.find("%2F") != std::string_view::npos) std::abort();
  for (const std::string* part : {&mapped->account, &mapped->container, &mapped->name}) {
    if (HasControl(*part)) std::abort();
  }
  // A listing's name is a prefix to match (Swift's ?prefix=, sent encoded in the query), any
  // string; an object's is a path.
  if (!mapped->listing && (ClimbsOut(mapped->name) || mapped->name.find("//") != std::string::npos))
    std::abort();
  if (ClimbsOut(mapped->account) || ClimbsOut(mapped->container)) std::abort();
  if (ClimbsOut(mapped->path) || !mapped->path.starts_with("/")) std::abort();
  if (mapped->container.find('/') != std::string::npos || mapped->container == "." ||
      mapped->container == "..") {
    std::abort();
  }
  switch (origin.kind) {
    case vhost::OriginKind::kSwift:
      if (mapped->account != origin.account || mapped->pass) std::abort();
      if (origin.container_from_path) {
        if (mapped->container.empty() && !mapped->listing) std::abort();
      } else if (mapped->container != origin.container || !mapped->name.starts_with(origin.prefix)) {
        std::abort();
      }
      break;
    case vhost::OriginKind::kSwiftApi:
      if (mapped->pass) break;  // auth and info: relayed, never cached
      if (!mapped->url.starts_with(origin.url + "/v1/")) std::abort();
      if (mapped->account.empty() || mapped->account.find('/') != std::string::npos) std::abort();
      if (!origin.account.empty() && mapped->account != origin.account) std::abort();
      break;
    case vhost::OriginKind::kHttp:
      if (mapped->account != vhost::kHttpAccount || mapped->container != tenant.name || mapped->pass)
        std::abort();
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<vhost::Tenant> tenants = Tenants();
  std::string target(size + 1, '/');
  std::copy(data, data + size, target.begin() + 1);
  for (const vhost::Tenant& tenant : tenants) Check(tenant, target);
  return 0;
}
