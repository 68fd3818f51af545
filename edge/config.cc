#include "edge/config.h"

#include <array>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "purge-daemon/bus/redis.h"
#include "vhost-config/settings.h"

namespace edge {

namespace {

using vhost::KeySpec;
using vhost::KeyType;

constexpr std::array kEdgeKeys = {
    KeySpec{"node_id", KeyType::kString, "", false,
            "This edge's name in the cluster: metrics, logs, purge progress. Unique per edge."},
    KeySpec{"tenants", KeyType::kString, "", false,
            "The tenant file (see above), relative to this file's directory. Reloaded on SIGHUP."},
    KeySpec{
        "listen", KeyType::kRuleList, "", false,
        "One `[[listen]]` table per address and port clients connect to, with `address`, `port` and `tls` "
        "(see the listener keys). None: plain HTTP on 127.0.0.1:8090."},
    KeySpec{"listen.address", KeyType::kString, "\"127.0.0.1\"", false,
            "The old form, a single `[listen]` table: one plain listener (`[[listen]]` replaces it)."},
    KeySpec{"listen.port", KeyType::kInteger, "8090", false, "The old form's port."},
    KeySpec{"listen.workers", KeyType::kInteger, "2", false, "The old form of `server.workers`."},
    KeySpec{"listen.max_connections", KeyType::kInteger, "10000", false,
            "The old form of `server.max_connections`."},
    KeySpec{"server.workers", KeyType::kInteger, "2", false,
            "Worker threads, one event loop each, with its own SO_REUSEPORT socket on every listener."},
    KeySpec{
        "server.max_connections", KeyType::kInteger, "10000", false,
        "Client connections at once, TLS handshakes in progress included; more are closed on accept. One "
        "holds up to 4 descriptors: `edge --check` and the start warn when they could pass the descriptor "
        "limit (the edge raises its soft `RLIMIT_NOFILE` to the hard one)."},
    KeySpec{"tls.min_version", KeyType::kString, "\"1.2\"", false,
            "Oldest TLS version accepted: \"1.2\" or \"1.3\" (1.3 is the newest; 1.0 and 1.1 never)."},
    KeySpec{"tls.ciphers", KeyType::kString, "ECDHE with AES-GCM and ChaCha20", false,
            "TLS 1.2 cipher list (OpenSSL syntax), in the server's order of preference. The default has only "
            "forward-secret AEAD suites: `ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
            "ECDHE-RSA-CHACHA20-POLY1305`."},
    KeySpec{"tls.ciphersuites", KeyType::kString, "all three", false,
            "TLS 1.3 suites (OpenSSL syntax): `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
            "TLS_CHACHA20_POLY1305_SHA256` by default."},
    KeySpec{
        "tls.ticket_key_file", KeyType::kString, "\"\"", false,
        "Session ticket key (80 bytes: `openssl rand 80 > ticket.key`), relative to this file. Give every "
        "edge the same file and a client resumes its session on any of them; reread on SIGHUP, the key "
        "before it still decrypts. Empty: random keys of this process, rotated every "
        "`tls.ticket_rotation`."},
    KeySpec{
        "tls.ticket_rotation", KeyType::kDuration, "\"12h\"", false,
        "How often the edge's own ticket key is replaced (the previous one still decrypts), and how long a "
        "ticket is good for."},
    KeySpec{"timeouts.header", KeyType::kDuration, "\"10s\"", false,
            "From the first byte of a request head to its end (then 408)."},
    KeySpec{"timeouts.body", KeyType::kDuration, "\"30s\"", false, "Between two reads of a request body."},
    KeySpec{"timeouts.idle", KeyType::kDuration, "\"60s\"", false,
            "A kept-alive connection with nothing to do."},
    KeySpec{"timeouts.send", KeyType::kDuration, "\"60s\"", false,
            "A client that takes none of its response."},
    KeySpec{"limits.request_line", KeyType::kInteger, "8192", false, "Longest request line (then 414)."},
    KeySpec{"limits.head_bytes", KeyType::kInteger, "32768", false,
            "Largest request head, line and headers (then 431)."},
    KeySpec{"limits.headers", KeyType::kInteger, "100", false,
            "Most request headers (then 431); at most 128."},
    KeySpec{
        "limits.ranges", KeyType::kInteger, "16", false,
        "Most byte ranges one request is answered as `multipart/byteranges`; more get `200` and the whole "
        "body, as nginx's `max_ranges`. 0 ignores `Range`. A sliced object (`cache.slice_size`) is answered "
        "in at most 4 parts."},
    KeySpec{"admin.address", KeyType::kString, "\"127.0.0.1\"", false,
            "Address of the admin listener (`/metrics`, `/healthz`)."},
    KeySpec{"admin.port", KeyType::kInteger, "9090", false, "Port of the admin listener; 0 turns it off."},
    KeySpec{"origin.connect_timeout", KeyType::kDuration, "\"2s\"", false, "Connecting to an origin."},
    KeySpec{"origin.stall_timeout", KeyType::kDuration, "\"10s\"", false,
            "An origin response that sends no byte for this long fails (1 s steps)."},
    KeySpec{"origin.max_connections_per_host", KeyType::kInteger, "64", false,
            "Kept-alive connections per origin host and worker."},
    KeySpec{
        "origin.ca_file", KeyType::kString, "\"\"", false,
        "PEM bundle of the CAs that `https://` origins' certificates must chain to, relative to this file; "
        "empty: the system's. Certificates and host names are always verified."},
    KeySpec{"tls.default_certificate", KeyType::kString, "\"\"", false,
            "PEM chain (leaf first) served to TLS clients whose name (SNI) no tenant's `[[tenant.tls]]` "
            "serves, relative to this file; empty: such handshakes are refused (`unrecognized_name`). "
            "Checked by `edge --check` as tenants' certificates are, and reloaded on SIGHUP with them."},
    KeySpec{"tls.default_key", KeyType::kString, "\"\"", false,
            "PEM private key of `tls.default_certificate`."},
    KeySpec{"tls.without_sni", KeyType::kString, "\"default\"", false,
            "A TLS client that sends no server name: \"default\" (served `tls.default_certificate`) or "
            "\"refuse\" (the alert `unrecognized_name`)."},
    KeySpec{"tls.redirect_port", KeyType::kInteger, "443", false,
            "The public HTTPS port that tenants' `https_redirect` sends clients to (left out of the URL "
            "when 443)."},
    KeySpec{"cache.zone", KeyType::kRuleList, "", false,
            "One `[[cache.zone]]` table per drive, with `path` and `size` (see the zone keys)."},
    KeySpec{"cache.fsync", KeyType::kBool, "false", false,
            "fdatasync every entry before it is committed: survives power loss, costs a sync per fill."},
    KeySpec{"cache.memory", KeyType::kBytes, "\"256M\"", false,
            "Memory for a copy of small, recently read entries (bodies up to 64 KiB), so their hits need no "
            "disk read; 0 for none."},
    KeySpec{"cache.memory_https", KeyType::kBytes, "\"128M\"", false,
            "Memory for larger bodies answered over HTTPS without kernel TLS, each up to a sixteenth of "
            "it, held from their entry's second hit on: TLS encrypts from memory, so those hits read no file "
            "(plain HTTP sends the file by sendfile, which needs no copy); 0 for none."},
    KeySpec{"cache.zone_error_threshold", KeyType::kInteger, "3", false,
            "Consecutive I/O errors that take a zone out of service (it is probed and re-admitted)."},
    KeySpec{"log.access", KeyType::kString, "\"\"", false,
            "Access log file, one line per request with the tenant field; empty for none. Reopened on "
            "SIGUSR1."},
    KeySpec{"shutdown.grace", KeyType::kDuration, "\"10s\"", false,
            "On SIGTERM: how long requests in flight may take to finish before the edge exits."},
    KeySpec{"purge.redis", KeyType::kString, "\"\"", false,
            "host:port of the purge bus (Redis). Empty: no bus; writes through this edge purge only its own "
            "cache."},
    KeySpec{
        "purge.state_dir", KeyType::kString, "\"state\"", false,
        "Where the edge keeps its purge-log cursor, its spool of write events and the cache's epoch (which "
        "zone was out of service), relative to this file."},
    KeySpec{"purge.spool_max", KeyType::kBytes, "\"64M\"", false,
            "Write events kept while Redis is unreachable; when full, writes are refused (503) so that no "
            "purge is lost."},
    KeySpec{"purge.lease", KeyType::kDuration, "\"1s\"", false,
            "The edge serves from its cache only this long after it last heard from the bus (it reads at "
            "least four times a lease); then every hit is revalidated. A writer waits for an edge that stops "
            "answering only this long."},
    KeySpec{"purge.confirm_timeout", KeyType::kDuration, "\"5s\"", false,
            "The most a write's answer waits for the other edges to apply its purge (a live edge answers "
            "in milliseconds; one that stops is given up after its lease)."},
    KeySpec{"purge.when_unreachable", KeyType::kString, "\"refuse\"", false,
            "Writes to Swift while the bus is unreachable: \"refuse\" (503 with Retry-After, before Swift "
            "sees them) or \"accept\" (relayed; the answer says X-Purge-Pending: spooled)."},
    KeySpec{"purge.api", KeyType::kString, "\"\"", false,
            "Base URL of a purge daemon's API (`http://127.0.0.1:9100`), where `PURGE` requests are sent. "
            "Empty: PURGE is refused."},
};

constexpr std::array kListenKeys = {
    KeySpec{
        "address", KeyType::kString, "\"127.0.0.1\"", false,
        "IPv4 or IPv6 address (\"::1\", \"::\" for all; IPv6 only, an IPv4 address is its own listener)."},
    KeySpec{"port", KeyType::kInteger, "", false, "Port."},
    KeySpec{"tls", KeyType::kBool, "false", false,
            "HTTPS: TLS 1.2/1.3 with the certificate chosen by SNI (see `[tls]`)."},
};

constexpr std::array kZoneKeys = {
    KeySpec{"path", KeyType::kString, "", false, "The zone's directory, on its own drive."},
    KeySpec{"size", KeyType::kBytes, "", false, "The most the zone may hold, e.g. \"100G\"."},
};

template <typename T>
T InRange(vhost::Settings& settings, std::string_view key, int64_t low, int64_t high) {
  const int64_t value = settings.Integer(key);
  if (value < low || value > high) {
    settings.Error(key, absl::StrCat(value, " is out of range [", low, ", ", high, "]"));
    return static_cast<T>(low);
  }
  return static_cast<T>(value);
}

}  // namespace

std::span<const KeySpec> EdgeConfigKeys() {
  return kEdgeKeys;
}
std::span<const KeySpec> ZoneKeys() {
  return kZoneKeys;
}

namespace {

absl::StatusOr<EdgeConfig> Build(vhost::Settings& s, const std::string& path) {
  EdgeConfig c;
  // Paths in the file are relative to the file, wherever the edge is started from.
  const auto resolve = [&](std::string name) {
    if (name.empty() || name.front() == '/') return name;
    return (std::filesystem::path(path).parent_path() / name).lexically_normal().string();
  };
  c.node_id = s.String("node_id");
  if (s.Has("node_id") && c.node_id.empty()) s.Error("node_id", "must not be empty");
  c.tenants_file = resolve(s.String("tenants"));
  // The old single [listen] table still loads, as one plain listener; TOML keeps it and
  // [[listen]] apart (one file cannot hold both).
  const bool old_listen = s.Has("listen.address") || s.Has("listen.port") || s.Has("listen.workers") ||
                          s.Has("listen.max_connections");
  c.server.listen.clear();
  if (old_listen) {
    for (const char* key : {"server.workers", "server.max_connections"}) {
      if (s.Has(key)) s.Error(key, "is set twice: a [listen] table sets it too (use [[listen]] tables)");
    }
    c.server.listen.push_back({s.String("listen.address"), InRange<uint16_t>(s, "listen.port", 1, 65535)});
    c.server.workers = InRange<int>(s, "listen.workers", 1, 256);
    c.server.max_connections = InRange<size_t>(s, "listen.max_connections", 1, 10'000'000);
  } else {
    for (vhost::Settings& table : s.Tables("listen", kListenKeys)) {
      http::Listen& listen = c.server.listen.emplace_back();
      listen.address = table.String("address");
      if (table.Has("port")) {
        listen.port = InRange<uint16_t>(table, "port", 1, 65535);
      } else {
        table.Error("port", "is required");
      }
      listen.tls = table.Bool("tls");
      for (size_t i = 0; i + 1 < c.server.listen.size(); ++i) {
        if (c.server.listen[i].address == listen.address && c.server.listen[i].port == listen.port) {
          table.Error("port", "is already another listener's address and port");
        }
      }
    }
    if (c.server.listen.empty()) c.server.listen.push_back({"127.0.0.1", 8090});
    c.server.workers = InRange<int>(s, "server.workers", 1, 256);
    c.server.max_connections = InRange<size_t>(s, "server.max_connections", 1, 10'000'000);
  }
  c.server.tls.min_version = s.String("tls.min_version");
  if (s.Has("tls.ciphers")) c.server.tls.ciphers = s.String("tls.ciphers");
  if (s.Has("tls.ciphersuites")) c.server.tls.ciphersuites = s.String("tls.ciphersuites");
  c.server.tls.ticket_key_file = resolve(s.String("tls.ticket_key_file"));
  c.server.tls.ticket_rotation = s.Duration("tls.ticket_rotation");
  if (absl::Status status = http::CheckTlsOptions(c.server.tls); !status.ok()) {
    // "ciphers: ..." names the key under [tls].
    const std::string message(status.message());
    const size_t colon = message.find(": ");
    s.Error(absl::StrCat("tls.", message.substr(0, colon)), message.substr(colon + 2));
  }
  c.server.header_timeout = s.Duration("timeouts.header");
  c.server.body_timeout = s.Duration("timeouts.body");
  c.server.idle_timeout = s.Duration("timeouts.idle");
  c.server.send_timeout = s.Duration("timeouts.send");
  c.server.limits.max_request_line = InRange<size_t>(s, "limits.request_line", 256, 1 << 20);
  c.server.limits.max_head_bytes = InRange<size_t>(s, "limits.head_bytes", 1024, 1 << 22);
  c.server.limits.max_headers = InRange<size_t>(s, "limits.headers", 1, http::kMaxHeaders);
  c.max_ranges = InRange<size_t>(s, "limits.ranges", 0, 1000);
  c.admin_address = s.String("admin.address");
  c.admin_port = InRange<uint16_t>(s, "admin.port", 0, 65535);
  c.origin.connect_timeout = s.Duration("origin.connect_timeout");
  c.origin.stall_timeout = s.Duration("origin.stall_timeout");
  c.origin.max_connections_per_host = InRange<long>(s, "origin.max_connections_per_host", 1, 10000);
  c.origin.ca_file = resolve(s.String("origin.ca_file"));
  c.certificates.settings_file = path;
  c.certificates.default_certificate = resolve(s.String("tls.default_certificate"));
  c.certificates.default_key = resolve(s.String("tls.default_key"));
  c.certificates.certificate_line = s.Line("tls.default_certificate");
  c.certificates.key_line = s.Line("tls.default_key");
  if (c.certificates.default_certificate.empty() != c.certificates.default_key.empty()) {
    s.Error(c.certificates.default_key.empty() ? "tls.default_certificate" : "tls.default_key",
            "tls.default_certificate and tls.default_key go together");
  }
  const std::string without_sni = s.String("tls.without_sni");
  if (without_sni != "default" && without_sni != "refuse") {
    s.Error("tls.without_sni", "must be \"default\" or \"refuse\"");
  }
  c.certificates.refuse_without_sni = without_sni == "refuse";
  c.redirect_port = InRange<uint16_t>(s, "tls.redirect_port", 1, 65535);
  c.cache.fsync_on_commit = s.Bool("cache.fsync");
  c.cache.memory_bytes = s.Bytes("cache.memory");
  c.cache.held_body_bytes = s.Bytes("cache.memory_https");
  c.cache.zone_error_threshold = InRange<int>(s, "cache.zone_error_threshold", 1, 1000);
  std::vector<vhost::Settings> zones = s.Tables("cache.zone", kZoneKeys);
  if (zones.empty()) s.Error("cache.zone", "at least one [[cache.zone]] is required");
  for (vhost::Settings& zone : zones) {
    cache::ZoneConfig& z = c.cache.zones.emplace_back();
    z.path = resolve(zone.String("path"));
    z.max_bytes = zone.Bytes("size");
    if (z.max_bytes > 0 && z.max_bytes < (1 << 20)) zone.Error("size", "must be at least 1M");
    for (size_t i = 0; i + 1 < c.cache.zones.size(); ++i) {
      if (c.cache.zones[i].path == z.path) zone.Error("path", "is already another zone's path");
    }
  }
  c.access_log = resolve(s.String("log.access"));
  c.shutdown_grace = s.Duration("shutdown.grace");
  c.purge_redis = s.String("purge.redis");
  if (!c.purge_redis.empty()) {
    std::string host;
    int port = 0;
    if (absl::Status status = bus::ParseRedisAddress(c.purge_redis, &host, &port); !status.ok()) {
      s.Error("purge.redis", std::string(status.message()));
    }
  }
  c.state_dir = resolve(s.String("purge.state_dir"));
  c.spool_max_bytes = s.Bytes("purge.spool_max");
  c.lease = s.Duration("purge.lease");
  if (c.lease < absl::Milliseconds(100)) s.Error("purge.lease", "must be at least 100ms");
  c.confirm_timeout = s.Duration("purge.confirm_timeout");
  if (c.confirm_timeout <= c.lease) s.Error("purge.confirm_timeout", "must be longer than purge.lease");
  const std::string unreachable = s.String("purge.when_unreachable");
  if (unreachable != "refuse" && unreachable != "accept") {
    s.Error("purge.when_unreachable", "must be \"refuse\" or \"accept\"");
  }
  c.accept_writes_unreachable = unreachable == "accept";
  c.purge_api = s.String("purge.api");
  while (c.purge_api.ends_with("/")) c.purge_api.pop_back();
  if (!c.purge_api.empty() && !c.purge_api.starts_with("http://") && !c.purge_api.starts_with("https://")) {
    s.Error("purge.api", "must be an http:// or https:// URL");
  }
  if (absl::Status status = s.Finish(); !status.ok()) return status;
  return c;
}

}  // namespace

absl::StatusOr<EdgeConfig> LoadEdgeConfig(const std::string& path) {
  absl::StatusOr<vhost::Settings> file = vhost::Settings::FromFile(path, kEdgeKeys);
  if (!file.ok()) return file.status();
  return Build(*file, path);
}

absl::StatusOr<EdgeConfig> LoadEdgeConfigText(std::string_view text, const std::string& path) {
  vhost::Settings settings = vhost::Settings::FromText(text, path, kEdgeKeys);
  return Build(settings, path);
}

std::string DescriptorLimitWarning(const EdgeConfig& config, uint64_t limit) {
  // Besides the clients: zone locks and journals, the access log, Redis, the origin pools, libevent.
  const uint64_t fixed = 64 + 2 * config.cache.zones.size() +
                         static_cast<uint64_t>(config.server.workers) *
                             static_cast<uint64_t>(config.origin.max_connections_per_host);
  const uint64_t needed = config.server.max_connections * kDescriptorsPerConnection + fixed;
  if (needed <= limit) return "";
  const uint64_t fits = limit > fixed ? (limit - fixed) / kDescriptorsPerConnection : 0;
  return absl::StrCat("server.max_connections = ", config.server.max_connections, " may need ", needed,
                      " descriptors, more than the limit of ", limit, " (RLIMIT_NOFILE): raise the limit (",
                      "ulimit -n, LimitNOFILE=) or lower server.max_connections to ", fits,
                      "; out of descriptors, the edge pauses accepting");
}

std::string EdgeConfigMarkdown() {
  return absl::StrCat("### Edge keys\n\n", vhost::KeysMarkdown(kEdgeKeys),
                      "\n### Listener keys (`[[listen]]`)\n\n", vhost::KeysMarkdown(kListenKeys),
                      "\n### Zone keys (`[[cache.zone]]`)\n\n", vhost::KeysMarkdown(kZoneKeys));
}

}  // namespace edge
