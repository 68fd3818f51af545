// Stand-in from the tls-certs branch (see tls.h): the tls-server branch's version replaces it.
#include "edge/http/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace edge::http {

Certificate::~Certificate() {
  X509_free(leaf);
  EVP_PKEY_free(key);
  if (chain != nullptr) sk_X509_pop_free(chain, X509_free);
}

absl::StatusOr<std::shared_ptr<const Certificate>> LoadCertificate(const std::string& chain_file,
                                                                   const std::string& key_file) {
  auto certificate = std::make_shared<Certificate>();
  FILE* chain = std::fopen(chain_file.c_str(), "r");
  if (chain == nullptr) return absl::NotFoundError(absl::StrCat(chain_file, ": cannot be read"));
  certificate->leaf = PEM_read_X509(chain, nullptr, nullptr, nullptr);
  while (X509* next = PEM_read_X509(chain, nullptr, nullptr, nullptr)) {
    if (certificate->chain == nullptr) certificate->chain = sk_X509_new_null();
    sk_X509_push(certificate->chain, next);
  }
  std::fclose(chain);
  ERR_clear_error();
  if (certificate->leaf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(chain_file, ": holds no PEM certificate"));
  }
  FILE* key = std::fopen(key_file.c_str(), "r");
  if (key == nullptr) return absl::NotFoundError(absl::StrCat(key_file, ": cannot be read"));
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };  // never a prompt
  certificate->key = PEM_read_PrivateKey(key, nullptr, no_passphrase, nullptr);
  std::fclose(key);
  if (certificate->key == nullptr || X509_check_private_key(certificate->leaf, certificate->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key_file, ": not the key of ", chain_file));
  }
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate->leaf), &tm) == 1) {
    certificate->not_after = absl::FromTimeT(timegm(&tm));
  }
  return std::shared_ptr<const Certificate>(std::move(certificate));
}

}  // namespace edge::http
