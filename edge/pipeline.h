// The edge's request path, in stages: route (Host -> tenant -> origin identity), look up the
// cache, then serve the hit, wait on the one shared origin fetch for the key, or relay a request
// that must not be shared (credentials, bypass rules, responses that may not be stored).
// One Pipeline serves every worker thread; each worker has its own origin client and loop state.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cache/store.h"
#include "edge/access_log.h"
#include "edge/http/server.h"
#include "edge/metrics.h"
#include "edge/origin/origin_client.h"
#include "edge/shared_fetch.h"
#include "edge/vary.h"
#include "vhost-config/snapshot.h"

namespace edge {

class ClientStream;
class WriteEventPublisher;
struct WriteIntent;

struct PipelineOptions {
  std::string node_id;
  origin::OriginOptions origin;
  std::string purge_api;  // a purge daemon's base URL, for PURGE requests; empty: PURGE is refused
  // The most byte ranges one request gets as multipart/byteranges; more get the whole body.
  size_t max_ranges = 16;
};

class Pipeline : public http::Handler {
 public:
  // `tenants`, `store`, `metrics` and `access_log` (may be null) outlive the pipeline.
  Pipeline(size_t workers, PipelineOptions options, const vhost::TenantSnapshot& tenants, cache::Store& store,
           Metrics& metrics, AccessLog* access_log, cache::Clock clock);
  ~Pipeline() override;

  void OnRequest(http::Exchange& exchange) override;
  void OnWorkerStart(size_t worker, event_base* loop) override;
  void OnWorkerStop(size_t worker) override;

  // A new table is in the snapshot: each worker takes it before its next request.
  void TenantsChanged() { tenants_version_.fetch_add(1, std::memory_order_release); }
  // Where successful writes become write events (null: they invalidate this edge only). Set
  // before the server starts.
  void SetPublisher(WriteEventPublisher* publisher) { publisher_ = publisher; }
  // While false (the purge log is not caught up), every hit is revalidated with the origin.
  void SetTrusted(bool trusted) { trusted_.store(trusted, std::memory_order_relaxed); }
  bool trusted() const { return trusted_.load(std::memory_order_relaxed); }
  size_t fetches_in_flight() const { return coalescer_.in_flight(); }

 private:
  friend class ClientStream;
  struct Worker;
  struct Route;

  void ServeHit(http::Exchange& exchange, const Route& route, cache::Hit& hit, CacheLabel label,
                absl::Time start);
  void StartShared(http::Exchange& exchange, Route route, std::optional<cache::Hit> stale, absl::Time start);
  void RevalidateInBackground(Worker& worker, const Route& route, const http::Request& request,
                              const cache::Hit& hit);
  void StartRelay(http::Exchange& exchange, Route route, absl::Time start);
  void StartPurge(http::Exchange& exchange, Route route, absl::Time start);
  // A write through this edge succeeded: invalidate here at once, then tell the purge daemons.
  void CommitWrite(const Route& route, const WriteIntent& intent, int status,
                   std::span<const std::pair<std::string_view, std::string_view>> headers);
  void Reply(http::Exchange& exchange, std::string_view tenant, int status, std::string_view message,
             absl::Time start);
  FillPlan MakePlan(const Route& route, const http::Request& request, std::optional<cache::Hit> stale);
  ClientStream& NewStream(http::Exchange& exchange, Route route, absl::Time start);
  void Retire(Worker& worker, ClientStream* stream);
  void Log(size_t worker, const AccessRecord& record);

  const PipelineOptions options_;
  WriteEventPublisher* publisher_ = nullptr;
  std::atomic<bool> trusted_{true};
  const vhost::TenantSnapshot& tenants_;
  std::atomic<uint64_t> tenants_version_{1};
  cache::Store& store_;
  Metrics& metrics_;
  AccessLog* access_log_;
  const cache::Clock clock_;
  Coalescer coalescer_;
  VaryIndex vary_index_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace edge
