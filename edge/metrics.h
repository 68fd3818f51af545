// The edge's counters: per tenant (requests, bytes sent, cache outcomes, origin errors), per
// zone (from the store), and a histogram of origin latency, in Prometheus text format. Each
// worker thread counts into its own shard under its own mutex, so counting never contends; a
// scrape adds the shards up.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cache/store.h"
#include "edge/http/prometheus.h"
#include "edge/http/tls.h"

namespace edge {

// What X-Cache says.
enum class CacheLabel : uint8_t { kHit, kMiss, kStale, kRevalidated, kBypass, kExpired, kNone };
inline constexpr size_t kCacheLabels = 7;
std::string_view CacheLabelText(CacheLabel label);

// Why a response ended before its body did (the client sees a cut message, never a wrong one).
enum class CutCause : uint8_t { kOrigin, kZone, kClient };
inline constexpr size_t kCutCauses = 3;

// What happened to a slice of a large object (edge/slices.h).
enum class SliceEvent : uint8_t {
  kFetched,         // a slice was fetched from the origin to be stored
  kRangeIgnored,    // the origin answered a ranged request with the whole object (200)
  kBadAnswer,       // a 206 that was not the range asked for, or a slice request not answered 206
  kVersionChanged,  // a slice of another version (ETag, length) than the answer's first slice
  kNoValidator,     // a probe answered without a strong ETag: the object is stored whole
  kSeek,            // a slice fetched from a client's first byte in it, then the bytes before
};
inline constexpr size_t kSliceEvents = 6;

struct TenantCounters {
  uint64_t requests = 0;
  uint64_t bytes_sent = 0;
  std::array<uint64_t, kCacheLabels> by_label{};
  uint64_t responses_5xx = 0;
};

// How a write's wait for the other edges ended (bus::ConfirmResult).
enum class ConfirmOutcome : uint8_t { kConfirmed, kTimedOut, kSpooled };
inline constexpr size_t kConfirmOutcomes = 3;

// A TLS certificate the edge serves (edge/certificates.h): whose, which file, until when.
struct CertificateExpiry {
  std::string tenant;  // empty: the edge's default
  std::string certificate;
  absl::Time not_after;
};
// edge_tls_certificates and edge_tls_certificate_expiry_seconds (unix time of not_after) per
// certificate, so that an alert can fire days before one runs out.
std::string RenderCertificates(std::span<const CertificateExpiry> certificates);

class Metrics {
 public:
  explicit Metrics(size_t workers);

  void CountRequest(size_t worker, std::string_view tenant, CacheLabel label, int status, uint64_t bytes);
  void ObserveOriginLatency(size_t worker, absl::Duration latency);
  void CountOriginError(size_t worker);
  void ObserveConfirmation(size_t worker, ConfirmOutcome outcome, absl::Duration waited);
  void CountCut(size_t worker, CutCause cause);
  // A fill whose zone failed mid-body: its clients got the rest from memory (the spill).
  void CountFillSpilled(size_t worker);
  void CountSlice(size_t worker, SliceEvent event);
  // The whole exposition; `store` adds the per-zone gauges.
  std::string Render(const cache::StoreStats& store, size_t connections, size_t fetches_in_flight) const;

 private:
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, TenantCounters> tenants ABSL_GUARDED_BY(mu);
    http::Histogram origin_latency ABSL_GUARDED_BY(mu);
    uint64_t origin_errors ABSL_GUARDED_BY(mu) = 0;
    http::Histogram confirm_wait ABSL_GUARDED_BY(mu);
    std::array<uint64_t, kConfirmOutcomes> confirmations ABSL_GUARDED_BY(mu){};
    std::array<uint64_t, kCutCauses> cuts ABSL_GUARDED_BY(mu){};
    uint64_t fills_spilled ABSL_GUARDED_BY(mu) = 0;
    std::array<uint64_t, kSliceEvents> slices ABSL_GUARDED_BY(mu){};
  };
  std::vector<std::unique_ptr<Shard>> shards_;
};

// The server's TLS counters: handshakes, failures by reason, file bodies by the path they took.
void AppendTlsMetrics(std::string* out, const http::TlsStats& stats);

}  // namespace edge
