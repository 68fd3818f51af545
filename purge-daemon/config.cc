#include "purge-daemon/config.h"

#include <array>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "edge/http/tls.h"
#include "purge-daemon/client_address.h"
#include "vhost-config/settings.h"

namespace purge {

namespace {

using vhost::KeySpec;
using vhost::KeyType;

constexpr std::array kKeys = {
    KeySpec{"node_id", KeyType::kString, "", false,
            "This daemon's name: its consumer name in the Redis group, so unique per daemon."},
    KeySpec{"tenants", KeyType::kString, "", false,
            "The tenant file, relative to this file (the edges' file). Reloaded on SIGHUP."},
    KeySpec{"redis", KeyType::kString, "", false, "host:port of the purge bus (Redis)."},
    KeySpec{"api.address", KeyType::kString, "\"127.0.0.1\"", false, "Address of the purge API."},
    KeySpec{"api.port", KeyType::kInteger, "9100", false, "Port of the purge API."},
    KeySpec{"api.workers", KeyType::kInteger, "2", false, "Threads answering the API."},
    KeySpec{
        "api.certificate", KeyType::kString, "\"\"", false,
        "PEM certificate chain (leaf first), relative to this file: with `api.key`, the API is served over "
        "HTTPS (TLS 1.2 and 1.3, as the edge's defaults). Empty: plain HTTP."},
    KeySpec{"api.key", KeyType::kString, "\"\"", false, "PEM private key of `api.certificate`."},
    KeySpec{"api.admin_key_hashes", KeyType::kStringList, "[]", false,
            "SHA-256 of admin keys (`vhost-config hash-key KEY`): they may purge any tenant, and `all` of "
            "the whole cache."},
    KeySpec{"api.max_body", KeyType::kBytes, "\"64K\"", false, "Largest request body; more is a 400."},
    KeySpec{"api.auth_failures", KeyType::kInteger, "10", false,
            "Failed authentications (unknown keys, refused Swift tokens) a client address may make in "
            "`api.auth_failure_window`; past them its requests get `429` with `Retry-After`, their "
            "credentials unchecked."},
    KeySpec{"api.auth_failure_window", KeyType::kDuration, "\"1m\"", false,
            "The window of `api.auth_failures`: a client's count drains at `api.auth_failures` per window."},
    KeySpec{"api.trusted_proxies", KeyType::kStringList, "[]", false,
            "IP addresses of proxies (the edges) whose `X-Forwarded-For` names the client for "
            "`api.auth_failures`. Empty: the header is never trusted, the peer address counts."},
    KeySpec{"admin.address", KeyType::kString, "\"127.0.0.1\"", false,
            "Address of the admin listener (`/metrics`, `/healthz`); the API port serves neither."},
    KeySpec{"admin.port", KeyType::kInteger, "9101", false, "Port of the admin listener; 0 turns it off."},
    KeySpec{"log.max_length", KeyType::kInteger, "100000", false,
            "Entries kept in the purge log (approximately). An edge whose cursor falls off its end "
            "invalidates its whole cache."},
    KeySpec{
        "planner.batch_window", KeyType::kDuration, "\"50ms\"", false,
        "Under load (16 events in one read, or events still coming since the last plan), write events "
        "are gathered for this window and planned together; after a quiet time they are planned at once."},
    KeySpec{"planner.confirm_timeout", KeyType::kDuration, "\"5s\"", false,
            "The most a write seen by the Swift middleware waits for the edges to apply its purge; an edge "
            "that stops answering is waited for only until its lease has run out."},
    KeySpec{"planner.repeat_delay", KeyType::kDuration, "\"2s\"", false,
            "Listings invalidations are applied again after this, once Swift has updated its listings."},
    KeySpec{"planner.claim_idle", KeyType::kDuration, "\"10s\"", false,
            "Events another daemon took and has not acknowledged for this long are taken over."},
    KeySpec{"edges.live_timeout", KeyType::kDuration, "\"10s\"", false,
            "An edge without a heartbeat for this long is down: a job does not wait for it."},
    KeySpec{"tokens.cache_ttl", KeyType::kDuration, "\"30s\"", false,
            "How long Swift's answer about a token is reused."},
    KeySpec{"jobs.ttl", KeyType::kDuration, "\"1d\"", false, "How long a purge job's status is kept."},
};

absl::StatusOr<DaemonConfig> Build(vhost::Settings& s, const std::string& path) {
  DaemonConfig c;
  c.node_id = s.String("node_id");
  c.tenants_file = s.String("tenants");
  if (!c.tenants_file.empty() && c.tenants_file.front() != '/') {
    c.tenants_file = (std::filesystem::path(path).parent_path() / c.tenants_file).lexically_normal().string();
  }
  std::string host;
  int port = 0;
  if (const std::string redis = s.String("redis"); !redis.empty()) {
    if (absl::Status status = bus::ParseRedisAddress(redis, &host, &port); !status.ok()) {
      s.Error("redis", std::string(status.message()));
    }
  }
  c.api_address = s.String("api.address");
  const int64_t api_port = s.Integer("api.port");
  if (api_port < 1 || api_port > 65535)
    s.Error("api.port", absl::StrCat(api_port, " is out of range [1, 65535]"));
  c.api_port = static_cast<uint16_t>(api_port);
  c.api_workers = static_cast<int>(std::clamp<int64_t>(s.Integer("api.workers"), 1, 64));
  const auto resolve = [&](std::string name) {
    if (name.empty() || name.front() == '/') return name;
    return (std::filesystem::path(path).parent_path() / name).lexically_normal().string();
  };
  c.api_certificate = resolve(s.String("api.certificate"));
  c.api_key = resolve(s.String("api.key"));
  if (c.api_certificate.empty() != c.api_key.empty()) {
    s.Error(c.api_key.empty() ? "api.key" : "api.certificate", "api.certificate and api.key go together");
  } else if (!c.api_certificate.empty()) {
    if (auto loaded = edge::http::LoadCertificate(c.api_certificate, c.api_key); !loaded.ok()) {
      s.Error("api.certificate", std::string(loaded.status().message()));
    }
  }
  c.admin_address = s.String("admin.address");
  const int64_t admin_port = s.Integer("admin.port");
  if (admin_port < 0 || admin_port > 65535)
    s.Error("admin.port", absl::StrCat(admin_port, " is out of range [0, 65535]"));
  c.admin_port = static_cast<uint16_t>(admin_port);
  if (c.admin_port != 0 && c.admin_port == c.api_port && c.admin_address == c.api_address)
    s.Error("admin.port", "must differ from api.port: /metrics is not served on the public API port");
  const int64_t auth_failures = s.Integer("api.auth_failures");
  if (auth_failures < 1) s.Error("api.auth_failures", "must be at least 1");
  c.api.auth_failures = static_cast<int>(std::clamp<int64_t>(auth_failures, 1, 1 << 20));
  c.api.auth_failure_window = s.Duration("api.auth_failure_window");
  if (c.api.auth_failure_window <= absl::ZeroDuration())
    s.Error("api.auth_failure_window", "must be longer than 0s");
  for (const std::string& proxy : s.Strings("api.trusted_proxies")) {
    std::optional<std::string> address = NormalizeIp(proxy);
    if (!address) {
      s.Error("api.trusted_proxies", absl::StrCat("\"", proxy, "\" is not an IP address"));
    } else {
      c.api.trusted_proxies.push_back(*std::move(address));
    }
  }
  c.api.redis_host = c.consumer.redis_host = host;
  c.api.redis_port = c.consumer.redis_port = port;
  c.api.admin_key_hashes = s.Strings("api.admin_key_hashes");
  for (const std::string& hash : c.api.admin_key_hashes) {
    if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
      s.Error("api.admin_key_hashes",
              "must be 64 lowercase hex digits (`vhost-config hash-key KEY`), never a key");
    }
  }
  c.api.max_body_bytes = s.Bytes("api.max_body");
  const int64_t max_length = s.Integer("log.max_length");
  if (max_length < 1000) s.Error("log.max_length", "must be at least 1000");
  c.api.max_log_length = c.consumer.max_log_length =
      static_cast<uint64_t>(std::max<int64_t>(max_length, 1000));
  c.consumer.name = c.node_id;
  c.consumer.batch_window = s.Duration("planner.batch_window");
  c.consumer.repeat_delay = s.Duration("planner.repeat_delay");
  c.consumer.claim_idle = s.Duration("planner.claim_idle");
  c.consumer.confirm_timeout = s.Duration("planner.confirm_timeout");
  c.api.edge_live_timeout = s.Duration("edges.live_timeout");
  c.api.token_cache_ttl = s.Duration("tokens.cache_ttl");
  c.api.job_ttl = s.Duration("jobs.ttl");
  if (absl::Status status = s.Finish(); !status.ok()) return status;
  return c;
}

}  // namespace

std::span<const KeySpec> PurgeDaemonKeys() {
  return kKeys;
}

absl::StatusOr<DaemonConfig> LoadDaemonConfig(const std::string& path) {
  absl::StatusOr<vhost::Settings> file = vhost::Settings::FromFile(path, kKeys);
  if (!file.ok()) return file.status();
  return Build(*file, path);
}

absl::StatusOr<DaemonConfig> LoadDaemonConfigText(std::string_view text, const std::string& path) {
  vhost::Settings settings = vhost::Settings::FromText(text, path, kKeys);
  return Build(settings, path);
}

std::string PurgeDaemonConfigMarkdown() {
  return absl::StrCat("### Purge daemon keys\n\n", vhost::KeysMarkdown(kKeys));
}

}  // namespace purge
