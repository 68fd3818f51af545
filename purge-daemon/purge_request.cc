#include "purge-daemon/purge_request.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "purge-daemon/planner.h"
#include "vhost-config/path_mapping.h"

namespace purge {

namespace {

using cache::Invalidation;
using nlohmann::json;

struct ParsedUrl {
  std::string_view host;
  std::string_view target;  // path and query
};

absl::StatusOr<ParsedUrl> ParseUrl(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(url), "\" is not an http:// or https:// URL"));
  }
  const size_t slash = rest.find('/');
  ParsedUrl parsed{rest.substr(0, slash), slash == std::string_view::npos ? "/" : rest.substr(slash)};
  if (parsed.host.empty())
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(url), "\" has no host"));
  return parsed;
}

absl::StatusOr<const vhost::Tenant*> TenantOfHost(std::string_view host, const vhost::TenantTable& tenants) {
  const vhost::Tenant* tenant = tenants.FindByHost(host);
  if (tenant == nullptr) {
    return absl::NotFoundError(absl::StrCat("no tenant serves host \"", std::string(host), "\""));
  }
  return tenant;
}

absl::Status Mine(const vhost::Tenant* tenant, const Caller& caller, std::string_view what) {
  if (caller.admin || tenant == caller.tenant) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(std::string(what), " is not served by tenant \"", caller.tenant->name, "\""));
}

// Everything cached for a tenant: what it filled, and what it serves of its container (all of
// it, or only its prefix: the rest may be another tenant's).
void WholeTenant(const vhost::Tenant& tenant, bool soft, PurgePlan* plan) {
  plan->invalidations.push_back(Invalidation::Tenant(tenant.name, soft));
  const vhost::Origin& origin = tenant.origin;
  if (origin.kind == vhost::OriginKind::kSwift && !origin.container_from_path) {
    const std::string account = vhost::CacheAccount(origin.cluster, origin.account);
    plan->invalidations.push_back(origin.prefix.empty()
                                      ? Invalidation::Container(account, origin.container, soft)
                                      : Invalidation::Prefix(account, origin.container, origin.prefix, soft));
    plan->accounts.insert(origin.account);
  }
}

absl::Status ReadStrings(const json& body, const char* field, std::vector<std::string>* out) {
  auto it = body.find(field);
  if (it == body.end()) return absl::OkStatus();
  if (!it->is_array())
    return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be an array of strings"));
  for (const json& item : *it) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", field, "\" must be an array of non-empty strings"));
    }
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PurgeRequest> ParsePurgeRequest(std::string_view text) {
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!body.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    static const std::set<std::string> kFields = {"urls", "prefixes", "hosts", "tags",
                                                  "all",  "soft",     "tenant"};
    if (!kFields.contains(it.key())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field \"", it.key(), "\" (expected urls, prefixes, hosts, tags, all, soft, tenant)"));
    }
  }
  PurgeRequest request;
  for (auto [field, target] : {std::pair<const char*, std::vector<std::string>*>{"urls", &request.urls},
                               {"prefixes", &request.prefixes},
                               {"hosts", &request.hosts},
                               {"tags", &request.tags}}) {
    if (absl::Status status = ReadStrings(body, field, target); !status.ok()) return status;
  }
  for (auto [field, target] : {std::pair<const char*, bool*>{"all", &request.all}, {"soft", &request.soft}}) {
    if (auto it = body.find(field); it != body.end()) {
      if (!it->is_boolean())
        return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be true or false"));
      *target = it->get<bool>();
    }
  }
  if (auto it = body.find("tenant"); it != body.end()) {
    if (!it->is_string()) return absl::InvalidArgumentError("\"tenant\" must be a string");
    request.tenant = it->get<std::string>();
  }
  const size_t items =
      request.urls.size() + request.prefixes.size() + request.hosts.size() + request.tags.size();
  if (items == 0 && !request.all) {
    return absl::InvalidArgumentError("nothing to purge: give urls, prefixes, hosts, tags or \"all\": true");
  }
  if (items > kMaxPurgeItems) {
    return absl::InvalidArgumentError(absl::StrCat(items, " items in one request; at most ", kMaxPurgeItems));
  }
  return request;
}

absl::StatusOr<const vhost::Tenant*> TenantOf(const PurgeRequest& request,
                                              const vhost::TenantTable& tenants) {
  const vhost::Tenant* found = nullptr;
  auto take = [&](const vhost::Tenant* tenant) -> absl::Status {
    if (found != nullptr && found != tenant) {
      return absl::InvalidArgumentError("the request names several tenants; send one request per tenant");
    }
    found = tenant;
    return absl::OkStatus();
  };
  for (const std::vector<std::string>* list : {&request.urls, &request.prefixes}) {
    for (const std::string& url : *list) {
      absl::StatusOr<ParsedUrl> parsed = ParseUrl(url);
      if (!parsed.ok()) return parsed.status();
      absl::StatusOr<const vhost::Tenant*> tenant = TenantOfHost(parsed->host, tenants);
      if (!tenant.ok()) return tenant.status();
      if (absl::Status status = take(*tenant); !status.ok()) return status;
    }
  }
  for (const std::string& host : request.hosts) {
    absl::StatusOr<const vhost::Tenant*> tenant = TenantOfHost(host, tenants);
    if (!tenant.ok()) return tenant.status();
    if (absl::Status status = take(*tenant); !status.ok()) return status;
  }
  if (!request.tenant.empty()) {
    const vhost::Tenant* named = nullptr;
    for (const vhost::Tenant& t : tenants.tenants) {
      if (t.name == request.tenant) named = &t;
    }
    if (named == nullptr)
      return absl::NotFoundError(absl::StrCat("no tenant is named \"", request.tenant, "\""));
    if (absl::Status status = take(named); !status.ok()) return status;
  }
  if (found == nullptr)
    return absl::InvalidArgumentError("say which tenant: give its URLs, hosts or \"tenant\"");
  return found;
}

absl::StatusOr<PurgePlan> PlanPurge(const PurgeRequest& request, const vhost::TenantTable& tenants,
                                    const Caller& caller) {
  PurgePlan plan;
  // A key names its tenant: `tenant` may only repeat it (for an unknown name as for another
  // tenant's, so the answer tells nothing of which tenants exist).
  if (!caller.admin && !request.tenant.empty() && request.tenant != caller.tenant->name) {
    return absl::PermissionDeniedError(absl::StrCat("\"tenant\": \"", request.tenant,
                                                    "\" is not the caller's: the credentials are tenant \"",
                                                    caller.tenant->name, "\"'s"));
  }
  if (caller.token) {
    const vhost::Origin& origin = caller.tenant->origin;
    if (origin.kind == vhost::OriginKind::kHttp) {
      return absl::PermissionDeniedError(
          absl::StrCat("tenant \"", caller.tenant->name,
                       "\" is not in Swift: a Swift token cannot purge it; use its purge key"));
    }
    if (origin.account.empty() && (!request.hosts.empty() || !request.tags.empty() || request.all)) {
      return absl::PermissionDeniedError(
          absl::StrCat("tenant \"", caller.tenant->name,
                       "\" serves every Swift account: a Swift token purges the URLs and prefixes of its "
                       "account (/v1/ACCOUNT/...); hosts, tags and all need the tenant's purge key"));
    }
    if (!origin.account.empty()) plan.accounts.insert(origin.account);
  }
  for (const std::vector<std::string>* list : {&request.urls, &request.prefixes}) {
    const bool prefix = list == &request.prefixes;
    for (const std::string& url : *list) {
      absl::StatusOr<ParsedUrl> parsed = ParseUrl(url);
      if (!parsed.ok()) return parsed.status();
      absl::StatusOr<const vhost::Tenant*> tenant = TenantOfHost(parsed->host, tenants);
      if (!tenant.ok()) return tenant.status();
      if (absl::Status status = Mine(*tenant, caller, absl::StrCat("\"", url, "\"")); !status.ok())
        return status;
      absl::StatusOr<vhost::OriginTarget> target = vhost::MapRequest(**tenant, parsed->target);
      if (!target.ok()) {
        return absl::Status(target.status().code(),
                            absl::StrCat("\"", url, "\": ", std::string(target.status().message())));
      }
      if (target->pass) return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" is never cached"));
      // An account's prefix would reach its account listings only: say so rather than purge little.
      if (prefix && target->container.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", url, "\": a prefix names a container (/v1/ACCOUNT/CONTAINER/...)"));
      }
      const std::string account = vhost::CacheAccount((*tenant)->origin.cluster, target->account);
      if (prefix) {
        plan.invalidations.push_back(
            Invalidation::Prefix(account, target->container, target->name, request.soft));
      } else if (target->listing) {
        plan.invalidations.push_back(
            Invalidation::Listings(account, target->container, target->name, request.soft));
      } else {
        plan.invalidations.push_back(
            Invalidation::Object(account, target->container, target->name, request.soft));
      }
      if ((*tenant)->origin.kind != vhost::OriginKind::kHttp) plan.accounts.insert(target->account);
    }
  }
  for (const std::string& host : request.hosts) {
    absl::StatusOr<const vhost::Tenant*> tenant = TenantOfHost(host, tenants);
    if (!tenant.ok()) return tenant.status();
    if (absl::Status status = Mine(*tenant, caller, absl::StrCat("host \"", host, "\"")); !status.ok())
      return status;
    WholeTenant(**tenant, request.soft, &plan);
  }
  if (!request.tags.empty() || request.all) {
    if (caller.admin && request.all && request.tenant.empty()) {
      plan.invalidations.push_back(Invalidation::All(request.soft));
    } else {
      if (caller.tenant == nullptr) {
        return absl::InvalidArgumentError("tags and \"all\" need a tenant: give \"tenant\"");
      }
      for (const std::string& tag : request.tags) {
        plan.invalidations.push_back(Invalidation::Tag(ScopedTag(caller.tenant->name, tag), request.soft));
      }
      if (request.all) WholeTenant(*caller.tenant, request.soft, &plan);
    }
  }
  // What a token may purge is what Swift says of these accounts: with none, it would be unchecked.
  if (caller.token && plan.accounts.empty())
    return absl::PermissionDeniedError("a Swift token's purge must name a Swift account");
  return plan;
}

}  // namespace purge
