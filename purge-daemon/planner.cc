#include "purge-daemon/planner.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "vhost-config/path_mapping.h"

namespace purge {

namespace {

using cache::Invalidation;

void PlanObject(std::string account, std::string container, std::string object,
                std::vector<Invalidation>* out) {
  std::string directory(DirectoryOf(object));
  out->push_back(Invalidation::Object(account, container, std::move(object), false));
  out->push_back(
      Invalidation::Listings(std::move(account), std::move(container), std::move(directory), false));
}

// Whether a container setting changes what anonymous readers get of its objects: who may read
// them (ACL), CORS answers, staticweb pages, versioning. Other metadata shows in the container's
// own listings and HEAD only. `settings` is bus::SettingHeaders' list.
bool ChangesObjectReads(std::string_view settings) {
  while (!settings.empty()) {
    const size_t comma = settings.find(',');
    std::string_view name = settings.substr(0, comma);
    settings = comma == std::string_view::npos ? std::string_view() : settings.substr(comma + 1);
    if (name.starts_with("x-")) name.remove_prefix(2);
    if (name.starts_with("remove-")) name.remove_prefix(7);
    for (std::string_view prefix : {"container-read", "container-meta-access-control-", "container-meta-web-",
                                    "versions-", "history-"}) {
      if (name.starts_with(prefix)) return true;
    }
  }
  return false;
}

auto Tie(const Invalidation& i) {
  return std::tie(i.kind, i.soft, i.account, i.container, i.name, i.tenant, i.tag);
}

}  // namespace

std::string_view DirectoryOf(std::string_view object_name) {
  const size_t slash = object_name.rfind('/', object_name.empty() ? 0 : object_name.size() - 2);
  // "a/b/" (a directory marker object) is shown in "a/", like any other name in "a/".
  if (slash == std::string_view::npos || object_name.size() < 2) return {};
  return object_name.substr(0, slash + 1);
}

std::vector<Invalidation> PlanWrite(const bus::WriteEvent& e) {
  std::vector<Invalidation> out;
  // 0: the origin's answer never came; the write may have happened, so it is planned anyway.
  if (e.status != 0 && (e.status < 200 || e.status >= 300)) return out;
  // The cache knows an account by its cluster too: equal names on two clusters are two accounts.
  const std::string account = vhost::CacheAccount(e.cluster, e.account);
  if (vhost::QueryHasParameter(e.query, "bulk-delete")) {
    if (e.paths.empty()) {
      // The deleted paths were not read (a body too large): everything is revalidated once
      // (soft), and what was deleted is then a 404.
      out.push_back(Invalidation::All(true));
      return out;
    }
    // Each line names "/container/object" (or a container), URL-encoded, as Swift's bulk reads it.
    std::string_view rest_of_body = e.paths;
    while (!rest_of_body.empty()) {
      const size_t newline = std::min(rest_of_body.find('\n'), rest_of_body.size());
      std::string_view line = rest_of_body.substr(0, newline);
      rest_of_body.remove_prefix(std::min(newline + 1, rest_of_body.size()));
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
      absl::StatusOr<std::string> path = vhost::PercentDecode(line, false);
      if (!path.ok()) continue;  // Swift deletes nothing for it either
      std::string_view name = *path;
      while (name.starts_with("/") || name.starts_with(" ")) name.remove_prefix(1);
      const size_t slash = name.find('/');
      if (name.empty()) continue;
      if (slash == std::string_view::npos || slash + 1 == name.size()) {
        out.push_back(Invalidation::Container(account, std::string(name.substr(0, slash)), false));
        out.push_back(Invalidation::Listings(account, "", "", false));
      } else {
        PlanObject(account, std::string(name.substr(0, slash)), std::string(name.substr(slash + 1)), &out);
      }
    }
    return out;
  }
  if (vhost::QueryHasParameter(e.query, "extract-archive")) {
    // Many new objects in one container (or many containers, at the account).
    out.push_back(e.container.empty() ? Invalidation::All(true)
                                      : Invalidation::Container(account, e.container, false));
    out.push_back(Invalidation::Listings(account, "", "", false));
    return out;
  }
  if (e.method == "COPY") {
    std::string_view destination = e.destination;
    while (destination.starts_with("/")) destination.remove_prefix(1);
    const size_t slash = destination.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == destination.size()) return out;
    PlanObject(
        e.destination_account.empty() ? account : vhost::CacheAccount(e.cluster, e.destination_account),
        std::string(destination.substr(0, slash)), std::string(destination.substr(slash + 1)), &out);
    return out;
  }
  if (!e.object.empty()) {
    PlanObject(account, e.container, e.object, &out);
  } else if (!e.container.empty()) {
    // Purge what changed, and only that: a PUT of an existing container (202) that sets nothing
    // changed nothing (swift upload and copy send one before every write), and metadata shows
    // only in the container's listings. An answer that never came may have changed anything.
    const bool unknown = e.status == 0 || e.method == "DELETE";
    if (unknown || ChangesObjectReads(e.settings)) {
      out.push_back(Invalidation::Container(account, e.container, false));
    } else if (!e.settings.empty()) {
      out.push_back(Invalidation::Listings(account, e.container, "", false));
    }
    if (unknown || !e.settings.empty() || (e.method == "PUT" && e.status == 201)) {
      out.push_back(Invalidation::Listings(account, "", "", false));
    }
  } else if (e.status == 0 || !e.settings.empty()) {
    out.push_back(Invalidation::Listings(account, "", "", false));
  }
  return out;
}

void Coalesce(std::vector<Invalidation>* invalidations) {
  auto& list = *invalidations;
  std::sort(list.begin(), list.end(),
            [](const Invalidation& a, const Invalidation& b) { return Tie(a) < Tie(b); });
  list.erase(std::unique(list.begin(), list.end(),
                         [](const Invalidation& a, const Invalidation& b) { return Tie(a) == Tie(b); }),
             list.end());
  const bool hard_all = std::any_of(list.begin(), list.end(), [](const Invalidation& i) {
    return i.kind == Invalidation::Kind::kAll && !i.soft;
  });
  if (hard_all) {
    list = {Invalidation::All(false)};
    return;
  }
  absl::flat_hash_set<std::pair<std::string, std::string>> containers;
  for (const Invalidation& i : list) {
    if (i.kind == Invalidation::Kind::kContainer && !i.soft) containers.emplace(i.account, i.container);
  }
  if (containers.empty()) return;
  std::erase_if(list, [&](const Invalidation& i) {
    const bool within = i.kind == Invalidation::Kind::kObject || i.kind == Invalidation::Kind::kPrefix ||
                        (i.kind == Invalidation::Kind::kListings && !i.container.empty());
    return within && containers.contains(std::make_pair(i.account, i.container));
  });
}

std::string ScopedTag(std::string_view tenant, std::string_view tag) {
  // A separator no tenant name or tag can hold (the loader and headers refuse control
  // characters), so "a" + "b:c" and "a:b" + "c" stay apart.
  std::string scoped(tenant);
  scoped += '\x1f';
  scoped += tag;
  return scoped;
}

std::vector<Invalidation> ListingsOf(const std::vector<Invalidation>& invalidations) {
  std::vector<Invalidation> out;
  for (const Invalidation& i : invalidations) {
    if (i.kind == Invalidation::Kind::kListings) out.push_back(i);
  }
  return out;
}

}  // namespace purge
