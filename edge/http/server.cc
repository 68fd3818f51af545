#include "edge/http/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "cache/file_closer.h"
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

struct Server::Worker {
  Server* server = nullptr;
  size_t index = 0;
  event_base* base = nullptr;
  evconnlistener* listener = nullptr;
  event* reaper = nullptr;   // deletes closed connections outside their own callbacks
  event* drainer = nullptr;  // runs Drain on the worker's own thread
  event* stopper = nullptr;  // breaks the loop from its own thread, even if it has not started yet
  event* resumer = nullptr;  // accepts again after a pause (ServerOptions::accept_pause)
  int spare_fd = -1;         // ServerOptions::reserve_descriptor: a descriptor held, closed to accept with
  bool draining = false;
  // Takes a connection accept() gave.
  void Accept(evutil_socket_t fd, const sockaddr* peer);
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
  absl::flat_hash_map<Connection*, std::unique_ptr<Connection>> connections;
  std::vector<std::unique_ptr<Connection>> closed;
};

// One client connection. Lives on its worker's thread; deleted by the worker's reaper after Close.
class Connection {
 public:
  Connection(Server::Worker* worker, evutil_socket_t fd, const sockaddr* peer);
  ~Connection();

  void Close();
  Server::Worker* worker() const { return worker_; }
  // Drain: an idle connection closes now, a busy one after its response.
  void CloseWhenIdle();

 private:
  friend class Exchange;
  static void ReadCallback(bufferevent*, void* self) { static_cast<Connection*>(self)->Process(); }
  static void WriteCallback(bufferevent*, void* self) { static_cast<Connection*>(self)->OnWritable(); }
  static void EventCallback(bufferevent*, short, void* self) { static_cast<Connection*>(self)->Close(); }
  static void DeadlineCallback(evutil_socket_t, short, void* self) {
    static_cast<Connection*>(self)->OnDeadline();
  }

  const ServerOptions& options() const { return worker_->server->options_; }
  evbuffer* input() const { return bufferevent_get_input(bev_); }
  evbuffer* output() const { return bufferevent_get_output(bev_); }

  // Parses heads, runs exchanges and delivers bodies until it must wait for bytes or the handler.
  void Process();
  bool ParseHead();  // false: wait (or the connection is closing)
  void DeliverBody();
  void SendError(int status, std::string_view reason);
  void OnWritable();
  void OnDeadline();
  // Writes what is buffered now; what the socket does not take waits for EV_WRITE.
  void Flush();
  // Output was added: outside Process (an answer from a later callback) it goes out when the
  // socket is writable; inside, Process flushes it at its end, with anything else it adds.
  void OutputAdded() {
    if (!processing_ && !closed_) bufferevent_enable(bev_, EV_WRITE);
  }
  void Rearm();

  Server::Worker* worker_;
  bufferevent* bev_;
  event* deadline_;
  std::string head_;  // the current head, copied out of the input so views stay valid
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

Connection::Connection(Server::Worker* worker, evutil_socket_t fd, const sockaddr* peer)
    : worker_(worker),
      bev_(bufferevent_socket_new(worker->base, fd, BEV_OPT_CLOSE_ON_FREE)),
      deadline_(evtimer_new(worker->base, &DeadlineCallback, this)) {
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
  // The socket is closed here, not when libevent frees the bufferevent after the callback in
  // progress: out of descriptors, another thread's accept() would take the number first. So a
  // used reserve takes it back (dup2 closes the socket and keeps the number, as a copy of the
  // listener's), and a paused listener takes the next client with it at once.
  const evutil_socket_t fd = bufferevent_getfd(bev_);
  bufferevent_setfd(bev_, -1);
  if (!worker_->server->options_.reserve_descriptor || worker_->spare_fd >= 0 ||
      worker_->listener == nullptr || ::dup2(evconnlistener_get_fd(worker_->listener), fd) < 0) {
    ::close(fd);
  } else {
    worker_->spare_fd = fd;
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
    if (evbuffer_get_length(output()) == 0) Close();
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
        if (evbuffer_get_length(output()) == 0) Close();
      }
    }
  } while (process_again_ && !closed_);
  processing_ = false;
  Flush();
  if (!closed_) Rearm();
}

void Connection::Flush() {
  if (closed_) return;
  evbuffer* out = output();
  if (evbuffer_get_length(out) > 0) {
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
  if (evbuffer_get_length(out) > 0) {
    bufferevent_enable(bev_, EV_WRITE);
  } else if (closing_) {
    Close();
    return;
  }
  // Output this drained below the low-water mark never reaches the write event, so the exchange
  // waiting to write more (a paused relay) hears it here.
  if (evbuffer_get_length(out) <= kOutputLowWater && in_exchange_ && !exchange_.finished_ &&
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
  if (evbuffer_get_length(output()) == 0) {
    bufferevent_disable(bev_, EV_WRITE);
    if (closing_) {
      Close();
      return;
    }
  }
  if (in_exchange_ && !exchange_.finished_ && exchange_.observer_ != nullptr)
    exchange_.observer_->OnWritable();
  if (!closed_) Rearm();
}

void Connection::OnDeadline() {
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
  if (closing_ || evbuffer_get_length(output()) > 0) {
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
  if (!responded_ || head_only_ || finished_ || connection_->closed_ || length == 0) {
    cache::CloseFile(fd);
    return absl::OkStatus();
  }
  evbuffer* out = connection_->output();
  evbuffer_file_segment* segment =
      evbuffer_file_segment_new(fd, static_cast<ev_off_t>(offset), static_cast<ev_off_t>(length), 0);
  if (segment == nullptr) {
    cache::CloseFile(fd);
    return absl::InternalError("cannot map the file segment");
  }
  // Closed when the send buffer is done with it, by cache::CloseFile: a cache entry deleted while
  // it was being sent is freed off this loop.
  evbuffer_file_segment_add_cleanup_cb(
      segment,
      [](const evbuffer_file_segment*, int, void* file) {
        cache::CloseFile(static_cast<int>(reinterpret_cast<intptr_t>(file)));
      },
      reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
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
  return connection_->closed_ ? 0 : evbuffer_get_length(connection_->output());
}

// ---- Server --------------------------------------------------------------------------------------

void Server::Worker::Accept(evutil_socket_t fd, const sockaddr* peer) {
  if (server->connections_.load() >= server->options_.max_connections) {
    ::close(fd);
    return;
  }
  auto connection = std::make_unique<Connection>(this, fd, peer);
  connections.emplace(connection.get(), std::move(connection));
}

void Server::OnAcceptError(Worker& worker, int error) {
  const uint64_t count = accept_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  if ((error == EMFILE || error == ENFILE) && worker.spare_fd >= 0) {
    // The reserve: one connection taken with the descriptor kept for it.
    ::close(std::exchange(worker.spare_fd, -1));
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    const int fd = ::accept4(evconnlistener_get_fd(worker.listener), reinterpret_cast<sockaddr*>(&peer),
                             &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      worker.Accept(fd, reinterpret_cast<sockaddr*>(&peer));
    } else {
      worker.KeepSpare();
    }
  }
  evconnlistener_disable(worker.listener);
  const timeval pause = absl::ToTimeval(options_.accept_pause);
  event_add(worker.resumer, &pause);
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = accept_logged_at_.load(std::memory_order_relaxed);
  if (options_.log && now - last >= 1'000'000'000 && accept_logged_at_.compare_exchange_strong(last, now)) {
    const uint64_t since = count - accept_errors_logged_.exchange(count);
    options_.log(absl::StrCat("accept on port ", port_, " failed ", since, " times since the last report (",
                              std::strerror(error), "); accepting pauses ",
                              absl::FormatDuration(options_.accept_pause), " each time"));
  }
}

Server::Server(ServerOptions options, Handler& handler) : options_(std::move(options)), handler_(handler) {
  EnableLibeventThreads();
}

Server::~Server() {
  Stop();
}

absl::Status Server::Start() {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, options_.address.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address ", options_.address, " is not an IPv4 address"));
  }
  port_ = options_.port;
  if (port_ != 0) {
    // SO_REUSEPORT would let this server share the port with another process already on it (a
    // second edge started by mistake), each silently taking part of the traffic. A plain bind
    // fails if anyone listens there.
    const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    address.sin_port = htons(port_);
    const bool taken = ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0;
    const std::string error = std::strerror(errno);
    ::close(probe);
    if (taken) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.address, ":", port_, ": ", error));
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
          evconnlistener_disable(w->listener);
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
          if (!w->draining) evconnlistener_enable(w->listener);
        },
        worker.get());
    worker->KeepSpare();
    address.sin_port = htons(port_);
    worker->listener = evconnlistener_new_bind(
        worker->base,
        [](evconnlistener*, evutil_socket_t fd, sockaddr* peer, int, void* arg) {
          static_cast<Worker*>(arg)->Accept(fd, peer);
        },
        worker.get(),
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC, 1024,
        reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (worker->listener == nullptr) {
      const std::string error = std::strerror(errno);
      if (worker->spare_fd >= 0) ::close(worker->spare_fd);
      event_free(worker->resumer);
      event_free(worker->stopper);
      event_free(worker->drainer);
      event_free(worker->reaper);
      event_base_free(worker->base);
      Stop();
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.address, ":", port_, ": ", error));
    }
    // Without this callback libevent logs every failure and retries at once: out of descriptors,
    // that was both workers at 100% CPU and 15.8 million log lines in 14 s.
    evconnlistener_set_error_cb(worker->listener, [](evconnlistener*, void* arg) {
      auto* w = static_cast<Worker*>(arg);
      w->server->OnAcceptError(*w, EVUTIL_SOCKET_ERROR());
    });
    if (port_ == 0) {
      sockaddr_in bound{};
      socklen_t length = sizeof(bound);
      getsockname(evconnlistener_get_fd(worker->listener), reinterpret_cast<sockaddr*>(&bound), &length);
      port_ = ntohs(bound.sin_port);
    }
    workers_.push_back(std::move(worker));
  }
  for (auto& worker : workers_) {
    worker->thread = std::thread([this, w = worker.get()] {
      handler_.OnWorkerStart(w->index, w->base);
      event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    });
  }
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
    evconnlistener_free(std::exchange(worker->listener, nullptr));
    while (!worker->connections.empty()) worker->connections.begin()->first->Close();
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
