#include "edge/https_rules.h"

#include <doctest/doctest.h>

namespace edge {

TEST_CASE("a request over TLS goes to the tenant its TLS name chose, or is misdirected") {
  vhost::Tenant shop, blog;
  shop.name = "shop";
  blog.name = "blog";
  CHECK(DecideHttps(true, "shop.example", &shop, shop) == HttpsAction::kServe);
  CHECK(DecideHttps(true, "shop.example", &shop, blog) == HttpsAction::kMisdirected);
  // A name no tenant claims (served the default certificate) chose no tenant's site.
  CHECK(DecideHttps(true, "unknown.example", nullptr, shop) == HttpsAction::kMisdirected);
  // Without SNI the client chose nothing: its Host decides.
  CHECK(DecideHttps(true, "", nullptr, shop) == HttpsAction::kServe);
  // HTTPS is never redirected, whatever the tenant says of plain HTTP.
  shop.https_redirect = true;
  CHECK(DecideHttps(true, "shop.example", &shop, shop) == HttpsAction::kServe);
}

TEST_CASE("a request without Host over TLS asks for the name its TLS handshake sent") {
  CHECK(RequestedHost("", "shop.example") == "shop.example");              // HTTP/1.0 over TLS, with SNI
  CHECK(RequestedHost("blog.example", "shop.example") == "blog.example");  // Host decides (or 421)
  CHECK(RequestedHost("", "").empty());                                    // no name at all: no tenant
  CHECK(RequestedHost("shop.example", "") == "shop.example");              // plain HTTP, or TLS without SNI
}

TEST_CASE("plain HTTP is redirected for tenants that ask for it") {
  vhost::Tenant shop;
  CHECK(DecideHttps(false, "", nullptr, shop) == HttpsAction::kServe);
  shop.https_redirect = true;
  CHECK(DecideHttps(false, "", nullptr, shop) == HttpsAction::kRedirect);
}

TEST_CASE("the redirect keeps host, path and query, and names the HTTPS port unless it is 443") {
  std::string out;
  CHECK(HttpsLocation("Shop.Example:8080", "/a/b.jpg?x=1&y", 443, &out) ==
        "https://Shop.Example/a/b.jpg?x=1&y");
  CHECK(HttpsLocation("shop.example", "/", 8443, &out) == "https://shop.example:8443/");
  CHECK(HttpsLocation("[::1]:8080", "/x", 443, &out) == "https://[::1]/x");
  CHECK(HttpsLocation("[::1]", "/x", 8443, &out) == "https://[::1]:8443/x");
  CHECK(HttpsLocation("shop.example", "", 443, &out) == "https://shop.example/");
}

}  // namespace edge
