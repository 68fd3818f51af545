#include "purge-daemon/planner.h"

#include <doctest/doctest.h>

namespace purge {

namespace {

using cache::Invalidation;
using Kind = Invalidation::Kind;

bus::WriteEvent Event(std::string method, std::string container, std::string object, int status = 201) {
  bus::WriteEvent e;
  e.node = "edge-1";
  e.method = std::move(method);
  e.account = "AUTH_test";
  e.container = std::move(container);
  e.object = std::move(object);
  e.status = status;
  e.time_ms = 1;
  return e;
}

bool Has(const std::vector<Invalidation>& plan, Kind kind, std::string container, std::string name) {
  for (const Invalidation& i : plan) {
    if (i.kind == kind && i.container == container && i.name == name && i.account == "AUTH_test" && !i.soft) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("the directory an object is listed in") {
  CHECK(DirectoryOf("a/b/c.jpg") == "a/b/");
  CHECK(DirectoryOf("c.jpg") == "");
  CHECK(DirectoryOf("a/b/") == "a/");
  CHECK(DirectoryOf("a/") == "");
  CHECK(DirectoryOf("") == "");
  CHECK(DirectoryOf("/") == "");
  CHECK(DirectoryOf("a//b") == "a//");
}

TEST_CASE("an object written, posted to or deleted: the object and its directory's listings") {
  for (const char* method : {"PUT", "POST", "DELETE"}) {
    INFO(method);
    const auto plan = PlanWrite(Event(method, "public", "images/party/banya.jpg"));
    CHECK(plan.size() == 2);
    CHECK(Has(plan, Kind::kObject, "public", "images/party/banya.jpg"));
    CHECK(Has(plan, Kind::kListings, "public", "images/party/"));
  }
}

TEST_CASE("COPY invalidates the destination, in this or another account, the source is unchanged") {
  bus::WriteEvent copy = Event("COPY", "public", "a.jpg");
  copy.destination = "/backup/2024/a.jpg";
  auto plan = PlanWrite(copy);
  CHECK(plan.size() == 2);
  CHECK(Has(plan, Kind::kObject, "backup", "2024/a.jpg"));
  CHECK(Has(plan, Kind::kListings, "backup", "2024/"));
  copy.destination_account = "AUTH_other";
  plan = PlanWrite(copy);
  CHECK(plan[0].account == "AUTH_other");
  copy.destination = "no-object";
  CHECK(PlanWrite(copy).empty());
}

TEST_CASE("a container deleted, or written with an answer that never came: everything of it") {
  for (const auto& write : {std::pair("DELETE", 204), std::pair("PUT", 0), std::pair("POST", 0)}) {
    const auto& [method, status] = write;
    INFO(write.first, write.second);  // INFO captures by reference, which clang 14 refuses for a binding
    const auto plan = PlanWrite(Event(method, "public", "", status));
    CHECK(plan.size() == 2);
    CHECK(plan[0].kind == Kind::kContainer);
    CHECK(plan[1].kind == Kind::kListings);
    CHECK(plan[1].container.empty());
  }
}

TEST_CASE("a container PUT or POST purges what it changed, and only that") {
  auto with = [](const char* method, int status, const char* settings) {
    bus::WriteEvent e = Event(method, "public", "", status);
    e.settings = settings;
    return PlanWrite(e);
  };
  // A PUT of an existing container that sets nothing (swift upload's first request): nothing.
  CHECK(with("PUT", 202, "").empty());
  CHECK(with("POST", 204, "").empty());
  // A new container: the account's listings show it.
  auto created = with("PUT", 201, "");
  REQUIRE(created.size() == 1);
  CHECK((created[0].kind == Kind::kListings && created[0].container.empty()));
  // Metadata: the container's own listings (and HEAD) and the account's, not its objects.
  auto meta = with("POST", 204, "x-container-meta-color");
  REQUIRE(meta.size() == 2);
  CHECK(Has(meta, Kind::kListings, "public", ""));
  CHECK(Has(meta, Kind::kListings, "", ""));
  // What readers get of every object: read ACLs, CORS, staticweb, versioning.
  for (const char* setting :
       {"x-container-read", "x-remove-container-read", "x-container-meta-access-control-allow-origin",
        "x-container-meta-web-index", "x-versions-location", "x-remove-history-location",
        "x-container-meta-color,x-container-read"}) {
    INFO(setting);
    auto plan = with("POST", 204, setting);
    CHECK(Has(plan, Kind::kContainer, "public", ""));
    CHECK(Has(plan, Kind::kListings, "", ""));
  }
  CHECK(Has(with("PUT", 202, "x-container-read"), Kind::kContainer, "public", ""));
}

TEST_CASE("an account POST: its listings when it set something, else nothing") {
  bus::WriteEvent e = Event("POST", "", "", 204);
  CHECK(PlanWrite(e).empty());
  e.settings = "x-account-meta-k";
  const auto plan = PlanWrite(e);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].kind == Kind::kListings);
  e.settings.clear();
  e.status = 0;
  CHECK(PlanWrite(e).size() == 1);
}

TEST_CASE("a failed write plans nothing, one whose answer never came is planned as done") {
  CHECK(PlanWrite(Event("PUT", "public", "a", 401)).empty());
  CHECK(PlanWrite(Event("PUT", "public", "a", 500)).empty());
  CHECK(PlanWrite(Event("DELETE", "public", "a", 0)).size() == 2);
}

TEST_CASE("writes whose paths are in their body: bulk delete, archive extraction") {
  bus::WriteEvent bulk = Event("POST", "", "", 200);
  bulk.query = "bulk-delete";
  auto plan = PlanWrite(bulk);  // its body not read: too large
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].kind == Kind::kAll);
  CHECK(plan[0].soft);
  // Its body read: exactly what it named, decoded as Swift decodes it; nothing of other accounts.
  bulk.paths = "/public/a%20b.jpg\r\npublic/dir/c.txt\n\n/old-container\n%zz\n";
  plan = PlanWrite(bulk);
  CHECK(Has(plan, Kind::kObject, "public", "a b.jpg"));
  CHECK(Has(plan, Kind::kObject, "public", "dir/c.txt"));
  CHECK(Has(plan, Kind::kListings, "public", "dir/"));
  CHECK(Has(plan, Kind::kContainer, "old-container", ""));
  CHECK(std::none_of(plan.begin(), plan.end(),
                     [](const Invalidation& i) { return i.kind == Kind::kAll || i.account != "AUTH_test"; }));
  bus::WriteEvent extract = Event("PUT", "public", "", 201);
  extract.query = "extract-archive=tar.gz";
  plan = PlanWrite(extract);
  CHECK(Has(plan, Kind::kContainer, "public", ""));
}

TEST_CASE("a burst of uploads into one directory coalesces to one listings invalidation") {
  std::vector<Invalidation> plan;
  for (int i = 0; i < 1000; ++i) {
    for (Invalidation& inv : PlanWrite(Event("PUT", "public", "photos/2024/" + std::to_string(i) + ".jpg"))) {
      plan.push_back(std::move(inv));
    }
  }
  Coalesce(&plan);
  CHECK(plan.size() == 1001);
  CHECK(ListingsOf(plan).size() == 1);
  CHECK(ListingsOf(plan)[0].name == "photos/2024/");
}

TEST_CASE("coalescing drops what a container or an all invalidation covers") {
  std::vector<Invalidation> plan = {Invalidation::Object("AUTH_test", "public", "a", false),
                                    Invalidation::Listings("AUTH_test", "public", "", false),
                                    Invalidation::Container("AUTH_test", "public", false),
                                    Invalidation::Object("AUTH_test", "other", "a", false),
                                    Invalidation::Listings("AUTH_test", "", "", false)};
  Coalesce(&plan);
  CHECK(plan.size() == 3);
  CHECK_FALSE(Has(plan, Kind::kObject, "public", "a"));
  CHECK(Has(plan, Kind::kObject, "other", "a"));
  plan.push_back(Invalidation::All(false));
  Coalesce(&plan);
  CHECK(plan.size() == 1);
  CHECK(plan[0].kind == Kind::kAll);
}

TEST_CASE("tags are scoped by tenant") {
  CHECK(ScopedTag("demo", "product-42") == "demo\x1fproduct-42");
  CHECK(ScopedTag("a", "b:c") != ScopedTag("a:b", "c"));
}

TEST_CASE("a write on a named cluster invalidates that cluster's account only") {
  bus::WriteEvent put = Event("PUT", "public", "a.jpg");
  put.cluster = "east";
  for (const Invalidation& i : PlanWrite(put)) CHECK(i.account == "east/AUTH_test");
  bus::WriteEvent copy = Event("COPY", "public", "a.jpg");
  copy.cluster = "east";
  copy.destination = "backup/a.jpg";
  copy.destination_account = "AUTH_other";
  CHECK(PlanWrite(copy)[0].account == "east/AUTH_other");
  // The default cluster keeps the plain account, as entries stored before clusters had names.
  CHECK(PlanWrite(Event("PUT", "public", "a.jpg"))[0].account == "AUTH_test");
}

}  // namespace purge
