#include "edge/http/server.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

namespace edge::http {

namespace {

// Collects a request body and echoes it back when it ends.
class EchoObserver : public Exchange::Observer {
 public:
  explicit EchoObserver(Exchange& exchange) : exchange_(exchange) {}
  void OnBody(std::string_view data) override { body_.append(data); }
  void OnBodyEnd() override { exchange_.Reply(200, "text/plain", body_); }
  void OnAbort() override {}

 private:
  Exchange& exchange_;
  std::string body_;
};

class AbortRecorder : public Exchange::Observer {
 public:
  void OnAbort() override { aborted = true; }
  std::atomic<bool> started{false}, aborted{false};
};

class TestHandler : public Handler {
 public:
  void OnRequest(Exchange& exchange) override {
    const std::string_view target = exchange.request().target;
    if (target == "/hello") {
      exchange.Reply(200, "text/plain", "hello");
    } else if (target == "/echo") {
      std::lock_guard lock(mu_);
      observers_.push_back(std::make_unique<EchoObserver>(exchange));
      exchange.SetObserver(observers_.back().get());
    } else if (target == "/file") {
      exchange.Respond(200, {}, file_length);
      CHECK(exchange.SendFile(file_fd, file_offset, file_length).ok());
      exchange.Finish();
    } else if (target == "/peer") {
      exchange.Reply(200, "text/plain", exchange.peer_address());
    } else if (target == "/stream") {
      exchange.Respond(200, {}, std::nullopt);
      exchange.Write("part one,");
      exchange.Write("part two");
      exchange.Finish();
    } else if (target == "/later") {
      // Answered from a later turn of the event loop, as an origin fetch would be.
      static constexpr timeval kDelay{0, 50000};
      event_base_once(
          exchange.loop(), -1, EV_TIMEOUT,
          [](evutil_socket_t, short, void* arg) {
            static_cast<Exchange*>(arg)->Reply(200, "text/plain", "later");
          },
          &exchange, &kDelay);
    } else if (target == "/shared") {
      exchange.Respond(200, {}, std::nullopt);  // chunked: the chunk's framing around the bytes
      exchange.SendShared(shared_body, *shared_body);
      exchange.Finish();
    } else if (target == "/hang") {
      exchange.SetObserver(&hang_observer);
      hang_observer.started = true;
    } else {
      exchange.Reply(404, "text/plain", "no such thing");
    }
  }

  int file_fd = -1;
  uint64_t file_offset = 0, file_length = 0;
  std::shared_ptr<const std::string> shared_body;
  AbortRecorder hang_observer;

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<EchoObserver>> observers_;
};

class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  ~Client() { ::close(fd_); }

  void Send(std::string_view bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == (ssize_t)bytes.size());
  }

  // Reads until the peer closes, or nothing more arrives for `quiet` once the answer has begun.
  // The answer itself may take up to `first_byte`: a loaded machine is slow to schedule the
  // server, and a silence before any byte is not the end of an answer.
  std::string Read(std::chrono::milliseconds quiet = std::chrono::milliseconds(300),
                   std::chrono::milliseconds first_byte = std::chrono::milliseconds(5000)) {
    std::string out;
    char buffer[65536];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      const auto wait = out.empty() ? std::max(quiet, first_byte) : quiet;
      if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool closed_ = false;
};

size_t Count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + 1))
    ++n;
  return n;
}

struct Fixture {
  explicit Fixture(ServerOptions options = {}) : server(std::move(options), handler) {
    REQUIRE(server.Start().ok());
  }
  TestHandler handler;
  Server server;
};

}  // namespace

TEST_CASE("every status the edge sends has its reason phrase") {
  for (const int status : {200, 206, 304, 308, 400, 404, 416, 421, 502, 503, 504}) {
    CAPTURE(status);
    CHECK(ReasonPhrase(status) != "Unknown");
  }
  CHECK(ReasonPhrase(308) == "Permanent Redirect");
}

TEST_CASE("a request, then another on the same connection") {
  Fixture f;
  Client c(f.server.port());
  c.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string first = c.Read();
  CHECK(first.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(first.ends_with("\r\n\r\nhello"));
  CHECK(first.find("Content-Length: 5\r\n") != std::string::npos);
  c.Send("GET /missing HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(c.Read().starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK_FALSE(c.closed());
}

TEST_CASE("pipelined requests are answered in order") {
  Fixture f;
  Client c(f.server.port());
  c.Send(
      "GET /later HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\nGET /missing "
      "HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string out = c.Read();
  const size_t later = out.find("later"), hello = out.find("hello"), missing = out.find("404");
  REQUIRE(later != std::string::npos);
  CHECK(later < hello);
  CHECK(hello < missing);
}

TEST_CASE("malformed input gets a 4xx and a closed connection") {
  Fixture f;
  for (const char* bad :
       {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"}) {
    Client c(f.server.port());
    c.Send(bad);
    CHECK(c.Read().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(c.closed());
  }
  Client c(f.server.port());
  c.Send("GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n");
  CHECK(c.Read().starts_with("HTTP/1.1 414 "));
  CHECK(c.closed());
}

TEST_CASE("request bodies: Content-Length, chunked, and Expect: 100-continue") {
  Fixture f;
  Client c(f.server.port());
  c.Send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  CHECK(c.Read().ends_with("\r\n\r\nhello world"));
  c.Send(
      "PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "chunk\r\n0\r\n\r\n");
  CHECK(c.Read().ends_with("\r\n\r\nhello chunk"));
  c.Send("PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  CHECK(c.Read() == "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("abc");
  CHECK(c.Read().ends_with("abc"));
  c.Send("PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  CHECK(c.Read().starts_with("HTTP/1.1 400 "));
  CHECK(c.closed());
}

TEST_CASE("an unread request body closes the connection after the response") {
  Fixture f;
  Client c(f.server.port());
  c.Send("POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
  const std::string out = c.Read();
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(c.closed());
}

TEST_CASE("streamed responses are chunked for HTTP/1.1 and close-delimited for HTTP/1.0") {
  Fixture f;
  Client c(f.server.port());
  c.Send("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(c.Read().ends_with("Transfer-Encoding: chunked\r\n\r\n9\r\npart one,\r\n8\r\npart two\r\n0\r\n\r\n"));
  Client old(f.server.port());
  old.Send("GET /stream HTTP/1.0\r\n\r\n");
  CHECK(old.Read().ends_with("\r\n\r\npart one,part two"));
  CHECK(old.closed());
}

TEST_CASE("an HTTP/1.0 connection kept alive says so, one that is not is closed") {
  Fixture f;
  Client kept(f.server.port());
  kept.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const std::string first = kept.Read();
  CHECK(first.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
  CHECK_FALSE(kept.closed());
  kept.Send("GET /hello HTTP/1.0\r\n\r\n");  // without the option: answered, then closed
  const std::string second = kept.Read();
  CHECK(second.find("Connection: close") != std::string::npos);
  CHECK(kept.closed());
  Client modern(f.server.port());
  modern.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(modern.Read().find("Connection:") == std::string::npos);  // 1.1 is persistent by default
}

TEST_CASE("an exchange knows its client's address") {
  Fixture f;
  Client c(f.server.port());
  c.Send("GET /peer HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(c.Read().ends_with("\r\n\r\n127.0.0.1"));
}

TEST_CASE("HEAD answers the head only") {
  Fixture f;
  Client c(f.server.port());
  c.Send("HEAD /hello HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string out = c.Read();
  CHECK(Count(out, "HTTP/1.1 200 OK") == 2);
  CHECK(Count(out, "hello") == 1);
}

// A temporary file of 200 000 letters, which the handler's /file serves [offset, offset + length) of.
class ServedFile {
 public:
  ServedFile(TestHandler& handler, uint64_t offset, uint64_t length)
      : fd_(::open((dir_ / "served").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    for (int i = 0; i < 200000; ++i) content_.push_back(static_cast<char>('a' + i * 7 % 26));
    REQUIRE(::write(fd_, content_.data(), content_.size()) == (ssize_t)content_.size());
    handler.file_fd = fd_;
    handler.file_offset = offset;
    handler.file_length = length;
    expected_ = content_.substr(offset, length);
  }
  ~ServedFile() { ::close(fd_); }
  const std::string& expected() const { return expected_; }

 private:
  testing_support::TempDir dir_;
  int fd_;
  std::string content_, expected_;
};

TEST_CASE("file ranges go out with sendfile") {
  Fixture f;
  const ServedFile file(f.handler, 4096, 150000);
  Client c(f.server.port());
  c.Send("GET /file HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string out = c.Read();
  CHECK(out.substr(out.find("\r\n\r\n") + 4) == file.expected());
}

TEST_CASE("a file larger than a sendfile piece goes out whole, in pieces") {
  ServerOptions options;
  options.sendfile_piece = 40000;  // 150 000 bytes: three whole pieces and a partial one
  Fixture f(options);
  const ServedFile file(f.handler, 4097, 150000);
  Client c(f.server.port());
  c.Send("GET /file HTTP/1.1\r\nHost: h\r\n\r\nGET /file HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string out = c.Read();
  REQUIRE(Count(out, "HTTP/1.1 200 OK\r\n") == 2);
  const size_t first = out.find("\r\n\r\n") + 4;
  CHECK(out.substr(first, 150000) == file.expected());
  const size_t second = out.find("\r\n\r\n", first + 150000) + 4;
  CHECK(out.substr(second) == file.expected());
}

TEST_CASE("a body in memory goes out by reference and is let go once sent") {
  Fixture f;
  f.handler.shared_body = std::make_shared<const std::string>(300000, 'm');
  const std::weak_ptr<const std::string> body = f.handler.shared_body;
  Client c(f.server.port());
  c.Send("GET /shared HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const std::string out = c.Read();
  CHECK(out.substr(out.find("\r\n\r\n") + 4) == "493e0\r\n" + *f.handler.shared_body + "\r\n0\r\n\r\n");
  f.handler.shared_body.reset();
  CHECK(testing_support::Eventually([&] { return body.expired(); }));
}

TEST_CASE("deadlines: a slow head gets 408, an idle connection is closed") {
  ServerOptions options;
  options.header_timeout = absl::Milliseconds(200);
  options.idle_timeout = absl::Milliseconds(200);
  Fixture f(options);
  Client slow(f.server.port());
  slow.Send("GET /hello HTTP/1.1\r\nHo");
  CHECK(slow.Read(std::chrono::milliseconds(1000)).starts_with("HTTP/1.1 408 "));
  CHECK(slow.closed());
  Client idle(f.server.port());
  idle.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(idle.Read(std::chrono::milliseconds(1000)).ends_with("hello"));
  CHECK(idle.closed());
}

TEST_CASE("a client that goes away aborts its exchange") {
  Fixture f;
  {
    Client c(f.server.port());
    c.Send("GET /hang HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(testing_support::Eventually([&] { return f.handler.hang_observer.started.load(); }));
  }
  CHECK(testing_support::Eventually([&] { return f.handler.hang_observer.aborted.load(); }));
}

TEST_CASE("a port something already listens on is refused at start, not shared") {
  Fixture running;  // a server of ours (SO_REUSEPORT: the port could be shared)
  ServerOptions same;
  same.listen[0].port = running.server.port();
  TestHandler handler;
  Server second(same, handler);
  const absl::Status status = second.Start();
  CHECK(status.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(status.message())
            .starts_with("cannot listen on 127.0.0.1:" + std::to_string(same.listen[0].port)));
  // The running one still answers alone.
  Client c(running.server.port());
  c.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(c.Read().ends_with("hello"));
}

TEST_CASE("the connection limit turns extra connections away") {
  ServerOptions options;
  options.max_connections = 1;
  options.workers = 1;
  Fixture f(options);
  Client first(f.server.port());
  first.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(first.Read().ends_with("hello"));
  Client second(f.server.port());
  second.Send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(second.Read().empty());
  CHECK(second.closed());
}

}  // namespace edge::http

namespace edge::http {

namespace {

void ConnectSocket(int fd, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
}

// Sends a request on `fd` and reads its answer until the peer is quiet for `quiet`.
std::string Ask(int fd, std::chrono::milliseconds quiet) {
  const std::string_view request = "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == (ssize_t)request.size());
  std::string out;
  char buffer[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, static_cast<int>(quiet.count())) > 0) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.ends_with("hello")) break;
  }
  return out;
}

}  // namespace

TEST_CASE("out of descriptors: accepting pauses instead of spinning, resumes, and a reserve answers") {
  std::mutex log_mu;
  std::vector<std::string> logged;
  ServerOptions options;
  options.workers = 1;
  options.log = [&](std::string_view message) {
    std::lock_guard lock(log_mu);
    logged.emplace_back(message);
  };
  Fixture f(options);
  ServerOptions admin_options;
  admin_options.workers = 1;
  admin_options.reserve_descriptor = true;
  Fixture admin(admin_options);

  // The clients' sockets first: connecting them later needs no descriptor.
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int admin_client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int admin_again = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // A low limit, then every descriptor left taken.
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 16);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> hogs;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hogs.push_back(fd);
  CHECK(errno == EMFILE);

  // The admin listener answers from its reserve while the process has no descriptor left.
  ConnectSocket(admin_client, admin.server.port());
  CHECK(Ask(admin_client, std::chrono::milliseconds(1000)).ends_with("hello"));
  ::close(admin_client);

  for (int fd : clients) ConnectSocket(fd, f.server.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // One failure per pause (100 ms), not a loop retrying at once; one report in the log.
  const uint64_t errors = f.server.accept_errors();
  CHECK(errors >= 1);
  CHECK(errors <= 10);
  {
    std::lock_guard lock(log_mu);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("Too many open files") != std::string::npos);
  }
  // Again: the closed admin connection's descriptor became the reserve, not the descriptor the
  // other listener took on its next try.
  ConnectSocket(admin_again, admin.server.port());
  CHECK(Ask(admin_again, std::chrono::milliseconds(1000)).ends_with("hello"));

  for (int fd : hogs) ::close(fd);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  // Accepting resumes: every waiting client is answered.
  for (int fd : clients) {
    CHECK(Ask(fd, std::chrono::milliseconds(1000)).ends_with("hello"));
    ::close(fd);
  }
  ::close(admin_again);
}

TEST_CASE("out of descriptors: a connection that closes lets the next one in at once, not after the pause") {
  ServerOptions options;
  options.workers = 1;
  options.accept_pause = absl::Seconds(30);
  Fixture f(options);
  const int first = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int waiting = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ConnectSocket(first, f.server.port());
  CHECK(Ask(first, std::chrono::milliseconds(1000)).ends_with("hello"));  // accepted: it holds a descriptor
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 16);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> hogs;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hogs.push_back(fd);
  ConnectSocket(waiting, f.server.port());
  for (int i = 0; i < 100 && f.server.accept_errors() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(f.server.accept_errors() >= 1);  // paused for 30 s
  ::close(first);  // the edge closes its side, and that descriptor takes the waiting client
  CHECK(Ask(waiting, std::chrono::milliseconds(2000)).ends_with("hello"));
  for (int fd : hogs) ::close(fd);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  ::close(waiting);
}

}  // namespace edge::http
