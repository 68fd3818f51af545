// The edge's request path, in stages: route (Host -> tenant -> origin identity), look up the
// cache, then serve the hit, wait on the one shared origin fetch for the key, or relay a request
// that must not be shared (credentials, bypass rules, responses that may not be stored).
// One Pipeline serves every worker thread; each worker has its own origin client and loop state.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cache/store.h"
#include "edge/access_log.h"
#include "edge/bus_lease.h"
#include "edge/http/server.h"
#include "edge/metrics.h"
#include "edge/origin/origin_client.h"
#include "edge/shared_fetch.h"
#include "edge/vary.h"
#include "purge-daemon/bus/confirmer.h"
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
  // With a purge bus that does not answer, a write to Swift is refused (503) before it is relayed,
  // since no other edge could hear of it; true: relayed anyway, its answer saying the purge is
  // pending (X-Purge-Pending).
  bool accept_writes_unreachable = false;
  // The public HTTPS port, where tenants' https_redirect sends plain HTTP requests.
  uint16_t redirect_port = 443;
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
  // The purge bus, set before the server starts (both null: writes invalidate this edge only). A
  // successful write's plan goes into the purge log through `confirmer`, and its answer waits
  // until every edge that may serve what it replaced has applied it (X-Purge-Confirmed); if the
  // log cannot take it, its event goes to `publisher`'s spool for the daemons.
  void SetBus(bus::Confirmer* confirmer, WriteEventPublisher* publisher) {
    confirmer_ = confirmer;
    publisher_ = publisher;
  }
  // Granted by the purge subscriber; while not trusted, every hit is revalidated with the origin.
  BusLease& lease() { return lease_; }
  // For tests and an edge without a bus: trusted for good, or not at all.
  void SetTrusted(bool trusted) { trusted ? lease_.Forever() : lease_.Revoke(); }
  bool trusted() const { return lease_.trusted(); }
  size_t fetches_in_flight() const { return coalescer_.in_flight(); }

 private:
  friend class ClientStream;
  struct Worker;
  struct Route;

  void ServeHit(http::Exchange& exchange, const Route& route, cache::Hit& hit, CacheLabel label,
                absl::Time start);
  // `stale` is revalidated; `stale_slice` (a large object's first stored slice) only answers for
  // an origin in error.
  void StartShared(http::Exchange& exchange, Route route, std::optional<cache::Hit> stale, absl::Time start,
                   std::optional<cache::Hit> stale_slice = std::nullopt);
  void RevalidateInBackground(Worker& worker, const Route& route, const http::Request& request,
                              const cache::Hit& hit);
  // A fetch into the cache that no client waits on (a revalidation in the background, a slice
  // read ahead); one already in flight for its key stands for it.
  void StartFetch(Worker& worker, FillPlan plan);
  void StartRelay(http::Exchange& exchange, Route route, absl::Time start);
  void StartPurge(http::Exchange& exchange, Route route, absl::Time start);
  // A write through this edge succeeded (or may have: status 0): invalidate here at once, then
  // put its plan in the purge log. True when `done` will be called (on the confirmer's thread)
  // once the other edges have applied it; false when nobody else needs to hear of it.
  bool CommitWrite(const Route& route, const WriteIntent& intent, int status,
                   std::span<const std::pair<std::string_view, std::string_view>> headers,
                   std::function<void(const bus::ConfirmResult&)> done);
  // A short text answer; `route` null when no tenant was found.
  void Reply(http::Exchange& exchange, const Route* route, int status, std::string_view message,
             absl::Time start, std::span<const http::HeaderField> headers = {});
  // A stored slice of the route's object to answer from (edge/slices.h), fresh or within
  // stale-while-revalidate (then refreshed in the background), and the answer's label: a hit if
  // the slice its first byte is in is stored fresh too. A stored slice that must be revalidated
  // first goes to `stale` instead: the object is probed again, and an origin in error is answered
  // from the stored slices within stale-if-error.
  struct SliceStart {
    cache::Hit slice;
    CacheLabel label;
  };
  std::optional<SliceStart> FindSlice(Worker& worker, const Route& route, const http::Request& request,
                                      const vhost::CacheDirectives& directives, absl::Time start,
                                      std::optional<cache::Hit>* stale);
  // The fetch of `bytes` of the route's object, a slice of the version `first` is of.
  FillPlan MakeSlicePlan(const Route& route, const http::Request& request, const cache::Key& key,
                         ByteRange bytes, const cache::EntryMetadata& first, std::optional<cache::Hit> stale);
  FillPlan MakePlan(const Route& route, const http::Request& request, std::optional<cache::Hit> stale);
  ClientStream& NewStream(http::Exchange& exchange, Route route, absl::Time start);
  void Retire(Worker& worker, ClientStream* stream);
  void Log(size_t worker, const AccessRecord& record);

  const PipelineOptions options_;
  bus::Confirmer* confirmer_ = nullptr;
  WriteEventPublisher* publisher_ = nullptr;
  BusLease lease_;
  std::atomic<uint64_t> writes_{0};  // names this edge's log entries
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
