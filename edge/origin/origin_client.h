// Fetches from origins (Swift proxies, or a tenant's HTTP server) with libcurl's multi interface
// driven by the worker's libevent loop: no thread per fetch, connections kept alive and reused,
// connect and stall timeouts, and receive backpressure (Pause/Resume) so a slow client never
// makes the edge buffer a large object. One client per event loop; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

struct event_base;
struct event;

namespace edge::origin {

// Where a request body comes from: pulled by the client as the origin takes it.
class UploadSource {
 public:
  virtual ~UploadSource() = default;
  static constexpr size_t kPause = SIZE_MAX;
  // Copies up to `size` bytes of the body into `buffer`: the count, 0 at the end of the body, or
  // kPause when nothing is ready yet (then OriginClient::ResumeUpload when there is).
  virtual size_t ReadBody(char* buffer, size_t size) = 0;
};

struct FetchRequest {
  std::string method = "GET";  // any method; HEAD has no response body
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  UploadSource* body = nullptr;         // a request body, streamed; must outlive the fetch
  std::optional<uint64_t> body_length;  // with a body: its length, or chunked when unknown
};

class FetchObserver {
 public:
  virtual ~FetchObserver() = default;
  // The final response's status and headers. Views are valid during the call.
  virtual void OnHeaders(int status,
                         std::span<const std::pair<std::string_view, std::string_view>> headers) = 0;
  // An interim response (1xx but 101) before the final one, which may be forwarded to a client
  // (RFC 9110 15.2) but is never part of the final response. Views are valid during the call.
  virtual void OnInterim(int status, std::span<const std::pair<std::string_view, std::string_view>> headers) {
    (void)status;
    (void)headers;
  }
  virtual void OnData(std::string_view data) = 0;
  // The fetch is over: OK, or why it failed (DeadlineExceeded for timeouts, Unavailable for
  // refused or reset connections). No call follows.
  virtual void OnComplete(absl::Status status) = 0;
};

struct OriginOptions {
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration stall_timeout = absl::Seconds(10);  // no byte received for this long (1 s steps)
  long max_connections_per_host = 64;
  // The CAs an https:// origin's certificate must chain to (a PEM bundle); empty: the system's.
  // Peer and host name are always verified.
  std::string ca_file;
};

class OriginClient {
 public:
  using FetchId = uint64_t;

  OriginClient(event_base* loop, OriginOptions options);
  ~OriginClient();  // cancels every fetch without calling its observer
  OriginClient(const OriginClient&) = delete;

  // Starts a fetch; the observer must outlive it (until OnComplete or Cancel). From inside
  // another fetch's callbacks, where libcurl refuses new transfers, it is sent on the next loop turn.
  FetchId Start(const FetchRequest& request, FetchObserver* observer);
  // Stops a fetch; its observer hears nothing more. Safe from inside its own callbacks.
  void Cancel(FetchId id);
  // Stops and restarts receiving a fetch's body (the origin connection's TCP window fills up).
  void Pause(FetchId id);
  void Resume(FetchId id);
  // The upload source has bytes again after returning kPause.
  void ResumeUpload(FetchId id);
  size_t active() const { return fetches_.size(); }

 private:
  struct Fetch;
  struct SocketContext;
  static int OnSocket(void* easy, int socket, int what, void* client, void* socket_context);
  static int OnTimer(void* multi, long timeout_ms, void* client);
  static void OnSocketEvent(int socket, short events, void* context);
  static void OnTimerEvent(int, short, void* client);
  static size_t OnHeaderLine(char* data, size_t size, size_t count, void* fetch);
  static size_t OnBody(char* data, size_t size, size_t count, void* fetch);
  static size_t OnUpload(char* buffer, size_t size, size_t count, void* fetch);
  void ApplyPause(Fetch* fetch);
  void Drive(int socket, int curl_events);
  void CollectFinished();
  void Remove(Fetch* fetch);
  void Sweep();

  event_base* loop_;
  OriginOptions options_;
  void* multi_;  // CURLM*
  event* timer_;
  // Removes fetches cancelled, and adds those started, from inside libcurl callbacks, on the next
  // loop turn.
  event* sweeper_;
  int in_callback_ = 0;
  FetchId next_id_ = 1;
  absl::flat_hash_map<FetchId, std::unique_ptr<Fetch>> fetches_;
  absl::flat_hash_map<int, std::unique_ptr<SocketContext>> sockets_;
};

}  // namespace edge::origin
