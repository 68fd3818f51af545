// purge-daemon: turns write events into invalidations and serves the purge API. `purge-daemon
// --config FILE` runs it; `--check` validates the settings and the tenant file. SIGHUP reloads the
// tenant file and the API's certificate; SIGTERM or SIGINT stops it (events it took and did not acknowledge
// go to another daemon).
#include <event2/event.h>
#include <signal.h>

#include <iostream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/admin.h"
#include "edge/http/prometheus.h"
#include "purge-daemon/api.h"
#include "purge-daemon/config.h"
#include "purge-daemon/consumer.h"
#include "vhost-config/loader.h"
#include "vhost-config/snapshot.h"

namespace {

constexpr std::string_view kUsage = R"(usage: purge-daemon --config FILE [--check]

  --config FILE   the daemon's settings (TOML); see docs/configuration.md, or --help-config
  --check         validate the settings and the tenant file they name, then exit (0 valid, 1 not)
  --help-config   print every settings key with its type, default and meaning
  --help, --version

signals: SIGHUP reloads the tenant file and the API's certificate (a bad one is refused and the
old one kept); SIGTERM or SIGINT stops.
)";

void Say(std::string_view message) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", absl::Now(), absl::UTCTimeZone())
            << "purge-daemon: " << message << std::endl;
}

struct Runtime {
  std::string tenants_file;
  vhost::TenantSnapshot* tenants = nullptr;
  // The API's certificate (api.certificate, api.key), reread on SIGHUP; null without TLS.
  edge::http::SingleCertificate* certificate = nullptr;
  std::string certificate_file;
  std::string key_file;
  event_base* loop = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "purge-daemon " << EDGE_VERSION << "\n";
      return 0;
    } else if (arg == "--help-config") {
      std::cout << purge::PurgeDaemonConfigMarkdown();
      return 0;
    } else if (arg == "--check") {
      check = true;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      std::cerr << "purge-daemon: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  absl::StatusOr<purge::DaemonConfig> config = purge::LoadDaemonConfig(config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  auto table = vhost::LoadTenantFile(config->tenants_file);
  if (!table.ok()) {
    std::cerr << table.status().message() << "\n";
    return 1;
  }
  if (check) {
    std::cout << config_path << ": OK (daemon " << config->node_id << ", " << (*table)->tenants.size()
              << " tenants from " << config->tenants_file << ")\n";
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  vhost::TenantSnapshot tenants(std::move(*table));
  purge::EventConsumer consumer(config->consumer);
  purge::PurgeApi api(config->api, tenants, static_cast<size_t>(config->api_workers),
                      [] { return absl::Now(); });
  api.SetMetricsSource([&consumer] {
    using edge::http::AppendMetric;
    const purge::EventConsumer::Stats s = consumer.GetStats();
    std::string text;
    AppendMetric(&text, "purge_events_total", "counter", "Write events planned.", s.events);
    AppendMetric(&text, "purge_events_claimed_total", "counter", "Events taken over from another daemon.",
                 s.claimed);
    AppendMetric(&text, "purge_log_entries_total", "counter",
                 "Entries appended to the purge log for write events.", s.log_entries);
    AppendMetric(&text, "purge_invalidations_total", "counter", "Invalidations planned for write events.",
                 s.invalidations);
    AppendMetric(&text, "purge_repeats_total", "counter",
                 "Listings invalidations applied again after the delay.", s.repeats_moved);
    AppendMetric(&text, "purge_bus_connected", "gauge", "1 while Redis answers the planner.",
                 s.connected ? 1 : 0);
    AppendMetric(&text, "purge_writes_confirmed_total", "counter",
                 "Writes the Swift middleware waited for, answered once every edge had applied them.",
                 s.confirmed);
    AppendMetric(&text, "purge_writes_unconfirmed_total", "counter",
                 "Writes the Swift middleware waited for, answered with edges still pending.", s.unconfirmed);
    s.confirm_wait.AppendTo(
        &text, "purge_write_confirm_seconds",
        "How long the Swift middleware waited for a write: from its event to every edge having applied it.");
    return text;
  });
  edge::http::ServerOptions server_options;
  server_options.listen = {{config->api_address, config->api_port}};
  std::unique_ptr<edge::http::SingleCertificate> certificate;
  if (!config->api_certificate.empty()) {
    auto loaded = edge::http::LoadCertificate(config->api_certificate, config->api_key);
    if (!loaded.ok()) {
      std::cerr << "purge-daemon: " << loaded.status().message() << "\n";
      return 1;
    }
    certificate = std::make_unique<edge::http::SingleCertificate>(*loaded);
    server_options.listen[0].tls = true;
    server_options.listen[0].certificates = certificate.get();
  }
  server_options.workers = config->api_workers;
  edge::http::Server server(server_options, api);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::cerr << "purge-daemon: " << status.message() << "\n";
    return 1;
  }
  // /metrics and /healthz, off the public API port: they need no credentials.
  edge::AdminHandler admin_handler([&api] { return api.Metrics(); },
                                   [&api] { return api.UnhealthyReason(); });
  edge::http::ServerOptions admin_options;
  admin_options.listen = {{config->admin_address, config->admin_port}};
  admin_options.workers = 1;
  std::unique_ptr<edge::http::Server> admin;
  if (config->admin_port != 0) {
    admin = std::make_unique<edge::http::Server>(admin_options, admin_handler);
    if (absl::Status status = admin->Start(); !status.ok()) {
      std::cerr << "purge-daemon: admin listener: " << status.message() << "\n";
      return 1;
    }
  }
  consumer.Start();
  Say(absl::StrCat(
      config->node_id, " planning write events and serving the purge API on ",
      certificate ? "https://" : "http://", config->api_address, ":", server.port(), " (",
      tenants.Current()->tenants.size(), " tenants)",
      admin ? absl::StrCat(", /metrics and /healthz on ", config->admin_address, ":", admin->port())
            : std::string(", no admin listener")));

  Runtime rt;
  rt.tenants_file = config->tenants_file;
  rt.tenants = &tenants;
  rt.certificate = certificate.get();
  rt.certificate_file = config->api_certificate;
  rt.key_file = config->api_key;
  rt.loop = event_base_new();
  auto on_signal = [](evutil_socket_t signal_number, short, void* arg) {
    Runtime& rt = *static_cast<Runtime*>(arg);
    if (signal_number != SIGHUP) {
      event_base_loopbreak(rt.loop);
      return;
    }
    if (rt.certificate != nullptr) {
      auto renewed = edge::http::LoadCertificate(rt.certificate_file, rt.key_file);
      if (renewed.ok()) {
        rt.certificate->Replace(*std::move(renewed));
      } else {
        Say(absl::StrCat("certificate reload refused, keeping the one in use: ", renewed.status().message()));
      }
    }
    auto reloaded = vhost::LoadTenantFile(rt.tenants_file);
    if (!reloaded.ok()) {
      Say(absl::StrCat("reload refused, keeping the tenants in service:\n",
                       std::string(reloaded.status().message())));
      return;
    }
    const size_t count = (*reloaded)->tenants.size();
    rt.tenants->Replace(std::move(*reloaded));
    Say(absl::StrCat("reloaded ", rt.tenants_file, ": ", count, " tenants"));
  };
  std::vector<event*> events;
  for (int signal_number : {SIGHUP, SIGTERM, SIGINT}) {
    events.push_back(evsignal_new(rt.loop, signal_number, on_signal, &rt));
    event_add(events.back(), nullptr);
  }
  event_base_dispatch(rt.loop);
  if (admin) admin->Stop();
  server.Stop();
  for (event* e : events) event_free(e);
  event_base_free(rt.loop);
  Say("stopped");
  return 0;
}
