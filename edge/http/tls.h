// TLS for the HTTP server: certificates and where they come from (the seam with edge/certificates),
// one SSL_CTX per TLS listener (versions, ciphers, SNI, ALPN, session tickets), the ticket keys
// every worker shares, and the counters the handshakes feed.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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

// The same certificate for every name: the purge daemon's API, tests.
class SingleCertificate : public CertificateSource {
 public:
  explicit SingleCertificate(std::shared_ptr<const Certificate> certificate)
      : certificate_(std::move(certificate)) {}
  std::shared_ptr<const Certificate> Find(std::string_view) const override { return certificate_.load(); }
  // A renewed certificate for the handshakes from now on (SIGHUP); connections keep theirs.
  void Replace(std::shared_ptr<const Certificate> certificate) { certificate_.store(std::move(certificate)); }

 private:
  std::atomic<std::shared_ptr<const Certificate>> certificate_;
};

// Protocol settings, the same for every TLS listener of a server ([tls] in the edge's config).
struct TlsOptions {
  std::string min_version = "1.2";  // "1.2" or "1.3"; 1.3 is the most
  // TLS 1.2 cipher list (OpenSSL syntax), in the server's order of preference: forward secret
  // AEAD suites only, so no RC4, 3DES, CBC or static RSA.
  std::string ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  // TLS 1.3 suites (OpenSSL's SSL_CTX_set_ciphersuites syntax).
  std::string ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
  // Session ticket keys: from this file (80 bytes, as `openssl rand 80`), shared by edges so a
  // client resumes on any of them, reread by Server::ReloadTls; empty: random keys of this
  // process, replaced every `ticket_rotation`. Either way the previous key still decrypts.
  std::string ticket_key_file;
  absl::Duration ticket_rotation = absl::Hours(12);
};

// Checks the options without a listener: versions and cipher lists OpenSSL accepts, a readable
// key file. The message names the setting ("ciphers: ...").
absl::Status CheckTlsOptions(const TlsOptions& options);

// The session ticket keys of a server: the current key encrypts, it and the previous one decrypt.
// Thread-safe (every worker's handshakes use it).
class TicketKeys {
 public:
  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> hmac;
    std::array<unsigned char, 32> aes;
  };
  // From the options' key file (an error if it cannot be read), or random.
  static absl::StatusOr<std::unique_ptr<TicketKeys>> Make(const TlsOptions& options);
  // Rereads the key file; a new key becomes current and the one before stays to decrypt. An
  // unreadable or malformed file is an error and changes nothing. OK without a file.
  absl::Status Reload();
  // Random keys only: a new current key, the current one kept to decrypt.
  void Rotate();
  // The key to encrypt a new ticket with (rotating first when due).
  Key Current(absl::Time now);
  // The key named `name`, and whether it is the current one; false if neither key has the name.
  bool Find(const unsigned char* name, Key* key, bool* current) const;

 private:
  explicit TicketKeys(const TlsOptions& options)
      : file_(options.ticket_key_file), rotation_(options.ticket_rotation) {}
  const std::string file_;
  const absl::Duration rotation_;
  mutable absl::Mutex mu_;
  Key current_ ABSL_GUARDED_BY(mu_){};
  Key previous_ ABSL_GUARDED_BY(mu_){};
  bool has_previous_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time made_ ABSL_GUARDED_BY(mu_);
};

// The SNI name `ssl` received as CertificateSource::Find takes it (ASCII lowercase, no trailing
// dot), written into `buffer`; empty when none was sent (or one longer than a DNS name).
std::string_view ServerName(const SSL* ssl, std::array<char, 256>& buffer);

// Why a handshake failed, for the counters (edge_tls_handshake_failures_total{reason}).
enum class HandshakeFailure : uint8_t {
  kNoSharedCipher,
  kUnrecognizedName,
  kProtocolVersion,
  kTimeout,    // not finished within the header timeout
  kClosed,     // the client closed or reset the connection
  kPlainHttp,  // an HTTP request sent in plain to the TLS port: answered with a plain 400
  kOther,
};
inline constexpr size_t kHandshakeFailureKinds = 7;
std::string_view HandshakeFailureName(HandshakeFailure failure);  // "no_shared_cipher", ...
// The reason for an OpenSSL error code (ERR_get_error) that ended a handshake; 0 is kClosed.
HandshakeFailure ClassifyHandshakeError(unsigned long error);

// What a server's TLS connections did; relaxed counters, read by /metrics.
struct TlsStats {
  std::atomic<uint64_t> handshakes{0};
  std::array<std::atomic<uint64_t>, kHandshakeFailureKinds> failures{};
  std::atomic<uint64_t> resumed{0};            // handshakes that resumed a session
  std::atomic<uint64_t> ktls_body_bytes{0};    // file bodies sent by SSL_sendfile (kernel TLS)
  std::atomic<uint64_t> write_body_bytes{0};   // file bodies read in pieces and sent by SSL_write
  std::atomic<uint64_t> memory_body_bytes{0};  // bodies held in memory, sent by SSL_write
  void Fail(HandshakeFailure failure) {
    failures[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
  }
};

// ALPN protocols the server offers, in its order of preference (h2 goes first once served).
inline constexpr std::string_view kAlpnProtocols[] = {"http/1.1"};

// One TLS listener's SSL_CTX. The source and keys are borrowed and outlive the context.
class TlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsContext>> Make(const TlsOptions& options,
                                                          const CertificateSource* certificates,
                                                          TicketKeys* keys);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  // A server-side SSL for a new connection; the caller owns it.
  SSL* NewSsl() const { return SSL_new(ctx_); }
  // The failure a callback of this context recorded on `ssl` (unrecognized_name), if any.
  static bool RecordedFailure(const SSL* ssl, HandshakeFailure* failure);

 private:
  TlsContext() = default;
  static int OnServerName(SSL* ssl, int* alert, void* arg);
  static int OnAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                    unsigned int in_length, void* arg);
  static int OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                         EVP_MAC_CTX* mac, int encrypt);
  SSL_CTX* ctx_ = nullptr;
  const CertificateSource* certificates_ = nullptr;
  TicketKeys* keys_ = nullptr;
};

}  // namespace edge::http
