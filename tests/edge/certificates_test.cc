#include "edge/certificates.h"

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "tests/support/test_certificates.h"

namespace edge {

namespace {

using testing_support::TestPki;

const TestPki& Pki() {
  // Made once for the binary, removed at its exit.
  static const std::unique_ptr<TestPki> pki = [] {
    auto made = std::make_unique<TestPki>();
    REQUIRE(made->ok());
    REQUIRE(made->Issue("shop", {"shop.example", "*.shop.example"}));
    REQUIRE(made->Issue("www", {"www.example.org"}));
    REQUIRE(made->Issue("blog", {"blog.example"}));
    REQUIRE(made->Issue("default", {"edge.example"}));
    return made;
  }();
  return *pki;
}

// A tenant file in the PKI's directory; `tls` is the shop tenant's [[tenant.tls]] tables.
std::string WriteTenants(const TestPki& pki, const std::string& tls) {
  const std::string path = pki / "vhosts.toml";
  std::ofstream(path) << R"([defaults]
origin.url = "http://127.0.0.1:8080"
origin.kind = "http"
# two tenants, the first with the [[tenant.tls]] tables given
[[tenant]]
name = "shop"
domains = ["shop.example", "*.shop.example", "www.example.org"]
)" << tls << R"(
[[tenant]]
name = "blog"
domains = ["blog.example"]
  [[tenant.tls]]
  certificate = "blog-chain.pem"
  key = "blog.key"
)";
  return path;
}

const std::string kShopTls = R"(  [[tenant.tls]]
  certificate = "shop-chain.pem"
  key = "shop.key"
  domains = ["shop.example", "*.shop.example"]
  [[tenant.tls]]
  certificate = "www-chain.pem"
  key = "www.key"
  domains = ["www.example.org"]
)";

CertificateOptions WithDefault(const TestPki& pki) {
  CertificateOptions options;
  options.default_certificate = pki / "default-chain.pem";
  options.default_key = pki / "default.key";
  options.settings_file = "edge.toml";
  options.certificate_line = 20;
  options.key_line = 21;
  return options;
}

// The first DNS name of a found certificate's leaf, to tell them apart.
std::string NameOf(const std::shared_ptr<const http::Certificate>& certificate) {
  if (!certificate) return "(refused)";
  char name[256];
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate->leaf), NID_commonName, name, sizeof(name));
  return name;
}

}  // namespace

TEST_CASE("SNI picks the exact name, then the wildcard one label up, then the default") {
  const TestPki& pki = Pki();
  auto loaded = LoadTenantsAndCertificates(WriteTenants(pki, kShopTls), WithDefault(pki), absl::Now());
  REQUIRE(loaded.ok());
  CHECK(loaded->warnings.empty());
  const CertificateSet& set = *loaded->certificates;
  CHECK(NameOf(set.Find("shop.example")) == "shop.example");
  CHECK(NameOf(set.Find("a.shop.example")) == "shop.example");
  CHECK(NameOf(set.Find("www.example.org")) == "www.example.org");
  CHECK(NameOf(set.Find("blog.example")) == "blog.example");
  // Two labels below a wildcard are not what its certificate covers; nor is a name nobody claims.
  CHECK(NameOf(set.Find("a.b.shop.example")) == "edge.example");
  CHECK(NameOf(set.Find("unknown.example")) == "edge.example");
  CHECK(NameOf(set.Find("")) == "edge.example");
  CHECK(set.Find("shop.example")->chain != nullptr);  // the intermediate goes with the leaf
  // Each certificate loaded once, for /metrics.
  REQUIRE(set.in_use().size() == 4);
  CHECK(set.in_use()[0].tenant == "shop");
  CHECK(set.in_use()[0].certificate == pki / "shop-chain.pem");
  CHECK(set.in_use()[3].tenant.empty());
  CHECK(set.in_use()[0].not_after > absl::Now() + absl::Hours(24 * 29));
  CHECK(set.in_use()[0].not_after < absl::Now() + absl::Hours(24 * 31));
}

TEST_CASE("without a default, unknown names are refused, clients without SNI may be refused") {
  const TestPki& pki = Pki();
  auto loaded = LoadTenantsAndCertificates(WriteTenants(pki, kShopTls), CertificateOptions{}, absl::Now());
  REQUIRE(loaded.ok());
  CHECK(loaded->certificates->Find("unknown.example") == nullptr);
  CHECK(loaded->certificates->Find("") == nullptr);
  CertificateOptions refuse = WithDefault(pki);
  refuse.refuse_without_sni = true;
  loaded = LoadTenantsAndCertificates(WriteTenants(pki, kShopTls), refuse, absl::Now());
  REQUIRE(loaded.ok());
  CHECK(loaded->certificates->Find("") == nullptr);
  CHECK(NameOf(loaded->certificates->Find("unknown.example")) == "edge.example");
}

TEST_CASE("a bad certificate refuses tenants and certificates together, with every problem") {
  const TestPki& pki = Pki();
  // www's certificate for the shop's names, and a default whose key is another's.
  CertificateOptions options = WithDefault(pki);
  options.default_key = pki / "blog.key";
  const std::string file = WriteTenants(pki, R"(  [[tenant.tls]]
  certificate = "www-chain.pem"
  key = "www.key"
)");
  auto loaded = LoadTenantsAndCertificates(file, options, absl::Now());
  REQUIRE_FALSE(loaded.ok());
  const std::string message(loaded.status().message());
  CHECK(
      absl::StrContains(message, file + ":9: tenant[0].tls[0].certificate: does not cover \"shop.example\""));
  CHECK(absl::StrContains(message,
                          file + ":9: tenant[0].tls[0].certificate: does not cover \"*.shop.example\""));
  CHECK(absl::StrContains(message,
                          "edge.toml:21: tls.default_key: does not match the leaf (/CN=edge.example)"));
  // A tenant file that does not load is refused as before.
  std::ofstream(pki / "broken.toml") << "[[tenant]]\nname = 1\n";
  CHECK_FALSE(LoadTenantsAndCertificates(pki / "broken.toml", options, absl::Now()).ok());
  // An expiring certificate loads, with its warning.
  loaded = LoadTenantsAndCertificates(WriteTenants(pki, kShopTls), WithDefault(pki),
                                      absl::Now() + absl::Hours(24 * 20));
  REQUIRE(loaded.ok());
  CHECK(loaded->warnings.size() == 4);
  CHECK(absl::StrContains(loaded->warnings[0],
                          "tenant[0].tls[0].certificate: warning: the leaf (/CN=shop.example) "
                          "expires on "));
}

TEST_CASE("handshakes find certificates while the set is replaced") {
  const TestPki& pki = Pki();
  auto first = LoadTenantsAndCertificates(WriteTenants(pki, kShopTls), WithDefault(pki), absl::Now());
  auto second = LoadTenantsAndCertificates(WriteTenants(pki, ""), CertificateOptions{}, absl::Now());
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  FileCertificates source(first->certificates);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        // Either set: the shop's certificate, or none (the second set has neither it nor a default).
        const std::string name = NameOf(source.Find("a.shop.example"));
        if (name != "shop.example" && name != "(refused)") ++wrong;
      }
    });
  }
  for (int i = 0; i < 200; ++i) source.Replace(i % 2 ? first->certificates : second->certificates);
  stop = true;
  for (std::thread& t : readers) t.join();
  CHECK(wrong == 0);
  source.Replace(second->certificates);
  CHECK(source.Find("a.shop.example") == nullptr);
  CHECK(NameOf(source.Find("blog.example")) == "blog.example");
}

TEST_CASE("/metrics shows each certificate in use and when it expires") {
  const std::vector<CertificateExpiry> in_use = {{"shop", "/c/shop.pem", absl::FromUnixSeconds(1800000000)},
                                                 {"", "/c/de\"fault.pem", absl::FromUnixSeconds(1700000000)}};
  const std::string text = RenderCertificates(in_use);
  CHECK(absl::StrContains(text, "\nedge_tls_certificates 2\n"));
  CHECK(absl::StrContains(text, "# TYPE edge_tls_certificate_expiry_seconds gauge\n"));
  CHECK(absl::StrContains(text,
                          "edge_tls_certificate_expiry_seconds{tenant=\"shop\",certificate=\"/c/shop.pem\"} "
                          "1800000000\n"));
  CHECK(
      absl::StrContains(text,
                        "edge_tls_certificate_expiry_seconds{tenant=\"\",certificate=\"/c/de\\\"fault.pem\"} "
                        "1700000000\n"));
  CHECK(RenderCertificates({}).find("expiry") == std::string::npos);
}

}  // namespace edge
