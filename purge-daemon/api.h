// The public purge API, on the purge daemon:
//   POST /v1/purge        a JSON body naming urls, prefixes, hosts, tags or all, and soft; 202 with
//                         the job's id once its invalidations are in the purge log
//   GET  /v1/purge/{id}   the job's state, and per live edge whether it has applied it and how long
//                         that took
// /metrics and /healthz are not here: main.cc serves Metrics() and UnhealthyReason() on the
// admin listener, off the public port.
// Credentials: "Authorization: Bearer KEY" (a tenant's purge key, whose SHA-256 is in the tenant
// file, or an admin key of the daemon's), or "X-Auth-Token: TOKEN" (a Swift token, checked with
// Swift for the accounts the purge touches). A tenant purges only what it serves (403 otherwise,
// and nothing is purged), at its rate (429 with Retry-After). A client address that failed to
// authenticate too often is answered 429 before its credentials are looked at. Bad bodies are
// 400 with the reason.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/http/server.h"
#include "edge/origin/origin_client.h"
#include "purge-daemon/bus/redis.h"
#include "purge-daemon/purge_request.h"
#include "purge-daemon/rate_limiter.h"
#include "purge-daemon/token_checker.h"
#include "vhost-config/snapshot.h"

namespace purge {

struct ApiOptions {
  std::string redis_host;
  int redis_port = 6379;
  std::vector<std::string> admin_key_hashes;
  uint64_t max_log_length = 100000;
  size_t max_body_bytes = 64 * 1024;
  absl::Duration job_ttl = absl::Hours(24);
  absl::Duration edge_live_timeout = absl::Seconds(10);
  absl::Duration token_cache_ttl = absl::Seconds(30);
  // Failed authentications per client address: `auth_failures` at once, then that many per window.
  int auth_failures = 10;
  absl::Duration auth_failure_window = absl::Minutes(1);
  std::vector<std::string> trusted_proxies;  // canonical IPs whose X-Forwarded-For is believed
};

class PurgeApi : public edge::http::Handler {
 public:
  PurgeApi(ApiOptions options, const vhost::TenantSnapshot& tenants, size_t workers, cache::Clock clock);
  ~PurgeApi() override;

  void OnRequest(edge::http::Exchange& exchange) override;
  void OnWorkerStart(size_t worker, event_base* loop) override;
  void OnWorkerStop(size_t worker) override;
  // Extra metric lines (the consumer's), appended to /metrics.
  void SetMetricsSource(std::function<std::string()> source) { metrics_source_ = std::move(source); }
  // For the admin listener (any thread): the Prometheus text, and why the daemon is not healthy
  // (empty when it is: Redis answers).
  std::string Metrics();
  std::string UnhealthyReason();

 private:
  class Call;
  friend class Call;
  struct Credentials;
  // Refused with 429 (before any credential is checked) when the call's client failed to
  // authenticate too often lately; else the credentials, a failure being counted against it.
  absl::StatusOr<Credentials> Authenticate(const Call& call, const vhost::TenantTable& table);
  absl::Status AuthFailed(const Call& call, absl::Status status);
  // How fast a client's count of failures drains, per second: api.auth_failures per window.
  double AuthFailureRate() const {
    return options_.auth_failures / absl::ToDoubleSeconds(options_.auth_failure_window);
  }
  void Handle(Call& call);
  void Submit(Call& call);
  void Commit(Call& call, const Caller& caller, const PurgePlan& plan);
  void Status(Call& call, std::string_view id);
  bus::RedisConnection& Redis(size_t worker) { return *redis_[worker]; }

  const ApiOptions options_;
  const vhost::TenantSnapshot& tenants_;
  const cache::Clock clock_;
  RateLimiter limiter_;        // per tenant: purges
  RateLimiter auth_failures_;  // per client address: failed authentications
  SwiftTokenChecker tokens_;
  std::vector<std::unique_ptr<edge::origin::OriginClient>> clients_;  // per worker: token checks
  std::vector<std::unique_ptr<bus::RedisConnection>> redis_;          // one per worker
  std::vector<std::vector<std::unique_ptr<Call>>> calls_;             // per worker; done ones go at the next
  std::function<std::string()> metrics_source_;
  absl::Mutex health_mu_;
  bus::RedisConnection health_redis_ ABSL_GUARDED_BY(health_mu_);  // the admin listener's
  absl::Mutex mu_;
  absl::flat_hash_map<int, uint64_t> answers_ ABSL_GUARDED_BY(mu_);  // by status
};

}  // namespace purge
