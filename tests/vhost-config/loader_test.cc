#include "vhost-config/loader.h"

#include <doctest/doctest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vhost {

namespace {

constexpr std::string_view kGood = R"(
[defaults]
origin.url = "http://127.0.0.1:8080"
cache.max_ttl = "1d"

[[tenant]]
name = "demo"
domains = ["Demo.Example.test", "*.cdn.example.test"]
origin.account = "AUTH_test"
origin.container = "public"
cache.listings = true
purge.key_hashes = ["44c63b2cf283f5e410aea9f166a020e6c8c6ced301d0d5dacbfe9ba4601be9a1"]
  [[tenant.cache.rule]]
  path = "/images/*"
  ttl = "2h"
  [[tenant.cache.rule]]
  path = "/private/*"
  bypass = true

[[tenant]]
name = "api"
domains = ["swift.example.test"]
origin.account = "AUTH_test"
origin.container_from_path = true
[tenant.cache]
default_ttl = "1m"
)";

std::vector<std::string> Errors(std::string_view text) {
  auto table = LoadTenantText(text, "vhosts.toml");
  REQUIRE_FALSE(table.ok());
  return absl::StrSplit(std::string(table.status().message()), '\n');
}

}  // namespace

TEST_CASE("a valid file loads with defaults inherited and overridden") {
  auto table = LoadTenantText(kGood, "vhosts.toml");
  REQUIRE(table.ok());
  const TenantTable& t = **table;
  REQUIRE(t.tenants.size() == 2);
  const Tenant& demo = t.tenants[0];
  CHECK(demo.domains[0] == "demo.example.test");
  CHECK(demo.origin.url == "http://127.0.0.1:8080");
  CHECK(demo.cache.max_ttl == absl::Hours(24));
  CHECK(demo.cache.default_ttl == absl::Minutes(5));
  CHECK(demo.cache.listings);
  REQUIRE(demo.cache.rules.size() == 2);
  CHECK(demo.cache.rules[0].ttl == absl::Hours(2));
  CHECK(demo.cache.rules[1].bypass);
  CHECK(t.tenants[1].cache.default_ttl == absl::Minutes(1));
  CHECK(t.tenants[1].origin.container_from_path);
  CHECK(t.FindByHost("DEMO.example.test:443") == &demo);
  CHECK(t.FindByHost("swift.example.test") == &t.tenants[1]);
  CHECK(t.FindByHost("other.test") == nullptr);
}

TEST_CASE("every error is reported at once, with file, line and field") {
  const std::string bad = R"([defaults]
origin.url = "http://127.0.0.1:8080"
name = "x"

[[tenant]]
name = "a"
domains = ["a.example.test", "shared.example.test"]
origin.account = "AUTH_a"
origin.container = "c"
cache.max_ttl = "7 dayz"
colour = "blue"

[[tenant]]
name = "a"
domains = ["shared.example.test", "*.*.example.test", "bad_host.test"]
origin.account = ""
origin.container = "c"
cache.min_ttl = "2h"
cache.max_ttl = "1h"
purge.key_hashes = ["plain-secret"]
  [[tenant.cache.rule]]
  path = "images/*"
  ttl = "1h"
  bypass = true

[[tenant]]
name = "h"
domains = ["h.example.test"]
origin.kind = "http"
origin.url = "ftp://x"
origin.container = "c"
)";
  const std::vector<std::string> errors = Errors(bad);
  const std::vector<std::string> expected = {
      "vhosts.toml:3: defaults.name: cannot be set in [defaults]",
      "vhosts.toml:10: tenant[0].cache.max_ttl: \"7 dayz\" is not a duration (use ms, s, m, h or d, e.g. "
      "\"7d\")",
      "vhosts.toml:11: tenant[0].colour: unknown key",
      "vhosts.toml:14: tenant[1].name: duplicate tenant name \"a\" (first at line 6)",
      "vhosts.toml:15: tenant[1].domains: \"shared.example.test\" is already claimed by tenant \"a\" (line "
      "7)",
      "vhosts.toml:15: tenant[1].domains: \"*.*.example.test\" a wildcard is allowed only as the whole first "
      "label "
      "(\"*.example.com\")",
      "vhosts.toml:15: tenant[1].domains: \"bad_host.test\" has an invalid character '_'",
      "vhosts.toml:16: tenant[1].origin.account: is required for a swift origin and must not be empty",
      "vhosts.toml:18: tenant[1].cache.min_ttl: 2h is greater than cache.max_ttl (1h)",
      "vhosts.toml:20: tenant[1].purge.key_hashes: must be 64 lowercase hex digits (a SHA-256 from "
      "`vhost-config "
      "hash-key`), never a plain key",
      "vhosts.toml:21: tenant[1].cache.rule[0].ttl: give exactly one of ttl or bypass = true",
      "vhosts.toml:22: tenant[1].cache.rule[0].path: is required and must start with '/'",
      "vhosts.toml:30: tenant[2].origin.url: \"ftp://x\" is not an http:// or https:// URL",
      "vhosts.toml:31: tenant[2].origin.container: applies to swift origins only",
  };
  CHECK(errors == expected);
}

TEST_CASE("missing pieces and TOML syntax errors") {
  CHECK(Errors("") == std::vector<std::string>{"vhosts.toml:1: tenant: no [[tenant]] is defined"});
  CHECK(Errors("[[tenant]]\nname = \"x\"\n") ==
        std::vector<std::string>{
            "vhosts.toml:1: tenant[0].domains: is required",
            "vhosts.toml:1: tenant[0].origin.url: is required",
            "vhosts.toml:1: tenant[0].origin.account: is required for a swift origin and must not be empty",
            "vhosts.toml:1: tenant[0].origin.container: is required (or set origin.container_from_path) and "
            "must not be empty"});
  const std::vector<std::string> syntax = Errors("[[tenant]]\nname = \n");
  REQUIRE(syntax.size() == 1);
  CHECK(syntax[0].starts_with("vhosts.toml:2: "));
  CHECK(LoadTenantFile("/nonexistent/vhosts.toml").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Swift clusters: the default name stands for one proxy URL, named ones for any number") {
  const std::string two_proxies = R"(
[[tenant]]
name = "a"
domains = ["a.test"]
origin.url = "http://10.0.0.1:8080"
origin.account = "AUTH_x"
origin.container = "c"

[[tenant]]
name = "b"
domains = ["b.test"]
origin.url = "http://10.0.0.2:8080"
origin.account = "AUTH_x"
origin.container = "c"
)";
  const std::vector<std::string> errors = Errors(two_proxies);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with(
      "vhosts.toml:12: tenant[1].origin.url: \"http://10.0.0.2:8080\" is another Swift"));
  CHECK(errors[0].find("origin.cluster") != std::string::npos);

  // Named: two clusters apart, or two proxies of one cluster.
  std::string named = two_proxies;
  named.insert(named.find("origin.container = \"c\"") + 22, "\norigin.cluster = \"east\"");
  auto table = LoadTenantText(named, "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].origin.cluster == "east");
  CHECK((*table)->tenants[1].origin.cluster.empty());
  std::string one_cluster = named;
  one_cluster.insert(one_cluster.rfind("origin.container = \"c\"") + 22, "\norigin.cluster = \"east\"");
  CHECK(LoadTenantText(one_cluster, "vhosts.toml").ok());

  for (const char* bad :
       {"origin.cluster = \"\"", "origin.cluster = \"a/b\"", "origin.cluster = \"east west\""}) {
    INFO(bad);
    std::string text = two_proxies;
    text.insert(text.find("origin.container = \"c\"") + 22, std::string("\n") + bad);
    CHECK(Errors(text).front().find("tenant[0].origin.cluster") != std::string::npos);
  }
  CHECK(Errors("[[tenant]]\nname = \"h\"\ndomains = [\"h.test\"]\norigin.kind = \"http\"\n"
               "origin.url = \"http://127.0.0.1:1\"\norigin.cluster = \"x\"\n")
            .front()
            .find("applies to swift origins only") != std::string::npos);
}

TEST_CASE("cache.targeted_cache_control and cache.heuristic_max") {
  const std::string kSite = R"([[tenant]]
name = "site"
domains = ["site.example.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:9000"
)";
  auto table = LoadTenantText(absl::StrCat(kSite, "cache.targeted_cache_control = \"Edge-Cache-Control\"\n",
                                           "cache.heuristic_max = \"2h\"\n"),
                              "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].cache.targeted_cache_control == "Edge-Cache-Control");
  CHECK((*table)->tenants[0].cache.heuristic_max == absl::Hours(2));
  table = LoadTenantText(kSite, "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].cache.targeted_cache_control.empty());
  CHECK((*table)->tenants[0].cache.heuristic_max == absl::Hours(24));
  CHECK(Errors(absl::StrCat(kSite, "cache.targeted_cache_control = \"Edge Cache\"\n")) ==
        std::vector<std::string>{
            "vhosts.toml:6: tenant[0].cache.targeted_cache_control: \"Edge Cache\" is not a "
            "response field name other than Cache-Control (e.g. Edge-Cache-Control)"});
  CHECK(Errors(absl::StrCat(kSite, "cache.targeted_cache_control = \"cache-control\"\n")).size() == 1);
}

TEST_CASE("cache.slice_size and cache.slice_threshold: sizes, off with 0, and what is refused") {
  const std::string kVideo = R"([[tenant]]
name = "video"
domains = ["video.example.test"]
origin.account = "AUTH_v"
origin.container = "media"
origin.url = "http://127.0.0.1:8080"
)";
  auto table = LoadTenantText(kVideo, "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].cache.slice_size == 4 << 20);
  CHECK((*table)->tenants[0].cache.slice_threshold == 16 << 20);
  table = LoadTenantText(absl::StrCat(kVideo, "cache.slice_size = \"1M\"\ncache.slice_threshold = \"1M\"\n"),
                         "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].cache.slice_size == 1 << 20);
  CHECK(LoadTenantText(absl::StrCat(kVideo, "cache.slice_size = 0\n"), "vhosts.toml").ok());
  CHECK(
      Errors(absl::StrCat(kVideo, "cache.slice_size = \"4K\"\n")) ==
      std::vector<std::string>{"vhosts.toml:7: tenant[0].cache.slice_size: must be 0 (off) or at least 64K"});
  CHECK(
      Errors(absl::StrCat(kVideo, "cache.slice_size = \"32M\"\n")) ==
      std::vector<std::string>{"vhosts.toml:1: tenant[0].cache.slice_threshold: must be at least "
                               "cache.slice_size (the first answer for an object must hold a whole slice)"});
  CHECK(Errors(absl::StrCat(kVideo, "cache.slice_size = \"lots\"\n")).size() == 1);
}

TEST_CASE("certificates, the HTTPS redirect and HSTS per tenant") {
  const std::string kShopBase = R"([defaults]
https_redirect = true
[[tenant]]
name = "shop"
domains = ["shop.example.test", "*.shop.example.test", "www.shop.example.test"]
origin.url = "http://127.0.0.1:8080"
origin.account = "AUTH_shop"
origin.container = "web"
)";
  const std::string kShop = kShopBase + "hsts = \"max-age=31536000; includeSubDomains\"\n";
  auto table = LoadTenantText(absl::StrCat(kShop, R"(  [[tenant.tls]]
  certificate = "certs/shop.pem"
  key = "/etc/edge/shop.key"
  domains = ["shop.example.test", "*.SHOP.example.test"]
  [[tenant.tls]]
  certificate = "www.pem"
  key = "www.key"
  domains = ["www.shop.example.test"]
)"),
                              "conf/vhosts.toml");
  REQUIRE(table.ok());
  const Tenant& shop = (*table)->tenants[0];
  CHECK((*table)->file == "conf/vhosts.toml");
  CHECK(shop.https_redirect);
  CHECK(shop.hsts == "max-age=31536000; includeSubDomains");
  REQUIRE(shop.certificates.size() == 2);
  // Relative to the tenant file, as the edge's own paths are to its settings file.
  CHECK(shop.certificates[0].certificate == "conf/certs/shop.pem");
  CHECK(shop.certificates[0].key == "/etc/edge/shop.key");
  CHECK(shop.certificates[0].domains == std::vector<std::string>{"shop.example.test", "*.shop.example.test"});
  CHECK(shop.certificates[0].certificate_line == 11);
  CHECK(shop.certificates[0].key_line == 12);
  CHECK(shop.certificates[0].field == "tenant[0].tls[0]");
  CHECK(shop.certificates[1].domains == std::vector<std::string>{"www.shop.example.test"});

  // Without domains a certificate serves all of the tenant's; without any, none has one.
  table =
      LoadTenantText(absl::StrCat(kShop,
                                  "https_redirect = false\n[[tenant.tls]]\ncertificate = \"a.pem\"\nkey = "
                                  "\"a.key\"\n"),
                     "vhosts.toml");
  REQUIRE(table.ok());
  CHECK_FALSE((*table)->tenants[0].https_redirect);
  CHECK((*table)->tenants[0].certificates[0].domains == (*table)->tenants[0].domains);
  table = LoadTenantText(kGood, "vhosts.toml");
  REQUIRE(table.ok());
  CHECK((*table)->tenants[0].certificates.empty());
  CHECK_FALSE((*table)->tenants[0].https_redirect);
  CHECK((*table)->tenants[0].hsts.empty());

  CHECK(Errors(absl::StrCat(kShop, R"(  [[tenant.tls]]
  certificate = "a.pem"
  key = "a.key"
  domains = ["other.example.test"]
  [[tenant.tls]]
  certificate = "b.pem"
  [[tenant.tls]]
  certificate = "c.pem"
  key = "c.key"
  domains = ["shop.example.test"]
  [[tenant.tls]]
  key = "d.key"
  domains = []
  colour = "blue"
)")) == std::vector<std::string>{
            "vhosts.toml:13: tenant[0].tls[0].domains: \"other.example.test\" is not one of the tenant's "
            "domains",
            "vhosts.toml:14: tenant[0].tls[1].key: is required (a PEM file)",
            "vhosts.toml:19: tenant[0].tls[2].domains: \"shop.example.test\" already has a certificate "
            "(tenant[0].tls[1])",
            "vhosts.toml:20: tenant[0].tls[3].certificate: is required (a PEM file)",
            "vhosts.toml:22: tenant[0].tls[3].domains: must name at least one domain (or be left out: all of "
            "them)",
            "vhosts.toml:23: tenant[0].tls[3].colour: unknown key"});
  CHECK(Errors("[defaults]\ntls = []\n[[tenant]]\n").front() ==
        "vhosts.toml:2: defaults.tls: cannot be set in [defaults]");
  for (const char* bad : {"\"includeSubDomains\"", "\"max-age=soon\"", "\"max-age=1\\nX: y\"", "true"}) {
    CAPTURE(bad);
    const std::vector<std::string> errors = Errors(absl::StrCat(kShopBase, "hsts = ", bad, "\n"));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].starts_with("vhosts.toml:9: tenant[0].hsts: "));
  }
  CHECK(LoadTenantText(absl::StrCat(kShopBase, "hsts = \"max-age=\\\"600\\\"; preload\"\n"), "vhosts.toml")
            .ok());
}

}  // namespace vhost
