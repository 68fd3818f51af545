#include "vhost-config/path_mapping.h"

#include <doctest/doctest.h>

namespace vhost {

namespace {
Tenant Swift(bool listings = false, bool from_path = false, std::string prefix = "") {
  Tenant t;
  t.name = "demo";
  t.origin.url = "http://swift:8080";
  t.origin.account = "AUTH_test";
  t.origin.container = from_path ? "" : "public";
  t.origin.container_from_path = from_path;
  t.origin.prefix = std::move(prefix);
  t.cache.listings = listings;
  return t;
}
}  // namespace

TEST_CASE("objects map to the tenant's account, container and prefix") {
  auto m = MapRequest(Swift(false, false, "site/"), "/images/party/banya%20photo.jpg?v=2");
  REQUIRE(m.ok());
  CHECK(m->name == "site/images/party/banya photo.jpg");
  CHECK(m->url == "http://swift:8080/v1/AUTH_test/public/site/images/party/banya%20photo.jpg?v=2");
  CHECK(m->query == "v=2");
  CHECK_FALSE(m->listing);
}

TEST_CASE("dot segments and empty segments are normalised") {
  CHECK(MapRequest(Swift(), "/a//b/./c")->name == "a/b/c");
  CHECK(MapRequest(Swift(), "/a/%2E/c")->name == "a/c");
  CHECK(MapRequest(Swift(), "/a/%41")->name == "a/A");
}

TEST_CASE("traversal and smuggled characters are refused, never passed on") {
  for (const char* bad :
       {"/../etc/passwd", "/a/../../b", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b", "/a/%2e./b", "/a%2fb",
        "/a%2F..%2Fb", "/a%00b", "/a%0d%0aX: y", "/a%7f", "/a%5cb", "/a\\b", "/a%zz", "/a%2", "/a%"}) {
    INFO(bad);
    CHECK(MapRequest(Swift(), bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(MapRequest(Swift(), "/../etc/passwd").status().message() == "'..' segment in path");
  CHECK(MapRequest(Swift(), "/a%2fb").status().message() == "encoded slash in path");
}

TEST_CASE("a directory path is a listing when the tenant has listings") {
  auto m = MapRequest(Swift(true), "/images/party/?format=json");
  REQUIRE(m.ok());
  CHECK(m->listing);
  CHECK(m->name == "images/party/");
  CHECK(m->listing_format == "json");
  CHECK(m->url == "http://swift:8080/v1/AUTH_test/public?prefix=images%2Fparty%2F&delimiter=%2F&format=json");
  CHECK(MapRequest(Swift(true), "/")->name.empty());
  CHECK(MapRequest(Swift(true), "/")->listing_format == "plain");
  CHECK_FALSE(MapRequest(Swift(false), "/images/")->listing);
}

TEST_CASE("the container can come from the first path segment") {
  auto m = MapRequest(Swift(false, true), "/photos/2024/a.jpg");
  REQUIRE(m.ok());
  CHECK(m->container == "photos");
  CHECK(m->name == "2024/a.jpg");
  CHECK(m->url == "http://swift:8080/v1/AUTH_test/photos/2024/a.jpg");
  CHECK_FALSE(MapRequest(Swift(false, true), "/").ok());
}

TEST_CASE("http origins get the normalised path and the query") {
  Tenant t;
  t.origin.kind = OriginKind::kHttp;
  t.origin.url = "http://site:81";
  auto m = MapRequest(t, "/docs/./a b?x=1");
  REQUIRE(m.ok());
  CHECK(m->url == "http://site:81/docs/a%20b?x=1");
}

}  // namespace vhost

namespace vhost {

namespace {
Tenant SwiftApi(std::string account = "") {
  Tenant t;
  t.name = "api";
  t.origin.kind = OriginKind::kSwiftApi;
  t.origin.url = "http://swift:8080";
  t.origin.account = std::move(account);
  return t;
}
}  // namespace

TEST_CASE("swift-api paths name the account, container and object") {
  auto m = MapRequest(SwiftApi(), "/v1/AUTH_test/public/images/a%20b.jpg");
  REQUIRE(m.ok());
  CHECK(m->account == "AUTH_test");
  CHECK(m->container == "public");
  CHECK(m->name == "images/a b.jpg");
  CHECK_FALSE(m->listing);
  CHECK(m->url == "http://swift:8080/v1/AUTH_test/public/images/a%20b.jpg");
  CHECK(MapRequest(SwiftApi(), "/v1/AUTH_test/public/dir/")->name == "dir/");
  CHECK(MapRequest(SwiftApi(), "/v1/AUTH_test/public/a.jpg?multipart-manifest=get")->variant ==
        "multipart-manifest=get");
}

TEST_CASE("swift-api container and account listings: prefix is the name, the rest the variant") {
  auto m = MapRequest(SwiftApi(), "/v1/AUTH_test/public?prefix=images%2Fparty%2F&format=json&delimiter=/");
  REQUIRE(m.ok());
  CHECK(m->listing);
  CHECK(m->container == "public");
  CHECK(m->name == "images/party/");
  CHECK(m->variant == "delimiter=/&format=json");
  CHECK(m->listing_format == "json");
  CHECK(m->url == "http://swift:8080/v1/AUTH_test/public?prefix=images%2Fparty%2F&format=json&delimiter=/");
  auto account = MapRequest(SwiftApi(), "/v1/AUTH_test");
  REQUIRE(account.ok());
  CHECK(account->listing);
  CHECK(account->container.empty());
  CHECK(account->listing_format == "plain");
  CHECK(account->url == "http://swift:8080/v1/AUTH_test?format=plain");
  auto by_accept = MapRequest(SwiftApi(), "/v1/AUTH_test/c?prefix=a/", "application/json");
  REQUIRE(by_accept.ok());
  CHECK(by_accept->variant == "format=json");
  CHECK(by_accept->url == "http://swift:8080/v1/AUTH_test/c?prefix=a/&format=json");
  CHECK_FALSE(MapRequest(SwiftApi(), "/v1/AUTH_test/c?prefix=%00").ok());
}

TEST_CASE("swift-api: other paths pass through uncached, other accounts are refused") {
  auto auth = MapRequest(SwiftApi(), "/auth/v1.0");
  REQUIRE(auth.ok());
  CHECK(auth->pass);
  CHECK(auth->url == "http://swift:8080/auth/v1.0");
  CHECK(MapRequest(SwiftApi("AUTH_test"), "/v1/AUTH_other/c/o").status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(MapRequest(SwiftApi("AUTH_test"), "/v1/AUTH_test/c/o").ok());
  CHECK_FALSE(MapRequest(SwiftApi(), "/v1/AUTH_test/c/%2e%2e/x").ok());
}

TEST_CASE("http origins are keyed under the tenant, with the query as variant") {
  Tenant t;
  t.name = "site";
  t.origin.kind = OriginKind::kHttp;
  t.origin.url = "http://site:81";
  auto m = MapRequest(t, "/a?b=1");
  REQUIRE(m.ok());
  CHECK(m->account == kHttpAccount);
  CHECK(m->container == "site");
  CHECK(m->name == "/a");
  CHECK(m->variant == "b=1");
}

TEST_CASE("mapping into a reused target gives what a fresh one gives") {
  Tenant http;
  http.origin.kind = OriginKind::kHttp;
  http.origin.url = "http://site:81";
  const Tenant swift = Swift(true, false, "site/"), from_path = Swift(false, true), api = SwiftApi();
  const std::pair<const Tenant*, std::string_view> requests[] = {
      {&swift, "/a/very/long/path/to/an/object/IMG_004711.jpg?v=2"},
      {&swift, "/images/?format=json"},
      {&from_path, "/photos/2024/a.jpg"},
      {&api, "/v1/AUTH_test/public?prefix=images%2F&format=json"},
      {&api, "/auth/v1.0"},
      {&api, "/v1/AUTH_test/public/a%20b.jpg?multipart-manifest=get"},
      {&http, "/docs/./a b?x=1"},
      {&swift, "/short"},
      {&swift, "/a/../b"},
      {&api, "/v1/AUTH_test"},
  };
  OriginTarget reused;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& request : requests) {
      const auto& [tenant, target] = request;
      INFO(request.second);  // INFO captures by reference, which clang 14 refuses for a binding
      const absl::StatusOr<OriginTarget> fresh = MapRequest(*tenant, target, "text/xml");
      const absl::Status status = MapRequest(*tenant, target, "text/xml", &reused);
      REQUIRE(status.ok() == fresh.ok());
      if (fresh.ok()) CHECK(reused == *fresh);
    }
  }
}

TEST_CASE("the path rules see one spelling of a path: decoded and normalised") {
  // What a rule such as "/private/*" is matched against, however the client spelled the path.
  for (const char* spelling : {"/private/x", "//private/x", "/%70rivate/x", "/./private/x", "/private//x",
                               "/%70%72%69%76%61%74%65/x", "/private/./x"}) {
    INFO(spelling);
    auto m = MapRequest(Swift(false, false, "site/"), spelling);
    REQUIRE(m.ok());
    CHECK(m->path == "/private/x");
  }
  CHECK(MapRequest(Swift(true), "/images//")->path == "/images/");
  CHECK(MapRequest(Swift(true), "/")->path == "/");
  CHECK(MapRequest(Swift(true, true), "/photos/a%20b.jpg?x=1")->path == "/photos/a b.jpg");
}

TEST_CASE("query parameters are found by their name as Swift decodes it") {
  CHECK(QueryHasParameter("temp_url_sig=abc&temp_url_expires=1", "temp_url_sig"));
  CHECK(QueryHasParameter("a=1&temp%5Furl%5Fsig=abc", "temp_url_sig"));
  CHECK(QueryHasParameter("temp%5furl%5fsig", "temp_url_sig"));
  CHECK(QueryHasParameter("bulk+delete", "bulk delete"));
  CHECK_FALSE(QueryHasParameter("temp_url_sigx=1", "temp_url_sig"));
  CHECK_FALSE(QueryHasParameter("xtemp_url_sig=1", "temp_url_sig"));
  CHECK_FALSE(QueryHasParameter("a=temp_url_sig", "temp_url_sig"));
  CHECK_FALSE(QueryHasParameter("temp%5", "temp_"));  // a malformed escape stays as it is
  CHECK(QueryHasParameter("temp%5", "temp%5"));
}

}  // namespace vhost
