// Settings files are written by people: any bytes give the edge's or the purge daemon's config or
// a list of errors, never a crash, and what is accepted holds what the processes rely on. Both
// loaders read every input (they share the schema-driven reader, vhost-config/settings.h).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/config.h"
#include "purge-daemon/config.h"

namespace {

template <typename T>
bool Refused(const absl::StatusOr<T>& config) {
  if (config.ok()) return false;
  if (config.status().message().empty()) std::abort();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto edge = edge::LoadEdgeConfigText(text, "/fuzz/edge.toml");
  if (!Refused(edge) && (edge->node_id.empty() || edge->cache.zones.empty())) std::abort();

  auto daemon = purge::LoadDaemonConfigText(text, "/fuzz/purge-daemon.toml");
  if (Refused(daemon)) return 0;
  if (daemon->api_port == 0 || daemon->api_workers < 1 || daemon->api.auth_failures < 1 ||
      daemon->api.max_log_length < 1000 || daemon->consumer.max_log_length != daemon->api.max_log_length ||
      daemon->consumer.name != daemon->node_id) {
    std::abort();
  }
  if (daemon->admin_port != 0 && daemon->admin_port == daemon->api_port &&
      daemon->admin_address == daemon->api_address) {
    std::abort();  // /metrics would be on the public port
  }
  if (!daemon->tenants_file.empty() && !daemon->tenants_file.starts_with("/")) std::abort();
  for (const std::string& hash : daemon->api.admin_key_hashes) {
    if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) std::abort();
  }
  for (absl::Duration d :
       {daemon->api.auth_failure_window, daemon->consumer.batch_window, daemon->consumer.repeat_delay,
        daemon->consumer.claim_idle, daemon->consumer.confirm_timeout, daemon->api.edge_live_timeout,
        daemon->api.token_cache_ttl, daemon->api.job_ttl}) {
    if (d < absl::ZeroDuration()) std::abort();
  }
  if (daemon->api.auth_failure_window <= absl::ZeroDuration()) std::abort();
  return 0;
}
