#include "vhost-config/certificate_check.h"

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/test_certificates.h"

namespace vhost {

namespace {

using testing_support::TestPki;

std::vector<std::string> Errors(const std::vector<CertificateFinding>& findings) {
  std::vector<std::string> out;
  for (const CertificateFinding& f : findings) {
    if (!f.warning) out.push_back(absl::StrCat(f.about_key ? "key: " : "certificate: ", f.message));
  }
  return out;
}

std::vector<std::string> Warnings(const std::vector<CertificateFinding>& findings) {
  std::vector<std::string> out;
  for (const CertificateFinding& f : findings) {
    if (f.warning) out.push_back(f.message);
  }
  return out;
}

bool Has(const std::vector<std::string>& lines, std::string_view part) {
  for (const std::string& line : lines) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

const TestPki& Pki() {
  // Made once for the binary, removed at its exit.
  static const std::unique_ptr<TestPki> pki = [] {
    auto made = std::make_unique<TestPki>();
    REQUIRE(made->ok());
    REQUIRE(made->Issue("shop", {"shop.example.com", "*.shop.example.com"}));
    REQUIRE(made->Issue("short", {"short.example.com"}, "int", 1));
    REQUIRE(made->Issue("soon", {"soon.example.com"}, "int", 10));
    REQUIRE(made->Issue("self", {"self.example.com"}, ""));
    REQUIRE(made->Issue("nosan", {}));
    REQUIRE(made->Run("cat int.pem shop.pem > reversed.pem"));
    REQUIRE(made->Run("cat shop.pem ca.pem > skipped.pem"));
    REQUIRE(made->Run("head -c 300 shop-chain.pem > torn.pem"));
    REQUIRE(made->Run("openssl pkey -in shop.key -aes128 -passout pass:secret -out encrypted.key"));
    return made;
  }();
  return *pki;
}

// After the certificates were made: they are not valid before.
absl::Time Now() {
  Pki();
  static const absl::Time now = absl::Now();
  return now;
}

}  // namespace

TEST_CASE("a certificate name covers a domain as RFC 6125 wildcards do") {
  CHECK(CertificateNameCovers("a.example.com", "a.example.com"));
  CHECK(CertificateNameCovers("A.Example.COM", "a.example.com"));
  CHECK(CertificateNameCovers("*.example.com", "a.example.com"));
  CHECK_FALSE(CertificateNameCovers("*.example.com", "a.b.example.com"));
  CHECK_FALSE(CertificateNameCovers("*.example.com", "example.com"));
  CHECK_FALSE(CertificateNameCovers("*.example.com", ".example.com"));
  CHECK_FALSE(CertificateNameCovers("a.example.com", "b.example.com"));
  CHECK_FALSE(CertificateNameCovers("example.com", "a.example.com"));
  // A tenant's wildcard domain needs the same wildcard, not one name under it nor a wider one.
  CHECK(CertificateNameCovers("*.example.com", "*.example.com"));
  CHECK_FALSE(CertificateNameCovers("a.example.com", "*.example.com"));
  CHECK_FALSE(CertificateNameCovers("*.com", "*.example.com"));
}

TEST_CASE("a good chain for its names has no findings") {
  const TestPki& pki = Pki();
  const std::vector<std::string> names = {"shop.example.com", "*.shop.example.com", "a.shop.example.com"};
  CHECK(CheckCertificateFiles(pki / "shop-chain.pem", pki / "shop.key", names, Now()).empty());
  // A leaf alone (no intermediates) is a chain in order too.
  CHECK(CheckCertificateFiles(pki / "shop.pem", pki / "shop.key", names, Now()).empty());
  CHECK(CheckCertificateFiles(pki / "self.pem", pki / "self.key",
                              std::vector<std::string>{"self.example.com"}, Now())
            .empty());
}

TEST_CASE("each problem of a certificate is found") {
  const TestPki& pki = Pki();
  const std::vector<std::string> none;
  SUBCASE("unreadable files") {
    const auto errors = Errors(CheckCertificateFiles(pki / "missing.pem", pki / "missing.key", none, Now()));
    CHECK(Has(errors, "certificate: \"" + pki / "missing.pem" + "\" cannot be read: No such file"));
    CHECK(Has(errors, "key: \"" + pki / "missing.key" + "\" cannot be read"));
  }
  SUBCASE("not PEM") {
    CHECK(Has(Errors(CheckCertificateFiles(pki / "shop.key", pki / "shop.key", none, Now())),
              "certificate: holds no PEM certificate"));
    CHECK(Has(Errors(CheckCertificateFiles(pki / "torn.pem", pki / "shop.key", none, Now())),
              "certificate: certificate 1 is not a valid PEM certificate"));
    CHECK(Has(Errors(CheckCertificateFiles(pki / "shop.pem", pki / "shop.pem", none, Now())),
              "key: is not an unencrypted PEM private key"));
    CHECK(Has(Errors(CheckCertificateFiles(pki / "shop.pem", pki / "encrypted.key", none, Now())),
              "key: is not an unencrypted PEM private key"));
  }
  SUBCASE("a key of another certificate") {
    CHECK(Errors(CheckCertificateFiles(pki / "shop-chain.pem", pki / "self.key", none, Now())) ==
          std::vector<std::string>{"key: does not match the leaf (/CN=shop.example.com)"});
  }
  SUBCASE("a chain out of order, or with an issuer left out") {
    const auto reversed = Errors(CheckCertificateFiles(pki / "reversed.pem", pki / "int.key", none, Now()));
    CHECK(
        Has(reversed, "the leaf (/CN=int) is not issued by the next, certificate 2 (/CN=shop.example.com)"));
    const auto skipped = Errors(CheckCertificateFiles(pki / "skipped.pem", pki / "shop.key", none, Now()));
    CHECK(Has(skipped,
              "the leaf (/CN=shop.example.com) is not issued by the next, certificate 2 (/CN=Test Root CA)"));
  }
  SUBCASE("expired, not yet valid, expiring soon") {
    const std::vector<std::string> names = {"short.example.com"};
    CHECK(CheckCertificateFiles(pki / "short-chain.pem", pki / "short.key", names, Now()).size() ==
          1);  // a warning
    const auto later =
        CheckCertificateFiles(pki / "short-chain.pem", pki / "short.key", names, Now() + absl::Hours(48));
    CHECK(Has(Errors(later), "certificate: the leaf (/CN=short.example.com) expired on "));
    CHECK(Warnings(later).empty());
    const auto earlier =
        CheckCertificateFiles(pki / "short-chain.pem", pki / "short.key", names, Now() - absl::Hours(48));
    CHECK(Has(Errors(earlier), "the leaf (/CN=short.example.com) is not valid before "));
    // An intermediate expires too: ten years on, every certificate of the chain has.
    const auto decade =
        CheckCertificateFiles(pki / "shop-chain.pem", pki / "shop.key", none, Now() + absl::Hours(24 * 3700));
    CHECK(Has(Errors(decade), "certificate 2 (/CN=int) expired on "));

    const auto soon = CheckCertificateFiles(pki / "soon-chain.pem", pki / "soon.key",
                                            std::vector<std::string>{"soon.example.com"}, Now());
    CHECK(Errors(soon).empty());
    REQUIRE(Warnings(soon).size() == 1);
    CHECK(absl::StrContains(Warnings(soon)[0], "the leaf (/CN=soon.example.com) expires on "));
    CHECK(absl::StrContains(Warnings(soon)[0], " days)"));
    // A 30-day certificate warns once fewer than 14 days are left.
    const std::vector<std::string> shop = {"shop.example.com"};
    CHECK(CheckCertificateFiles(pki / "shop-chain.pem", pki / "shop.key", shop, Now() + absl::Hours(24 * 15))
              .empty());
    CHECK(Warnings(CheckCertificateFiles(pki / "shop-chain.pem", pki / "shop.key", shop,
                                         Now() + absl::Hours(24 * 17)))
              .size() == 1);
  }
  SUBCASE("names it does not cover") {
    const std::vector<std::string> names = {"shop.example.com", "a.b.shop.example.com", "*.example.com",
                                            "example.com"};
    const auto errors = Errors(CheckCertificateFiles(pki / "shop-chain.pem", pki / "shop.key", names, Now()));
    CHECK(errors ==
          std::vector<std::string>{
              "certificate: does not cover \"a.b.shop.example.com\" (its DNS names: shop.example.com, "
              "*.shop.example.com)",
              "certificate: does not cover \"*.example.com\" (its DNS names: shop.example.com, "
              "*.shop.example.com)",
              "certificate: does not cover \"example.com\" (its DNS names: shop.example.com, "
              "*.shop.example.com)"});
    // The common name is not a DNS name (clients ignore it since RFC 6125).
    CHECK(Errors(CheckCertificateFiles(pki / "nosan-chain.pem", pki / "nosan.key",
                                       std::vector<std::string>{"nosan"}, Now())) ==
          std::vector<std::string>{"certificate: does not cover \"nosan\" (its DNS names: none)"});
  }
}

TEST_CASE("the tenant file's certificates are reported at the lines naming them") {
  const TestPki& pki = Pki();
  const std::string text = absl::StrCat(R"(
[[tenant]]
name = "shop"
domains = ["shop.example.com", "other.example.com"]
origin.url = "http://127.0.0.1:8080"
origin.account = "AUTH_shop"
origin.container = "web"
  [[tenant.tls]]
  certificate = "shop-chain.pem"
  key = "self.key"
)");
  const std::string file = pki / "vhosts.toml";
  std::ofstream(file) << text;
  auto table = LoadTenantFile(file);
  REQUIRE(table.ok());
  const CertificateReport report = CheckCertificates(**table, Now());
  CHECK(report.warnings.empty());
  CHECK(report.errors ==
        std::vector<std::string>{
            file + ":10: tenant[0].tls[0].key: does not match the leaf (/CN=shop.example.com)",
            file + ":9: tenant[0].tls[0].certificate: does not cover \"other.example.com\" (its DNS names: "
                   "shop.example.com, *.shop.example.com)"});
}

}  // namespace vhost
