// The edge's own settings file (TOML): node identity, listeners, timeouts, cache zones, origin
// client, logs. Every key, its type, default and meaning is in EdgeConfigKeys(), which the loader,
// `edge --help-config` and docs/configuration.md share.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cache/store.h"
#include "edge/certificates.h"
#include "edge/http/server.h"
#include "edge/origin/origin_client.h"
#include "vhost-config/schema.h"

namespace edge {

struct EdgeConfig {
  std::string node_id;
  std::string tenants_file;  // resolved against the settings file's directory
  http::ServerOptions server;
  std::string admin_address;
  uint16_t admin_port = 0;
  cache::StoreOptions cache;
  origin::OriginOptions origin;
  CertificateOptions certificates;  // [tls]: the default certificate, clients without SNI
  uint16_t redirect_port = 443;     // the public HTTPS port, for tenants' https_redirect
  size_t max_ranges = 16;           // byte ranges answered as multipart/byteranges
  std::string access_log;           // empty: no access log
  absl::Duration shutdown_grace = absl::Seconds(10);
  // The purge bus; an empty redis address runs the edge alone (its writes invalidate only itself).
  std::string purge_redis;
  std::string state_dir;  // the purge-log cursor and the write-event spool
  uint64_t spool_max_bytes = 64 << 20;
  absl::Duration lease = absl::Seconds(1);
  absl::Duration confirm_timeout = absl::Seconds(5);
  bool accept_writes_unreachable = false;
  std::string purge_api;
  absl::Duration maintain_interval = absl::Seconds(5);
};

std::span<const vhost::KeySpec> EdgeConfigKeys();
std::span<const vhost::KeySpec> ZoneKeys();
// InvalidArgument with every problem as "file:line: key: message"; NotFound if unreadable.
absl::StatusOr<EdgeConfig> LoadEdgeConfig(const std::string& path);
// The same for text already in memory; `path` names it in messages and anchors relative paths.
absl::StatusOr<EdgeConfig> LoadEdgeConfigText(std::string_view text, const std::string& path);
// The reference for docs/configuration.md.
std::string EdgeConfigMarkdown();

// The most descriptors one client connection holds at once: its socket, the cache file or fill
// it is sent from, the fill's temp file, an origin connection (2 to 3.4 were measured for a
// client streaming a large file).
inline constexpr uint64_t kDescriptorsPerConnection = 4;
// What `edge --check` and the start say when `config`'s connections could need more descriptors
// than `limit` (RLIMIT_NOFILE); empty when they fit.
std::string DescriptorLimitWarning(const EdgeConfig& config, uint64_t limit);

}  // namespace edge
