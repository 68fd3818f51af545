// Where the edge's TLS certificates come from today: files, the ones the tenant file names
// ([[tenant.tls]]) and an edge-wide default ([tls] default_certificate). They are loaded whole
// into an immutable CertificateSet, which a reload (SIGHUP) replaces atomically only once every
// file is checked and loaded, so a bad certificate never replaces a good one. ACME can later be
// another CertificateSource (or feed this one) without the server knowing.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/http/tls.h"
#include "edge/metrics.h"
#include "vhost-config/certificate_check.h"
#include "vhost-config/loader.h"

namespace edge {

// The edge's own certificate settings ([tls] in its settings file).
struct CertificateOptions {
  std::string default_certificate;  // PEM chain; empty: no default
  std::string default_key;
  // A client that sends no SNI: refused (alert unrecognized_name) rather than given the default.
  bool refuse_without_sni = false;
  // Where the settings file names the default's files, for messages about them.
  std::string settings_file;
  int certificate_line = 0;
  int key_line = 0;
};

// Every certificate the edge would serve, checked as `vhost-config check` does: the tenants' at
// their tenant file lines, the default at its settings file lines (it may serve any name).
vhost::CertificateReport CheckEdgeCertificates(const vhost::TenantTable& tenants,
                                               const CertificateOptions& options, absl::Time now);

// The loaded certificates and the names they serve. Immutable; shared.
class CertificateSet {
 public:
  // Loads every certificate `tenants` name and the default: all of them, or an error.
  static absl::StatusOr<std::shared_ptr<const CertificateSet>> Load(const vhost::TenantTable& tenants,
                                                                    const CertificateOptions& options);
  // An exact name first, then the wildcard one label up ("a.shop.example" -> "*.shop.example"),
  // then the default; without SNI (empty), the default unless such clients are refused.
  std::shared_ptr<const http::Certificate> Find(std::string_view server_name) const;
  // One per certificate loaded, for /metrics.
  std::span<const CertificateExpiry> in_use() const { return in_use_; }

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<const http::Certificate>> exact_;
  absl::flat_hash_map<std::string, std::shared_ptr<const http::Certificate>> wildcard_;  // by the suffix
  std::shared_ptr<const http::Certificate> default_;
  bool refuse_without_sni_ = false;
  std::vector<CertificateExpiry> in_use_;
};

// The tenant file and every certificate the edge would serve, checked and loaded together, as the
// start and a reload need them: both, or an error listing every problem (a reload keeps what is in
// service). `warnings` are served all the same (a certificate expiring within 14 days).
struct TenantsAndCertificates {
  std::shared_ptr<const vhost::TenantTable> tenants;
  std::shared_ptr<const CertificateSet> certificates;
  std::vector<std::string> warnings;
};
absl::StatusOr<TenantsAndCertificates> LoadTenantsAndCertificates(const std::string& tenants_file,
                                                                  const CertificateOptions& options,
                                                                  absl::Time now);

// The CertificateSource of the TLS listeners: Find reads the current set without locking (an
// atomic shared_ptr), Replace swaps in a new one; handshakes under way keep the one they took.
class FileCertificates : public http::CertificateSource {
 public:
  explicit FileCertificates(std::shared_ptr<const CertificateSet> set) : set_(std::move(set)) {}
  std::shared_ptr<const http::Certificate> Find(std::string_view server_name) const override {
    return set_.load(std::memory_order_acquire)->Find(server_name);
  }
  void Replace(std::shared_ptr<const CertificateSet> set) {
    set_.store(std::move(set), std::memory_order_release);
  }
  std::shared_ptr<const CertificateSet> Current() const { return set_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const CertificateSet>> set_;
};

}  // namespace edge
