// Whatever a client sends the purge API, parsing gives a request or an error with a message, and a
// plan never reaches outside what the caller may purge: a key's stays in its tenant (its account,
// its tags), a token's in the accounts it is checked for, and only an admin purges everything.
// The first byte picks the input's form: a JSON body, or one URL (fed as "urls" and "prefixes").
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "purge-daemon/planner.h"
#include "purge-daemon/purge_request.h"
#include "vhost-config/path_mapping.h"

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
origin.prefix = "site/"
cache.listings = true
[[tenant]]
name = "files"
domains = ["files.test"]
origin.account = "AUTH_test"
origin.container_from_path = true
[[tenant]]
name = "api"
domains = ["swift.test"]
origin.kind = "swift-api"
[[tenant]]
name = "api-one"
domains = ["one.swift.test"]
origin.kind = "swift-api"
origin.account = "AUTH_one"
[[tenant]]
name = "site"
domains = ["site.test"]
origin.kind = "http"
origin.url = "http://site:81"
)",
                                     "fuzz.toml");
  if (!table.ok()) std::abort();
  return *table;
}

bool InContainer(const cache::Invalidation& inv) {
  using Kind = cache::Invalidation::Kind;
  return inv.kind == Kind::kObject || inv.kind == Kind::kListings || inv.kind == Kind::kPrefix ||
         inv.kind == Kind::kContainer;
}

void CheckPlan(const purge::PurgeRequest& request, const vhost::TenantTable& table,
               const purge::Caller& caller) {
  absl::StatusOr<purge::PurgePlan> plan = purge::PlanPurge(request, table, caller);
  if (!plan.ok()) {
    if (plan.status().message().empty()) std::abort();
    return;
  }
  if (caller.admin) return;
  const vhost::Origin& origin = caller.tenant->origin;
  if (caller.token && plan->accounts.empty()) std::abort();
  for (const cache::Invalidation& inv : plan->invalidations) {
    switch (inv.kind) {
      case cache::Invalidation::Kind::kAll:
        std::abort();
      case cache::Invalidation::Kind::kTenant:
        if (inv.tenant != caller.tenant->name) std::abort();
        break;
      case cache::Invalidation::Kind::kTag:
        if (!inv.tag.starts_with(purge::ScopedTag(caller.tenant->name, ""))) std::abort();
        break;
      default:
        break;
    }
    if (!InContainer(inv)) continue;
    if (origin.kind == vhost::OriginKind::kHttp) {
      if (inv.account != vhost::kHttpAccount || inv.container != caller.tenant->name) std::abort();
    } else if (!origin.account.empty() && inv.account != origin.account) {
      std::abort();
    }
    if (caller.token && !plan->accounts.contains(inv.account)) std::abort();
    if (origin.kind == vhost::OriginKind::kSwift && !origin.container_from_path &&
        (inv.container != origin.container || !inv.name.starts_with(origin.prefix))) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const vhost::TenantTable> table = Table();
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string body;
  if (data[0] % 2 == 0) {
    body.assign(input);
  } else {
    const std::string url(input);
    body = nlohmann::json{{"urls", {url}}, {"prefixes", {url}}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  absl::StatusOr<purge::PurgeRequest> request = purge::ParsePurgeRequest(body);
  if (!request.ok()) {
    if (request.status().message().empty()) std::abort();
    return 0;
  }
  CheckPlan(*request, *table, purge::Caller{nullptr, true});
  absl::StatusOr<const vhost::Tenant*> named = purge::TenantOf(*request, *table);
  if (named.ok()) {
    CheckPlan(*request, *table, purge::Caller{*named, true});
    CheckPlan(*request, *table, purge::Caller{*named, false, true});
  }
  // Every tenant's key, whatever the request names.
  for (const vhost::Tenant& tenant : table->tenants)
    CheckPlan(*request, *table, purge::Caller{&tenant, false});
  return 0;
}
