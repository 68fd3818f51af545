#include "edge/http/tls.h"

#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace edge::http {

namespace {

// OpenSSL's error queue as text, emptied: what a failed call left.
std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long error = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(error, text, sizeof(text));
    absl::StrAppend(&out, out.empty() ? "" : "; ", text);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// Whether the kernel has the `tls` upper-layer protocol: without it, OpenSSL's attempt to turn on
// kernel TLS costs two failing setsockopt calls per connection. An unconnected socket answers
// ENOENT without the module, ENOTCONN with it.
bool KernelHasTls() {
  static const bool has = [] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;  // cannot tell: let OpenSSL try
    const bool missing = ::setsockopt(fd, SOL_TCP, TCP_ULP, "tls", 3) != 0 && errno == ENOENT;
    ::close(fd);
    return !missing;
  }();
  return has;
}

int FailureIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};

absl::StatusOr<TicketKeys::Key> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TicketKeys::Key key;
  if (bytes.size() != key.name.size() + key.hmac.size() + key.aes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a ticket key file holds 80 bytes (openssl rand 80), not ", bytes.size()));
  }
  // nginx's layout, so one file can serve both during a migration: name, HMAC key, AES key.
  const auto at = bytes.begin();
  std::copy_n(at, key.name.size(), key.name.begin());
  std::copy_n(at + 16, key.hmac.size(), key.hmac.begin());
  std::copy_n(at + 48, key.aes.size(), key.aes.begin());
  return key;
}

TicketKeys::Key RandomKey() {
  TicketKeys::Key key;
  RAND_bytes(key.name.data(), static_cast<int>(key.name.size()));
  RAND_bytes(key.hmac.data(), static_cast<int>(key.hmac.size()));
  RAND_bytes(key.aes.data(), static_cast<int>(key.aes.size()));
  return key;
}

int MinVersion(std::string_view text) {
  if (text == "1.2") return TLS1_2_VERSION;
  if (text == "1.3") return TLS1_3_VERSION;
  return 0;
}

}  // namespace

Certificate::~Certificate() {
  X509_free(leaf);
  EVP_PKEY_free(key);
  sk_X509_pop_free(chain, X509_free);
}

absl::StatusOr<std::shared_ptr<const Certificate>> LoadCertificate(const std::string& chain_file,
                                                                   const std::string& key_file) {
  auto certificate = std::make_shared<Certificate>();
  {
    std::unique_ptr<FILE, FileCloser> file(std::fopen(chain_file.c_str(), "r"));
    if (file == nullptr) return absl::NotFoundError(absl::StrCat(chain_file, ": cannot be read"));
    certificate->leaf = PEM_read_X509(file.get(), nullptr, nullptr, nullptr);
    if (certificate->leaf == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(chain_file, ": no PEM certificate"));
    }
    while (X509* next = PEM_read_X509(file.get(), nullptr, nullptr, nullptr)) {
      if (certificate->chain == nullptr) certificate->chain = sk_X509_new_null();
      sk_X509_push(certificate->chain, next);
    }
    ERR_clear_error();  // the end of the file reads as an error
  }
  {
    std::unique_ptr<FILE, FileCloser> file(std::fopen(key_file.c_str(), "r"));
    if (file == nullptr) return absl::NotFoundError(absl::StrCat(key_file, ": cannot be read"));
    certificate->key = PEM_read_PrivateKey(file.get(), nullptr, nullptr, nullptr);
    if (certificate->key == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(key_file, ": no PEM private key"));
    }
  }
  if (X509_check_private_key(certificate->leaf, certificate->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_file, ": the key does not match the certificate of ", chain_file));
  }
  tm expiry{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate->leaf), &expiry) == 1) {
    certificate->not_after = absl::FromTimeT(timegm(&expiry));
  }
  return std::shared_ptr<const Certificate>(std::move(certificate));
}

// ---- options -------------------------------------------------------------------------------------

absl::Status CheckTlsOptions(const TlsOptions& options) {
  if (MinVersion(options.min_version) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_version: \"", options.min_version, "\" is not \"1.2\" or \"1.3\""));
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
  if (SSL_CTX_set_cipher_list(ctx.get(), options.ciphers.c_str()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("ciphers: \"", options.ciphers, "\" names no cipher OpenSSL has"));
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), options.ciphersuites.c_str()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("ciphersuites: \"", options.ciphersuites, "\" is not a TLS 1.3 suite list"));
  }
  if (!options.ticket_key_file.empty()) {
    if (absl::StatusOr<TicketKeys::Key> key = ReadKeyFile(options.ticket_key_file); !key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ticket_key_file: ", key.status().message()));
    }
  }
  if (options.ticket_rotation < absl::Seconds(1)) {
    return absl::InvalidArgumentError("ticket_rotation: must be at least 1s");
  }
  return absl::OkStatus();
}

// ---- ticket keys ---------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TicketKeys>> TicketKeys::Make(const TlsOptions& options) {
  std::unique_ptr<TicketKeys> keys(new TicketKeys(options));
  absl::MutexLock lock(&keys->mu_);
  keys->made_ = absl::Now();
  if (keys->file_.empty()) {
    keys->current_ = RandomKey();
    return keys;
  }
  absl::StatusOr<Key> key = ReadKeyFile(keys->file_);
  if (!key.ok()) return key.status();
  keys->current_ = *key;
  return keys;
}

absl::Status TicketKeys::Reload() {
  if (file_.empty()) return absl::OkStatus();
  absl::StatusOr<Key> key = ReadKeyFile(file_);
  if (!key.ok()) return key.status();
  absl::MutexLock lock(&mu_);
  if (key->name == current_.name && key->hmac == current_.hmac && key->aes == current_.aes) {
    return absl::OkStatus();
  }
  previous_ = current_;
  has_previous_ = true;
  current_ = *key;
  return absl::OkStatus();
}

void TicketKeys::Rotate() {
  absl::MutexLock lock(&mu_);
  previous_ = current_;
  has_previous_ = true;
  current_ = RandomKey();
  made_ = absl::Now();
}

TicketKeys::Key TicketKeys::Current(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (file_.empty() && now - made_ >= rotation_) {
    previous_ = current_;
    has_previous_ = true;
    current_ = RandomKey();
    made_ = now;
  }
  return current_;
}

bool TicketKeys::Find(const unsigned char* name, Key* key, bool* current) const {
  absl::MutexLock lock(&mu_);
  if (std::equal(current_.name.begin(), current_.name.end(), name)) {
    *key = current_;
    *current = true;
    return true;
  }
  if (has_previous_ && std::equal(previous_.name.begin(), previous_.name.end(), name)) {
    *key = previous_;
    *current = false;
    return true;
  }
  return false;
}

// ---- failures ------------------------------------------------------------------------------------

std::string_view HandshakeFailureName(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::kNoSharedCipher:
      return "no_shared_cipher";
    case HandshakeFailure::kUnrecognizedName:
      return "unrecognized_name";
    case HandshakeFailure::kProtocolVersion:
      return "protocol_version";
    case HandshakeFailure::kTimeout:
      return "timeout";
    case HandshakeFailure::kClosed:
      return "closed";
    case HandshakeFailure::kPlainHttp:
      return "plain_http";
    case HandshakeFailure::kOther:
      break;
  }
  return "other";
}

HandshakeFailure ClassifyHandshakeError(unsigned long error) {
  if (error == 0) return HandshakeFailure::kClosed;
  if (ERR_GET_LIB(error) != ERR_LIB_SSL) return HandshakeFailure::kOther;
  switch (ERR_GET_REASON(error)) {
    case SSL_R_NO_SHARED_CIPHER:
      return HandshakeFailure::kNoSharedCipher;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_UNKNOWN_PROTOCOL:
      return HandshakeFailure::kProtocolVersion;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
      return HandshakeFailure::kPlainHttp;
    default:
      return HandshakeFailure::kOther;
  }
}

// ---- context -------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Make(const TlsOptions& options,
                                                             const CertificateSource* certificates,
                                                             TicketKeys* keys) {
  if (absl::Status status = CheckTlsOptions(options); !status.ok()) return status;
  std::unique_ptr<TlsContext> context(new TlsContext());
  context->certificates_ = certificates;
  context->keys_ = keys;
  SSL_CTX* ctx = context->ctx_ = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslErrors());
  FailureIndex();  // made before any handshake thread needs it
  SSL_CTX_set_app_data(ctx, context.get());
  SSL_CTX_set_min_proto_version(ctx, MinVersion(options.min_version));
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str());
  SSL_CTX_set_ciphersuites(ctx, options.ciphersuites.c_str());
  // The server's order of preference for 1.2 (1.3 clients choose among strong suites anyway);
  // no renegotiation (a client-triggered CPU cost); kernel TLS where the kernel has it, which
  // SSL_sendfile needs (OpenSSL also falls back where the cipher does not allow it).
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               (KernelHasTls() ? SSL_OP_ENABLE_KTLS : 0));
  // Tickets only: a server-side session cache would be per process, and a resumption must work on
  // any worker and any edge that shares the key file.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // A ticket outlives neither the key that encrypted it nor the one before.
  SSL_CTX_set_timeout(ctx, static_cast<long>(absl::ToInt64Seconds(options.ticket_rotation)));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &OnTicketKey);
  SSL_CTX_set_tlsext_servername_callback(ctx, &OnServerName);
  SSL_CTX_set_alpn_select_cb(ctx, &OnAlpn, nullptr);
  // libevent's bufferevent writes from an evbuffer whose chunks move between retries. No
  // SSL_MODE_ENABLE_PARTIAL_WRITE: libevent goes on to the next chunk after a partial write of
  // one larger than a record, which skipped bytes once it wrote more than 16 KiB per event.
  // No automatic chain: the files give the whole chain (checked by `vhost-config check`), and
  // OpenSSL would otherwise try to build one from an empty store on every handshake.
  SSL_CTX_set_mode(ctx,
                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

bool TlsContext::RecordedFailure(const SSL* ssl, HandshakeFailure* failure) {
  const auto value = reinterpret_cast<intptr_t>(SSL_get_ex_data(ssl, FailureIndex()));
  if (value == 0) return false;
  *failure = static_cast<HandshakeFailure>(value - 1);
  return true;
}

std::string_view ServerName(const SSL* ssl, std::array<char, 256>& buffer) {
  const char* sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sent == nullptr) return {};
  size_t length = 0;
  for (; sent[length] != '\0'; ++length) {
    if (length == buffer.size()) return {};  // longer than any DNS name: treated as none
    buffer[length] = absl::ascii_tolower(static_cast<unsigned char>(sent[length]));
  }
  while (length > 0 && buffer[length - 1] == '.') --length;
  return std::string_view(buffer.data(), length);
}

// OpenSSL calls this for every ClientHello, with or without SNI: the certificate is chosen here,
// before the cipher (which depends on the key type).
int TlsContext::OnServerName(SSL* ssl, int* alert, void*) {
  const auto* context = static_cast<const TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  std::array<char, 256> buffer;
  std::shared_ptr<const Certificate> certificate = context->certificates_->Find(ServerName(ssl, buffer));
  if (certificate == nullptr) {
    SSL_set_ex_data(ssl, FailureIndex(),
                    reinterpret_cast<void*>(static_cast<intptr_t>(HandshakeFailure::kUnrecognizedName) + 1));
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  // The SSL takes its own references: the source may drop the certificate during the handshake.
  if (SSL_use_cert_and_key(ssl, certificate->leaf, certificate->key, certificate->chain, 1) != 1) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::OnAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                       unsigned int in_length, void*) {
  // The wire format of kAlpnProtocols, made once.
  static const std::string offered = [] {
    std::string wire;
    for (std::string_view protocol : kAlpnProtocols) {
      wire.push_back(static_cast<char>(protocol.size()));
      wire.append(protocol);
    }
    return wire;
  }();
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_length, reinterpret_cast<const unsigned char*>(offered.data()),
                            static_cast<unsigned int>(offered.size()), in,
                            in_length) != OPENSSL_NPN_NEGOTIATED) {
    // No protocol in common: go on without ALPN, as a client that sent none (HTTP/1.1 follows).
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                            EVP_MAC_CTX* mac, int encrypt) {
  auto* context = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  TicketKeys::Key key;
  bool current = true;
  // Fetched once: EVP_aes_256_cbc() is looked up by name on every use in OpenSSL 3.
  static EVP_CIPHER* const kCipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (kCipher == nullptr) return -1;
  if (encrypt) {
    key = context->keys_->Current(absl::Now());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(kCipher)) != 1) return -1;
    std::copy(key.name.begin(), key.name.end(), name);
  } else if (!context->keys_->Find(name, &key, &current)) {
    return 0;  // unknown key: a full handshake, and a new ticket
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = encrypt ? EVP_EncryptInit_ex(cipher, kCipher, nullptr, key.aes.data(), iv)
                         : EVP_DecryptInit_ex(cipher, kCipher, nullptr, key.aes.data(), iv);
  if (ok != 1) return -1;
  return current ? 1 : 2;  // 2: decrypted with the previous key, so a new ticket is sent
}

}  // namespace edge::http
