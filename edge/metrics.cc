#include "edge/metrics.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "edge/http/prometheus.h"

namespace edge {

namespace {

// Label values are quoted strings: backslash, quote and newline escaped.
std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string_view CacheLabelText(CacheLabel label) {
  switch (label) {
    case CacheLabel::kHit:
      return "HIT";
    case CacheLabel::kMiss:
      return "MISS";
    case CacheLabel::kStale:
      return "STALE";
    case CacheLabel::kRevalidated:
      return "REVALIDATED";
    case CacheLabel::kBypass:
      return "BYPASS";
    case CacheLabel::kExpired:
      return "EXPIRED";
    case CacheLabel::kNone:
      return "-";
  }
  return "-";
}

std::string RenderCertificates(std::span<const CertificateExpiry> certificates) {
  std::string out;
  http::AppendMetric(&out, "edge_tls_certificates", "gauge",
                     "TLS certificates loaded (tenants' and the default).", certificates.size());
  if (certificates.empty()) return out;
  absl::StrAppend(
      &out,
      "# HELP edge_tls_certificate_expiry_seconds When each certificate in use expires (unix time of "
      "its leaf's notAfter); tenant \"\" is the edge's default.\n"
      "# TYPE edge_tls_certificate_expiry_seconds gauge\n");
  for (const CertificateExpiry& c : certificates) {
    absl::StrAppend(&out, "edge_tls_certificate_expiry_seconds{tenant=\"", Escape(c.tenant),
                    "\",certificate=\"", Escape(c.certificate), "\"} ", absl::ToUnixSeconds(c.not_after),
                    "\n");
  }
  return out;
}

Metrics::Metrics(size_t workers) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) shards_.push_back(std::make_unique<Shard>());
}

void Metrics::CountRequest(size_t worker, std::string_view tenant, CacheLabel label, int status,
                           uint64_t bytes) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.tenants.find(absl::string_view(tenant.data(), tenant.size()));
  if (it == shard.tenants.end()) it = shard.tenants.emplace(std::string(tenant), TenantCounters{}).first;
  TenantCounters& c = it->second;
  ++c.requests;
  c.bytes_sent += bytes;
  ++c.by_label[static_cast<size_t>(label)];
  if (status >= 500) ++c.responses_5xx;
}

void Metrics::ObserveOriginLatency(size_t worker, absl::Duration latency) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  shard.origin_latency.Observe(latency);
}

void Metrics::ObserveConfirmation(size_t worker, ConfirmOutcome outcome, absl::Duration waited) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  ++shard.confirmations[static_cast<size_t>(outcome)];
  if (outcome != ConfirmOutcome::kSpooled) shard.confirm_wait.Observe(waited);
}

void Metrics::CountOriginError(size_t worker) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  ++shard.origin_errors;
}

void Metrics::CountCut(size_t worker, CutCause cause) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  ++shard.cuts[static_cast<size_t>(cause)];
}

void Metrics::CountFillSpilled(size_t worker) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  ++shard.fills_spilled;
}

void Metrics::CountSlice(size_t worker, SliceEvent event) {
  Shard& shard = *shards_[worker % shards_.size()];
  absl::MutexLock lock(&shard.mu);
  ++shard.slices[static_cast<size_t>(event)];
}

std::string Metrics::Render(const cache::StoreStats& store, size_t connections,
                            size_t fetches_in_flight) const {
  std::map<std::string, TenantCounters> tenants;  // sorted: stable output
  http::Histogram origin_latency;
  uint64_t origin_errors = 0;
  http::Histogram confirm_wait;
  std::array<uint64_t, kConfirmOutcomes> confirmations{};
  std::array<uint64_t, kCutCauses> cuts{};
  std::array<uint64_t, kSliceEvents> slices{};
  uint64_t fills_spilled = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (const auto& [name, c] : shard->tenants) {
      TenantCounters& sum = tenants[name];
      sum.requests += c.requests;
      sum.bytes_sent += c.bytes_sent;
      for (size_t i = 0; i < kCacheLabels; ++i) sum.by_label[i] += c.by_label[i];
      sum.responses_5xx += c.responses_5xx;
    }
    origin_latency.Add(shard->origin_latency);
    origin_errors += shard->origin_errors;
    confirm_wait.Add(shard->confirm_wait);
    for (size_t i = 0; i < kConfirmOutcomes; ++i) confirmations[i] += shard->confirmations[i];
    for (size_t i = 0; i < kCutCauses; ++i) cuts[i] += shard->cuts[i];
    for (size_t i = 0; i < kSliceEvents; ++i) slices[i] += shard->slices[i];
    fills_spilled += shard->fills_spilled;
  }

  std::string out;
  out += "# HELP edge_requests_total Requests answered, by tenant.\n# TYPE edge_requests_total counter\n";
  for (const auto& [name, c] : tenants)
    absl::StrAppend(&out, "edge_requests_total{tenant=\"", Escape(name), "\"} ", c.requests, "\n");
  out +=
      "# HELP edge_bytes_sent_total Response body bytes sent, by tenant.\n# TYPE edge_bytes_sent_total "
      "counter\n";
  for (const auto& [name, c] : tenants)
    absl::StrAppend(&out, "edge_bytes_sent_total{tenant=\"", Escape(name), "\"} ", c.bytes_sent, "\n");
  out +=
      "# HELP edge_cache_responses_total Responses by tenant and X-Cache value.\n"
      "# TYPE edge_cache_responses_total counter\n";
  for (const auto& [name, c] : tenants) {
    for (size_t i = 0; i < kCacheLabels; ++i) {
      if (static_cast<CacheLabel>(i) == CacheLabel::kNone) continue;
      absl::StrAppend(&out, "edge_cache_responses_total{tenant=\"", Escape(name), "\",cache=\"",
                      std::string(CacheLabelText(static_cast<CacheLabel>(i))), "\"} ", c.by_label[i], "\n");
    }
  }
  out +=
      "# HELP edge_responses_5xx_total 5xx responses, by tenant.\n# TYPE edge_responses_5xx_total counter\n";
  for (const auto& [name, c] : tenants)
    absl::StrAppend(&out, "edge_responses_5xx_total{tenant=\"", Escape(name), "\"} ", c.responses_5xx, "\n");

  origin_latency.AppendTo(&out, "edge_origin_latency_seconds",
                          "Time from an origin request to its response head.");
  confirm_wait.AppendTo(&out, "edge_write_confirm_seconds",
                        "How long a write's answer waited for the other edges to apply its purge.");
  out +=
      "# HELP edge_write_confirmations_total Writes by how their wait for the other edges ended.\n"
      "# TYPE edge_write_confirmations_total counter\n";
  for (const auto& [outcome, name] : {std::pair{ConfirmOutcome::kConfirmed, "confirmed"},
                                      {ConfirmOutcome::kTimedOut, "timed_out"},
                                      {ConfirmOutcome::kSpooled, "spooled"}}) {
    absl::StrAppend(&out, "edge_write_confirmations_total{outcome=\"", name, "\"} ",
                    confirmations[static_cast<size_t>(outcome)], "\n");
  }
  absl::StrAppend(&out,
                  "# HELP edge_origin_errors_total Origin fetches that failed without a response.\n"
                  "# TYPE edge_origin_errors_total counter\nedge_origin_errors_total ",
                  origin_errors, "\n");

  out +=
      "# HELP edge_responses_cut_total Responses that ended before their body did, by cause.\n"
      "# TYPE edge_responses_cut_total counter\n";
  constexpr std::array<const char*, kCutCauses> kCauses = {"origin", "zone", "client"};
  for (size_t i = 0; i < kCutCauses; ++i) {
    absl::StrAppend(&out, "edge_responses_cut_total{cause=\"", kCauses[i], "\"} ", cuts[i], "\n");
  }
  http::AppendMetric(&out, "edge_fills_spilled_total", "counter",
                     "Fills whose zone failed mid-body; their clients got the rest uncached.", fills_spilled);
  out +=
      "# HELP edge_slices_total Slices of large objects: fetched to be stored (seek: from a client's first "
      "byte in it, then the bytes before), and the origin's answers that could not be used (whole objects "
      "to ranged requests, wrong ranges, another version, no strong ETag).\n"
      "# TYPE edge_slices_total counter\n";
  constexpr std::array<const char*, kSliceEvents> kSliceEventNames = {
      "fetched", "range_ignored", "bad_answer", "version_changed", "no_validator", "seek"};
  for (size_t i = 0; i < kSliceEvents; ++i) {
    absl::StrAppend(&out, "edge_slices_total{event=\"", kSliceEventNames[i], "\"} ", slices[i], "\n");
  }
  out += "# HELP edge_zone_used_bytes Bytes held by each cache zone.\n# TYPE edge_zone_used_bytes gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_used_bytes{zone=\"", Escape(z.path), "\"} ", z.used_bytes, "\n");
  out += "# HELP edge_zone_max_bytes Size limit of each cache zone.\n# TYPE edge_zone_max_bytes gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_max_bytes{zone=\"", Escape(z.path), "\"} ", z.max_bytes, "\n");
  out +=
      "# HELP edge_zone_limit_bytes What each cache zone may hold now: its size, or less while its "
      "filesystem cannot hold that.\n# TYPE edge_zone_limit_bytes gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_limit_bytes{zone=\"", Escape(z.path), "\"} ", z.limit_bytes, "\n");
  out +=
      "# HELP edge_zone_full_evictions_total Entries evicted because a zone's filesystem was full "
      "(ENOSPC).\n# TYPE edge_zone_full_evictions_total counter\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_full_evictions_total{zone=\"", Escape(z.path), "\"} ", z.full_evictions,
                    "\n");
  out +=
      "# HELP edge_zone_freeing_bytes Bytes of each cache zone's deleted files still open (being read "
      "or sent): space the zone counts until their last close.\n# TYPE edge_zone_freeing_bytes gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_freeing_bytes{zone=\"", Escape(z.path), "\"} ", z.freeing_bytes, "\n");
  out += "# HELP edge_zone_entries Entries in each cache zone.\n# TYPE edge_zone_entries gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_entries{zone=\"", Escape(z.path), "\"} ", z.entries, "\n");
  out +=
      "# HELP edge_zone_errors_total I/O errors of each cache zone.\n# TYPE edge_zone_errors_total counter\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_errors_total{zone=\"", Escape(z.path), "\"} ", z.errors, "\n");
  out +=
      "# HELP edge_zone_healthy 1 while a zone is in service, 0 while it is out.\n"
      "# TYPE edge_zone_healthy gauge\n";
  for (const auto& z : store.zones)
    absl::StrAppend(&out, "edge_zone_healthy{zone=\"", Escape(z.path), "\"} ", z.healthy ? 1 : 0, "\n");
  http::AppendMetric(&out, "edge_cache_entries", "gauge", "Entries in the cache index.", store.entries);
  out +=
      "# HELP edge_cache_memory_bytes Memory held by copies of entries (cache.memory) and by bodies for "
      "HTTPS hits (cache.memory_https).\n# TYPE edge_cache_memory_bytes gauge\n";
  absl::StrAppend(&out, "edge_cache_memory_bytes{tier=\"entries\"} ", store.memory_bytes,
                  "\nedge_cache_memory_bytes{tier=\"https_bodies\"} ", store.held_body_bytes, "\n");
  http::AppendMetric(&out, "edge_connections", "gauge", "Open client connections.", connections);
  http::AppendMetric(&out, "edge_origin_fetches_in_flight", "gauge",
                     "Shared origin fetches clients can join.", fetches_in_flight);
  return out;
}

void AppendTlsMetrics(std::string* out, const http::TlsStats& stats) {
  http::AppendMetric(out, "edge_tls_handshakes_total", "counter", "TLS handshakes completed.",
                     stats.handshakes.load(std::memory_order_relaxed));
  http::AppendMetric(out, "edge_tls_resumed_handshakes_total", "counter",
                     "TLS handshakes that resumed a session from a ticket.",
                     stats.resumed.load(std::memory_order_relaxed));
  absl::StrAppend(out,
                  "# HELP edge_tls_handshake_failures_total TLS handshakes that failed, by reason.\n"
                  "# TYPE edge_tls_handshake_failures_total counter\n");
  for (size_t i = 0; i < http::kHandshakeFailureKinds; ++i) {
    absl::StrAppend(out, "edge_tls_handshake_failures_total{reason=\"",
                    std::string(http::HandshakeFailureName(static_cast<http::HandshakeFailure>(i))), "\"} ",
                    stats.failures[i].load(std::memory_order_relaxed), "\n");
  }
  absl::StrAppend(out,
                  "# HELP edge_tls_body_bytes_total Bytes of cached bodies sent over TLS: by kernel TLS "
                  "(SSL_sendfile), read from their file in pieces and written by SSL_write, or written by "
                  "SSL_write from memory (cache.memory_https).\n"
                  "# TYPE edge_tls_body_bytes_total counter\n"
                  "edge_tls_body_bytes_total{path=\"ktls\"} ",
                  stats.ktls_body_bytes.load(std::memory_order_relaxed),
                  "\nedge_tls_body_bytes_total{path=\"ssl_write\"} ",
                  stats.write_body_bytes.load(std::memory_order_relaxed),
                  "\nedge_tls_body_bytes_total{path=\"memory\"} ",
                  stats.memory_body_bytes.load(std::memory_order_relaxed), "\n");
}

}  // namespace edge
