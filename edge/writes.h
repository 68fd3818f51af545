// Writes through the edge: PUT, POST, DELETE and COPY on the Swift API host (and unsafe methods
// on http tenants) go to the origin with their bodies streamed, and a successful one invalidates
// this edge's cache at once and becomes a write event for the purge daemons.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "edge/http/server.h"
#include "edge/origin/origin_client.h"
#include "purge-daemon/bus/protocol.h"
#include "vhost-config/path_mapping.h"

struct event;

namespace edge {

bool IsWriteMethod(std::string_view method);

// Set on the writes an edge relays to Swift (its node id), and dropped from clients' requests: the
// Swift middleware (edge_purge.py) then leaves the wait for the other edges to this edge.
inline constexpr std::string_view kEdgeNodeHeader = "X-Edge-Node";

// Swift's auth answer names the proxy's own address as the storage URL, so a standard client
// (`swift -A`, the SDKs) would send its writes past every edge and nothing would be purged: the
// URL's scheme and authority become the ones the client reached the edge by (`host` as the
// client sent it, https when it came over TLS), its path stays. A value that is not an absolute
// http(s) URL is kept.
std::string PublicStorageUrl(std::string_view storage_url, std::string_view host, bool tls);

// A client's request body on its way to the origin. Bytes wait here, at most kMaxBuffered, until
// libcurl asks for them: a full buffer stops reading from the client, an empty one pauses the
// upload until more comes. So a 5 GB upload passes through in bounded memory. Lives on the
// exchange's loop.
class BodyPump : public origin::UploadSource {
 public:
  static constexpr size_t kMaxBuffered = 1 << 20;
  explicit BodyPump(http::Exchange& exchange);
  ~BodyPump() override;
  BodyPump(const BodyPump&) = delete;

  // The upload runs as fetch `id` of `client`.
  void Attach(origin::OriginClient& client, origin::OriginClient::FetchId id);
  // From the exchange's observer.
  void OnBody(std::string_view data);
  void OnBodyEnd();
  // The exchange is gone: the pump stops asking it for more.
  void Detach() { exchange_ = nullptr; }
  // The whole body has come from the client.
  bool complete() const { return ended_; }
  size_t ReadBody(char* buffer, size_t size) override;

 private:
  static void OnResumeClient(int, short, void* self);

  http::Exchange* exchange_;
  origin::OriginClient* client_ = nullptr;
  origin::OriginClient::FetchId id_ = 0;
  std::string buffer_;
  size_t offset_ = 0;  // bytes of buffer_ already handed to libcurl
  bool ended_ = false;
  bool client_paused_ = false;
  bool upload_waiting_ = false;
  event* resume_client_;  // resumes reading the client outside libcurl's callback
};

// What the event of a write needs from its request, copied: the client may be gone by the time
// the origin answers.
struct WriteIntent {
  // The most of a bulk delete's body kept for its paths; beyond, the planner cannot name them.
  static constexpr size_t kMaxPaths = 1 << 20;

  std::string method;
  std::string destination;  // COPY: the Destination header, decoded
  std::string destination_account;
  std::string settings;  // bus::SettingHeaders of the request's headers
  // A bulk delete or archive extraction: Swift answers 2xx at once and works while its body
  // streams, so the write is planned when the answer ends, and not waited for.
  bool result_streams = false;
  bool bulk_delete = false;
  std::string paths;       // a bulk delete's body, as read so far
  bool paths_cut = false;  // longer than kMaxPaths

  static WriteIntent Of(const http::Request& request, std::string_view query);
  // Body bytes on their way to the origin (a bulk delete keeps them for its paths).
  void Read(std::string_view data);
};

// The event for a write whose answer was `status` (0: unknown, the origin did not say: it may
// have happened), or nullopt when it certainly changed nothing. `target` is where the request
// went (on the Swift cluster named `cluster`), `response_headers` Swift's answer (its X-Trans-Id).
std::optional<bus::WriteEvent> MakeWriteEvent(
    std::string_view node, std::string_view cluster, const WriteIntent& intent,
    const vhost::OriginTarget& target, int status,
    std::span<const std::pair<std::string_view, std::string_view>> response_headers, int64_t now_ms);

}  // namespace edge
