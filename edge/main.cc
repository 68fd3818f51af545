// edge: the caching HTTP/1.1 server. `edge --config FILE` runs it; `edge --check --config FILE`
// validates the settings, the tenant file and the certificates they name. SIGHUP reloads the
// tenant file and the certificates together, SIGUSR1 reopens the
// access log, SIGTERM (or SIGINT) stops accepting, lets requests in flight finish within
// shutdown.grace, then exits.
#include <event2/event.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cache/file_closer.h"
#include "edge/access_log.h"
#include "edge/admin.h"
#include "edge/certificates.h"
#include "edge/config.h"
#include "edge/http/prometheus.h"
#include "edge/metrics.h"
#include "edge/pipeline.h"
#include "edge/purge_subscriber.h"
#include "edge/write_events.h"
#include "vhost-config/loader.h"
#include "vhost-config/snapshot.h"

namespace {

constexpr std::string_view kUsage = R"(usage: edge --config FILE [--check]

  --config FILE   the edge's settings (TOML); see docs/configuration.md, or --help-config
  --check         validate the settings, the tenant file and the certificates they name, then exit
                  (0 valid, 1 not; a certificate expiring within 14 days is a warning)
  --help-config   print every settings key with its type, default and meaning
  --help, --version

signals: SIGHUP reloads the tenant file and the certificates (a bad file or certificate is refused
and the old ones kept), SIGUSR1
reopens the access log, SIGTERM or SIGINT drains connections and exits.
)";

void Say(std::string_view message) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", absl::Now(), absl::UTCTimeZone())
            << "edge: " << message << std::endl;
}

// Raises the soft descriptor limit to the hard one (the soft default, 1024, is far below what
// listen.max_connections needs) and returns it.
uint64_t RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

struct Runtime {
  edge::EdgeConfig config;
  vhost::TenantSnapshot* tenants = nullptr;
  edge::FileCertificates* certificates = nullptr;
  cache::Store* store = nullptr;
  edge::AccessLog* access_log = nullptr;
  edge::Pipeline* pipeline = nullptr;
  edge::http::Server* server = nullptr;
  event_base* loop = nullptr;
  bool draining = false;
  absl::Time drain_deadline;
  absl::Time next_maintain;
};

void Reload(Runtime& rt) {
  auto loaded = edge::LoadTenantsAndCertificates(rt.config.tenants_file, rt.config.certificates, absl::Now());
  if (!loaded.ok()) {
    Say(absl::StrCat("reload refused, keeping the tenants and certificates in service:\n",
                     std::string(loaded.status().message())));
    return;
  }
  for (const std::string& warning : loaded->warnings) Say(warning);
  const size_t count = loaded->tenants->tenants.size();
  const size_t certificates = loaded->certificates->in_use().size();
  // Certificates first: a handshake for a new tenant's name finds its certificate by the time
  // requests for it are routed.
  rt.certificates->Replace(std::move(loaded->certificates));
  rt.tenants->Replace(std::move(loaded->tenants));
  rt.pipeline->TenantsChanged();
  Say(absl::StrCat("reloaded ", rt.config.tenants_file, ": ", count, " tenants, ", certificates,
                   " certificates"));
}

// The TLS ticket key file; a bad one is refused and the keys in use kept.
void ReloadTls(Runtime& rt) {
  if (absl::Status status = rt.server->ReloadTls(); !status.ok()) {
    Say(absl::StrCat("TLS reload refused, keeping the ticket keys in use: ", status.message()));
  }
}

void OnTick(Runtime& rt) {
  const absl::Time now = absl::Now();
  if (rt.access_log != nullptr) rt.access_log->Flush();
  if (now >= rt.next_maintain) {
    rt.store->Maintain();
    rt.next_maintain = now + rt.config.maintain_interval;
  }
  if (rt.draining && (rt.server->connections() == 0 || now >= rt.drain_deadline)) {
    if (rt.server->connections() > 0) {
      Say(absl::StrCat("grace period over, closing ", rt.server->connections(), " connections"));
    }
    event_base_loopbreak(rt.loop);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A TLS body goes out in file pieces of 128 KiB (tls_file_piece), each a buffer of its own: at
  // glibc's default threshold every one was an mmap, its page faults and an munmap, 13% of the
  // edge's time at 1 MiB HTTPS hits (benchmarks/RESULTS.md). From the heap they are reused.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "edge " << EDGE_VERSION << "\n";
      return 0;
    } else if (arg == "--help-config") {
      std::cout << edge::EdgeConfigMarkdown();
      return 0;
    } else if (arg == "--check") {
      check = true;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      std::cerr << "edge: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << kUsage;
    return 2;
  }

  absl::StatusOr<edge::EdgeConfig> config = edge::LoadEdgeConfig(config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  auto loaded = edge::LoadTenantsAndCertificates(config->tenants_file, config->certificates, absl::Now());
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return 1;
  }
  for (const std::string& warning : loaded->warnings) std::cerr << warning << "\n";
  const std::string descriptors = edge::DescriptorLimitWarning(*config, RaiseDescriptorLimit());
  const std::vector<std::string> overcommitted =
      cache::OvercommittedFilesystems(cache::PlaceZones(config->cache.zones));
  if (check) {
    if (!descriptors.empty()) std::cerr << config_path << ": warning: " << descriptors << "\n";
    for (const std::string& warning : overcommitted)
      std::cerr << config_path << ": warning: " << warning << "\n";
    std::cout << config_path << ": OK (node " << config->node_id << ", " << config->cache.zones.size()
              << " cache zones, " << loaded->tenants->tenants.size() << " tenants from "
              << config->tenants_file << ", " << loaded->certificates->in_use().size() << " certificates)\n";
    return 0;
  }

  signal(SIGPIPE, SIG_IGN);
  if (!descriptors.empty()) Say(absl::StrCat("warning: ", descriptors));
  for (const std::string& warning : overcommitted) Say(absl::StrCat("warning: ", warning));
  // Deadlock detection walks a lock graph on every lock: a debugging aid, not for serving.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  {
    // Beside the zones, so that a single zone that was away is known for it at the next start.
    std::error_code error;
    std::filesystem::create_directories(config->state_dir, error);
    config->cache.epoch_file = config->state_dir + "/cache-epoch";
  }
  // A zone that returns catches up from the purge log (PurgeSubscriber); without a bus there is
  // none to catch up from, and it is emptied at once.
  config->cache.keep_returning_zones = !config->purge_redis.empty();
  auto store = cache::Store::Open(config->cache, [] { return absl::Now(); });
  if (!store.ok()) {
    std::cerr << "edge: cannot open the cache: " << store.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<edge::AccessLog> access_log;
  if (!config->access_log.empty()) {
    auto opened = edge::AccessLog::Open(config->access_log, static_cast<size_t>(config->server.workers));
    if (!opened.ok()) {
      std::cerr << "edge: " << opened.status().message() << "\n";
      return 1;
    }
    access_log = std::move(*opened);
  }
  const size_t workers = static_cast<size_t>(config->server.workers);
  edge::Metrics metrics(workers);
  vhost::TenantSnapshot tenants(std::move(loaded->tenants));
  // Handed to the TLS listeners: they find each handshake's certificate in it.
  edge::FileCertificates certificates(std::move(loaded->certificates));
  edge::PipelineOptions pipeline_options;
  pipeline_options.node_id = config->node_id;
  pipeline_options.origin = config->origin;
  pipeline_options.purge_api = config->purge_api;
  pipeline_options.max_ranges = config->max_ranges;
  pipeline_options.accept_writes_unreachable = config->accept_writes_unreachable;
  pipeline_options.redirect_port = config->redirect_port;
  edge::Pipeline pipeline(workers, pipeline_options, tenants, **store, metrics, access_log.get(),
                          [] { return absl::Now(); });

  // The purge bus: write events out through the spool, the purge log in.
  std::unique_ptr<edge::WriteEventPublisher> publisher;
  std::unique_ptr<bus::Confirmer> confirmer;
  std::unique_ptr<edge::PurgeSubscriber> subscriber;
  if (!config->purge_redis.empty()) {
    std::error_code error;
    std::filesystem::create_directories(config->state_dir, error);
    std::string redis_host;
    int redis_port = 0;
    (void)bus::ParseRedisAddress(config->purge_redis, &redis_host, &redis_port);  // checked by the loader
    edge::PublisherOptions publisher_options;
    publisher_options.node_id = config->node_id;
    publisher_options.redis_host = redis_host;
    publisher_options.redis_port = redis_port;
    publisher_options.spool_path = config->state_dir + "/write-events.spool";
    publisher_options.max_spool_bytes = config->spool_max_bytes;
    auto started = edge::WriteEventPublisher::Start(publisher_options);
    if (!started.ok()) {
      std::cerr << "edge: " << started.status().message() << "\n";
      return 1;
    }
    publisher = std::move(*started);
    bus::ConfirmerOptions confirmer_options;
    confirmer_options.redis_host = redis_host;
    confirmer_options.redis_port = redis_port;
    confirmer_options.timeout = config->confirm_timeout;
    confirmer = std::make_unique<bus::Confirmer>(confirmer_options);
    pipeline.SetBus(confirmer.get(), publisher.get());
    edge::SubscriberOptions subscriber_options;
    subscriber_options.node_id = config->node_id;
    subscriber_options.redis_host = redis_host;
    subscriber_options.redis_port = redis_port;
    subscriber_options.cursor_path = config->state_dir + "/purge-log.cursor";
    subscriber_options.lease = config->lease;
    // Until it has read to the end of the purge log, the edge does not trust what its disk holds.
    subscriber = std::make_unique<edge::PurgeSubscriber>(
        subscriber_options, **store, pipeline.lease(), [](bool trusted) {
          Say(trusted ? "caught up with the purge log: serving from cache"
                      : "not caught up with the purge log: every hit is revalidated");
        });
  }
  config->server.log = [](std::string_view message) { Say(message); };
  // A cache entry deleted while it is being sent is freed off the loop.
  config->server.close_file = &cache::CloseFile;
  // TLS listeners choose from the tenant file's certificates (and the edge-wide default).
  for (edge::http::Listen& listen : config->server.listen) {
    if (listen.tls) listen.certificates = &certificates;
  }
  edge::http::Server server(config->server, pipeline);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::cerr << "edge: " << status.message() << "\n";
    return 1;
  }

  Runtime rt;
  rt.config = *config;
  rt.tenants = &tenants;
  rt.certificates = &certificates;
  rt.store = store->get();
  rt.access_log = access_log.get();
  rt.pipeline = &pipeline;
  rt.server = &server;
  rt.loop = event_base_new();
  const edge::http::Server* admin_listener = nullptr;  // set once it runs
  edge::AdminHandler admin_handler(
      [&] {
        std::string text =
            metrics.Render(rt.store->GetStats(), server.connections(), pipeline.fetches_in_flight());
        using edge::http::AppendMetric;
        AppendMetric(&text, "edge_accept_errors_total", "counter",
                     "Failed accept() calls (out of descriptors: EMFILE, ENFILE), each pausing accepting "
                     "for a moment.",
                     server.accept_errors() + (admin_listener ? admin_listener->accept_errors() : 0));
        text += edge::RenderCertificates(certificates.Current()->in_use());
        edge::AppendTlsMetrics(&text, server.tls_stats());
        AppendMetric(&text, "edge_trusted", "gauge",
                     "1 while the cache is served without revalidating every hit.",
                     pipeline.trusted() ? 1 : 0);
        if (subscriber) {
          const edge::PurgeSubscriber::Stats s = subscriber->GetStats();
          AppendMetric(&text, "edge_purge_entries_applied_total", "counter", "Purge-log entries applied.",
                       s.entries_applied);
          AppendMetric(&text, "edge_purge_invalidations_applied_total", "counter",
                       "Invalidations applied from the log.", s.invalidations_applied);
          AppendMetric(&text, "edge_purge_whole_cache_total", "counter",
                       "Whole-cache invalidations (log gap, lost cursor).", s.whole_cache_purges);
          AppendMetric(&text, "edge_purge_bus_connected", "gauge", "1 while the purge bus answers.",
                       s.connected ? 1 : 0);
        }
        if (publisher) {
          AppendMetric(&text, "edge_write_event_spool_bytes", "gauge",
                       "Write events waiting for (or just sent to) Redis.", publisher->spool_bytes());
        }
        return text;
      },
      [&]() -> std::string {
        if (rt.draining) return "draining";
        for (const cache::ZoneStats& zone : rt.store->GetStats().zones) {
          if (zone.healthy) return "";
        }
        return "no cache zone is in service";
      });
  std::unique_ptr<edge::http::Server> admin;
  if (config->admin_port != 0) {
    edge::http::ServerOptions admin_options;
    admin_options.listen = {{config->admin_address, config->admin_port}};
    admin_options.workers = 1;
    admin_options.reserve_descriptor = true;  // /metrics answers when the clients took every descriptor
    admin_options.log = [](std::string_view message) {
      Say(std::string("admin listener: ").append(message));
    };
    admin = std::make_unique<edge::http::Server>(admin_options, admin_handler);
    if (absl::Status status = admin->Start(); !status.ok()) {
      std::cerr << "edge: admin listener: " << status.message() << "\n";
      return 1;
    }
    admin_listener = admin.get();
  }
  if (subscriber) subscriber->Start();
  std::string listeners;
  for (size_t i = 0; i < config->server.listen.size(); ++i) {
    const edge::http::Listen& listen = config->server.listen[i];
    absl::StrAppend(
        &listeners, i == 0 ? "" : ", ", listen.tls ? "https://" : "http://",
        listen.address.find(':') == std::string::npos ? listen.address : "[" + listen.address + "]", ":",
        server.port(i));
  }
  Say(absl::StrCat("node ", config->node_id, " serving on ", listeners, " with ", workers, " workers, ",
                   config->cache.zones.size(), " cache zones, ", tenants.Current()->tenants.size(),
                   " tenants",
                   admin ? absl::StrCat("; admin on ", config->admin_address, ":", admin->port()) : ""));

  auto on_signal = [](evutil_socket_t signal_number, short, void* arg) {
    Runtime& rt = *static_cast<Runtime*>(arg);
    switch (signal_number) {
      case SIGHUP:
        Reload(rt);
        ReloadTls(rt);
        break;
      case SIGUSR1:
        if (rt.access_log != nullptr) rt.access_log->Reopen();
        Say("access log reopened");
        break;
      default:
        if (!rt.draining) {
          rt.draining = true;
          rt.drain_deadline = absl::Now() + rt.config.shutdown_grace;
          rt.server->Drain();
          Say(absl::StrCat("draining ", rt.server->connections(), " connections"));
        }
    }
  };
  std::vector<event*> events;
  for (int signal_number : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) {
    events.push_back(evsignal_new(rt.loop, signal_number, on_signal, &rt));
    event_add(events.back(), nullptr);
  }
  events.push_back(event_new(
      rt.loop, -1, EV_PERSIST, [](evutil_socket_t, short, void* arg) { OnTick(*static_cast<Runtime*>(arg)); },
      &rt));
  const timeval tick{0, 100 * 1000};
  event_add(events.back(), &tick);
  rt.next_maintain = absl::Now() + config->maintain_interval;

  event_base_dispatch(rt.loop);

  server.Stop();
  if (admin) admin->Stop();
  subscriber.reset();
  publisher.reset();
  for (event* e : events) event_free(e);
  event_base_free(rt.loop);
  Say("stopped");
  return 0;
}
