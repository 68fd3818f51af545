#include "edge/http/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <latch>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "edge/http/chunked_decoder.h"

namespace edge::http {

namespace {

constexpr size_t kOutputLowWater = 64 * 1024;
// Input beyond this is left in the kernel while a request is in flight (request pipelining and
// body backpressure), so a client cannot make the server buffer without bound.
constexpr size_t kInputHighWater = 256 * 1024;

void EnableLibeventThreads() {
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
}

bool StatusHasBody(int status) {
  return status >= 200 && status != 204 && status != 304;
}

// Adds `size` bytes at `data` to `out` without copying them, `holder` kept until they are sent.
bool AddReference(evbuffer* out, const char* data, size_t size, const std::shared_ptr<const void>& holder) {
  auto kept = std::make_unique<std::shared_ptr<const void>>(holder);
  const auto release = [](const void*, size_t, void* extra) {
    std::unique_ptr<std::shared_ptr<const void>>(static_cast<std::shared_ptr<const void>*>(extra));
  };
  if (evbuffer_add_reference(out, data, size, release, kept.get()) != 0) return false;
  (void)kept.release();  // the buffer's now, freed by `release`
  return true;
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

// A file a plain response sends by sendfile, for its segment's cleanup callback.
struct Server::OwnedFile {
  Worker* worker = nullptr;
  int fd = -1;
};

// One worker's socket on one listener.
struct Server::Listening {
  Worker* worker = nullptr;
  evconnlistener* listener = nullptr;
  const TlsContext* tls = nullptr;  // null: plain HTTP
};

struct Server::Worker {
  Server* server = nullptr;
  size_t index = 0;
  event_base* base = nullptr;
  std::vector<std::unique_ptr<Listening>> listeners;  // as ServerOptions::listen
  event* reaper = nullptr;   // deletes closed connections outside their own callbacks
  event* drainer = nullptr;  // runs Drain on the worker's own thread
  event* stopper = nullptr;  // breaks the loop from its own thread, even if it has not started yet
  event* resumer = nullptr;  // accepts again after a pause (ServerOptions::accept_pause)
  int spare_fd = -1;         // ServerOptions::reserve_descriptor: a descriptor held, closed to accept with
  bool draining = false;
  // Takes a connection accept() gave.
  void Accept(evutil_socket_t fd, const sockaddr* peer, const TlsContext* tls);
  void EnableListeners(bool on) {
    for (auto& listening : listeners) {
      if (listening->listener == nullptr) continue;
      on ? evconnlistener_enable(listening->listener) : evconnlistener_disable(listening->listener);
    }
  }
  // Opens the reserve descriptor again if it was used (and a descriptor is free now).
  void KeepSpare() {
    if (server->options_.reserve_descriptor && spare_fd < 0)
      spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  // Ends a pause of accepting early: a connection closed, so a descriptor is free.
  void ResumeAccepting() {
    if (event_pending(resumer, EV_TIMEOUT, nullptr) == 0) return;
    event_del(resumer);
    event_active(resumer, EV_TIMEOUT, 0);
  }
  std::thread thread;
  // Freed segments return their notes here (on this worker's loop, or in Stop once it has ended).
  std::vector<std::unique_ptr<OwnedFile>> owned_files;
  absl::flat_hash_map<Connection*, std::unique_ptr<Connection>> connections;
  std::vector<std::unique_ptr<Connection>> closed;
};

// One client connection. Lives on its worker's thread; deleted by the worker's reaper after Close.
class Connection {
 public:
  // `ssl`: a TLS connection, whose handshake starts (owned from here); null: plain HTTP.
  Connection(Server::Worker* worker, evutil_socket_t fd, const sockaddr* peer, SSL* ssl);
  ~Connection();

  void Close();
  Server::Worker* worker() const { return worker_; }
  // Drain: an idle connection closes now, a busy one after its response.
  void CloseWhenIdle();

 private:
  friend class Exchange;
  static void ReadCallback(bufferevent*, void* self) { static_cast<Connection*>(self)->Process(); }
  static void WriteCallback(bufferevent*, void* self) { static_cast<Connection*>(self)->OnWritable(); }
  static void EventCallback(bufferevent*, short what, void* self) {
    static_cast<Connection*>(self)->OnEvent(what);
  }
  static void KtlsCallback(evutil_socket_t, short what, void* self) {
    auto* connection = static_cast<Connection*>(self);
    if (what & EV_TIMEOUT) {
      connection->Close();
    } else {
      connection->Flush();
      if (!connection->closed_) connection->Rearm();
    }
  }
  static void DeadlineCallback(evutil_socket_t, short, void* self) {
    static_cast<Connection*>(self)->OnDeadline();
  }

  const ServerOptions& options() const { return worker_->server->options_; }
  TlsStats& tls_stats() const { return worker_->server->tls_stats_; }
  evbuffer* input() const { return bufferevent_get_input(bev_); }
  // Where the response's next bytes go: the sink, or behind the last file body still waiting to
  // be read into it (TLS).
  evbuffer* output() const { return files_.empty() ? sink() : files_.back().after; }
  // Where response bytes wait for the socket: the bufferevent's output or, with TLS, the bytes
  // not yet given to OpenSSL (see WriteTls).
  evbuffer* sink() const { return tls_ ? tls_pending_ : bufferevent_get_output(bev_); }
  // The response bytes buffered before the socket.
  size_t Buffered() const {
    return evbuffer_get_length(sink()) + (tls_ ? evbuffer_get_length(bufferevent_get_output(bev_)) : 0);
  }
  // Something of a response is still to be sent.
  bool Sending() const { return !files_.empty() || Buffered() > 0; }

  // Parses heads, runs exchanges and delivers bodies until it must wait for bytes or the handler.
  void Process();
  bool ParseHead();  // false: wait (or the connection is closing)
  void DeliverBody();
  void SendError(int status, std::string_view reason);
  void OnWritable();
  void OnDeadline();
  // The bufferevent's events: the TLS handshake done, an error, the end of the stream.
  void OnEvent(short what);
  void OnHandshake();
  // TLS: writes what is pending and the next piece of a file body behind it; false if that
  // closed the connection.
  bool SendTls();
  // TLS: SSL_write of the pending bytes, straight from here while the socket takes them: a small
  // response costs one write and no EPOLLOUT round (bufferevent_openssl would arm EPOLLOUT for
  // each response and write on the next turn of the loop). What the socket does not take goes to
  // the bufferevent, which sends it, and whatever follows it, when the socket is writable.
  bool WriteTls();
  // TLS: moves file bodies into the sink as it drains (or sends them by SSL_sendfile with kernel
  // TLS); false if that closed the connection.
  bool PumpFiles();
  bool SendFileKtls();
  // Writes what is buffered now; what the socket does not take waits for EV_WRITE.
  void Flush();
  // Output was added: outside Process (an answer from a later callback) it goes out when the
  // socket is writable; inside, Process flushes it at its end, with anything else it adds.
  void OutputAdded() {
    if (processing_ || closed_) return;
    if (tls_) {
      ScheduleSend();  // what the caller adds next in this callback goes out with it
      return;
    }
    bufferevent_enable(bev_, EV_WRITE);
  }
  // TLS: SendTls from the loop, after the callback in progress (by the write callback, which
  // tells the exchange only what the buffer's level says).
  void ScheduleSend() {
    bufferevent_trigger(bev_, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
  }
  void Rearm();

  // A file body over TLS, or one in memory, waiting behind the bytes before it, and the bytes
  // that follow it.
  struct PendingFile {
    int fd;  // -1 for a body in memory
    uint64_t offset;
    uint64_t remaining;
    evbuffer* after;
    const char* memory = nullptr;        // a body in memory: its bytes, offset counted from here
    std::shared_ptr<const void> holder;  // what keeps `memory` alive
  };
  // Queues `body` (its `after` left null) behind what is buffered, framed as a chunk if `chunked`:
  // PumpFiles sends it as the connection drains.
  void QueueBody(PendingFile body, bool chunked);

  Server::Worker* worker_;
  bufferevent* bev_ = nullptr;
  event* deadline_;
  SSL* ssl_ = nullptr;               // owned by bev_ (freed with it)
  evbuffer* tls_pending_ = nullptr;  // TLS: response bytes not yet given to OpenSSL
  bool tls_ = false;
  bool handshaking_ = false;     // TLS: until the handshake is done
  bool tls_failed_ = false;      // a fatal TLS error: no close_notify
  bool ktls_ = false;            // kernel TLS sends: files go by SSL_sendfile
  event* ktls_event_ = nullptr;  // with ktls_: waits for the socket to take more of a file
  std::string tls_name_;         // the SNI name, lowercase
  std::vector<PendingFile> files_;
  std::vector<evbuffer*> spare_buffers_;  // PendingFile::after buffers, reused
  std::string head_;                      // the current head, copied out of the input so views stay valid
  Exchange exchange_{this};
  char peer_[INET6_ADDRSTRLEN] = {};  // text, filled once at accept: no per-request work
  bool in_exchange_ = false;
  bool head_started_ = false;
  absl::Time head_deadline_;
  uint64_t body_remaining_ = 0;
  bool body_done_ = true;
  bool body_paused_ = false;
  bool continue_sent_ = false;
  ChunkedDecoder chunked_;
  bool close_after_response_ = false;
  bool closing_ = false;  // finish writing, then close
  bool closed_ = false;
  bool processing_ = false;
  bool process_again_ = false;
};

Connection::Connection(Server::Worker* worker, evutil_socket_t fd, const sockaddr* peer, SSL* ssl)
    : worker_(worker),
      deadline_(evtimer_new(worker->base, &DeadlineCallback, this)),
      ssl_(ssl),
      tls_(ssl != nullptr) {
  if (ssl == nullptr) {
    bev_ = bufferevent_socket_new(worker->base, fd, BEV_OPT_CLOSE_ON_FREE);
  } else {
    // The handshake runs inside the bufferevent; OnEvent hears its end. Until then the header
    // timeout applies, from the accept: a client that never finishes is cut like a slow head.
    bev_ = bufferevent_openssl_socket_new(worker->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
    bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
    tls_pending_ = evbuffer_new();
    // libevent writes 16 KiB per write event by default: a file piece in one turn instead.
    bufferevent_set_max_single_write(
        bev_, static_cast<ev_ssize_t>(worker->server->options_.tls_file_piece + kOutputLowWater));
    handshaking_ = true;
    head_deadline_ = absl::Now() + worker->server->options_.header_timeout;
  }
  if (peer != nullptr && peer->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, peer_, sizeof(peer_));
  } else if (peer != nullptr && peer->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr, peer_, sizeof(peer_));
  }
  ++worker_->server->connections_;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  bufferevent_setcb(bev_, &ReadCallback, &WriteCallback, &EventCallback, this);
  bufferevent_setwatermark(bev_, EV_WRITE, kOutputLowWater, 0);
  // A client that takes none of its response for send_timeout is dropped; libevent restarts this
  // timeout after every write that makes progress, so a long download of a large body is not.
  const timeval send_timeout = absl::ToTimeval(worker->server->options_.send_timeout);
  bufferevent_set_timeouts(bev_, nullptr, &send_timeout);
  bufferevent_setwatermark(bev_, EV_READ, 0, kInputHighWater);
  // Writing is enabled only while output waits for the socket: responses are written directly
  // when processing ends (see Flush), which saves arming and disarming EPOLLOUT per response.
  bufferevent_enable(bev_, EV_READ);
  Rearm();
}

Connection::~Connection() {
  if (!closed_) Close();
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  if (in_exchange_ && !exchange_.finished_ && exchange_.observer_ != nullptr) {
    Exchange::Observer* observer = exchange_.observer_;
    exchange_.observer_ = nullptr;
    observer->OnAbort();
  }
  if (tls_) {
    // TLS sockets close with the bufferevent, which frees the SSL; a clean end says so first.
    if (!handshaking_ && !tls_failed_) SSL_shutdown(ssl_);
    ERR_clear_error();
    if (ktls_event_ != nullptr) event_free(ktls_event_);
    for (PendingFile& file : files_) {
      if (file.fd >= 0) worker_->server->CloseFile(file.fd);
      spare_buffers_.push_back(file.after);
    }
    files_.clear();
    for (evbuffer* buffer : spare_buffers_) evbuffer_free(buffer);
    spare_buffers_.clear();
    evbuffer_free(std::exchange(tls_pending_, nullptr));
  } else {
    // The socket is closed here, not when libevent frees the bufferevent after the callback in
    // progress: out of descriptors, another thread's accept() would take the number first. So a
    // used reserve takes it back (dup2 closes the socket and keeps the number, as a copy of the
    // listener's), and a paused listener takes the next client with it at once.
    const evutil_socket_t fd = bufferevent_getfd(bev_);
    bufferevent_setfd(bev_, -1);
    if (!worker_->server->options_.reserve_descriptor || worker_->spare_fd >= 0 ||
        worker_->listeners.empty() || worker_->listeners[0]->listener == nullptr ||
        ::dup2(evconnlistener_get_fd(worker_->listeners[0]->listener), fd) < 0) {
      ::close(fd);
    } else {
      worker_->spare_fd = fd;
    }
  }
  bufferevent_free(bev_);
  event_free(deadline_);
  --worker_->server->connections_;
  worker_->ResumeAccepting();
  // Deleted by the reaper on the next loop turn: callers up the stack may still touch members.
  auto owned = worker_->connections.extract(this);
  worker_->closed.push_back(std::move(owned.mapped()));
  event_active(worker_->reaper, EV_TIMEOUT, 0);
}

void Connection::CloseWhenIdle() {
  if (closed_) return;
  if (!in_exchange_ && !head_started_) {
    closing_ = true;  // closes once what is being sent has gone
    bufferevent_disable(bev_, EV_READ);
    if (!Sending()) Close();
    return;
  }
  close_after_response_ = true;
}

void Connection::Process() {
  if (processing_) {
    process_again_ = true;
    return;
  }
  processing_ = true;
  do {
    process_again_ = false;
    while (!closed_ && !closing_) {
      if (!in_exchange_) {
        if (!ParseHead()) break;
        worker_->server->handler_.OnRequest(exchange_);
        continue;
      }
      DeliverBody();
      if (closed_ || closing_ || !exchange_.finished_) break;
      // The exchange is over: the connection goes on only if the request was read to its end.
      in_exchange_ = false;
      if (close_after_response_ || !body_done_ || !exchange_.request_.keep_alive) {
        closing_ = true;
        if (!Sending()) Close();
      }
    }
  } while (process_again_ && !closed_);
  processing_ = false;
  Flush();
  if (!closed_) Rearm();
}

void Connection::Flush() {
  if (closed_) return;
  if (tls_) {
    if (!SendTls()) return;
  } else if (evbuffer* out = sink(); evbuffer_get_length(out) > 0) {
    // A socket bufferevent keeps its output's start frozen so that only it drains the buffer; it
    // unfreezes around its own writes, as this does.
    evbuffer_unfreeze(out, 1);
    // One write: it stops where memory gives way to a file segment, whose sendfile is left to
    // the write event (measured faster for large bodies than sending it here at once).
    errno = 0;
    const int written = evbuffer_write(out, bufferevent_getfd(bev_));
    const int error = errno;
    evbuffer_freeze(out, 1);
    if (written < 0 && error != EAGAIN && error != EINTR) {
      Close();
      return;
    }
  }
  const size_t buffered = Buffered();
  if (buffered > 0) {
    bufferevent_enable(bev_, EV_WRITE);
  } else if (closing_ && files_.empty()) {
    Close();
    return;
  }
  // Output this drained below the low-water mark never reaches the write event, so the exchange
  // waiting to write more (a paused relay) hears it here.
  if (buffered <= kOutputLowWater && files_.empty() && in_exchange_ && !exchange_.finished_ &&
      exchange_.observer_ != nullptr) {
    exchange_.observer_->OnWritable();
  }
}

bool Connection::ParseHead() {
  const size_t available = evbuffer_get_length(input());
  if (available == 0) {
    head_started_ = false;
    return false;
  }
  if (!head_started_) {
    head_started_ = true;
    head_deadline_ = absl::Now() + options().header_timeout;
  }
  const size_t take = std::min(available, options().limits.max_head_bytes + 1);
  head_.resize(take);  // capacity is kept from request to request: no allocation once warm
  evbuffer_copyout(input(), head_.data(), take);
  ParseError error;
  exchange_.request_ = Request();
  switch (ParseRequest(head_, options().limits, &exchange_.request_, &error)) {
    case ParseStatus::kIncomplete:
      return false;
    case ParseStatus::kError:
      SendError(error.status, error.reason);
      return false;
    case ParseStatus::kComplete:
      break;
  }
  const Request& request = exchange_.request_;
  evbuffer_drain(input(), request.head_bytes);
  head_started_ = false;
  in_exchange_ = true;
  exchange_.observer_ = nullptr;
  exchange_.responded_ = exchange_.chunked_ = exchange_.finished_ = false;
  exchange_.head_only_ = request.method == "HEAD";
  close_after_response_ = worker_->draining;
  continue_sent_ = false;
  body_paused_ = false;
  body_done_ = request.body == BodyKind::kNone;
  body_remaining_ = request.body == BodyKind::kContentLength ? request.content_length : 0;
  chunked_ = ChunkedDecoder();
  return true;
}

void Connection::DeliverBody() {
  if (body_done_ || body_paused_ || exchange_.observer_ == nullptr) return;
  const Request& request = exchange_.request_;
  if (request.expect_continue && !continue_sent_ && !exchange_.responded_) {
    continue_sent_ = true;
    evbuffer_add(output(), "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  while (!body_done_ && !body_paused_ && exchange_.observer_ != nullptr && !closed_) {
    const size_t available = evbuffer_get_length(input());
    if (available == 0) return;
    if (request.body == BodyKind::kContentLength) {
      // Body pieces are handed over in the buffer's own segments: no copy here.
      evbuffer_iovec segment;
      const size_t want = static_cast<size_t>(std::min<uint64_t>(body_remaining_, available));
      if (evbuffer_peek(input(), static_cast<ev_ssize_t>(want), nullptr, &segment, 1) < 1) return;
      const size_t n = std::min(segment.iov_len, want);
      body_remaining_ -= n;
      body_done_ = body_remaining_ == 0;
      exchange_.observer_->OnBody(std::string_view(static_cast<const char*>(segment.iov_base), n));
      if (closed_) return;
      evbuffer_drain(input(), n);
    } else {
      // Chunk framing may straddle segments: decode from a contiguous view of what is buffered.
      const size_t window = std::min<size_t>(available, 64 * 1024);
      const char* data =
          reinterpret_cast<const char*>(evbuffer_pullup(input(), static_cast<ev_ssize_t>(window)));
      size_t consumed = 0;
      std::string_view piece;
      switch (chunked_.Next(std::string_view(data, window), &consumed, &piece)) {
        case ChunkedDecoder::Status::kData:
          exchange_.observer_->OnBody(piece);
          break;
        case ChunkedDecoder::Status::kDone:
          body_done_ = true;
          break;
        case ChunkedDecoder::Status::kError:
          close_after_response_ = true;
          if (!exchange_.responded_) {
            SendError(400, chunked_.error());
          } else {
            Close();
          }
          return;
        case ChunkedDecoder::Status::kNeedMore:
          if (consumed == 0) {
            if (window < available) break;  // a line longer than the window is the decoder's error
            return;
          }
          break;
      }
      if (closed_) return;
      evbuffer_drain(input(), consumed);
    }
    if (body_done_ && exchange_.observer_ != nullptr) exchange_.observer_->OnBodyEnd();
  }
}

void Connection::SendError(int status, std::string_view reason) {
  // Bad input gets its status and a closed connection; an exchange in flight is abandoned.
  if (in_exchange_ && !exchange_.finished_ && exchange_.observer_ != nullptr) {
    Exchange::Observer* observer = exchange_.observer_;
    exchange_.observer_ = nullptr;
    observer->OnAbort();
  }
  in_exchange_ = false;
  const std::string_view phrase = ReasonPhrase(status);
  evbuffer_add_printf(output(),
                      "HTTP/1.1 %d %.*s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%.*s\n",
                      status, static_cast<int>(phrase.size()), phrase.data(), reason.size() + 1,
                      static_cast<int>(reason.size()), reason.data());
  closing_ = true;
  bufferevent_disable(bev_, EV_READ);
  OutputAdded();
}

void Connection::OnWritable() {
  if (tls_ && !SendTls()) return;
  if (Buffered() == 0) {
    bufferevent_disable(bev_, EV_WRITE);
    if (closing_ && files_.empty()) {
      Close();
      return;
    }
  }
  // Only once drained, as Observer::OnWritable promises: this also runs for ScheduleSend, whatever
  // is buffered, and a relay that resumed then would run ahead of a client that reads nothing.
  if (Buffered() <= kOutputLowWater && in_exchange_ && !exchange_.finished_ && exchange_.observer_ != nullptr)
    exchange_.observer_->OnWritable();
  if (!closed_) Rearm();
}

void Connection::OnDeadline() {
  if (handshaking_) {
    tls_stats().Fail(HandshakeFailure::kTimeout);
    Close();
    return;
  }
  if (!in_exchange_ && head_started_ && !closing_) {
    SendError(408, "request head not received in time");
    Rearm();
    return;
  }
  Close();
}

// Arms the one deadline that applies to what the connection is waiting for, or none.
void Connection::Rearm() {
  absl::Duration timeout = absl::InfiniteDuration();
  if (handshaking_) {
    timeout = std::max(absl::ZeroDuration(), head_deadline_ - absl::Now());
  } else if (closing_ || Sending()) {
    // Sending: the bufferevent's write timeout watches progress.
  } else if (!in_exchange_) {
    timeout =
        head_started_ ? std::max(absl::ZeroDuration(), head_deadline_ - absl::Now()) : options().idle_timeout;
  } else if (!body_done_ && !body_paused_ && exchange_.observer_ != nullptr) {
    timeout = options().body_timeout;
  }
  if (timeout == absl::InfiniteDuration()) {
    evtimer_del(deadline_);
  } else {
    const timeval tv = absl::ToTimeval(timeout);
    evtimer_add(deadline_, &tv);
  }
}

void Connection::OnEvent(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    OnHandshake();
    return;
  }
  if (tls_) {
    tls_failed_ = (what & BEV_EVENT_ERROR) != 0;
    if (handshaking_) {
      // Counted, never logged one line each: a scanner or a flood would write them at full rate.
      HandshakeFailure failure;
      if (!TlsContext::RecordedFailure(ssl_, &failure)) {
        failure = ClassifyHandshakeError((what & BEV_EVENT_ERROR) ? bufferevent_get_openssl_error(bev_) : 0);
      }
      tls_stats().Fail(failure);
      // As nginx does: a client that spoke plain HTTP to the TLS port learns why, not just a reset.
      if (failure == HandshakeFailure::kPlainHttp) {
        static constexpr std::string_view kAnswer =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 48\r\n"
            "Connection: close\r\n\r\nA plain HTTP request was sent to an HTTPS port.\n";
        (void)::send(bufferevent_getfd(bev_), kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    }
  }
  Close();
}

void Connection::OnHandshake() {
  handshaking_ = false;
  TlsStats& stats = tls_stats();
  stats.handshakes.fetch_add(1, std::memory_order_relaxed);
  if (SSL_session_reused(ssl_)) stats.resumed.fetch_add(1, std::memory_order_relaxed);
  std::array<char, 256> name;
  tls_name_ = ServerName(ssl_, name);
  // Kernel TLS is set up by OpenSSL at the handshake's end where the kernel and the cipher allow
  // (SSL_OP_ENABLE_KTLS): only then can a file go from the page cache to the socket encrypted.
  ktls_ = BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0;
  if (ktls_) ktls_event_ = event_new(worker_->base, bufferevent_getfd(bev_), EV_WRITE, &KtlsCallback, this);
  Rearm();
}

bool Connection::SendTls() {
  if (!WriteTls()) return false;
  if (files_.empty()) return true;
  if (ktls_) return PumpFiles();
  if (Buffered() > kOutputLowWater) return true;  // the write callback comes once it drains
  if (!PumpFiles() || !WriteTls()) return false;
  // The socket took all of it: the next piece on the next turn of the loop, so that a large
  // body does not hold the loop from the other connections.
  if (!files_.empty() && Buffered() == 0) ScheduleSend();
  return true;
}

bool Connection::WriteTls() {
  evbuffer* socket_output = bufferevent_get_output(bev_);
  while (evbuffer_get_length(tls_pending_) > 0) {
    if (evbuffer_get_length(socket_output) > 0) {
      // The bufferevent is sending: what follows joins it there, in order.
      evbuffer_add_buffer(socket_output, tls_pending_);
      return true;
    }
    // The first buffer chunk whole, or up to one record's worth made contiguous, bounded as the
    // bufferevent bounds its own writes.
    const size_t want = std::min(std::max(evbuffer_get_contiguous_space(tls_pending_),
                                          std::min<size_t>(evbuffer_get_length(tls_pending_), 16 * 1024)),
                                 static_cast<size_t>(bufferevent_get_max_single_write(bev_)));
    const unsigned char* data = evbuffer_pullup(tls_pending_, static_cast<ev_ssize_t>(want));
    ERR_clear_error();
    const int written = SSL_write(ssl_, data, static_cast<int>(want));
    if (written > 0) {
      evbuffer_drain(tls_pending_, static_cast<size_t>(written));
      continue;
    }
    const int error = SSL_get_error(ssl_, written);
    if (error != SSL_ERROR_WANT_WRITE && error != SSL_ERROR_WANT_READ) {
      ERR_clear_error();
      tls_failed_ = true;
      Close();
      return false;
    }
    // OpenSSL keeps the record it began and must be asked again with the same bytes first: moved
    // whole, the buffer's first chunk still starts with them and is no shorter, and the
    // bufferevent's next SSL_write is of that chunk.
    evbuffer_add_buffer(socket_output, tls_pending_);
    bufferevent_enable(bev_, EV_WRITE);
    return true;
  }
  return true;
}

void Connection::QueueBody(PendingFile body, bool chunked) {
  evbuffer* out = output();
  if (chunked) evbuffer_add_printf(out, "%llx\r\n", static_cast<unsigned long long>(body.remaining));
  if (spare_buffers_.empty()) {
    body.after = evbuffer_new();
  } else {
    body.after = spare_buffers_.back();
    spare_buffers_.pop_back();
  }
  if (chunked) evbuffer_add(body.after, "\r\n", 2);
  files_.push_back(std::move(body));
  OutputAdded();
}

bool Connection::PumpFiles() {
  evbuffer* out = sink();
  const uint64_t piece = std::max<uint64_t>(options().tls_file_piece, 1);
  while (!files_.empty()) {
    PendingFile& file = files_.front();
    if (file.remaining > 0 && file.memory != nullptr) {
      // As a file's pieces, but each a reference to the memory, which its holder keeps.
      if (Buffered() > kOutputLowWater) return true;
      const size_t want = static_cast<size_t>(std::min(piece, file.remaining));
      if (!AddReference(out, file.memory + file.offset, want, file.holder)) {
        Close();
        return false;
      }
      file.offset += want;
      file.remaining -= want;
      tls_stats().memory_body_bytes.fetch_add(want, std::memory_order_relaxed);
      continue;
    }
    if (file.remaining > 0) {
      if (ktls_) {
        // The bytes before the file go first (those that followed the last one among them);
        // then the kernel encrypts from the page cache.
        if (!WriteTls()) return false;
        if (Buffered() > 0) return true;
        return SendFileKtls();
      }
      // A piece at a time, the next once the output drained below the low-water mark (the write
      // callback): a large body holds about a piece and 64 KiB, whatever its length.
      if (Buffered() > kOutputLowWater) return true;
      const size_t want = static_cast<size_t>(std::min(piece, file.remaining));
      evbuffer_iovec space;
      if (evbuffer_reserve_space(out, static_cast<ev_ssize_t>(want), &space, 1) < 1) {
        Close();
        return false;
      }
      size_t done = 0;
      while (done < want) {
        const ssize_t n = ::pread(file.fd, static_cast<char*>(space.iov_base) + done, want - done,
                                  static_cast<off_t>(file.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          Close();  // the file is shorter than its entry says: a truncated body, never a wrong one
          return false;
        }
        done += static_cast<size_t>(n);
      }
      space.iov_len = want;
      evbuffer_commit_space(out, &space, 1);
      file.offset += want;
      file.remaining -= want;
      tls_stats().write_body_bytes.fetch_add(want, std::memory_order_relaxed);
      continue;
    }
    // The file is all in the output: the bytes that followed it join it there.
    if (file.fd >= 0) worker_->server->CloseFile(file.fd);
    evbuffer_add_buffer(out, file.after);
    spare_buffers_.push_back(file.after);
    files_.erase(files_.begin());
  }
  return true;
}

bool Connection::SendFileKtls() {
  PendingFile& file = files_.front();
  const size_t want = static_cast<size_t>(std::min<uint64_t>(options().sendfile_piece, file.remaining));
  const ossl_ssize_t sent = SSL_sendfile(ssl_, file.fd, static_cast<off_t>(file.offset), want, 0);
  if (sent > 0) {
    file.offset += static_cast<uint64_t>(sent);
    file.remaining -= static_cast<uint64_t>(sent);
    tls_stats().ktls_body_bytes.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
  } else if (SSL_get_error(ssl_, static_cast<int>(sent)) != SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    tls_failed_ = true;
    Close();
    return false;
  }
  if (file.remaining == 0) return PumpFiles();
  // The next piece on the next writable event, as sendfile_piece bounds plain sends.
  const timeval timeout = absl::ToTimeval(options().send_timeout);
  event_add(ktls_event_, &timeout);
  return true;
}

// ---- Exchange ------------------------------------------------------------------------------------

event_base* Exchange::loop() const {
  return connection_->worker()->base;
}

size_t Exchange::worker() const {
  return connection_->worker()->index;
}

std::string_view Exchange::peer_address() const {
  return connection_->peer_;
}

bool Exchange::tls() const {
  return connection_->tls_;
}

bool Exchange::reads_files_to_send() const {
  return connection_->tls_ && !connection_->ktls_;
}

std::string_view Exchange::tls_server_name() const {
  return connection_->tls_name_;
}

void Exchange::PauseBody() {
  connection_->body_paused_ = true;
}

void Exchange::ResumeBody() {
  connection_->body_paused_ = false;
  connection_->Process();
}

void Exchange::Respond(int status, std::span<const HeaderField> headers,
                       std::optional<uint64_t> content_length) {
  WriteHead(status, headers, {}, content_length);
}

namespace {

// A response's status line and fields, of an interim or a final response alike.
void AddStatusAndFields(evbuffer* out, int status, std::span<const HeaderField> headers) {
  const std::string_view reason = ReasonPhrase(status);
  evbuffer_add_printf(out, "HTTP/1.1 %d ", status);
  evbuffer_add(out, reason.data(), reason.size());
  evbuffer_add(out, "\r\n", 2);
  for (const auto& [name, value] : headers) {
    evbuffer_add(out, name.data(), name.size());
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, value.data(), value.size());
    evbuffer_add(out, "\r\n", 2);
  }
}

}  // namespace

void Exchange::SendInterim(int status, std::span<const HeaderField> headers) {
  if (responded_ || connection_->closed_ || request_.minor_version != 1 || status < 100 || status > 199 ||
      status == 101) {
    return;
  }
  if (status == 100) {
    if (connection_->continue_sent_) return;
    connection_->continue_sent_ = true;  // the body may come: no second one when it is read
  }
  evbuffer* out = connection_->output();
  AddStatusAndFields(out, status, headers);
  evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
}

void Exchange::WriteHead(int status, std::span<const HeaderField> headers, std::string_view content_type,
                         std::optional<uint64_t> content_length) {
  if (responded_ || connection_->closed_) return;
  responded_ = true;
  evbuffer* out = connection_->output();
  if (content_length && *content_length <= kInlineFileBytes && !head_only_ && StatusHasBody(status)) {
    // A small body follows in memory: room for it and the head in one buffer chunk, so a small
    // response costs one allocation here rather than two.
    size_t head_bytes = 128 + content_type.size();
    for (const auto& [name, value] : headers) head_bytes += name.size() + value.size() + 4;
    evbuffer_expand(out, head_bytes + *content_length);
  }
  AddStatusAndFields(out, status, headers);
  if (!content_type.empty()) {
    evbuffer_add(out, "Content-Type: ", 14);
    evbuffer_add(out, content_type.data(), content_type.size());
    evbuffer_add(out, "\r\n", 2);
  }
  const bool has_body = StatusHasBody(status);
  if (content_length) {
    evbuffer_add_printf(out, "Content-Length: %llu\r\n", static_cast<unsigned long long>(*content_length));
  } else if (has_body && request_.minor_version == 1) {
    if (!head_only_) chunked_ = true;
    evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
  } else if (has_body) {
    connection_->close_after_response_ = true;  // HTTP/1.0 without a length: the close ends the body
  }
  if (!has_body) head_only_ = true;
  if (!request_.keep_alive || connection_->close_after_response_ || !connection_->body_done_) {
    evbuffer_add(out, "Connection: close\r\n", 19);
    connection_->close_after_response_ = true;
  } else if (request_.minor_version == 0) {
    // HTTP/1.0 closes by default: a connection kept open must say so (RFC 9112 9.3).
    evbuffer_add(out, "Connection: keep-alive\r\n", 24);
  }
  evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
}

void Exchange::Write(std::string_view data) {
  if (!responded_ || head_only_ || finished_ || connection_->closed_ || data.empty()) return;
  evbuffer* out = connection_->output();
  if (chunked_) evbuffer_add_printf(out, "%zx\r\n", data.size());
  evbuffer_add(out, data.data(), data.size());
  if (chunked_) evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
}

absl::Status Exchange::SendFile(int fd, uint64_t offset, uint64_t length) {
  if (!responded_ || head_only_ || finished_ || connection_->closed_ || length == 0) return absl::OkStatus();
  if (length > kInlineFileBytes) {
    const int copy = ::dup(fd);
    if (copy < 0) return absl::InternalError(absl::StrCat("dup: ", std::strerror(errno)));
    return SendOwnedFile(copy, offset, length);
  }
  evbuffer* out = connection_->output();
  if (chunked_) evbuffer_add_printf(out, "%llx\r\n", static_cast<unsigned long long>(length));
  evbuffer_iovec space;
  if (evbuffer_reserve_space(out, static_cast<ev_ssize_t>(length), &space, 1) < 1) {
    return absl::InternalError("cannot grow the response buffer");
  }
  size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, static_cast<char*>(space.iov_base) + done, length - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::DataLossError("the file is shorter than its entry says");
    done += static_cast<size_t>(n);
  }
  space.iov_len = length;
  evbuffer_commit_space(out, &space, 1);
  if (chunked_) evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
  return absl::OkStatus();
}

absl::Status Exchange::SendOwnedFile(int fd, uint64_t offset, uint64_t length) {
  Server& server = *connection_->worker()->server;
  if (!responded_ || head_only_ || finished_ || connection_->closed_ || length == 0) {
    server.CloseFile(fd);
    return absl::OkStatus();
  }
  if (connection_->tls_) {
    // Encrypted in user space (or by the kernel with kTLS): the file waits behind what is
    // buffered and goes out as the connection drains (Connection::PumpFiles).
    connection_->QueueBody({fd, offset, length, nullptr, nullptr, nullptr}, chunked_);
    return absl::OkStatus();
  }
  evbuffer* out = connection_->output();
  evbuffer_file_segment* segment =
      evbuffer_file_segment_new(fd, static_cast<ev_off_t>(offset), static_cast<ev_off_t>(length), 0);
  if (segment == nullptr) {
    server.CloseFile(fd);
    return absl::InternalError("cannot map the file segment");
  }
  // Closed when the send buffer is done with it, by ServerOptions::close_file (the edge's frees a
  // cache entry deleted while it was being sent off this loop). The callback's note comes from
  // the worker's pool: no allocation per response once warm.
  Server::Worker* worker = connection_->worker();
  std::unique_ptr<Server::OwnedFile> note;
  if (worker->owned_files.empty()) {
    note = std::make_unique<Server::OwnedFile>();
  } else {
    note = std::move(worker->owned_files.back());
    worker->owned_files.pop_back();
  }
  note->worker = worker;
  note->fd = fd;
  evbuffer_file_segment_add_cleanup_cb(
      segment,
      [](const evbuffer_file_segment*, int, void* arg) {
        std::unique_ptr<Server::OwnedFile> file(static_cast<Server::OwnedFile*>(arg));
        Server::Worker* owner = file->worker;
        owner->server->CloseFile(file->fd);
        owner->owned_files.push_back(std::move(file));
      },
      note.release());
  if (chunked_) evbuffer_add_printf(out, "%llx\r\n", static_cast<unsigned long long>(length));
  // libevent sends a file segment's part in one sendfile call whatever its length, and writes one
  // part per write event: parts of at most sendfile_piece bound the time a call holds the loop.
  const uint64_t piece = std::max<uint64_t>(connection_->options().sendfile_piece, 1);
  int added = 0;
  for (uint64_t done = 0; done < length && added == 0; done += piece) {
    added = evbuffer_add_file_segment(out, segment, static_cast<ev_off_t>(done),
                                      static_cast<ev_off_t>(std::min(piece, length - done)));
  }
  evbuffer_file_segment_free(segment);  // the buffer holds its own references
  if (chunked_) evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
  return added == 0 ? absl::OkStatus() : absl::InternalError("cannot queue the file segment");
}

void Exchange::SendShared(std::shared_ptr<const void> owner, std::string_view bytes) {
  if (!responded_ || head_only_ || finished_ || connection_->closed_ || bytes.empty()) return;
  if (reads_files_to_send()) {
    // In pieces behind what is buffered, as a file: a large body does not hold the loop.
    connection_->QueueBody({-1, 0, bytes.size(), nullptr, bytes.data(), std::move(owner)}, chunked_);
    return;
  }
  evbuffer* out = connection_->output();
  if (chunked_) evbuffer_add_printf(out, "%llx\r\n", static_cast<unsigned long long>(bytes.size()));
  if (!AddReference(out, bytes.data(), bytes.size(), owner)) evbuffer_add(out, bytes.data(), bytes.size());
  if (chunked_) evbuffer_add(out, "\r\n", 2);
  connection_->OutputAdded();
}

void Exchange::Finish() {
  if (finished_ || connection_->closed_) return;
  if (!responded_) Respond(500, {}, 0);
  if (chunked_) evbuffer_add(connection_->output(), "0\r\n\r\n", 5);
  finished_ = true;
  observer_ = nullptr;
  connection_->Process();
}

void Exchange::Abort() {
  if (connection_->closed_) return;
  finished_ = true;
  observer_ = nullptr;
  connection_->Close();
}

void Exchange::Reply(int status, std::string_view content_type, std::string_view body,
                     std::span<const HeaderField> headers) {
  WriteHead(status, headers, content_type, body.size());
  Write(body);
  Finish();
}

size_t Exchange::output_buffered() const {
  if (connection_->closed_) return 0;
  size_t buffered = connection_->Buffered();
  for (const Connection::PendingFile& file : connection_->files_) {
    buffered += file.remaining + evbuffer_get_length(file.after);
  }
  return buffered;
}

// ---- Server --------------------------------------------------------------------------------------

namespace {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
};

absl::StatusOr<SocketAddress> ParseAddress(const std::string& address, uint16_t port) {
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(*v4);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address ", address, " is not an IPv4 or IPv6 address"));
  }
  return out;
}

// "127.0.0.1:80", "[::1]:80".
std::string HostPort(const std::string& address, uint16_t port) {
  return address.find(':') == std::string::npos ? absl::StrCat(address, ":", port)
                                                : absl::StrCat("[", address, "]:", port);
}

}  // namespace

void Server::Worker::Accept(evutil_socket_t fd, const sockaddr* peer, const TlsContext* tls) {
  if (server->connections_.load() >= server->options_.max_connections) {
    ::close(fd);
    return;
  }
  SSL* ssl = nullptr;
  if (tls != nullptr && (ssl = tls->NewSsl()) == nullptr) {
    ERR_clear_error();
    ::close(fd);
    return;
  }
  auto connection = std::make_unique<Connection>(this, fd, peer, ssl);
  connections.emplace(connection.get(), std::move(connection));
}

void Server::CloseFile(int fd) const {
  if (options_.close_file) {
    options_.close_file(fd);
  } else {
    ::close(fd);
  }
}

void Server::OnAcceptError(Listening& listening, int error) {
  Worker& worker = *listening.worker;
  const uint64_t count = accept_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  if ((error == EMFILE || error == ENFILE) && worker.spare_fd >= 0) {
    // The reserve: one connection taken with the descriptor kept for it.
    ::close(std::exchange(worker.spare_fd, -1));
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    const int fd = ::accept4(evconnlistener_get_fd(listening.listener), reinterpret_cast<sockaddr*>(&peer),
                             &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      worker.Accept(fd, reinterpret_cast<sockaddr*>(&peer), listening.tls);
    } else {
      worker.KeepSpare();
    }
  }
  worker.EnableListeners(false);
  const timeval pause = absl::ToTimeval(options_.accept_pause);
  event_add(worker.resumer, &pause);
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = accept_logged_at_.load(std::memory_order_relaxed);
  if (options_.log && now - last >= 1'000'000'000 && accept_logged_at_.compare_exchange_strong(last, now)) {
    const uint64_t since = count - accept_errors_logged_.exchange(count);
    const size_t index =
        static_cast<size_t>(std::find_if(worker.listeners.begin(), worker.listeners.end(),
                                         [&](const auto& l) { return l.get() == &listening; }) -
                            worker.listeners.begin());
    options_.log(absl::StrCat("accept on ", HostPort(options_.listen[index].address, ports_[index]),
                              " failed ", since, " times since the last report (", std::strerror(error),
                              "); accepting pauses ", absl::FormatDuration(options_.accept_pause),
                              " each time"));
  }
}

Server::Server(ServerOptions options, Handler& handler) : options_(std::move(options)), handler_(handler) {
  EnableLibeventThreads();
}

Server::~Server() {
  Stop();
}

absl::Status Server::ReloadTls() {
  return ticket_keys_ == nullptr ? absl::OkStatus() : ticket_keys_->Reload();
}

absl::Status Server::Bind(Worker& worker, size_t index) {
  const Listen& listen = options_.listen[index];
  absl::StatusOr<SocketAddress> address = ParseAddress(listen.address, ports_[index]);
  if (!address.ok()) return address.status();
  const auto fail = [&](int fd) {
    const std::string error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", HostPort(listen.address, ports_[index]), ": ", error));
  };
  const int fd = ::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  // "::" takes IPv6 only: an IPv4 listener on the same port is its own [[listen]].
  if (address->family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->length) != 0) return fail(fd);
  auto listening = std::make_unique<Listening>();
  listening->worker = &worker;
  listening->tls = tls_contexts_[index].get();
  listening->listener = evconnlistener_new(
      worker.base,
      [](evconnlistener*, evutil_socket_t client, sockaddr* peer, int, void* arg) {
        auto* l = static_cast<Listening*>(arg);
        l->worker->Accept(client, peer, l->tls);
      },
      listening.get(), LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, fd);
  if (listening->listener == nullptr) return fail(fd);
  // Without this callback libevent logs every failure and retries at once: out of descriptors,
  // that was both workers at 100% CPU and 15.8 million log lines in 14 s.
  evconnlistener_set_error_cb(listening->listener, [](evconnlistener*, void* arg) {
    auto* l = static_cast<Listening*>(arg);
    l->worker->server->OnAcceptError(*l, EVUTIL_SOCKET_ERROR());
  });
  if (ports_[index] == 0) {
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    ports_[index] = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  worker.listeners[index] = std::move(listening);
  return absl::OkStatus();
}

absl::Status Server::Start() {
  if (options_.listen.empty()) return absl::InvalidArgumentError("no listener");
  ports_.assign(options_.listen.size(), 0);
  tls_contexts_.clear();
  tls_contexts_.resize(options_.listen.size());
  for (size_t i = 0; i < options_.listen.size(); ++i) {
    const Listen& listen = options_.listen[i];
    absl::StatusOr<SocketAddress> address = ParseAddress(listen.address, listen.port);
    if (!address.ok()) return address.status();
    ports_[i] = listen.port;
    if (listen.port != 0) {
      // SO_REUSEPORT would let this server share the port with another process already on it (a
      // second edge started by mistake), each silently taking part of the traffic. A plain bind
      // fails if anyone listens there.
      const int probe = ::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
      const int one = 1;
      setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (address->family() == AF_INET6) setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      const bool taken =
          ::bind(probe, reinterpret_cast<const sockaddr*>(&address->storage), address->length) != 0;
      const std::string error = std::strerror(errno);
      ::close(probe);
      if (taken) {
        return absl::UnavailableError(
            absl::StrCat("cannot listen on ", HostPort(listen.address, listen.port), ": ", error));
      }
    }
    if (listen.tls && listen.certificates == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("listener ", HostPort(listen.address, listen.port),
                                                     ": TLS without a certificate source"));
    }
    if (listen.tls) {
      // One set of ticket keys for every TLS listener and worker: a session resumes on any.
      if (ticket_keys_ == nullptr) {
        absl::StatusOr<std::unique_ptr<TicketKeys>> keys = TicketKeys::Make(options_.tls);
        if (!keys.ok()) return keys.status();
        ticket_keys_ = std::move(*keys);
      }
      absl::StatusOr<std::unique_ptr<TlsContext>> context =
          TlsContext::Make(options_.tls, listen.certificates, ticket_keys_.get());
      if (!context.ok()) return context.status();
      tls_contexts_[i] = std::move(*context);
    }
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    auto worker = std::make_unique<Worker>();
    worker->server = this;
    worker->index = static_cast<size_t>(i);
    worker->base = event_base_new();
    worker->drainer = event_new(
        worker->base, -1, 0,
        [](evutil_socket_t, short, void* arg) {
          auto* w = static_cast<Worker*>(arg);
          w->draining = true;
          w->EnableListeners(false);
          std::vector<Connection*> open;
          for (auto& [connection, owned] : w->connections) open.push_back(connection);
          for (Connection* connection : open) connection->CloseWhenIdle();
        },
        worker.get());
    worker->reaper = event_new(
        worker->base, -1, 0,
        [](evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->closed.clear(); }, worker.get());
    // event_base_loopbreak() from another thread is lost if the loop has not started yet; an
    // activated event is not.
    worker->stopper = event_new(
        worker->base, -1, 0,
        [](evutil_socket_t, short, void* arg) { event_base_loopbreak(static_cast<event_base*>(arg)); },
        worker->base);
    worker->resumer = event_new(
        worker->base, -1, 0,
        [](evutil_socket_t, short, void* arg) {
          auto* w = static_cast<Worker*>(arg);
          w->KeepSpare();
          if (!w->draining) w->EnableListeners(true);
        },
        worker.get());
    worker->KeepSpare();
    worker->listeners.resize(options_.listen.size());
    Worker& w = *worker;
    workers_.push_back(std::move(worker));  // Stop() frees what was made if a bind fails
    for (size_t l = 0; l < options_.listen.size(); ++l) {
      if (absl::Status status = Bind(w, l); !status.ok()) {
        Stop();
        return status;
      }
    }
  }
  // Start returns once every worker's OnWorkerStart ran: the handler's per-worker state is
  // ready before the caller goes on (a test that then takes every descriptor relies on it).
  std::latch started(static_cast<std::ptrdiff_t>(workers_.size()));
  for (auto& worker : workers_) {
    worker->thread = std::thread([this, &started, w = worker.get()] {
      handler_.OnWorkerStart(w->index, w->base);
      started.count_down();
      event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    });
  }
  started.wait();
  return absl::OkStatus();
}

void Server::Drain() {
  for (auto& worker : workers_) event_active(worker->drainer, EV_TIMEOUT, 0);
}

void Server::Stop() {
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) {
      event_active(worker->stopper, EV_TIMEOUT, 0);
      worker->thread.join();
    }
  }
  for (auto& worker : workers_) {
    for (auto& listening : worker->listeners) {
      if (listening != nullptr && listening->listener != nullptr) {
        evconnlistener_free(std::exchange(listening->listener, nullptr));
      }
    }
    while (!worker->connections.empty()) worker->connections.begin()->first->Close();
    // bufferevent_openssl defers its write callback, holding a reference to the bufferevent
    // until it runs; one more turn of the loop lets those of closed connections go, where
    // event_base_free would drop them with their SSL (ASan saw it as a leak).
    event_base_loop(worker->base, EVLOOP_NONBLOCK);
    worker->listeners.clear();
    worker->closed.clear();
    handler_.OnWorkerStop(worker->index);
    if (worker->spare_fd >= 0) ::close(worker->spare_fd);
    event_free(worker->resumer);
    event_free(worker->stopper);
    event_free(worker->drainer);
    event_free(worker->reaper);
    event_base_free(worker->base);
  }
  workers_.clear();
}

}  // namespace edge::http
