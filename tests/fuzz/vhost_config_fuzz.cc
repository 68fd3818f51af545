// Tenant files are written by people: any bytes must give a table or errors, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vhost-config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto table =
      vhost::LoadTenantText(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  if (table.ok()) {
    for (const vhost::Tenant& tenant : (*table)->tenants) {
      for (const std::string& domain : tenant.domains) {
        std::string host = domain;
        if (host.starts_with("*")) host[0] = 'x';  // a name the wildcard covers
        if ((*table)->FindByHost(host) != &tenant) std::abort();
      }
    }
  } else if (table.status().message().empty()) {
    std::abort();
  }
  return 0;
}
