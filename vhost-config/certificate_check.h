// Checks certificate files before they are served: readable, PEM, the key matches the leaf, the
// chain in order (each certificate issued by the next), none expired (expiring soon is a
// warning), and the leaf's DNS names cover every domain it serves. `vhost-config check` and
// `edge --check` run it, and the edge before it loads certificates (at start and on SIGHUP).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "vhost-config/loader.h"

namespace vhost {

// A certificate this close to its expiry is a warning.
inline constexpr absl::Duration kCertificateExpiryWarning = absl::Hours(24 * 14);

// Whether the certificate DNS name `pattern` (from subjectAltName, any case, maybe "*.example.com")
// covers `domain` (lowercase; a tenant's domain, maybe itself a wildcard). A wildcard covers one
// label (RFC 6125 6.4.3): "*.example.com" covers "a.example.com", not "a.b.example.com" nor
// "example.com"; a wildcard domain needs the same wildcard.
bool CertificateNameCovers(std::string_view pattern, std::string_view domain);

struct CertificateFinding {
  bool about_key = false;  // the key file's problem, else the certificate file's
  bool warning = false;    // served all the same
  std::string message;
};

// What is wrong with a PEM chain (leaf first) and a PEM key for serving `domains` at `now`.
std::vector<CertificateFinding> CheckCertificatePem(std::string_view chain_pem, std::string_view key_pem,
                                                    std::span<const std::string> domains, absl::Time now);
// The same for files, which must be readable.
std::vector<CertificateFinding> CheckCertificateFiles(const std::string& chain_file,
                                                      const std::string& key_file,
                                                      std::span<const std::string> domains, absl::Time now);

struct CertificateReport {
  std::vector<std::string> errors;    // "file:line: tenant[0].tls[1].certificate: message"
  std::vector<std::string> warnings;  // the same form
};

// Every certificate the tenants name, reported at the tenant file's line that names it.
CertificateReport CheckCertificates(const TenantTable& table, absl::Time now);
// Where a settings file names a certificate or key file, for messages: "file:line: field".
struct NamedAt {
  std::string_view file;
  int line = 0;
  std::string field;
};
// Appends `findings` to `report`, each at where its file is named.
void AddFindings(std::span<const CertificateFinding> findings, const NamedAt& certificate, const NamedAt& key,
                 CertificateReport* report);

}  // namespace vhost
