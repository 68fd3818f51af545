// A TLS handshake load: each thread connects, shakes hands (TLS 1.3, TLS_AES_128_GCM_SHA256,
// X25519), sends one GET with Host (and SNI) set to NAME and `Connection: close`, reads the answer
// to its end, and starts again; with `reuse` it offers the ticket of its previous connection, so
// every connection after a thread's first is a resumed handshake.
//
// usage: tls_handshakes HOST PORT NAME PATH THREADS SECONDS new|reuse [PER_SECOND]
// prints: handshakes_per_second resumed_fraction failures (a failed handshake or a non-200 answer)
// PATH "-" (with `new`): the handshake only, no request, as a handshake flood makes them.
// PER_SECOND (all threads together; 0 or none: as fast as they can) paces the load, for a flood
// of a given rate rather than the most the server takes.
//
// Why not `openssl s_time`: it sends no SNI (so a server with a certificate per name serves its
// default, and the edge, rightly, refuses the Host of a tenant the TLS name did not choose), runs
// one connection at a time (client and server then take turns on the cores, and neither is
// busy), and asks with HTTP/1.0 without Host.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Totals {
  std::atomic<uint64_t> handshakes{0};
  std::atomic<uint64_t> resumed{0};
  std::atomic<uint64_t> failures{0};
};

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct SessionFree {
  void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
};

int Connect(const sockaddr_in& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// One connection: handshake, request, the whole answer. True for a 200; `resumed` says whether
// the handshake resumed `session`; `session` becomes this connection's newest ticket.
bool OneConnection(SSL_CTX* ctx, const sockaddr_in& address, const char* name, const std::string& request,
                   bool reuse, std::unique_ptr<SSL_SESSION, SessionFree>& session, bool& resumed) {
  const int fd = Connect(address);
  if (fd < 0) return false;
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  SSL_set_tlsext_host_name(ssl.get(), name);
  if (reuse && session) SSL_set_session(ssl.get(), session.get());
  SSL_set_fd(ssl.get(), fd);
  bool ok = SSL_connect(ssl.get()) == 1;
  resumed = ok && SSL_session_reused(ssl.get());
  const bool ask = !request.empty();
  ok = ok && (!ask || SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) ==
                          static_cast<int>(request.size()));
  char buffer[16 * 1024];
  bool first = ask;  // no answer to wait for when nothing was asked
  while (ok && ask) {
    const int n = SSL_read(ssl.get(), buffer, sizeof(buffer));
    if (n <= 0) break;  // the server closes after its answer (Connection: close)
    if (first && (n < 12 || std::memcmp(buffer, "HTTP/1.1 200", 12) != 0)) ok = false;
    first = false;
  }
  ok = ok && !first;  // an answer came, or none was asked for
  // TLS 1.3 tickets come after the handshake: the newest one is known once the answer was read.
  if (ok && reuse) session.reset(SSL_get1_session(ssl.get()));
  // Done with the connection as agreed: without this, SSL_free takes the session for a broken
  // one and marks it (the very object just kept) not resumable.
  if (ok) SSL_set_shutdown(ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  ssl.reset();
  ::close(fd);
  ERR_clear_error();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8 && argc != 9) {
    std::fprintf(stderr, "usage: %s HOST PORT NAME PATH THREADS SECONDS new|reuse [PER_SECOND]\n", argv[0]);
    return 2;
  }
  const char* name = argv[3];
  const int threads = std::atoi(argv[5]);
  const auto duration = std::chrono::seconds(std::atoi(argv[6]));
  const bool reuse = std::strcmp(argv[7], "reuse") == 0;
  const double per_second = argc == 9 ? std::atof(argv[8]) : 0;
  std::signal(SIGPIPE, SIG_IGN);  // a server that closed first is a failed connection, not our end
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (::inet_pton(AF_INET, argv[1], &address.sin_addr) != 1 || threads <= 0) {
    std::fprintf(stderr, "bad address or thread count\n");
    return 2;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set1_groups_list(ctx, "X25519");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  // A server that closes after its answer without close_notify has still answered.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  const std::string request =
      std::strcmp(argv[4], "-") == 0
          ? std::string()
          : std::string("GET ") + argv[4] + " HTTP/1.1\r\nHost: " + name + "\r\nConnection: close\r\n\r\n";

  Totals totals;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + duration;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::unique_ptr<SSL_SESSION, SessionFree> session;
      // Paced: this thread's connections are `interval` apart, the threads spread over one.
      const auto interval = per_second > 0 ? std::chrono::duration<double>(threads / per_second)
                                           : std::chrono::duration<double>(0);
      auto next =
          start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval * t / threads);
      while (std::chrono::steady_clock::now() < end) {
        if (per_second > 0) {
          std::this_thread::sleep_until(next);
          next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
        }
        bool resumed = false;
        const bool first = reuse && !session;
        if (!OneConnection(ctx, address, name, request, reuse, session, resumed)) {
          totals.failures.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (first) continue;  // a thread's first connection has no ticket to offer
        totals.handshakes.fetch_add(1, std::memory_order_relaxed);
        if (resumed) totals.resumed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& thread : pool) thread.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t handshakes = totals.handshakes.load();
  std::printf("%.1f %.3f %llu\n", handshakes / seconds,
              handshakes ? static_cast<double>(totals.resumed.load()) / handshakes : 0.0,
              static_cast<unsigned long long>(totals.failures.load()));
  SSL_CTX_free(ctx);
  return 0;
}
