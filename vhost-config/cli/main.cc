// vhost-config: check a tenant file, show what a URL resolves to, print the key reference, hash a
// purge key.
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "vhost-config/cache_policy.h"
#include "vhost-config/certificate_check.h"
#include "vhost-config/duration.h"
#include "vhost-config/loader.h"
#include "vhost-config/path_mapping.h"
#include "vhost-config/purge_key.h"
#include "vhost-config/schema.h"

namespace {

constexpr std::string_view kUsage = R"(usage: vhost-config COMMAND ...

  check FILE          validate a tenant file and the certificates it names; prints every error as
                      file:line: field: message (a certificate expiring within 14 days: a warning)
  resolve FILE URL    show the tenant, the origin URL and the cache policy for a URL
  schema              print every key of the tenant file (Markdown)
  hash-key KEY        print the SHA-256 to put in a tenant's purge.key_hashes
  --help, --version

exit status: 0 ok, 1 invalid file or URL, 2 usage error
)";

int Check(const std::string& path) {
  auto table = vhost::LoadTenantFile(path);
  if (!table.ok()) {
    std::cerr << table.status().message() << "\n";
    return 1;
  }
  // Certificate files are configuration too: what the edge would refuse to load is an error here.
  const vhost::CertificateReport certificates = vhost::CheckCertificates(**table, absl::Now());
  for (const std::string& line : certificates.errors) std::cerr << line << "\n";
  for (const std::string& line : certificates.warnings) std::cerr << line << "\n";
  if (!certificates.errors.empty()) return 1;
  size_t count = 0;
  for (const vhost::Tenant& tenant : (*table)->tenants) count += tenant.certificates.size();
  std::cout << path << ": OK, " << (*table)->tenants.size() << " tenants"
            << (count > 0 ? absl::StrCat(", ", count, " certificates") : "") << "\n";
  return 0;
}

int Resolve(const std::string& path, std::string_view url) {
  auto table = vhost::LoadTenantFile(path);
  if (!table.ok()) {
    std::cerr << table.status().message() << "\n";
    return 1;
  }
  std::string_view rest = url;
  if (rest.starts_with("http://"))
    rest.remove_prefix(7);
  else if (rest.starts_with("https://"))
    rest.remove_prefix(8);
  else {
    std::cerr << "resolve: \"" << url << "\" is not an http:// or https:// URL\n";
    return 1;
  }
  const size_t slash = rest.find('/');
  const std::string_view host = rest.substr(0, slash);
  const std::string_view target =
      slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  const vhost::Tenant* tenant = (*table)->FindByHost(host);
  if (tenant == nullptr) {
    std::cerr << "resolve: no tenant serves host \"" << host << "\" (the edge answers 421)\n";
    return 1;
  }
  auto mapped = vhost::MapRequest(*tenant, target);
  if (!mapped.ok()) {
    std::cerr << "resolve: tenant " << tenant->name << " refuses the path: " << mapped.status().message()
              << " (the edge answers 400)\n";
    return 1;
  }
  const vhost::CachePolicy& c = tenant->cache;
  std::cout << "tenant:      " << tenant->name << "\n";
  std::cout << "origin:      " << (mapped->listing ? "GET (listing) " : "GET ") << mapped->url << "\n";
  if (tenant->origin.kind == vhost::OriginKind::kSwift) {
    std::cout << "object:      account " << mapped->account << ", container " << mapped->container << ", "
              << (mapped->listing ? "listing prefix \"" : "name \"") << mapped->name << "\"\n";
  }
  const vhost::PathRule* rule = vhost::MatchRule(c, mapped->path);
  std::cout << "cache:       ";
  if (rule && rule->bypass) {
    std::cout << "bypass (rule " << rule->glob << ")\n";
  } else if (mapped->listing) {
    std::cout << "listing TTL " << vhost::DurationText(c.listing_ttl) << "\n";
  } else {
    std::cout << (rule ? "rule " + rule->glob + " TTL " + vhost::DurationText(rule->ttl)
                       : "default TTL " + vhost::DurationText(c.default_ttl))
              << (c.honour_origin ? ", origin headers honoured" : ", origin headers ignored")
              << ", clamped to [" << vhost::DurationText(c.min_ttl) << ", " << vhost::DurationText(c.max_ttl)
              << "]\n";
  }
  std::cout << "404s:        " << vhost::DurationText(c.negative_ttl) << "\n";
  std::cout << "stale:       while revalidating " << vhost::DurationText(c.stale_while_revalidate)
            << ", on origin error " << vhost::DurationText(c.stale_if_error) << "\n";
  return 0;
}

int HashKey(std::string_view key) {
  std::cout << vhost::HashPurgeKey(key) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view command = argc > 1 ? argv[1] : "";
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "--version") {
    std::cout << "vhost-config " << EDGE_VERSION << "\n";
    return 0;
  }
  if (command == "check" && argc == 3) return Check(argv[2]);
  if (command == "resolve" && argc == 4) return Resolve(argv[2], argv[3]);
  if (command == "schema" && argc == 2) {
    std::cout << vhost::SchemaMarkdown();
    return 0;
  }
  if (command == "hash-key" && argc == 3) return HashKey(argv[2]);
  std::cerr << kUsage;
  return 2;
}
