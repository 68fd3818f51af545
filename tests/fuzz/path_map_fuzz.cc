// Whatever a client puts in the path, what reaches the origin has no ".." segment, no NUL or
// control character and no encoded slash that could climb out of the tenant's prefix.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vhost-config/path_mapping.h"

namespace {
vhost::Tenant MakeTenant(bool listings) {
  vhost::Tenant tenant;
  tenant.origin.url = "http://origin";
  tenant.origin.account = "AUTH_a";
  tenant.origin.container = "container";
  tenant.origin.prefix = "site/";
  tenant.cache.listings = listings;
  return tenant;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const vhost::Tenant with_listings = MakeTenant(true), without_listings = MakeTenant(false);
  const vhost::Tenant& tenant = size % 2 == 0 ? with_listings : without_listings;
  std::string target(size + 1, '/');
  std::copy(data, data + size, target.begin() + 1);
  auto mapped = vhost::MapRequest(tenant, target);
  // The edge maps every request into the same target, reusing its strings: nothing carries over.
  static vhost::OriginTarget reused;
  const absl::Status again = vhost::MapRequest(tenant, target, {}, &reused);
  if (again.ok() != mapped.ok() || (mapped.ok() && !(reused == *mapped))) std::abort();
  if (!mapped.ok()) return 0;
  const std::string& name = mapped->name;
  if (!name.starts_with("site/")) std::abort();
  if (name.find("/../") != std::string::npos || name.ends_with("/..") || name.find("//") != std::string::npos)
    std::abort();
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) std::abort();
  }
  const std::string_view path = std::string_view(mapped->url).substr(0, mapped->url.find('?'));
  if (path.find("/../") != std::string_view::npos || path.ends_with("/..") ||
      path.find("%2F") != std::string_view::npos) {
    std::abort();
  }
  return 0;
}
