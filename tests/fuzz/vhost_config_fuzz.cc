// Tenant files are written by people: any bytes must give a table or errors, never a crash; and
// every domain of a table finds its tenant, however a client spells the host (host normalisation).
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
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
        // As clients name it: any case, a port, a trailing dot.
        std::string spelled = host;
        for (char& c : spelled) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if ((*table)->FindByHost(spelled + ".:8080") != &tenant) std::abort();
      }
    }
  } else if (table.status().message().empty()) {
    std::abort();
  }
  return 0;
}
