#include "vhost-config/certificate_check.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vhost {

namespace {

struct FreeBio {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct FreeX509 {
  void operator()(X509* x) const { X509_free(x); }
};
struct FreeKey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct FreeNames {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using X509Ptr = std::unique_ptr<X509, FreeX509>;

std::unique_ptr<BIO, FreeBio> MemoryBio(std::string_view text) {
  return std::unique_ptr<BIO, FreeBio>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// OpenSSL's last error, as a short phrase; clears the queue.
std::string OpenSslError() {
  const unsigned long error = ERR_peek_last_error();
  const char* reason = error != 0 ? ERR_reason_error_string(error) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown error";
}

// The end of a PEM file is a failed read with "no start line": anything else is a broken block.
bool AtCleanEnd() {
  const unsigned long error = ERR_peek_last_error();
  const bool clean = ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (clean) ERR_clear_error();
  return clean;
}

std::optional<absl::Time> ToTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  return absl::FromTimeT(timegm(&tm));
}

std::string Day(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

// "certificate 2 (CN=Example Intermediate)", to say which one of a chain is meant.
std::string Describe(X509* cert, size_t index) {
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  return absl::StrCat(index == 0 ? "the leaf" : absl::StrCat("certificate ", index + 1), " (", subject, ")");
}

std::vector<std::string> DnsNames(X509* leaf) {
  std::vector<std::string> names;
  std::unique_ptr<GENERAL_NAMES, FreeNames> general(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (!general) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    names.push_back(
        absl::AsciiStrToLower(absl::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                                static_cast<size_t>(ASN1_STRING_length(dns)))));
  }
  return names;
}

std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = absl::StrCat("\"", path, "\" cannot be read: ", std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool CertificateNameCovers(std::string_view pattern, std::string_view domain) {
  const absl::string_view p(pattern.data(), pattern.size());
  const absl::string_view d(domain.data(), domain.size());
  if (absl::EqualsIgnoreCase(p, d)) return true;  // the same name, or the same wildcard
  if (!pattern.starts_with("*.") || domain.starts_with("*.")) return false;
  const size_t dot = d.find('.');
  // The wildcard stands for the first label, which must not be empty.
  return dot != absl::string_view::npos && dot > 0 && absl::EqualsIgnoreCase(d.substr(dot + 1), p.substr(2));
}

std::vector<CertificateFinding> CheckCertificatePem(std::string_view chain_pem, std::string_view key_pem,
                                                    std::span<const std::string> domains, absl::Time now) {
  std::vector<CertificateFinding> findings;
  auto error = [&](bool about_key, std::string message) {
    findings.push_back({about_key, false, std::move(message)});
  };
  ERR_clear_error();
  std::vector<X509Ptr> chain;
  {
    auto bio = MemoryBio(chain_pem);
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) chain.emplace_back(cert);
    if (!AtCleanEnd()) {
      error(false, absl::StrCat("certificate ", chain.size() + 1, " is not a valid PEM certificate (",
                                OpenSslError(), ")"));
      return findings;
    }
  }
  if (chain.empty()) {
    error(false, "holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
    return findings;
  }
  std::unique_ptr<EVP_PKEY, FreeKey> key;
  {
    auto bio = MemoryBio(key_pem);
    // No passphrase can be asked for: an encrypted key fails here, as it would at start.
    pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!key) error(true, absl::StrCat("is not an unencrypted PEM private key (", OpenSslError(), ")"));
  }
  X509* leaf = chain.front().get();
  if (key && X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    error(true, absl::StrCat("does not match ", Describe(leaf, 0)));
  }
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    X509* issuer = chain[i + 1].get();
    if (X509_check_issued(issuer, chain[i].get()) != X509_V_OK ||
        X509_verify(chain[i].get(), X509_get0_pubkey(issuer)) != 1) {
      ERR_clear_error();
      error(false,
            absl::StrCat(Describe(chain[i].get(), i), " is not issued by the next, ", Describe(issuer, i + 1),
                         ": the file must hold the leaf, then each issuer in order"));
    }
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    const std::optional<absl::Time> not_before = ToTime(X509_get0_notBefore(chain[i].get()));
    const std::optional<absl::Time> not_after = ToTime(X509_get0_notAfter(chain[i].get()));
    if (!not_before || !not_after) {
      error(false, absl::StrCat(Describe(chain[i].get(), i), " has an unreadable validity period"));
    } else if (*not_after < now) {
      error(false, absl::StrCat(Describe(chain[i].get(), i), " expired on ", Day(*not_after)));
    } else if (*not_before > now) {
      error(false, absl::StrCat(Describe(chain[i].get(), i), " is not valid before ", Day(*not_before)));
    } else if (*not_after - now < kCertificateExpiryWarning) {
      findings.push_back({false, true,
                          absl::StrCat(Describe(chain[i].get(), i), " expires on ", Day(*not_after), " (in ",
                                       absl::ToInt64Hours(*not_after - now) / 24, " days)")});
    }
  }
  const std::vector<std::string> names = DnsNames(leaf);
  for (const std::string& domain : domains) {
    bool covered = false;
    for (const std::string& name : names) covered |= CertificateNameCovers(name, domain);
    if (!covered) {
      error(false, absl::StrCat("does not cover \"", domain, "\" (its DNS names: ",
                                names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
  }
  return findings;
}

std::vector<CertificateFinding> CheckCertificateFiles(const std::string& chain_file,
                                                      const std::string& key_file,
                                                      std::span<const std::string> domains, absl::Time now) {
  std::string chain_error, key_error;
  const std::optional<std::string> chain = ReadFile(chain_file, &chain_error);
  const std::optional<std::string> key = ReadFile(key_file, &key_error);
  if (!chain || !key) {
    std::vector<CertificateFinding> findings;
    if (!chain) findings.push_back({false, false, chain_error});
    if (!key) findings.push_back({true, false, key_error});
    return findings;
  }
  return CheckCertificatePem(*chain, *key, domains, now);
}

void AddFindings(std::span<const CertificateFinding> findings, const NamedAt& certificate, const NamedAt& key,
                 CertificateReport* report) {
  for (const CertificateFinding& f : findings) {
    const NamedAt& at = f.about_key ? key : certificate;
    (f.warning ? report->warnings : report->errors)
        .push_back(absl::StrCat(std::string(at.file), ":", at.line, ": ", at.field, ": ",
                                f.warning ? "warning: " : "", f.message));
  }
}

CertificateReport CheckCertificates(const TenantTable& table, absl::Time now) {
  CertificateReport report;
  for (const Tenant& tenant : table.tenants) {
    for (const TlsCertificate& c : tenant.certificates) {
      AddFindings(CheckCertificateFiles(c.certificate, c.key, c.domains, now),
                  NamedAt{table.file, c.certificate_line, c.field + ".certificate"},
                  NamedAt{table.file, c.key_line, c.field + ".key"}, &report);
    }
  }
  return report;
}

}  // namespace vhost
