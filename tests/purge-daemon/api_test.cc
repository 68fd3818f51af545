// The public purge API over HTTP against a real redis-server: what a tenant may purge, what it
// may not, and what a job's status says.
#include "purge-daemon/api.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "edge/admin.h"
#include "purge-daemon/bus/protocol.h"
#include "purge-daemon/planner.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"
#include "vhost-config/purge_key.h"

namespace purge {

namespace {

using testing_support::HttpGet;
using testing_support::HttpPost;
using testing_support::HttpResponse;
using testing_support::RedisServer;

std::shared_ptr<const vhost::TenantTable> Table(const std::string& swift_url) {
  auto table = vhost::LoadTenantText(absl::StrCat(R"(
[defaults]
origin.url = ")",
                                                  swift_url, R"("
[[tenant]]
name = "demo"
domains = ["demo.test"]
origin.account = "AUTH_test"
origin.container = "public"
purge.key_hashes = [")",
                                                  vhost::HashPurgeKey("demo-key"), R"("]
purge.rate = 1
purge.burst = 3
[[tenant]]
name = "shop"
domains = ["shop.test"]
origin.account = "AUTH_shop"
origin.container = "www"
purge.key_hashes = [")",
                                                  vhost::HashPurgeKey("shop-key"), R"("]
[[tenant]]
name = "api"
domains = ["swift.test"]
origin.kind = "swift-api"
purge.key_hashes = [")",
                                                  vhost::HashPurgeKey("api-key"), R"("]
)"),
                                     "t.toml");
  REQUIRE(table.ok());
  return *table;
}

struct Daemon {
  // By default its tenants' Swift cannot be reached. `adjust` changes the API's options.
  explicit Daemon(const std::string& swift_url = "http://127.0.0.1:1",
                  const std::function<void(ApiOptions&)>& adjust = {})
      : tenants(Table(swift_url)) {
    ApiOptions options;
    options.redis_host = "127.0.0.1";
    options.redis_port = redis.port();
    options.admin_key_hashes = {vhost::HashPurgeKey("admin-key")};
    options.max_body_bytes = 1024;
    if (adjust) adjust(options);
    api = std::make_unique<PurgeApi>(options, tenants, 1,
                                     [this] { return absl::Now() + absl::Seconds(offset.load()); });
    edge::http::ServerOptions server_options;
    server_options.workers = 1;
    server = std::make_unique<edge::http::Server>(server_options, *api);
    REQUIRE(server->Start().ok());
    // The admin listener, as main.cc makes it.
    admin_handler = std::make_unique<edge::AdminHandler>([this] { return api->Metrics(); },
                                                         [this] { return api->UnhealthyReason(); });
    admin = std::make_unique<edge::http::Server>(server_options, *admin_handler);
    REQUIRE(admin->Start().ok());
  }
  ~Daemon() {
    admin->Stop();
    server->Stop();
  }
  HttpResponse Post(const std::string& body, const std::string& key) {
    std::vector<std::string> headers;
    if (!key.empty()) headers.push_back("Authorization: Bearer " + key);
    return HttpPost(Url("/v1/purge"), body, headers);
  }
  std::string Url(const std::string& path) { return absl::StrCat("http://127.0.0.1:", server->port(), path); }
  std::string AdminUrl(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", admin->port(), path);
  }
  int64_t LogLength() { return redis.Connect().Command({"XLEN", std::string(bus::kPurgeLog)})->integer; }
  std::string Error(const HttpResponse& r) { return nlohmann::json::parse(r.body).value("error", ""); }

  RedisServer redis;
  vhost::TenantSnapshot tenants;
  std::atomic<int> offset{0};  // seconds the API's clock is ahead (Advance)
  std::unique_ptr<PurgeApi> api;
  std::unique_ptr<edge::http::Server> server;
  std::unique_ptr<edge::AdminHandler> admin_handler;
  std::unique_ptr<edge::http::Server> admin;
};

// A Swift that answers token checks (HEAD of an account: 204 for the token "good", else 401) only
// once the test lets it, and counts them.
class HeldSwift : public edge::http::Handler {
 public:
  HeldSwift() : server_(Options(), *this) { REQUIRE(server_.Start().ok()); }
  ~HeldSwift() {
    Release();
    server_.Stop();
  }
  void OnRequest(edge::http::Exchange& exchange) override {
    ++requests;
    {
      absl::MutexLock lock(&mu_);
      targets_.emplace_back(exchange.request().target);
    }
    if (!arrived_.HasBeenNotified()) arrived_.Notify();
    if (!released_.WaitForNotificationWithTimeout(absl::Seconds(10))) held_too_long = true;
    exchange.Reply(exchange.request().Find("x-auth-token") == "good" ? 204 : 401, "text/plain", "");
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_.port()); }
  void WaitForCheck() { arrived_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  void Release() {
    if (!released_.HasBeenNotified()) released_.Notify();
  }

  std::vector<std::string> targets() {
    absl::MutexLock lock(&mu_);
    return targets_;
  }

  std::atomic<int> requests{0};
  std::atomic<bool> held_too_long{false};

 private:
  static edge::http::ServerOptions Options() {
    edge::http::ServerOptions options;
    options.workers = 1;
    return options;
  }
  absl::Notification arrived_, released_;
  absl::Mutex mu_;
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mu_);  // what was asked, in order
  edge::http::Server server_;
};

}  // namespace

TEST_CASE("a token check waits for Swift on the side: the API answers other requests meanwhile") {
  HeldSwift swift;
  Daemon d(swift.url());  // one API worker
  HttpResponse token_purge;
  std::thread waiting([&] {
    token_purge = HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/a"]})", {"X-Auth-Token: good"});
  });
  swift.WaitForCheck();
  // Swift holds its answer; the one API thread still takes a key purge.
  CHECK(d.Post(R"({"urls": ["http://demo.test/b"]})", "demo-key").status == 202);
  swift.Release();
  waiting.join();
  CHECK_FALSE(swift.held_too_long);  // the key purge was answered while Swift held the check
  CHECK(token_purge.status == 202);
  CHECK(d.LogLength() == 2);
  const std::string job = nlohmann::json::parse(token_purge.body).value("id", "");
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: good"}).status == 200);
  // Remembered: the same token is not checked again, and a refused one is refused.
  CHECK(HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/c"]})", {"X-Auth-Token: good"}).status ==
        202);
  CHECK(swift.requests == 1);
  CHECK(HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/c"]})", {"X-Auth-Token: bad"}).status ==
        403);
  CHECK(swift.requests == 2);
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: bad"}).status == 404);  // to it, no such job
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: other"}).status == 404);
  CHECK(swift.requests == 3);
}

TEST_CASE("a tenant's purge is accepted once in the log, and its job shows each edge's progress") {
  Daemon d;
  HttpResponse accepted = d.Post(R"({"urls": ["http://demo.test/a.jpg"]})", "demo-key");
  REQUIRE(accepted.status == 202);
  const auto job = nlohmann::json::parse(accepted.body);
  CHECK(job["invalidations"] == 1);
  CHECK(d.LogLength() == 1);
  // Two edges report; one is past the job's entry, one is not yet.
  auto redis = d.redis.Connect();
  const int64_t now = absl::ToUnixMillis(absl::Now());
  const auto log_id = *bus::ParseStreamId(job["log_id"].get<std::string>());
  REQUIRE(redis
              .Command({"HSET", std::string(bus::kEdgesHash), "edge-1",
                        bus::ProgressJson({"edge-1", log_id, now, true}), "edge-2",
                        bus::ProgressJson({"edge-2", {0, 0}, now, true})})
              .ok());
  const std::string status_url = d.Url("/v1/purge/" + job["id"].get<std::string>());
  HttpResponse status = HttpGet(status_url, {"Authorization: Bearer demo-key"});
  REQUIRE(status.status == 200);
  auto state = nlohmann::json::parse(status.body);
  CHECK(state["state"] == "pending");
  CHECK(state["edges"].size() == 2);
  REQUIRE(redis
              .Command({"HSET", std::string(bus::kEdgesHash), "edge-2",
                        bus::ProgressJson({"edge-2", log_id, now, true})})
              .ok());
  CHECK(nlohmann::json::parse(HttpGet(status_url, {"Authorization: Bearer demo-key"}).body)["state"] ==
        "done");
  // Another tenant does not see it.
  CHECK(HttpGet(status_url, {"Authorization: Bearer shop-key"}).status == 404);
}

TEST_CASE("a purge naming a host or a tenant nobody serves is a 404, and nothing is purged") {
  Daemon d;
  HttpResponse host = d.Post(R"({"urls": ["http://nowhere.test/a"]})", "admin-key");
  CHECK(host.status == 404);
  CHECK(d.Error(host) == "no tenant serves host \"nowhere.test\"");
  HttpResponse hosts = d.Post(R"({"hosts": ["nowhere.test"]})", "admin-key");
  CHECK(hosts.status == 404);
  // An admin naming a tenant that does not exist: unknown, not "say which tenant".
  for (const char* body :
       {R"({"tenant": "nobody", "all": true})", R"({"tenant": "nobody", "tags": ["t"]})"}) {
    CAPTURE(body);
    HttpResponse tenant = d.Post(body, "admin-key");
    CHECK(tenant.status == 404);
    CHECK(d.Error(tenant) == "no tenant is named \"nobody\"");
  }
  CHECK(d.LogLength() == 0);
}

TEST_CASE("an edge silent past edges.live_timeout is down and holds no job up, jobs are kept for jobs.ttl") {
  Daemon d("http://127.0.0.1:1", [](ApiOptions& options) {
    options.edge_live_timeout = absl::Seconds(2);
    options.job_ttl = absl::Seconds(90);
  });
  HttpResponse accepted = d.Post(R"({"urls": ["http://demo.test/a.jpg"]})", "demo-key");
  REQUIRE(accepted.status == 202);
  const std::string id = nlohmann::json::parse(accepted.body)["id"].get<std::string>();
  auto redis = d.redis.Connect();
  const int64_t ttl = redis.Command({"TTL", bus::JobKey(id)})->integer;
  CHECK(ttl > 80);
  CHECK(ttl <= 90);
  // Neither edge has applied it; one was last heard of 1 s ago, the other 3 s ago.
  const int64_t now = absl::ToUnixMillis(absl::Now());
  REQUIRE(redis
              .Command({"HSET", std::string(bus::kEdgesHash), "recent",
                        bus::ProgressJson({"recent", {0, 0}, now - 1000, true}), "silent",
                        bus::ProgressJson({"silent", {0, 0}, now - 3000, true})})
              .ok());
  const std::string status_url = d.Url("/v1/purge/" + id);
  auto state = nlohmann::json::parse(HttpGet(status_url, {"Authorization: Bearer demo-key"}).body);
  CHECK(state["state"] == "pending");  // the recent edge
  std::map<std::string, std::string> edges;
  for (const auto& edge : state["edges"]) edges[edge["node"]] = edge["state"];
  CHECK(edges["recent"] == "pending");
  CHECK(edges["silent"] == "down");
  REQUIRE(redis.Command({"HDEL", std::string(bus::kEdgesHash), "recent"}).ok());
  CHECK(nlohmann::json::parse(HttpGet(status_url, {"Authorization: Bearer demo-key"}).body)["state"] ==
        "done");  // only a down edge is left: it does not hold the job up
}

TEST_CASE("the log holds what was asked: soft only when asked, tags scoped to the caller's tenant") {
  Daemon d;
  REQUIRE(d.Post(R"({"urls": ["http://demo.test/a.jpg"], "soft": true})", "demo-key").status == 202);
  REQUIRE(d.Post(R"({"urls": ["http://demo.test/a.jpg"]})", "demo-key").status == 202);
  REQUIRE(d.Post(R"({"tags": ["x"]})", "demo-key").status == 202);
  auto entries =
      bus::StreamEntries(*d.redis.Connect().Command({"XRANGE", std::string(bus::kPurgeLog), "-", "+"}));
  REQUIRE(entries.size() == 3);
  std::vector<cache::Invalidation> invalidations;
  for (const bus::StreamEntry& entry : entries) {
    auto parsed = bus::ParseLogEntry(entry.fields);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->invalidations.size() == 1);
    invalidations.push_back(parsed->invalidations[0]);
  }
  CHECK(invalidations[0].kind == cache::Invalidation::Kind::kObject);
  CHECK(invalidations[0].soft);
  CHECK_FALSE(invalidations[1].soft);
  CHECK(invalidations[2].kind == cache::Invalidation::Kind::kTag);
  CHECK(invalidations[2].tag == ScopedTag("demo", "x"));  // as the edges store the origin's tags
  CHECK_FALSE(invalidations[2].soft);
}

TEST_CASE("refusals: no or bad credentials, another tenant's URL, bad bodies, nothing is purged") {
  Daemon d;
  HttpResponse none = d.Post(R"({"urls": ["http://demo.test/a"]})", "");
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate") == "Bearer");
  CHECK(d.Post(R"({"urls": ["http://demo.test/a"]})", "forged-key").status == 401);
  HttpResponse cross = d.Post(R"({"urls": ["http://demo.test/a", "http://shop.test/b"]})", "demo-key");
  CHECK(cross.status == 403);
  CHECK(d.Error(cross) == "\"http://shop.test/b\" is not served by tenant \"demo\"");
  CHECK(d.Post(R"({"hosts": ["shop.test"]})", "demo-key").status == 403);
  HttpResponse other_tenant = d.Post(R"({"tags": ["x"], "tenant": "shop"})", "demo-key");
  CHECK(other_tenant.status == 403);
  CHECK(d.Error(other_tenant) ==
        "\"tenant\": \"shop\" is not the caller's: the credentials are tenant \"demo\"'s");
  CHECK(d.Post("{not json", "shop-key").status == 400);
  CHECK(d.Error(d.Post(R"({"url": ["x"]})", "shop-key")) ==
        "unknown field \"url\" (expected urls, prefixes, hosts, tags, all, soft, tenant)");
  HttpResponse oversize = d.Post(std::string(2000, ' ') + "{}", "shop-key");
  CHECK(oversize.status == 400);
  CHECK(d.Error(oversize) == "the body is over 1024 bytes");
  CHECK(d.LogLength() == 0);
}

TEST_CASE("a Swift token is checked with Swift for every purge, tags and all included") {
  Daemon d;  // its tenants' Swift (127.0.0.1:1) cannot be reached: no token can be confirmed
  for (const char* body : {R"({"tags": ["x"], "tenant": "demo"})", R"({"all": true, "tenant": "demo"})",
                           R"({"hosts": ["demo.test"]})", R"({"urls": ["http://demo.test/a"]})"}) {
    INFO(body);
    HttpResponse r = HttpPost(d.Url("/v1/purge"), body, {"X-Auth-Token: AUTH_tk_made_up"});
    CHECK(r.status == 503);
  }
  CHECK(d.LogLength() == 0);
}

TEST_CASE("a Swift token's answer is remembered for tokens.cache_ttl, then asked again") {
  HeldSwift swift;
  swift.Release();  // answers at once
  Daemon d(swift.url(), [](ApiOptions& options) { options.token_cache_ttl = absl::Seconds(30); });
  const std::string body = R"({"urls": ["http://demo.test/a"]})";
  auto post = [&] { return HttpPost(d.Url("/v1/purge"), body, {"X-Auth-Token: good"}).status; };
  CHECK(post() == 202);
  CHECK(swift.requests == 1);
  d.offset = 29;
  CHECK(post() == 202);
  CHECK(swift.requests == 1);  // remembered
  d.offset = 31;
  CHECK(post() == 202);
  CHECK(swift.requests == 2);  // asked again once it ran out
}

TEST_CASE("made-up Swift tokens are checked with Swift a bounded number of times, then refused with 429") {
  Daemon d;
  int checked = 0, refused = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 30; ++i) {
    HttpResponse r = HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/a"]})",
                              {absl::StrCat("X-Auth-Token: AUTH_tk_guess_", i)});
    if (r.status == 503) ++checked;  // Swift was asked (and cannot be reached)
    if (r.status == 429) {
      ++refused;
      CHECK(r.header("retry-after") == "1");
      CHECK(d.Error(r) == "too many new Swift tokens for account AUTH_test; retry in a second");
    }
  }
  // The burst of 20, and what refilled (5 a second) while the loop ran, however long it took.
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(checked >= 20);
  CHECK(checked <= 20 + 1 + static_cast<int>(seconds * 5));
  CHECK(refused == 30 - checked);
  // A tenant's own purge key is not held up by it.
  CHECK(d.Post(R"({"urls": ["http://demo.test/a"]})", "demo-key").status == 202);
  CHECK(d.LogLength() == 1);
}

TEST_CASE("a tenant past its rate gets 429 with Retry-After, an admin may purge everything") {
  Daemon d;
  for (int i = 0; i < 3; ++i) CHECK(d.Post(R"({"urls": ["http://demo.test/a"]})", "demo-key").status == 202);
  HttpResponse limited = d.Post(R"({"urls": ["http://demo.test/a"]})", "demo-key");
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "1");
  CHECK(d.Post(R"({"urls": ["http://shop.test/a"]})", "shop-key").status == 202);  // per tenant
  HttpResponse all = d.Post(R"({"all": true})", "admin-key");
  REQUIRE(all.status == 202);
  auto entries =
      bus::StreamEntries(*d.redis.Connect().Command({"XRANGE", std::string(bus::kPurgeLog), "-", "+"}));
  CHECK(bus::ParseLogEntry(entries.back().fields)->invalidations[0].kind == cache::Invalidation::Kind::kAll);
}

TEST_CASE("with Redis down, a purge is refused with 503, never accepted and lost") {
  Daemon d;
  d.redis.Stop();
  HttpResponse down = d.Post(R"({"urls": ["http://demo.test/a"]})", "demo-key");
  CHECK(down.status == 503);
  CHECK(d.Error(down) == "the purge bus (Redis) is unavailable; nothing was purged");
  CHECK(HttpGet(d.AdminUrl("/healthz")).status == 503);
}

TEST_CASE("/metrics and /healthz are on the admin listener, not on the public API port") {
  Daemon d;
  CHECK(d.Post(R"({"urls": ["http://demo.test/a"]})", "demo-key").status == 202);
  CHECK(HttpGet(d.Url("/metrics")).status == 404);
  CHECK(HttpGet(d.Url("/healthz")).status == 404);
  HttpResponse metrics = HttpGet(d.AdminUrl("/metrics"));
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("purge_api_responses_total{status=\"202\"} 1") != std::string::npos);
  CHECK(HttpGet(d.AdminUrl("/healthz")).status == 200);
}

TEST_CASE("failed authentications are limited per client address, credentials unchecked past the limit") {
  Daemon d("http://127.0.0.1:1", [](ApiOptions& options) {
    options.auth_failures = 3;
    options.auth_failure_window = absl::Minutes(1);
  });
  const std::string body = R"({"urls": ["http://demo.test/a"]})";
  for (int i = 0; i < 3; ++i) CHECK(d.Post(body, absl::StrCat("guess-", i)).status == 401);
  HttpResponse limited = d.Post(body, "guess-3");
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "20");  // one more failure allowed every 60 s / 3
  CHECK(d.Error(limited) == "too many failed authentications from 127.0.0.1; retry later");
  // The good key is not even looked at: a guess that happens to be right says nothing.
  CHECK(d.Post(body, "demo-key").status == 429);
  CHECK(HttpGet(d.Url("/v1/purge/x"), {"Authorization: Bearer demo-key"}).status == 429);
  // X-Forwarded-For from an untrusted peer is the client's own word: ignored.
  CHECK(HttpPost(d.Url("/v1/purge"), body, {"Authorization: Bearer demo-key", "X-Forwarded-For: 192.0.2.1"})
            .status == 429);
  CHECK(d.LogLength() == 0);
}

TEST_CASE("behind a trusted proxy each forwarded client has its own count, a success resets none") {
  Daemon d("http://127.0.0.1:1", [](ApiOptions& options) {
    options.auth_failures = 3;
    options.trusted_proxies = {"127.0.0.1"};
  });
  auto post = [&](const std::string& client, const std::string& key) {
    return HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/a"]})",
                    {"Authorization: Bearer " + key, "X-Forwarded-For: " + client})
        .status;
  };
  CHECK(post("192.0.2.1", "guess") == 401);
  CHECK(post("192.0.2.1", "guess") == 401);
  CHECK(post("192.0.2.1", "demo-key") == 202);  // its success does not reset its count
  CHECK(post("192.0.2.1", "guess") == 401);
  CHECK(post("192.0.2.1", "demo-key") == 429);
  CHECK(post("192.0.2.2", "demo-key") == 202);  // another client of the same proxy
  CHECK(post("192.0.2.2", "guess") == 401);
  // Missing credentials are no guess: never counted.
  for (int i = 0; i < 5; ++i) {
    CHECK(HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://demo.test/a"]})", {"X-Forwarded-For: 192.0.2.3"})
              .status == 401);
  }
  CHECK(post("192.0.2.3", "demo-key") == 202);
  // Without the header the proxy's own address counts, apart from its clients' (demo's purge
  // rate is spent: shop's key).
  CHECK(d.Post(R"({"urls": ["http://shop.test/a"]})", "shop-key").status == 202);
}

TEST_CASE("a Swift token purges by the Swift API host's URL, checked for the account in its path") {
  HeldSwift swift;
  swift.Release();
  Daemon d(swift.url(), [](ApiOptions& options) { options.auth_failures = 3; });
  HttpResponse accepted = HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://swift.test/v1/AUTH_test/c/o"]})",
                                   {"X-Auth-Token: good"});
  REQUIRE(accepted.status == 202);
  CHECK(swift.targets() == std::vector<std::string>{"/v1/AUTH_test"});
  auto entries =
      bus::StreamEntries(*d.redis.Connect().Command({"XRANGE", std::string(bus::kPurgeLog), "-", "+"}));
  const cache::Invalidation inv = bus::ParseLogEntry(entries.back().fields)->invalidations[0];
  CHECK(inv.kind == cache::Invalidation::Kind::kObject);
  CHECK(inv.account == "AUTH_test");
  CHECK(inv.container == "c");
  CHECK(inv.name == "o");
  // Its job is seen with a token good for that account.
  const std::string job = nlohmann::json::parse(accepted.body).value("id", "");
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: good"}).status == 200);
  // A token Swift refuses: 403, and a failed authentication of the client.
  CHECK(
      HttpPost(d.Url("/v1/purge"), R"({"urls": ["http://swift.test/v1/AUTH_b/c/o"]})", {"X-Auth-Token: bad"})
          .status == 403);
  CHECK(swift.targets().back() == "/v1/AUTH_b");
  // Hosts, tags and all of a host serving every account: its key only.
  HttpResponse all =
      HttpPost(d.Url("/v1/purge"), R"({"all": true, "tenant": "api"})", {"X-Auth-Token: good"});
  CHECK(all.status == 403);
  CHECK(d.Post(R"({"all": true, "tenant": "api"})", "api-key").status == 202);
  CHECK(d.Post(R"({"urls": ["http://swift.test/v1/AUTH_b/c/o"]})", "api-key").status == 202);
  CHECK(d.LogLength() == 3);
  // Two more refused tokens reach the limit of 3.
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: bad"}).status == 404);
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: bad2"}).status == 404);
  CHECK(HttpGet(d.Url("/v1/purge/" + job), {"X-Auth-Token: good"}).status == 429);
}

}  // namespace purge
