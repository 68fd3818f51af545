// The fixture of the in-process pipeline tests: an origin of our own that injects what Swift
// cannot produce on demand (delays, resets, 5xx, ranges), and an edge (server, pipeline, store).
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "edge/pipeline.h"
#include "edge/purge_subscriber.h"
#include "edge/write_events.h"
#include "purge-daemon/planner.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "vhost-config/http_date.h"
#include "vhost-config/loader.h"

namespace edge {

namespace {

using testing_support::Eventually;
using testing_support::HttpGet;
using testing_support::HttpRequest;
using testing_support::HttpResponse;

// What the origin answers for one object name.
struct Script {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;  // before the head
  // Held (no answer) while it is true: for tests that order events against a fetch in flight.
  std::shared_ptr<std::atomic<bool>> held;
  size_t reset_after = SIZE_MAX;  // close the connection after this many body bytes
  std::string etag;               // answered with 304 when If-None-Match names it
  std::string vary_on;            // a request header: its value is appended to the body, and Vary says so
  int interim = 0;                // an interim response (1xx) with a Link header, before the answer
  std::string echo;               // a request header: its value is appended to the body (no Vary)
  bool ranges = false;            // a single Range is answered 206 with Content-Range, as Swift does
  size_t range_cap = SIZE_MAX;    // with ranges: at most this many bytes of a range are answered
};

class FakeOrigin : public http::Handler {
 public:
  FakeOrigin() : server_(Options(), *this) { REQUIRE(server_.Start().ok()); }
  ~FakeOrigin() override {
    server_.Stop();
    owned_.clear();  // answers still waiting when the loops stopped
  }

  void Set(const std::string& name, Script script) {
    std::lock_guard lock(mu_);
    scripts_[name] = std::move(script);
  }
  // From the request of `name` after its `requests`-th on, it is answered by `script` (an object
  // changed between two requests of one fetch).
  void SetAfter(const std::string& name, int requests, Script script) {
    std::lock_guard lock(mu_);
    later_[name] = {requests, std::move(script)};
  }
  int Count(const std::string& name) {
    std::lock_guard lock(mu_);
    return counts_[name];
  }
  // Body bytes sent for `name`, over all its answers.
  uint64_t BodyBytes(const std::string& name) {
    std::lock_guard lock(mu_);
    return body_bytes_[name];
  }
  // For each request of `name`, in order: how many answers to it had been sent when it arrived.
  std::vector<int> AnsweredBefore(const std::string& name) {
    std::lock_guard lock(mu_);
    return answered_before_[name];
  }
  std::string LastHeader(const std::string& name, const std::string& header) {
    std::lock_guard lock(mu_);
    const std::vector<std::string>& values = headers_[name + "|" + header];
    return values.empty() ? "" : values.back();
  }
  // The value of `header` (lower case) in each request of `name`, in order.
  std::vector<std::string> Headers(const std::string& name, const std::string& header) {
    std::lock_guard lock(mu_);
    return headers_[name + "|" + header];
  }
  uint16_t port() const { return server_.port(); }

  // The script name a request is for: with its query ("slo?multipart-manifest=get") if there is
  // a script for that, else without. Under mu_.
  std::string Name(http::Exchange& exchange) {
    const std::string target(exchange.request().target);
    const std::string prefix = "/v1/AUTH_test/c/";
    std::string name = target.rfind(prefix, 0) == 0 ? target.substr(prefix.size()) : target;
    if (!scripts_.contains(name)) name = name.substr(0, name.find('?'));
    return name;
  }

  void OnRequest(http::Exchange& exchange) override {
    Script script;
    std::string name;
    {
      std::lock_guard lock(mu_);
      name = Name(exchange);
      ++counts_[name];
      if (auto later = later_.find(name); later != later_.end() && counts_[name] > later->second.first) {
        scripts_[name] = std::move(later->second.second);
        later_.erase(later);
      }
      answered_before_[name].push_back(answered_[name]);
      for (const char* h : {"if-none-match", "if-modified-since", "x-auth-token", "x-client-hop",
                            "authorization", "x-edge-node", "range"}) {
        headers_[name + "|" + h].emplace_back(exchange.request().Find(h));
      }
      auto it = scripts_.find(name);
      if (it == scripts_.end()) {
        exchange.Reply(404, "text/plain", "no such object\n");
        return;
      }
      script = it->second;
    }
    if (script.delay_ms == 0 && !script.held) {
      Answer(exchange, script, this);
      Answered(name);
      return;
    }
    const timeval tv{script.delay_ms / 1000, (script.delay_ms % 1000) * 1000};
    Delayed* delayed = Keep(std::make_unique<Delayed>(this, &exchange, std::move(script)));
    delayed->name = name;
    exchange.SetObserver(delayed);
    event_base_once(exchange.loop(), -1, EV_TIMEOUT, &Delayed::Fire, delayed, &tv);
  }

 private:
  static http::ServerOptions Options() {
    http::ServerOptions options;
    options.workers = 1;
    return options;
  }

  static void Answer(http::Exchange& exchange, const Script& script, FakeOrigin* origin) {
    if (!script.etag.empty() && exchange.request().Find("if-none-match") == script.etag) {
      std::vector<http::HeaderField> headers = {{"ETag", script.etag}};
      for (const auto& [n, v] : script.headers) headers.emplace_back(n, v);
      exchange.Respond(304, headers, std::nullopt);
      exchange.Finish();
      return;
    }
    if (script.interim != 0) {
      const http::HeaderField hints[] = {{"Link", "</style.css>; rel=preload"}, {"Connection", "x-hop"}};
      exchange.SendInterim(script.interim, hints);
    }
    if (!script.echo.empty()) {
      Script echoed = script;
      echoed.echo.clear();
      echoed.body += "-";
      echoed.body += exchange.request().Find(script.echo);
      Answer(exchange, echoed, origin);
      return;
    }
    std::vector<http::HeaderField> headers;
    for (const auto& [n, v] : script.headers) headers.emplace_back(n, v);
    if (!script.etag.empty()) headers.emplace_back("ETag", script.etag);
    if (!script.vary_on.empty()) {
      headers.emplace_back("Vary", script.vary_on);
      Script negotiated = script;
      negotiated.vary_on.clear();
      negotiated.body += "-";
      negotiated.body += exchange.request().Find(script.vary_on);
      negotiated.headers.emplace_back("Vary", script.vary_on);
      Answer(exchange, negotiated, origin);
      return;
    }
    ByteRanges ranges;
    const RangeResult range =
        script.ranges && script.status == 200
            ? EvaluateRanges(exchange.request().Find("range"), script.body.size(), 1, &ranges)
            : RangeResult::kWhole;
    if (range == RangeResult::kUnsatisfiable) {
      const std::string unsatisfied = "bytes */" + std::to_string(script.body.size());
      const http::HeaderField fields[] = {{"Content-Range", unsatisfied}};
      exchange.Respond(416, fields, 0);
      exchange.Finish();
      return;
    }
    if (range == RangeResult::kPartial) {
      ranges[0].last = std::min<uint64_t>(
          ranges[0].last, ranges[0].first + std::min<uint64_t>(script.range_cap, ranges[0].length()) - 1);
      Script part = script;
      part.ranges = false;
      part.status = 206;
      part.body = script.body.substr(ranges[0].first, ranges[0].length());
      part.headers.emplace_back("Content-Range", "bytes " + std::to_string(ranges[0].first) + "-" +
                                                     std::to_string(ranges[0].last) + "/" +
                                                     std::to_string(script.body.size()));
      Answer(exchange, part, origin);
      return;
    }
    {
      std::lock_guard lock(origin->mu_);
      origin->body_bytes_[origin->Name(exchange)] += std::min(script.body.size(), script.reset_after);
    }
    exchange.Respond(script.status, headers, script.body.size());
    if (script.reset_after < script.body.size()) {
      // Part of the body, then a reset once that part has left.
      exchange.Write(std::string_view(script.body).substr(0, script.reset_after));
      Delayed* reset = origin->Keep(std::make_unique<Delayed>(origin, &exchange, Script{}));
      exchange.SetObserver(reset);
      const timeval soon{0, 50000};
      event_base_once(exchange.loop(), -1, EV_TIMEOUT, &Delayed::Reset, reset, &soon);
      return;
    }
    exchange.Write(script.body);
    exchange.Finish();
  }

  void Answered(const std::string& name) {
    std::lock_guard lock(mu_);
    ++answered_[name];
  }

  // A response sent after a delay and once no longer held, unless the edge hung up first.
  struct Delayed : http::Exchange::Observer {
    Delayed(FakeOrigin* origin, http::Exchange* exchange, Script script)
        : origin(origin), exchange(exchange), script(std::move(script)) {}
    void OnAbort() override { exchange = nullptr; }
    static void Fire(evutil_socket_t, short, void* arg) {
      auto* self = static_cast<Delayed*>(arg);  // owned by the origin (Keep)
      if (self->exchange == nullptr) return;
      if (self->script.held && *self->script.held) {
        const timeval again{0, 5000};
        event_base_once(self->exchange->loop(), -1, EV_TIMEOUT, &Delayed::Fire, self, &again);
        return;
      }
      self->exchange->SetObserver(nullptr);
      Answer(*self->exchange, self->script, self->origin);
      self->origin->Answered(self->name);
    }
    static void Reset(evutil_socket_t, short, void* arg) {
      auto* self = static_cast<Delayed*>(arg);
      if (self->exchange != nullptr) self->exchange->Abort();
    }
    FakeOrigin* origin;
    http::Exchange* exchange;
    Script script;
    std::string name;
  };

  // A delayed answer lives until the origin goes: its timer may still be pending when the loops
  // stop, and event_base_once would never free it.
  Delayed* Keep(std::unique_ptr<Delayed> delayed) {
    std::lock_guard lock(mu_);
    owned_.push_back(std::move(delayed));
    return owned_.back().get();
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Delayed>> owned_;
  std::map<std::string, Script> scripts_;
  std::map<std::string, int> counts_;
  std::map<std::string, int> answered_;
  std::map<std::string, std::vector<int>> answered_before_;
  std::map<std::string, uint64_t> body_bytes_;
  std::map<std::string, std::vector<std::string>> headers_;
  std::map<std::string, std::pair<int, Script>> later_;
  http::Server server_;
};

inline std::shared_ptr<const vhost::TenantTable> Tenants(uint16_t origin_port, const std::string& extra) {
  const std::string text =
      "[defaults]\ncache.default_ttl = \"60s\"\ncache.stale_while_revalidate = \"0s\"\n"
      "cache.stale_if_error = \"1h\"\n"
      "[[tenant]]\nname = \"t\"\ndomains = [\"t.test\"]\norigin.url = \"http://127.0.0.1:" +
      std::to_string(origin_port) + "\"\norigin.account = \"AUTH_test\"\norigin.container = \"c\"\n" + extra +
      "\n[[tenant]]\nname = \"site\"\ndomains = [\"site.test\"]\norigin.kind = \"http\"\n"
      "origin.url = \"http://127.0.0.1:" +
      std::to_string(origin_port) + "\"\n";
  auto table = vhost::LoadTenantText(text, "test.toml");
  REQUIRE(table.ok());
  return *table;
}

// An edge in this process: server, pipeline and a one-zone store, with a clock tests can advance.
struct Edge {
  explicit Edge(uint16_t origin_port, const std::string& tenant_extra = "", cache::FaultInjector faults = {},
                http::ServerOptions server_options = {}, size_t max_ranges = 16, std::string purge_api = "")
      : tenants(Tenants(origin_port, tenant_extra)), metrics(2) {
    cache::StoreOptions options;
    options.zones = {{dir / "zone", 64 << 20}};
    options.memory_bytes = 16 << 20;
    options.faults = std::move(faults);
    auto opened = cache::Store::Open(options, clock);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    PipelineOptions pipeline_options;
    pipeline_options.node_id = "test-edge";
    pipeline_options.origin.stall_timeout = absl::Seconds(1);
    pipeline_options.max_ranges = max_ranges;
    pipeline_options.purge_api = std::move(purge_api);
    pipeline = std::make_unique<Pipeline>(2, pipeline_options, tenants, *store, metrics, nullptr, clock);
    server = std::make_unique<http::Server>(server_options, *pipeline);
    REQUIRE(server->Start().ok());
  }
  ~Edge() {
    server->Stop();
    pipeline.reset();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + path;
  }
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) const {
    headers.push_back("Host: t.test");
    return HttpGet(Url(path), headers);
  }
  void Advance(int seconds) { offset += seconds; }

  testing_support::TempDir dir;
  std::atomic<int> offset{0};
  // Still but for Advance, and on a whole second: an Age or a TTL does not depend on when in a
  // second a request runs.
  const absl::Time start = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  cache::Clock clock = [this] { return start + absl::Seconds(offset.load()); };
  vhost::TenantSnapshot tenants;
  Metrics metrics;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<http::Server> server;
};

inline Script Object(std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  Script s;
  s.body = std::move(body);
  s.headers = std::move(headers);
  return s;
}

// Holds `script`'s answers until the returned flag is set false.
inline std::shared_ptr<std::atomic<bool>> Hold(Script& script) {
  script.held = std::make_shared<std::atomic<bool>>(true);
  return script.held;
}

// Sends `request` on a connection of its own and reads until the edge closes it.
inline std::string RawExchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string received;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char buffer[16384];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) received.append(buffer, n);
  }
  ::close(fd);
  return received;
}

// A connection to the edge's `port` (with a receive buffer of `receive_buffer` bytes, if not 0).
inline int Connect(uint16_t port, int receive_buffer = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  return fd;
}

// The parts of a multipart/byteranges body: each part's Content-Range and bytes.
inline std::vector<std::pair<std::string, std::string>> Parts(const HttpResponse& response) {
  std::vector<std::pair<std::string, std::string>> parts;
  const std::string type = response.header("content-type");
  const size_t at = type.find("boundary=");
  if (type.rfind("multipart/byteranges", 0) != 0 || at == std::string::npos) return parts;
  const std::string delimiter = "--" + type.substr(at + 9);
  size_t pos = response.body.find(delimiter);
  while (pos != std::string::npos) {
    pos += delimiter.size();
    if (response.body.compare(pos, 2, "--") == 0) break;  // the close
    const size_t head_end = response.body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;
    const std::string head = response.body.substr(pos, head_end - pos);
    const size_t range_at = head.find("Content-Range: ");
    const std::string content_range =
        range_at == std::string::npos
            ? ""
            : head.substr(range_at + 15, head.find("\r\n", range_at) - range_at - 15);
    const size_t next = response.body.find("\r\n" + delimiter, head_end + 4);
    if (next == std::string::npos) break;
    parts.emplace_back(content_range, response.body.substr(head_end + 4, next - head_end - 4));
    pos = next + 2;
  }
  return parts;
}

}  // namespace

}  // namespace edge
