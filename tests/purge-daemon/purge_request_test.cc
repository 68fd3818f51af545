#include "purge-daemon/purge_request.h"

#include <doctest/doctest.h>

#include "purge-daemon/planner.h"
#include "vhost-config/path_mapping.h"

namespace purge {

namespace {

std::shared_ptr<const vhost::TenantTable> Table() {
  auto table = vhost::LoadTenantText(R"(
[defaults]
origin.url = "http://swift:8080"
[[tenant]]
name = "demo"
domains = ["demo.test", "*.cdn.demo.test"]
origin.account = "AUTH_test"
origin.container = "public"
cache.listings = true
[[tenant]]
name = "shop"
domains = ["shop.test"]
origin.account = "AUTH_shop"
origin.container = "www"
[[tenant]]
name = "site"
domains = ["site.test"]
origin.kind = "http"
origin.url = "http://site:81"
[[tenant]]
name = "api"
domains = ["swift.test"]
origin.kind = "swift-api"
[[tenant]]
name = "api-one"
domains = ["one.swift.test"]
origin.kind = "swift-api"
origin.account = "AUTH_one"
)",
                                     "t.toml");
  REQUIRE(table.ok());
  return *table;
}

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

}  // namespace

TEST_CASE("purge request bodies: what is accepted, and every refusal names the problem") {
  auto ok = ParsePurgeRequest(R"({"urls": ["http://demo.test/a.jpg"], "soft": true, "tags": ["t1"]})");
  REQUIRE(ok.ok());
  CHECK(ok->urls.size() == 1);
  CHECK(ok->soft);
  CHECK(ok->tags == std::vector<std::string>{"t1"});
  CHECK(ParsePurgeRequest(R"({"all": true})")->all);
  CHECK(Message(ParsePurgeRequest("{bad").status()) == "the body is not valid JSON");
  CHECK(Message(ParsePurgeRequest("[]").status()) == "the body must be a JSON object");
  CHECK(Message(ParsePurgeRequest(R"({"url": []})").status()) ==
        "unknown field \"url\" (expected urls, prefixes, hosts, tags, all, soft, tenant)");
  CHECK(Message(ParsePurgeRequest(R"({"urls": "http://demo.test/a"})").status()) ==
        "\"urls\" must be an array of strings");
  CHECK(Message(ParsePurgeRequest(R"({"urls": [1]})").status()) ==
        "\"urls\" must be an array of non-empty strings");
  CHECK(Message(ParsePurgeRequest(R"({"soft": "yes", "all": true})").status()) ==
        "\"soft\" must be true or false");
  CHECK(Message(ParsePurgeRequest(R"({})").status()) ==
        "nothing to purge: give urls, prefixes, hosts, tags or \"all\": true");
  std::string many = R"({"tags": [)";
  for (int i = 0; i < 1001; ++i) many += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  many += "]}";
  CHECK(Message(ParsePurgeRequest(many).status()) == "1001 items in one request; at most 1000");
}

TEST_CASE("the tenant a request is about") {
  auto table = Table();
  auto one = ParsePurgeRequest(
      R"({"urls": ["http://demo.test/a", "https://img.cdn.demo.test/b"], "hosts": ["demo.test"]})");
  CHECK((*TenantOf(*one, *table))->name == "demo");
  auto two = ParsePurgeRequest(R"({"urls": ["http://demo.test/a", "http://shop.test/b"]})");
  CHECK(Message(TenantOf(*two, *table).status()) ==
        "the request names several tenants; send one request per tenant");
  auto unknown = ParsePurgeRequest(R"({"hosts": ["nobody.test"]})");
  CHECK(TenantOf(*unknown, *table).status().code() == absl::StatusCode::kNotFound);
  auto named = ParsePurgeRequest(R"({"tags": ["x"], "tenant": "shop"})");
  CHECK((*TenantOf(*named, *table))->name == "shop");
}

TEST_CASE("a tenant's purge becomes its invalidations") {
  auto table = Table();
  const vhost::Tenant* demo = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["demo.test"]})"), *table);
  const Caller caller{demo, false};
  auto plan = PlanPurge(
      *ParsePurgeRequest(R"({"urls": ["http://demo.test/images/a%20b.jpg?v=2", "http://demo.test/images/"],
      "prefixes": ["http://demo.test/docs/"], "tags": ["t"], "soft": true})"),
      *table, caller);
  REQUIRE(plan.ok());
  REQUIRE(plan->invalidations.size() == 4);
  CHECK(plan->invalidations[0].kind == cache::Invalidation::Kind::kObject);
  CHECK(plan->invalidations[0].name == "images/a b.jpg");
  CHECK(plan->invalidations[0].soft);
  CHECK(plan->invalidations[1].kind == cache::Invalidation::Kind::kListings);
  CHECK(plan->invalidations[1].name == "images/");
  CHECK(plan->invalidations[2].kind == cache::Invalidation::Kind::kPrefix);
  CHECK(plan->invalidations[2].name == "docs/");
  CHECK(plan->invalidations[3].kind == cache::Invalidation::Kind::kTag);
  CHECK(plan->invalidations[3].tag == ScopedTag("demo", "t"));
  CHECK(plan->accounts == std::set<std::string>{"AUTH_test"});
  auto all = PlanPurge(*ParsePurgeRequest(R"({"all": true})"), *table, caller);
  REQUIRE(all->invalidations.size() == 2);
  CHECK(all->invalidations[0].kind == cache::Invalidation::Kind::kTenant);
  CHECK(all->invalidations[1].kind == cache::Invalidation::Kind::kContainer);
}

TEST_CASE("nothing outside the caller's tenant is purged, and the whole request is refused") {
  auto table = Table();
  const vhost::Tenant* demo = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["demo.test"]})"), *table);
  const Caller caller{demo, false};
  auto cross = PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://demo.test/a", "http://shop.test/b"]})"),
                         *table, caller);
  CHECK(cross.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Message(cross.status()) == "\"http://shop.test/b\" is not served by tenant \"demo\"");
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"hosts": ["site.test"]})"), *table, caller).status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://demo.test/../etc"]})"), *table, caller)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"urls": ["ftp://demo.test/a"]})"), *table, caller).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // An admin may purge any tenant, and everything.
  auto everything = PlanPurge(*ParsePurgeRequest(R"({"all": true})"), *table, Caller{nullptr, true});
  REQUIRE(everything.ok());
  CHECK(everything->invalidations[0].kind == cache::Invalidation::Kind::kAll);
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://shop.test/b"]})"), *table, Caller{nullptr, true})
            .ok());
}

TEST_CASE("http tenants purge under the tenant's own key space") {
  auto table = Table();
  const vhost::Tenant* site = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["site.test"]})"), *table);
  auto plan = PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://site.test/page?x=1"]})"), *table,
                        Caller{site, false});
  REQUIRE(plan.ok());
  CHECK(plan->invalidations[0].account == vhost::kHttpAccount);
  CHECK(plan->invalidations[0].container == "site");
  CHECK(plan->invalidations[0].name == "/page");
  CHECK(plan->accounts.empty());
}

TEST_CASE("a key's request may name only its own tenant in \"tenant\"") {
  auto table = Table();
  const vhost::Tenant* demo = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["demo.test"]})"), *table);
  for (const char* body : {R"({"tags": ["t"], "tenant": "shop"})", R"({"all": true, "tenant": "shop"})",
                           R"({"urls": ["http://demo.test/a"], "tenant": "shop"})",
                           R"({"tags": ["t"], "tenant": "no-such-tenant"})"}) {
    INFO(body);
    auto plan = PlanPurge(*ParsePurgeRequest(body), *table, Caller{demo, false});
    CHECK(plan.status().code() == absl::StatusCode::kPermissionDenied);
  }
  CHECK(Message(
            PlanPurge(*ParsePurgeRequest(R"({"tags": ["t"], "tenant": "shop"})"), *table, Caller{demo, false})
                .status()) ==
        "\"tenant\": \"shop\" is not the caller's: the credentials are tenant \"demo\"'s");
  auto own =
      PlanPurge(*ParsePurgeRequest(R"({"tags": ["t"], "tenant": "demo"})"), *table, Caller{demo, false});
  REQUIRE(own.ok());
  CHECK(own->invalidations[0].tag == ScopedTag("demo", "t"));
  // An admin names any tenant (the API makes it the caller's tenant, by TenantOf).
  auto named = ParsePurgeRequest(R"({"tags": ["t"], "tenant": "shop"})");
  CHECK(PlanPurge(*named, *table, Caller{*TenantOf(*named, *table), true}).ok());
}

TEST_CASE("a Swift token on the Swift API host purges in the account its URLs name") {
  auto table = Table();
  auto request = ParsePurgeRequest(
      R"({"urls": ["http://swift.test/v1/AUTH_test/c/o.jpg", "http://swift.test/v1/AUTH_test/c"],
          "prefixes": ["http://swift.test/v1/AUTH_test/c/dir/"]})");
  const vhost::Tenant* api = *TenantOf(*request, *table);
  CHECK(api->name == "api");
  auto plan = PlanPurge(*request, *table, Caller{api, false, true});
  REQUIRE(plan.ok());
  REQUIRE(plan->invalidations.size() == 3);
  CHECK(plan->invalidations[0].kind == cache::Invalidation::Kind::kObject);
  CHECK(plan->invalidations[0].account == "AUTH_test");
  CHECK(plan->invalidations[0].container == "c");
  CHECK(plan->invalidations[0].name == "o.jpg");
  CHECK(plan->invalidations[1].kind == cache::Invalidation::Kind::kListings);
  CHECK(plan->invalidations[1].container == "c");
  CHECK(plan->invalidations[2].kind == cache::Invalidation::Kind::kPrefix);
  CHECK(plan->invalidations[2].name == "dir/");
  CHECK(plan->accounts == std::set<std::string>{"AUTH_test"});  // what the token is checked for
  // Two accounts: the token must be good for both.
  auto two =
      PlanPurge(*ParsePurgeRequest(
                    R"({"urls": ["http://swift.test/v1/AUTH_test/c/o", "http://swift.test/v1/AUTH_b/c/o"]})"),
                *table, Caller{api, false, true});
  CHECK(two->accounts == std::set<std::string>{"AUTH_b", "AUTH_test"});
  // Hosts, tags and all would reach every account the host serves: not with a token.
  for (const char* body : {R"({"hosts": ["swift.test"]})", R"({"tags": ["t"], "tenant": "api"})",
                           R"({"all": true, "tenant": "api"})"}) {
    INFO(body);
    CHECK(PlanPurge(*ParsePurgeRequest(body), *table, Caller{api, false, true}).status().code() ==
          absl::StatusCode::kPermissionDenied);
  }
  // Paths that are not an account's: never cached; an account's prefix names no container.
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://swift.test/auth/v1.0"]})"), *table,
                  Caller{api, false, true})
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(PlanPurge(*ParsePurgeRequest(R"({"prefixes": ["http://swift.test/v1/AUTH_test/"]})"), *table,
                          Caller{api, false, true})
                    .status()) ==
        "\"http://swift.test/v1/AUTH_test/\": a prefix names a container "
        "(/v1/ACCOUNT/CONTAINER/...)");
  // A token on a swift tenant is checked for the tenant's account, tags included; an http site
  // has no account a token could speak for.
  const vhost::Tenant* demo = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["demo.test"]})"), *table);
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"tags": ["t"]})"), *table, Caller{demo, false, true})->accounts ==
        std::set<std::string>{"AUTH_test"});
  const vhost::Tenant* site = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["site.test"]})"), *table);
  CHECK(
      PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://site.test/a"]})"), *table, Caller{site, false, true})
          .status()
          .code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("a key on the Swift API host purges what the host serves: one pinned account, or any") {
  auto table = Table();
  const vhost::Tenant* api = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["swift.test"]})"), *table);
  auto any = PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://swift.test/v1/AUTH_b/c/o"], "all": true})"),
                       *table, Caller{api, false});
  REQUIRE(any.ok());
  CHECK(any->invalidations[0].account == "AUTH_b");
  CHECK(any->invalidations[1].kind == cache::Invalidation::Kind::kTenant);
  const vhost::Tenant* one = *TenantOf(*ParsePurgeRequest(R"({"hosts": ["one.swift.test"]})"), *table);
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://one.swift.test/v1/AUTH_one/c/o"]})"), *table,
                  Caller{one, false})
            .ok());
  auto other = PlanPurge(*ParsePurgeRequest(R"({"urls": ["http://one.swift.test/v1/AUTH_b/c/o"]})"), *table,
                         Caller{one, false});
  CHECK(other.status().code() == absl::StatusCode::kPermissionDenied);
  // A token on the pinned host is checked for its account, whatever the request names.
  CHECK(PlanPurge(*ParsePurgeRequest(R"({"all": true})"), *table, Caller{one, false, true})->accounts ==
        std::set<std::string>{"AUTH_one"});
}

}  // namespace purge
