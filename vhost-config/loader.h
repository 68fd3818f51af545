// Loads a tenant file (TOML) into an immutable TenantTable. Every problem is reported at once,
// each as "file:line: field: what is wrong", so one run of `vhost-config check` shows them all.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "vhost-config/host_index.h"
#include "vhost-config/tenant.h"

namespace vhost {

struct TenantTable {
  std::string file;  // the tenant file, as messages name it
  std::vector<Tenant> tenants;
  HostIndex hosts;

  // The tenant serving this Host header value, or nullptr: never another tenant's.
  const Tenant* FindByHost(std::string_view host) const {
    const int i = hosts.Find(host);
    return i < 0 ? nullptr : &tenants[static_cast<size_t>(i)];
  }
};

// InvalidArgument with one error per line when the file is not valid; NotFound if unreadable.
absl::StatusOr<std::shared_ptr<const TenantTable>> LoadTenantFile(const std::string& path);
// The same for text already in memory; `file_name` is used in the messages.
absl::StatusOr<std::shared_ptr<const TenantTable>> LoadTenantText(std::string_view text,
                                                                  std::string_view file_name);

}  // namespace vhost
