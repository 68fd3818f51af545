// TLS for the server: the certificate a handshake is answered with, and where it comes from.
// (Stand-in from the tls-certs branch with the declarations of TLS.md only; the tls-server
// branch's version of this file replaces it.)
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge::http {

// A certificate chain and its key, ready for a handshake. Immutable once made; shared.
struct Certificate {
  // Owned references (freed in the destructor): leaf, key, and the intermediates in order.
  X509* leaf = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509) * chain = nullptr;  // may be null: no intermediates
  absl::Time not_after;              // the leaf's expiry, for metrics
  ~Certificate();
};

// Where the server gets the certificate for a handshake: files today, ACME later. Thread-safe:
// Find runs on every worker's thread for each handshake, while Replace-style reloads may run on
// another thread. Must not block (no file I/O in Find).
class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  // The certificate for the SNI name `server_name` (ASCII lowercase, no trailing dot), or for a
  // client that sent no SNI when `server_name` is empty. nullptr: the handshake is refused with
  // the alert unrecognized_name.
  virtual std::shared_ptr<const Certificate> Find(std::string_view server_name) const = 0;
};

// Loads a PEM chain file (leaf first) and a PEM key file.
absl::StatusOr<std::shared_ptr<const Certificate>> LoadCertificate(const std::string& chain_file,
                                                                   const std::string& key_file);

}  // namespace edge::http
