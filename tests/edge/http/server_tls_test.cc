// The server over TLS: handshakes (versions, SNI, ALPN), requests, file bodies, the handshake's
// deadline and connection limit, session resumption across servers, listeners on IPv6.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "edge/http/server.h"
#include "edge/http/tls.h"
#include "tests/support/eventually.h"
#include "tests/support/loopback.h"
#include "tests/support/temp_dir.h"

namespace edge::http {

namespace {

// A self-signed certificate for `name`, by the openssl CLI, as an operator would make one.
std::shared_ptr<const Certificate> MakeCertificate(const testing_support::TempDir& dir,
                                                   const std::string& name) {
  const std::string cert = dir / (name + ".pem"), key = dir / (name + ".key");
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=" +
      name + " -addext subjectAltName=DNS:" + name + " -keyout " + key + " -out " + cert + " 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  absl::StatusOr<std::shared_ptr<const Certificate>> loaded = LoadCertificate(cert, key);
  REQUIRE(loaded.ok());
  return *loaded;
}

// Certificates by name; no entry for a name (or for "", no SNI) refuses the handshake.
class MapSource : public CertificateSource {
 public:
  std::shared_ptr<const Certificate> Find(std::string_view name) const override {
    auto it = certificates.find(std::string(name));
    return it == certificates.end() ? nullptr : it->second;
  }
  std::map<std::string, std::shared_ptr<const Certificate>> certificates;
};

class TlsHandler : public Handler {
 public:
  void OnRequest(Exchange& exchange) override {
    const std::string_view target = exchange.request().target;
    if (target == "/name") {
      exchange.Reply(
          200, "text/plain",
          std::string(exchange.tls() ? "tls " : "plain ") + std::string(exchange.tls_server_name()));
    } else if (target == "/file") {
      exchange.Respond(200, {}, file_length);
      CHECK(exchange.SendFile(file_fd, 0, file_length).ok());
      exchange.Finish();
    } else if (target == "/file-later") {
      // The head now; the file in two pieces from later callbacks, once the head is sent, the
      // second when the first drained (OnWritable), as a miss relays its spool while it fills.
      exchange.Respond(200, {}, file_length);
      later = &exchange;
      static constexpr timeval kDelay{0, 50000};
      event_base_once(
          exchange.loop(), -1, EV_TIMEOUT,
          [](evutil_socket_t, short, void* arg) {
            auto* self = static_cast<TlsHandler*>(arg);
            self->later->SetObserver(&self->second_piece);
            CHECK(self->later->SendFile(self->file_fd, 0, self->file_length / 2).ok());
          },
          this, &kDelay);
    } else if (target == "/stream") {
      // A relay as the pipeline runs one: each OnWritable brings another piece, whatever is
      // buffered, so it is the server's promise (called only once drained) that bounds it.
      exchange.Respond(200, {}, std::nullopt);
      exchange.SetObserver(&stream);
      stream.exchange = &exchange;
      stream.OnWritable();
    } else if (target == "/memory") {
      exchange.Reply(200, "application/octet-stream", memory_body);
    } else if (target == "/shared" || target == "/shared-chunked") {
      const std::optional<uint64_t> length =
          target == "/shared" ? std::optional<uint64_t>(shared_body->size()) : std::nullopt;
      exchange.Respond(200, {}, length);
      exchange.SendShared(shared_body, *shared_body);
      exchange.Finish();
    } else {
      exchange.Reply(200, "text/plain", "hello");
    }
  }
  struct Stream : Exchange::Observer {
    void OnWritable() override {
      if (exchange == nullptr || produced >= kLimit) return;
      exchange->Write(std::string(64 * 1024, 's'));
      produced += 64 * 1024;
    }
    void OnAbort() override { exchange = nullptr; }
    static constexpr uint64_t kLimit = 64 << 20;
    Exchange* exchange = nullptr;
    std::atomic<uint64_t> produced{0};
  } stream;
  std::string memory_body;
  std::shared_ptr<const std::string> shared_body;
  int file_fd = -1;
  uint64_t file_length = 0;
  Exchange* later = nullptr;
  struct SecondPiece : Exchange::Observer {
    void OnWritable() override {
      if (handler->later == nullptr) return;
      Exchange* exchange = std::exchange(handler->later, nullptr);
      const uint64_t half = handler->file_length / 2;
      CHECK(exchange->SendFile(handler->file_fd, half, handler->file_length - half).ok());
      exchange->Finish();
    }
    void OnAbort() override { handler->later = nullptr; }
    explicit SecondPiece(TlsHandler* h) : handler(h) {}
    TlsHandler* handler;
  } second_piece{this};
};

struct ClientOptions {
  std::string address = "127.0.0.1";
  std::string sni{};
  int min_version = 0, max_version = 0;
  std::string ciphers{};  // TLS 1.2 list
  std::string alpn{};     // wire format
  SSL_SESSION* session = nullptr;
  int receive_buffer = 0;  // SO_RCVBUF, before connecting
};

// A blocking TLS client (OpenSSL), with a 5 s timeout on every read.
class TlsClient {
 public:
  TlsClient(uint16_t port, const ClientOptions& options) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    // Old versions and suites must be offered to check that the server refuses them.
    SSL_CTX_set_security_level(ctx_, 0);
    if (options.min_version) SSL_CTX_set_min_proto_version(ctx_, options.min_version);
    if (options.max_version) SSL_CTX_set_max_proto_version(ctx_, options.max_version);
    SSL_CTX_set_cipher_list(ctx_, options.ciphers.empty() ? "DEFAULT:@SECLEVEL=0" : options.ciphers.c_str());
    const bool v6 = options.address.find(':') != std::string::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (options.receive_buffer) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer, sizeof(options.receive_buffer));
    }
    const timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_storage address{};
    socklen_t length;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&address);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, options.address.c_str(), &a->sin6_addr);
      length = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&address);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, options.address.c_str(), &a->sin_addr);
      length = sizeof(*a);
    }
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_app_data(ssl_, this);
    SSL_set_info_callback(ssl_, [](const SSL* ssl, int where, int value) {
      if (where & SSL_CB_READ_ALERT) static_cast<TlsClient*>(SSL_get_app_data(ssl))->alert = value & 0xff;
    });
    if (!options.sni.empty()) SSL_set_tlsext_host_name(ssl_, options.sni.c_str());
    if (!options.alpn.empty()) {
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(options.alpn.data()),
                          static_cast<unsigned>(options.alpn.size()));
    }
    if (options.session != nullptr) SSL_set_session(ssl_, options.session);
    connected = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    // Closed without close_notify, OpenSSL marks the session not resumable.
    if (connected) SSL_shutdown(ssl_);
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }

  // One GET and its response (head and a Content-Length body).
  std::string Get(const std::string& path, const std::string& host = "h") {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    REQUIRE(SSL_write(ssl_, request.data(), static_cast<int>(request.size())) ==
            static_cast<int>(request.size()));
    return ReadResponse();
  }
  // The next response; what was read beyond it waits for the next call.
  std::string ReadResponse() {
    std::string response = std::move(unread_);
    unread_.clear();
    size_t head_end = std::string::npos, want = 0;
    char buffer[65536];
    for (;;) {
      if (head_end == std::string::npos && (head_end = response.find("\r\n\r\n")) != std::string::npos) {
        const size_t at = response.find("Content-Length: ");
        want = head_end + 4 + (at < head_end ? std::stoull(response.substr(at + 16)) : 0);
      }
      if (head_end != std::string::npos && response.size() >= want) break;
      const int n = SSL_read(ssl_, buffer, sizeof(buffer));
      if (n <= 0) break;
      response.append(buffer, static_cast<size_t>(n));
    }
    ERR_clear_error();
    if (head_end != std::string::npos && response.size() > want) {
      unread_ = response.substr(want);
      response.resize(want);
    }
    return response;
  }
  // What is left until the server closes.
  std::string ReadToEnd() {
    std::string rest = std::exchange(unread_, std::string());
    char buffer[65536];
    for (int n; (n = SSL_read(ssl_, buffer, sizeof(buffer))) > 0;)
      rest.append(buffer, static_cast<size_t>(n));
    ERR_clear_error();
    return rest;
  }
  std::string Body(const std::string& path) {
    const std::string response = Get(path);
    const size_t end = response.find("\r\n\r\n");
    return end == std::string::npos ? "" : response.substr(end + 4);
  }
  std::string Alpn() const {
    const unsigned char* data = nullptr;
    unsigned length = 0;
    SSL_get0_alpn_selected(ssl_, &data, &length);
    return std::string(reinterpret_cast<const char*>(data), length);
  }
  std::string PeerName() const {
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (peer == nullptr) return "";
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof(name));
    X509_free(peer);
    return name;
  }
  SSL* ssl() const { return ssl_; }
  int fd() const { return fd_; }

  bool connected = false;
  int alert = -1;  // the alert the server sent, if any

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::string unread_;
};

uint64_t Failures(const Server& server, HandshakeFailure failure) {
  return server.tls_stats().failures[static_cast<size_t>(failure)].load();
}

struct TlsFixture {
  explicit TlsFixture(ServerOptions options = {}) {
    source.certificates["a.example"] = MakeCertificate(dir, "a.example");
    source.certificates["b.example"] = MakeCertificate(dir, "b.example");
    options.listen = {Listen{"127.0.0.1", 0, true, &source}};
    server = std::make_unique<Server>(std::move(options), handler);
    REQUIRE(server->Start().ok());
  }
  ~TlsFixture() { server->Stop(); }
  uint16_t port() const { return server->port(0); }
  testing_support::TempDir dir;
  MapSource source;
  TlsHandler handler;
  std::unique_ptr<Server> server;
};

// `size` bytes that differ along their length (a byte moved or lost shows).
std::string Pattern(size_t size, uint64_t seed = 0) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t value = (i + seed) * 0x9E3779B97F4A7C15ull;
    std::memcpy(&bytes[i], &value, 8);
  }
  return bytes;
}

// A client with a 64 KiB receive buffer that asks for `target`, then reads nothing for 500 ms:
// what the server has queued for it by then is bounded by the socket buffers, not the body.
std::unique_ptr<TlsClient> AskThenStall(const TlsFixture& f, std::string_view target) {
  auto slow =
      std::make_unique<TlsClient>(f.port(), ClientOptions{.sni = "a.example", .receive_buffer = 64 * 1024});
  REQUIRE(slow->connected);
  std::string request = "GET ";
  request += target;
  request += " HTTP/1.1\r\nHost: h\r\n\r\n";
  REQUIRE(SSL_write(slow->ssl(), request.data(), static_cast<int>(request.size())) > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return slow;
}

// 80 random bytes, as `openssl rand 80`.
void WriteTicketKey(const std::string& path) {
  unsigned char key[80];
  RAND_bytes(key, sizeof(key));
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(key), sizeof(key));
}

// A session from a full handshake and one request (TLS 1.3 tickets come after the handshake).
SSL_SESSION* SessionFrom(uint16_t port, int version) {
  TlsClient client(port, {.sni = "a.example", .min_version = version, .max_version = version});
  REQUIRE(client.connected);
  CHECK(client.Body("/hello") == "hello");
  return SSL_get1_session(client.ssl());
}

bool Resumes(uint16_t port, int version, SSL_SESSION* session) {
  TlsClient client(port,
                   {.sni = "a.example", .min_version = version, .max_version = version, .session = session});
  REQUIRE(client.connected);
  CHECK(client.Body("/hello") == "hello");
  return SSL_session_reused(client.ssl()) == 1;
}

}  // namespace

TEST_CASE("TLS 1.2 and 1.3: a handshake, then requests on the kept-alive connection") {
  TlsFixture f;
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    CAPTURE(version);
    TlsClient client(f.port(), {.sni = "a.example", .min_version = version, .max_version = version});
    REQUIRE(client.connected);
    CHECK(SSL_version(client.ssl()) == version);
    const std::string first = client.Get("/hello");
    CHECK(first.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(first.ends_with("\r\n\r\nhello"));
    CHECK(client.Body("/name") == "tls a.example");
  }
  CHECK(f.server->tls_stats().handshakes.load() == 2);
}

TEST_CASE("TLS 1.2 prefers the server's cipher order and refuses suites outside its list") {
  TlsFixture f;
  // The client prefers AES-256; the server's list puts AES-128 first.
  TlsClient preferred(f.port(), {.sni = "a.example",
                                 .max_version = TLS1_2_VERSION,
                                 .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"});
  REQUIRE(preferred.connected);
  CHECK(std::string(SSL_get_cipher_name(preferred.ssl())) == "ECDHE-ECDSA-AES128-GCM-SHA256");
  TlsClient weak(f.port(),
                 {.sni = "a.example", .max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA"});
  CHECK_FALSE(weak.connected);
  CHECK(testing_support::Eventually(
      [&] { return Failures(*f.server, HandshakeFailure::kNoSharedCipher) == 1; }));
}

TEST_CASE("SNI chooses the certificate, a name without one, and no SNI, get unrecognized_name") {
  TlsFixture f;
  for (const std::string name : {"a.example", "b.example"}) {
    TlsClient client(f.port(), {.sni = name});
    REQUIRE(client.connected);
    CHECK(client.PeerName() == name);
    CHECK(client.Body("/name") == "tls " + name);
  }
  // SNI is case-insensitive; the source sees it lowercase.
  TlsClient upper(f.port(), {.sni = "B.Example"});
  REQUIRE(upper.connected);
  CHECK(upper.PeerName() == "b.example");
  CHECK(upper.Body("/name") == "tls b.example");
  for (const std::string name : {"c.example", ""}) {
    CAPTURE(name);
    TlsClient client(f.port(), {.sni = name});
    CHECK_FALSE(client.connected);
    CHECK(client.alert == SSL_AD_UNRECOGNIZED_NAME);
  }
  CHECK(testing_support::Eventually(
      [&] { return Failures(*f.server, HandshakeFailure::kUnrecognizedName) == 2; }));
}

TEST_CASE("TLS 1.1 and older are refused with protocol_version") {
  TlsFixture f;
  TlsClient old(f.port(), {.sni = "a.example", .min_version = TLS1_VERSION, .max_version = TLS1_1_VERSION});
  CHECK_FALSE(old.connected);
  CHECK(old.alert == SSL_AD_PROTOCOL_VERSION);
  CHECK(testing_support::Eventually(
      [&] { return Failures(*f.server, HandshakeFailure::kProtocolVersion) == 1; }));
  ServerOptions only13;
  only13.tls.min_version = "1.3";
  TlsFixture g(only13);
  TlsClient v12(g.port(), {.sni = "a.example", .max_version = TLS1_2_VERSION});
  CHECK_FALSE(v12.connected);
}

TEST_CASE("ALPN: http/1.1 is chosen, a client offering only h2 goes on without ALPN") {
  TlsFixture f;
  TlsClient both(f.port(), {.sni = "a.example", .alpn = std::string("\x02h2\x08http/1.1", 12)});
  REQUIRE(both.connected);
  CHECK(both.Alpn() == "http/1.1");
  TlsClient h2(f.port(), {.sni = "a.example", .alpn = std::string("\x02h2", 3)});
  REQUIRE(h2.connected);
  CHECK(h2.Alpn().empty());
  CHECK(h2.Body("/hello") == "hello");
}

TEST_CASE("a large file body over TLS arrives intact, read from the file a piece at a time") {
  testing_support::TempDir files;
  const uint64_t size = 24 << 20;
  const std::string content = Pattern(size);
  std::ofstream(files / "body", std::ios::binary).write(content.data(), static_cast<std::streamsize>(size));
  ServerOptions options;
  options.tls_file_piece = 64 * 1024;
  TlsFixture f(options);
  f.handler.file_fd = ::open((files / "body").c_str(), O_RDONLY);
  f.handler.file_length = size;
  {
    // A client that stops reading: what the server read from the file stays near what the
    // socket buffers hold, not the body's length.
    const std::unique_ptr<TlsClient> slow = AskThenStall(f, "/file");
    const uint64_t read_so_far = f.server->tls_stats().write_body_bytes.load();
    CHECK(read_so_far > 0);
    CHECK(read_so_far < 12u << 20);
  }
  TlsClient client(f.port(), {.sni = "a.example"});
  REQUIRE(client.connected);
  const std::string response = client.Get("/file");
  const size_t head = response.find("\r\n\r\n");
  REQUIRE(head != std::string::npos);
  CHECK(response.size() - head - 4 == size);
  CHECK(response.compare(head + 4, std::string::npos, content) == 0);
  // Kernel TLS is not on this machine (no tls module), so the pieces went by SSL_write.
  CHECK(f.server->tls_stats().write_body_bytes.load() + f.server->tls_stats().ktls_body_bytes.load() >= size);
  CHECK(client.Body("/hello") == "hello");  // the connection goes on after the file
  ::close(f.handler.file_fd);
}

TEST_CASE("responses the socket cannot take at once over TLS arrive whole and in order") {
  // Responses are written by SSL_write at once while the socket takes them; when it is full,
  // OpenSSL has begun a record that must be finished before any other byte, so the rest goes
  // to the bufferevent. A client that reads only after its socket filled, three pipelined
  // requests (a body from memory, one from a file, a small one), gets each whole, in order.
  testing_support::TempDir files;
  const std::string file_content = Pattern(3 << 20, 1);
  std::ofstream(files / "body", std::ios::binary)
      .write(file_content.data(), static_cast<std::streamsize>(file_content.size()));
  ServerOptions options;
  options.tls_file_piece = 64 * 1024;
  TlsFixture f(options);
  f.handler.memory_body = Pattern(2 << 20, 2);
  f.handler.file_fd = ::open((files / "body").c_str(), O_RDONLY);
  f.handler.file_length = file_content.size();
  TlsClient client(f.port(), {.sni = "a.example", .receive_buffer = 32 * 1024});
  REQUIRE(client.connected);
  const std::string requests =
      "GET /memory HTTP/1.1\r\nHost: h\r\n\r\nGET /file HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n";
  REQUIRE(SSL_write(client.ssl(), requests.data(), static_cast<int>(requests.size())) > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto body = [](const std::string& response) {
    const size_t end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : response.substr(end + 4);
  };
  CHECK((body(client.ReadResponse()) == f.handler.memory_body));
  CHECK((body(client.ReadResponse()) == file_content));
  CHECK(body(client.ReadResponse()) == "hello");
  CHECK(client.Body("/hello") == "hello");
  ::close(f.handler.file_fd);
}

TEST_CASE("a body in memory goes over TLS in pieces without a copy, and is let go once sent") {
  const std::string content = Pattern(16 << 20);
  ServerOptions options;
  options.tls_file_piece = 64 * 1024;
  TlsFixture f(options);
  f.handler.shared_body = std::make_shared<const std::string>(content);
  const std::weak_ptr<const std::string> body = f.handler.shared_body;
  {
    // A client that stops reading holds the pieces the socket buffers take, not the whole body.
    const std::unique_ptr<TlsClient> slow = AskThenStall(f, "/shared");
    const uint64_t queued = f.server->tls_stats().memory_body_bytes.load();
    CHECK(queued > 0);
    CHECK(queued < 8u << 20);
  }
  // Pipelined, each whole and in order; a chunked one framed.
  TlsClient client(f.port(), {.sni = "a.example", .receive_buffer = 32 * 1024});
  REQUIRE(client.connected);
  const std::string requests =
      "GET /shared HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /shared-chunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  REQUIRE(SSL_write(client.ssl(), requests.data(), static_cast<int>(requests.size())) > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string whole = client.ReadResponse();
  CHECK((whole.substr(whole.find("\r\n\r\n") + 4) == content));
  const std::string hello = client.ReadResponse();
  CHECK(hello.substr(hello.find("\r\n\r\n") + 4) == "hello");
  const std::string chunked = client.ReadToEnd();
  const size_t head = chunked.find("\r\n\r\n");
  REQUIRE(head != std::string::npos);
  CHECK(chunked.find("Transfer-Encoding: chunked") < head);
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", content.size());
  CHECK((chunked.substr(head + 4) == std::string(size_line) + content + "\r\n0\r\n\r\n"));
  // Sent, and the slow client's connection closed: the server holds no reference to it.
  f.handler.shared_body.reset();
  CHECK(testing_support::Eventually([&] { return body.expired(); }));
}

TEST_CASE("a relay over TLS that writes on each OnWritable stays bounded for a client that reads nothing") {
  // Regression: output added outside a callback ran the write callback at once, which told the
  // relay the buffer had drained whatever it held: the relay wrote on without bound.
  TlsFixture f;
  TlsClient client(f.port(), {.sni = "a.example", .receive_buffer = 16 * 1024});
  REQUIRE(client.connected);
  const std::string request = "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n";
  REQUIRE(SSL_write(client.ssl(), request.data(), static_cast<int>(request.size())) > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(f.handler.stream.produced.load() > 0);
  CHECK(f.handler.stream.produced.load() < (8u << 20));
}

TEST_CASE("a file body sent after the head went out (a later callback) is sent over TLS too") {
  // Regression: the file waited for a write callback that bufferevent_openssl gives only after
  // writing, and the output was empty: the client got the head and then nothing.
  testing_support::TempDir files;
  const std::string content(256 * 1024, 'x');
  std::ofstream(files / "body", std::ios::binary)
      .write(content.data(), static_cast<std::streamsize>(content.size()));
  TlsFixture f(ServerOptions{});
  f.handler.file_fd = ::open((files / "body").c_str(), O_RDONLY);
  f.handler.file_length = content.size();
  TlsClient client(f.port(), {.sni = "a.example"});
  REQUIRE(client.connected);
  const std::string body = client.Body("/file-later");
  CHECK(body.size() == content.size());
  CHECK((body == content));
  CHECK(client.Body("/hello") == "hello");
  ::close(f.handler.file_fd);
}

TEST_CASE("a client that connects and never handshakes is cut at the header timeout") {
  ServerOptions options;
  options.header_timeout = absl::Milliseconds(300);
  TlsFixture f(options);
  const int fd = testing_support::ConnectLoopback(f.port());
  REQUIRE(fd >= 0);
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 3000) == 1);  // the server closes
  char byte;
  CHECK(::recv(fd, &byte, 1, 0) <= 0);
  ::close(fd);
  CHECK(testing_support::Eventually([&] { return Failures(*f.server, HandshakeFailure::kTimeout) == 1; }));
}

TEST_CASE("plain HTTP sent to the TLS port is answered with a plain 400 saying so") {
  TlsFixture f;
  const int fd = testing_support::ConnectLoopback(f.port());
  REQUIRE(fd >= 0);
  const std::string_view request = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[512];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 3000) == 1) {
    const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    answer.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  CHECK(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(answer.ends_with("\r\n\r\nA plain HTTP request was sent to an HTTPS port.\n"));
  CHECK(Failures(*f.server, HandshakeFailure::kPlainHttp) == 1);
}

TEST_CASE("a connection in its handshake counts against max_connections") {
  ServerOptions options;
  options.max_connections = 1;
  TlsFixture f(options);
  const int idle = testing_support::ConnectLoopback(f.port());
  REQUIRE(idle >= 0);
  REQUIRE(testing_support::Eventually([&] { return f.server->connections() == 1; }));
  {
    TlsClient refused(f.port(), {.sni = "a.example"});
    CHECK_FALSE(refused.connected);
  }
  ::close(idle);
  REQUIRE(testing_support::Eventually([&] { return f.server->connections() == 0; }));
  TlsClient admitted(f.port(), {.sni = "a.example"});
  CHECK(admitted.connected);
}

TEST_CASE("a session resumes on a second server that shares the ticket key file (1.2 and 1.3)") {
  testing_support::TempDir keys;
  WriteTicketKey(keys / "ticket.key");
  ServerOptions options;
  options.tls.ticket_key_file = keys / "ticket.key";
  TlsFixture first(options), second(options), other;  // `other` has its own random keys
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    CAPTURE(version);
    SSL_SESSION* session = SessionFrom(first.port(), version);
    CHECK(Resumes(second.port(), version, session));
    CHECK_FALSE(Resumes(other.port(), version, session));
    SSL_SESSION_free(session);
  }
  CHECK(second.server->tls_stats().resumed.load() == 2);
}

TEST_CASE("a new ticket key file on reload: the previous key still decrypts, the one before does not") {
  testing_support::TempDir keys;
  WriteTicketKey(keys / "ticket.key");
  ServerOptions options;
  options.tls.ticket_key_file = keys / "ticket.key";
  TlsFixture f(options);
  SSL_SESSION* one = SessionFrom(f.port(), TLS1_2_VERSION);
  WriteTicketKey(keys / "ticket.key");
  REQUIRE(f.server->ReloadTls().ok());
  CHECK(Resumes(f.port(), TLS1_2_VERSION, one));
  SSL_SESSION* two = SessionFrom(f.port(), TLS1_2_VERSION);
  WriteTicketKey(keys / "ticket.key");
  REQUIRE(f.server->ReloadTls().ok());
  CHECK_FALSE(Resumes(f.port(), TLS1_2_VERSION, one));
  CHECK(Resumes(f.port(), TLS1_2_VERSION, two));
  // A bad file is refused and the keys in use kept.
  std::ofstream(keys / "ticket.key", std::ios::trunc) << "short";
  CHECK_FALSE(f.server->ReloadTls().ok());
  CHECK(Resumes(f.port(), TLS1_2_VERSION, two));
  SSL_SESSION_free(one);
  SSL_SESSION_free(two);
}

TEST_CASE("listeners: plain and TLS on one server, and IPv6 on ::1") {
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool has_v6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_v6) {
    const char* ci = std::getenv("CI");
    REQUIRE_MESSAGE((ci == nullptr || std::string(ci) != "true"), "::1 is unavailable, and CI=true");
    MESSAGE("::1 is unavailable here: the IPv6 listener is not tested");
    return;
  }
  testing_support::TempDir dir;
  MapSource source;
  source.certificates["a.example"] = MakeCertificate(dir, "a.example");
  TlsHandler handler;
  ServerOptions options;
  options.listen = {Listen{"127.0.0.1", 0}, Listen{"::1", 0, true, &source}, Listen{"::1", 0}};
  Server server(std::move(options), handler);
  REQUIRE(server.Start().ok());
  TlsClient v6(server.port(1), {.address = "::1", .sni = "a.example"});
  REQUIRE(v6.connected);
  CHECK(v6.Body("/name") == "tls a.example");
  for (size_t plain : {0, 2}) {
    const bool is_v6 = plain == 2;
    const int fd = ::socket(is_v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    sockaddr_storage address{};
    socklen_t length;
    if (is_v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&address);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(server.port(plain));
      a->sin6_addr = in6addr_loopback;
      length = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&address);
      a->sin_family = AF_INET;
      a->sin_port = htons(server.port(plain));
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof(*a);
    }
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
    const std::string request = "GET /name HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    std::string response;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;)
      response.append(buffer, static_cast<size_t>(n));
    ::close(fd);
    CHECK(response.ends_with("\r\n\r\nplain "));
  }
  server.Stop();
}

TEST_CASE("a TLS listener without a certificate source is refused at start") {
  TlsHandler handler;
  ServerOptions options;
  options.listen = {Listen{"127.0.0.1", 0, true, nullptr}};
  Server server(std::move(options), handler);
  CHECK(server.Start().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace edge::http
