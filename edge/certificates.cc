#include "edge/certificates.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace edge {

vhost::CertificateReport CheckEdgeCertificates(const vhost::TenantTable& tenants,
                                               const CertificateOptions& options, absl::Time now) {
  vhost::CertificateReport report = vhost::CheckCertificates(tenants, now);
  if (!options.default_certificate.empty()) {
    vhost::AddFindings(
        vhost::CheckCertificateFiles(options.default_certificate, options.default_key, {}, now),
        vhost::NamedAt{options.settings_file, options.certificate_line, "tls.default_certificate"},
        vhost::NamedAt{options.settings_file, options.key_line, "tls.default_key"}, &report);
  }
  return report;
}

absl::StatusOr<std::shared_ptr<const CertificateSet>> CertificateSet::Load(
    const vhost::TenantTable& tenants, const CertificateOptions& options) {
  auto set = std::make_shared<CertificateSet>();
  set->refuse_without_sni_ = options.refuse_without_sni;
  // One load per pair of files, however many entries name it.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const http::Certificate>> loaded;
  auto load = [&](const std::string& certificate, const std::string& key,
                  std::string_view tenant) -> absl::StatusOr<std::shared_ptr<const http::Certificate>> {
    auto& slot = loaded[{certificate, key}];
    if (slot) return slot;
    absl::StatusOr<std::shared_ptr<const http::Certificate>> made = http::LoadCertificate(certificate, key);
    if (!made.ok()) return made.status();
    slot = *made;
    set->in_use_.push_back(CertificateExpiry{std::string(tenant), certificate, slot->not_after});
    return slot;
  };
  for (const vhost::Tenant& tenant : tenants.tenants) {
    for (const vhost::TlsCertificate& c : tenant.certificates) {
      absl::StatusOr<std::shared_ptr<const http::Certificate>> certificate =
          load(c.certificate, c.key, tenant.name);
      if (!certificate.ok()) return certificate.status();
      for (const std::string& domain : c.domains) {
        // The loader gives each domain to one tenant and one certificate.
        if (domain.starts_with("*.")) {
          set->wildcard_.emplace(domain.substr(2), *certificate);
        } else {
          set->exact_.emplace(domain, *certificate);
        }
      }
    }
  }
  if (!options.default_certificate.empty()) {
    absl::StatusOr<std::shared_ptr<const http::Certificate>> certificate =
        load(options.default_certificate, options.default_key, "");
    if (!certificate.ok()) return certificate.status();
    set->default_ = *certificate;
  }
  return std::shared_ptr<const CertificateSet>(std::move(set));
}

std::shared_ptr<const http::Certificate> CertificateSet::Find(std::string_view server_name) const {
  if (server_name.empty()) return refuse_without_sni_ ? nullptr : default_;
  const absl::string_view name(server_name.data(), server_name.size());
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  // A certificate's wildcard stands for one label only (RFC 6125), so only one suffix is tried.
  if (const size_t dot = name.find('.'); dot != absl::string_view::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return default_;
}

absl::StatusOr<TenantsAndCertificates> LoadTenantsAndCertificates(const std::string& tenants_file,
                                                                  const CertificateOptions& options,
                                                                  absl::Time now) {
  absl::StatusOr<std::shared_ptr<const vhost::TenantTable>> tenants = vhost::LoadTenantFile(tenants_file);
  if (!tenants.ok()) return tenants.status();
  vhost::CertificateReport report = CheckEdgeCertificates(**tenants, options, now);
  if (!report.errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(report.errors, "\n"));
  absl::StatusOr<std::shared_ptr<const CertificateSet>> certificates =
      CertificateSet::Load(**tenants, options);
  if (!certificates.ok()) return certificates.status();  // a file changed since it was checked
  return TenantsAndCertificates{std::move(*tenants), std::move(*certificates), std::move(report.warnings)};
}

}  // namespace edge
