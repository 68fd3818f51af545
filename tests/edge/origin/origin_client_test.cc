#include "edge/origin/origin_client.h"

#include <doctest/doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "edge/http/server.h"
#include "tests/support/test_certificates.h"

namespace edge::origin {

namespace {

// An origin whose faults are chosen by path: a real server on loopback, as the guide allows for
// faults that Swift cannot produce on demand.
class FakeOrigin : public http::Handler {
 public:
  void OnRequest(http::Exchange& exchange) override {
    ++requests;
    const std::string_view target = exchange.request().target;
    if (target == "/ok") {
      const http::HeaderField headers[] = {
          {"ETag", "\"v1\""},
          {"X-Seen-Auth", exchange.request().Find("x-auth-token")},
          {"X-Seen-Empty", exchange.request().Find("x-empty").data() != nullptr ? "present" : "absent"}};
      exchange.Reply(200, "text/plain", "origin body", headers);
    } else if (target == "/big") {
      exchange.Respond(200, {}, big.size());
      exchange.Write(big);
      exchange.Finish();
    } else if (target == "/error") {
      exchange.Reply(503, "text/plain", "busy");
    } else if (target == "/reset") {
      exchange.Respond(200, {}, 1000);
      exchange.Write("only a part");
      exchange.Abort();
    } else if (target == "/stall") {
      exchange.Respond(200, {}, 1000);
      exchange.Write("and then nothing");
    } else {
      exchange.Reply(404, "text/plain", "missing");
    }
  }
  std::string big = std::string(4 << 20, 'b');
  std::atomic<int> requests{0};
};

class Collector : public FetchObserver {
 public:
  explicit Collector(event_base* loop) : loop_(loop) {}
  void OnHeaders(int code, std::span<const std::pair<std::string_view, std::string_view>> headers) override {
    status = code;
    for (const auto& [name, value] : headers) {
      if (name == "ETag" || name == "Etag") etag = value;
      if (name == "X-Seen-Auth") seen_auth = value;
      if (name == "X-Seen-Empty") seen_empty = value;
    }
  }
  void OnData(std::string_view data) override {
    body.append(data);
    if (on_data) on_data();
  }
  void OnComplete(absl::Status s) override {
    result = s;
    event_base_loopbreak(loop_);
  }

  int status = 0;
  std::string etag, seen_auth, seen_empty, body;
  std::optional<absl::Status> result;
  std::function<void()> on_data;

 private:
  event_base* loop_;
};

struct Fixture {
  Fixture() : server(http::ServerOptions{}, origin), loop(event_base_new()) {
    REQUIRE(server.Start().ok());
    options.stall_timeout = absl::Seconds(1);
    client = std::make_unique<OriginClient>(loop, options);
  }
  ~Fixture() {
    client.reset();
    event_base_free(loop);
  }
  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(path);
  }
  void Run() {
    const timeval limit{10, 0};
    event_base_loopexit(loop, &limit);
    event_base_dispatch(loop);
  }

  FakeOrigin origin;
  http::Server server;
  event_base* loop;
  OriginOptions options;
  std::unique_ptr<OriginClient> client;
};

// The client ports of every TCP connection to or from `server_port` the kernel still knows,
// closed ones included (TIME_WAIT lasts a minute): how many connections were made, not how many
// are open now.
std::set<int> ClientPortsOf(int server_port) {
  std::set<int> ports;
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the column names
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote;
    fields >> slot >> local >> remote;
    const int local_port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
    const int remote_port = std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16);
    if (local_port == server_port && remote_port != 0) ports.insert(remote_port);
    if (remote_port == server_port) ports.insert(local_port);
  }
  return ports;
}

FetchRequest Request(std::string method, std::string url,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
  FetchRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.headers = std::move(headers);
  return request;
}

// An HTTPS origin: Python's http.server wrapped in ssl with a given certificate, serving `dir` on a
// free loopback port; stopped by its PID.
class HttpsOrigin {
 public:
  HttpsOrigin(const std::string& chain, const std::string& key, const std::string& dir) {
    const std::string script =
        "import http.server, ssl, sys\n"
        "class Quiet(http.server.SimpleHTTPRequestHandler):\n"
        "    def log_message(self, *args): pass\n"
        "handler = lambda *a, **k: Quiet(*a, directory=sys.argv[3], **k)\n"
        "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n"
        "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "context.load_cert_chain(sys.argv[1], sys.argv[2])\n"
        "server.socket = context.wrap_socket(server.socket, server_side=True)\n"
        "print(server.server_address[1], flush=True)\n"
        "server.serve_forever()\n";
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);  // refused handshakes are tracebacks there
      ::execlp("python3", "python3", "-c", script.c_str(), chain.c_str(), key.c_str(), dir.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    char line[16] = {};
    const ssize_t n = ::read(out[0], line, sizeof(line) - 1);
    ::close(out[0]);
    REQUIRE(n > 0);
    port_ = std::atoi(line);
  }
  ~HttpsOrigin() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("an https origin must prove its name with a certificate from a trusted CA (origin.ca_file)") {
  testing_support::TestPki pki;
  REQUIRE(pki.ok());
  REQUIRE(pki.Issue("origin", {"localhost"}));
  REQUIRE(pki.Issue("other", {"other.example"}));
  REQUIRE(pki.Issue("self", {"localhost"}, ""));
  std::ofstream(pki / "hello.txt") << "over tls";
  auto fetch = [&](const std::string& name, const std::string& ca_file) {
    HttpsOrigin origin(pki / (name + "-chain.pem"), pki / (name + ".key"), pki.dir());
    event_base* loop = event_base_new();
    OriginOptions options;
    options.ca_file = ca_file;
    auto client = std::make_unique<OriginClient>(loop, options);
    Collector c(loop);
    client->Start(Request("GET", "https://localhost:" + std::to_string(origin.port()) + "/hello.txt"), &c);
    const timeval limit{10, 0};
    event_base_loopexit(loop, &limit);
    event_base_dispatch(loop);
    client.reset();
    event_base_free(loop);
    REQUIRE(c.result.has_value());
    return std::make_pair(*c.result, c.body);
  };
  // Signed by a CA the system does not know: refused, unless origin.ca_file names it.
  const absl::Status unknown_ca = fetch("origin", "").first;
  CHECK(absl::StrContains(unknown_ca.message(), "unable to get local issuer certificate"));
  const auto [trusted, body] = fetch("origin", pki / "ca.pem");
  CHECK(trusted.ok());
  CHECK(body == "over tls");
  // The right CA, another name; a self-signed certificate for the right name: refused.
  CHECK(absl::StrContains(fetch("other", pki / "ca.pem").first.message(),
                          "no alternative certificate subject name matches target host name 'localhost'"));
  CHECK(absl::StrContains(fetch("self", pki / "ca.pem").first.message(), "self-signed certificate"));
}

TEST_CASE("a fetch delivers status, headers and body, with the request headers sent") {
  Fixture f;
  Collector c(f.loop);
  f.client->Start(Request("GET", f.Url("/ok"), {{"X-Auth-Token", "secret"}, {"X-Empty", ""}}), &c);
  f.Run();
  REQUIRE(c.result.has_value());
  CHECK(c.result->ok());
  CHECK(c.status == 200);
  CHECK(c.etag == "\"v1\"");
  CHECK(c.seen_auth == "secret");
  CHECK(c.seen_empty == "present");  // an empty header is sent, not dropped (Swift removes ACLs so)
  CHECK(c.body == "origin body");
  CHECK(f.client->active() == 0);
}

TEST_CASE("HEAD has no body, origin errors are statuses, not failures") {
  Fixture f;
  Collector head(f.loop);
  f.client->Start(Request("HEAD", f.Url("/ok")), &head);
  f.Run();
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  Collector error(f.loop);
  f.client->Start(Request("GET", f.Url("/error")), &error);
  f.Run();
  CHECK(error.result->ok());
  CHECK(error.status == 503);
}

TEST_CASE("sequential fetches reuse one kept-alive connection") {
  Fixture f;
  const std::set<int> earlier = ClientPortsOf(f.server.port());  // an earlier server's, on this port
  for (int i = 0; i < 5; ++i) {
    Collector c(f.loop);
    f.client->Start(Request("GET", f.Url("/ok")), &c);
    f.Run();
    CHECK(c.status == 200);
  }
  CHECK(f.server.connections() == 1);
  // ... and no connection was made and closed before it.
  std::set<int> made = ClientPortsOf(f.server.port());
  for (int port : earlier) made.erase(port);
  CHECK(made.size() == 1);
}

TEST_CASE("a reset mid-body and a stalled origin are failures with a reason") {
  Fixture f;
  Collector reset(f.loop);
  f.client->Start(Request("GET", f.Url("/reset")), &reset);
  f.Run();
  REQUIRE(reset.result.has_value());
  CHECK(reset.result->code() == absl::StatusCode::kUnavailable);
  Collector stalled(f.loop);
  f.client->Start(Request("GET", f.Url("/stall")), &stalled);
  f.Run();
  REQUIRE(stalled.result.has_value());
  CHECK(stalled.result->code() == absl::StatusCode::kDeadlineExceeded);
  Collector refused(f.loop);
  f.client->Start(Request("GET", "http://127.0.0.1:1/x"), &refused);
  f.Run();
  CHECK(refused.result->code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("pause holds the body back until resume, and the whole body arrives") {
  Fixture f;
  Collector c(f.loop);
  struct Paused {
    Fixture* fixture;
    Collector* collector;
    OriginClient::FetchId id = 0;
    size_t size_at_pause = 0;
  } paused{&f, &c};
  bool paused_once = false;
  c.on_data = [&] {
    if (!paused_once && c.body.size() > 64 * 1024) {
      paused_once = true;
      paused.size_at_pause = c.body.size();
      f.client->Pause(paused.id);
      static constexpr timeval kLater{0, 200000};
      event_base_once(
          f.loop, -1, EV_TIMEOUT,
          [](evutil_socket_t, short, void* arg) {
            auto* p = static_cast<Paused*>(arg);
            // At most the rest of one receive buffer (64 KiB) arrives once paused, then nothing.
            CHECK(p->collector->body.size() - p->size_at_pause <= 64 * 1024);
            p->fixture->client->Resume(p->id);
          },
          &paused, &kLater);
    }
  };
  paused.id = f.client->Start(Request("GET", f.Url("/big")), &c);
  f.Run();
  REQUIRE(c.result.has_value());
  CHECK(c.result->ok());
  CHECK(paused_once);
  CHECK(paused.size_at_pause < c.body.size());
  CHECK(c.body == f.origin.big);
}

TEST_CASE("a cancelled fetch says nothing more, from inside or outside its callbacks") {
  Fixture f;
  Collector inside(f.loop);
  OriginClient::FetchId id = 0;
  inside.on_data = [&] { f.client->Cancel(id); };
  id = f.client->Start(Request("GET", f.Url("/big")), &inside);
  const timeval short_run{0, 300000};
  event_base_loopexit(f.loop, &short_run);
  event_base_dispatch(f.loop);
  CHECK_FALSE(inside.result.has_value());
  CHECK(inside.body.size() < f.origin.big.size());
  CHECK(f.client->active() == 0);

  Collector outside(f.loop);
  const OriginClient::FetchId second = f.client->Start(Request("GET", f.Url("/stall")), &outside);
  f.client->Cancel(second);
  CHECK(f.client->active() == 0);
}

TEST_CASE("a fetch started from inside another fetch's callbacks is sent on the next loop turn") {
  Fixture f;
  Collector outer(f.loop), inner(f.loop);
  bool started = false;
  outer.on_data = [&] {
    if (started) return;
    started = true;  // libcurl refuses a new transfer here (a recursive API call)
    f.client->Start(Request("GET", f.Url("/ok")), &inner);
  };
  f.client->Start(Request("GET", f.Url("/big")), &outer);
  f.Run();  // until the first of them completes
  if (!outer.result || !inner.result) f.Run();
  REQUIRE(inner.result.has_value());
  CHECK(inner.result->ok());
  CHECK(inner.body == "origin body");
  REQUIRE(outer.result.has_value());
  CHECK(outer.body == f.origin.big);
}

}  // namespace edge::origin
