// The edge's HTTP/1.1 server: one libevent loop per worker thread, each with its own socket on
// every listener's address and port (SO_REUSEPORT), plain or TLS (edge/http/tls.h), keep-alive and
// pipelining (one request at a time per connection),
// limits from the strict parser, deadlines for headers, bodies, idle connections and stalled
// clients, and a connection limit. Requests go to a Handler, which answers through an Exchange.
// The process must ignore SIGPIPE, as the edge and the purge daemon do: responses leave through
// writev and sendfile, which cannot be told not to raise it when a client has gone.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "edge/http/request_parser.h"
#include "edge/http/tls.h"

struct event_base;

namespace edge::http {

// One address and port the server accepts on.
struct Listen {
  std::string address = "127.0.0.1";  // IPv4 ("127.0.0.1") or IPv6 ("::1"; IPv6 only)
  uint16_t port = 0;                  // 0: a free port, see Server::port()
  bool tls = false;
  // With tls: the certificate for each handshake comes from here (borrowed: it outlives the
  // server). Required for a TLS listener.
  const CertificateSource* certificates = nullptr;
};

struct ServerOptions {
  std::vector<Listen> listen{Listen{}};
  TlsOptions tls;  // for every TLS listener
  int workers = 2;
  Limits limits;
  absl::Duration header_timeout = absl::Seconds(10);  // from the first byte of a head to its end
  absl::Duration body_timeout = absl::Seconds(30);    // between two reads of a request body
  absl::Duration idle_timeout = absl::Seconds(60);    // keep-alive connection with nothing to do
  absl::Duration send_timeout = absl::Seconds(60);    // a client that takes none of the response
  size_t max_connections = 10000;                     // for the whole server
  // The most one sendfile call sends. A file goes out in pieces of this, the loop turning between
  // them: a fast reader (loopback, a LAN) takes a whole file in one call, and 256 MiB held a
  // worker's other connections for 152 ms.
  uint64_t sendfile_piece = 1 << 20;
  // Over TLS without kernel TLS a file is read and encrypted in pieces of this, the next read once
  // the connection's output drained below 64 KiB: what a large body holds in memory.
  uint64_t tls_file_piece = 128 * 1024;
  // Closes a file descriptor SendOwnedFile was given, once sent; empty: close(2). (The edge frees
  // deleted cache entries off the loop with cache::CloseFile.)
  std::function<void(int fd)> close_file;
  // A failed accept() (out of descriptors: EMFILE, ENFILE) stops that worker's accepting for this
  // long, as nginx does: retried at once it fails again at once, a loop at 100% CPU that starves
  // the connections already open.
  absl::Duration accept_pause = absl::Milliseconds(100);
  // Keep one descriptor in reserve for accepting when the process has none left, so that this
  // listener answers (one connection at a time) whatever the rest of the process holds: for the
  // admin listener, whose /metrics is how the shortage is seen.
  bool reserve_descriptor = false;
  // Where the server says what goes wrong (accept failures, at most once a second); may be empty.
  std::function<void(std::string_view message)> log;
};

using HeaderField = std::pair<std::string_view, std::string_view>;

class Connection;

// One request and its response. Owned by its connection; used on that connection's thread only.
// The handler may answer at once or later (from another callback on the same event loop) until
// the observer's OnAbort, after which the Exchange no longer exists.
class Exchange {
 public:
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void OnBody(std::string_view data) { (void)data; }
    virtual void OnBodyEnd() {}
    virtual void OnWritable() {}  // the response buffer drained below 64 KiB
    virtual void OnAbort() = 0;   // the client went away or timed out
  };

  const Request& request() const { return request_; }
  struct event_base* loop() const;
  size_t worker() const;  // index of the worker thread that owns the exchange
  // The client's IP address as text ("192.0.2.1"), from the accepted socket; empty if unknown.
  std::string_view peer_address() const;
  // Whether the request came over TLS, and the SNI name its handshake chose (ASCII lowercase, no
  // trailing dot; empty for plain HTTP or a client that sent none).
  bool tls() const;
  std::string_view tls_server_name() const;
  // Whether a file body is read into memory to be sent (TLS without kernel TLS, encrypted by
  // OpenSSL): a body already in memory (SendShared) then saves that read.
  bool reads_files_to_send() const;
  void SetObserver(Observer* observer) { observer_ = observer; }
  // Request-body backpressure: stop and start reading the body from the socket.
  void PauseBody();
  void ResumeBody();

  // An interim (1xx) response before the head, such as 103 Early Hints, for an HTTP/1.1 client;
  // ignored once the head is out, for HTTP/1.0 clients (RFC 9110 15.2), for 101, and for a second
  // 100 Continue.
  void SendInterim(int status, std::span<const HeaderField> headers);
  // The response head. Without a length, HTTP/1.1 responses are chunked.
  void Respond(int status, std::span<const HeaderField> headers, std::optional<uint64_t> content_length);
  void Write(std::string_view data);
  // Sends [offset, offset + length) of `fd`; the caller keeps the fd. Up to kInlineFileBytes are
  // read into the response buffer, so a small body leaves with its head in one write; more goes by
  // sendfile from a duplicate of the fd (over TLS, by SSL_sendfile with kernel TLS, otherwise
  // read and written in pieces of ServerOptions::tls_file_piece).
  absl::Status SendFile(int fd, uint64_t offset, uint64_t length);
  static constexpr uint64_t kInlineFileBytes = 16 * 1024;
  // The same by sendfile, taking ownership of `fd` (closed once sent, or at once on failure, by
  // ServerOptions::close_file).
  absl::Status SendOwnedFile(int fd, uint64_t offset, uint64_t length);
  // Sends `bytes`, which `owner` keeps alive and unchanged until they are sent (or the connection
  // closes), without copying them; over TLS in pieces as a file is.
  void SendShared(std::shared_ptr<const void> owner, std::string_view bytes);
  void Finish();
  // Ends the exchange by closing the connection: for a response that cannot be completed (its
  // origin failed mid-body), so the client sees a truncated message, never a wrong one.
  void Abort();
  // A whole small response: head, body, finish.
  void Reply(int status, std::string_view content_type, std::string_view body,
             std::span<const HeaderField> headers = {});
  size_t output_buffered() const;
  bool head_only() const { return head_only_; }

 private:
  friend class Connection;
  explicit Exchange(Connection* connection) : connection_(connection) {}
  // The head; `content_type` is added as a header when not empty.
  void WriteHead(int status, std::span<const HeaderField> headers, std::string_view content_type,
                 std::optional<uint64_t> content_length);
  Connection* connection_;
  Request request_;
  Observer* observer_ = nullptr;
  bool responded_ = false;
  bool chunked_ = false;
  bool head_only_ = false;
  bool finished_ = false;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Called on a worker thread for each request head.
  virtual void OnRequest(Exchange& exchange) = 0;
  // Called on worker `worker`'s thread before its loop runs: per-loop state (an origin client)
  // is made here.
  virtual void OnWorkerStart(size_t worker, event_base* loop) {
    (void)worker;
    (void)loop;
  }
  // Called from Stop() once the worker's loop has stopped and its connections are closed.
  virtual void OnWorkerStop(size_t worker) { (void)worker; }
};

class Server {
 public:
  Server(ServerOptions options, Handler& handler);
  ~Server();  // stops
  Server(const Server&) = delete;

  // Binds every worker's listeners and starts the threads; returns once each has run the
  // handler's OnWorkerStart.
  absl::Status Start();
  // Rereads what TLS reads from files outside the certificate source (the ticket key file, whose
  // previous key still decrypts); an error changes nothing. Any thread; for SIGHUP.
  absl::Status ReloadTls();
  // Graceful shutdown, first step: stops accepting, closes idle connections and lets each
  // request in flight finish, closing its connection after the response. connections() tells
  // when they are all gone; Stop() ends the rest.
  void Drain();
  // Stops accepting, closes every connection, joins the threads.
  void Stop();
  // The port listener `listener` (an index into ServerOptions::listen) is bound to; 0 before Start.
  uint16_t port(size_t listener = 0) const { return listener < ports_.size() ? ports_[listener] : 0; }
  size_t connections() const { return connections_.load(); }
  // accept() calls that failed (other than the retriable EAGAIN, EINTR, ECONNABORTED).
  uint64_t accept_errors() const { return accept_errors_.load(std::memory_order_relaxed); }
  const TlsStats& tls_stats() const { return tls_stats_; }
  // Closes a descriptor SendOwnedFile took, by ServerOptions::close_file.
  void CloseFile(int fd) const;

 private:
  struct Worker;
  struct Listening;
  struct OwnedFile;
  // Counts a failed accept, logs it at most once a second, and pauses `worker`'s listeners.
  void OnAcceptError(Listening& listening, int error);
  // Binds listener `index` for `worker` (ports_[index] is set by the first worker that binds it).
  absl::Status Bind(Worker& worker, size_t index);
  ServerOptions options_;
  Handler& handler_;
  std::vector<uint16_t> ports_;
  std::unique_ptr<TicketKeys> ticket_keys_;                // shared by every TLS listener
  std::vector<std::unique_ptr<TlsContext>> tls_contexts_;  // per listener; null for plain ones
  TlsStats tls_stats_;
  std::atomic<size_t> connections_{0};
  std::atomic<uint64_t> accept_errors_{0};
  std::atomic<int64_t> accept_logged_at_{0};       // unix ns of the last report
  std::atomic<uint64_t> accept_errors_logged_{0};  // accept_errors_ at the last report
  std::vector<std::unique_ptr<Worker>> workers_;
  friend class Connection;
  friend class Exchange;
};

// "Not Found" for 404 and so on: the reason phrase for a status.
std::string_view ReasonPhrase(int status);

}  // namespace edge::http
