#include "edge/origin/origin_client.h"

#include <curl/curl.h>
#include <event2/event.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace edge::origin {

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CURLM* Multi(void* multi) {
  return static_cast<CURLM*>(multi);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

absl::Status ToStatus(CURLcode code, const char* detail) {
  const std::string message = absl::StrCat(curl_easy_strerror(code), *detail ? ": " : "", detail);
  switch (code) {
    case CURLE_OK:
      return absl::OkStatus();
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

struct OriginClient::Fetch {
  OriginClient* client = nullptr;
  FetchId id = 0;
  CURL* easy = nullptr;
  curl_slist* request_headers = nullptr;
  FetchObserver* observer = nullptr;
  UploadSource* upload = nullptr;
  bool receive_paused = false;
  bool send_paused = false;
  std::string header_block;                      // the current response's header lines
  std::vector<std::pair<size_t, size_t>> spans;  // per header line in header_block: name length, line length
  std::vector<std::pair<std::string_view, std::string_view>> views;
  bool cancelled = false;
  bool added = false;  // to the multi handle
  char error[CURL_ERROR_SIZE] = {};

  ~Fetch() {
    curl_easy_cleanup(easy);
    curl_slist_free_all(request_headers);
  }
};

struct OriginClient::SocketContext {
  event* ev = nullptr;
};

OriginClient::OriginClient(event_base* loop, OriginOptions options) : loop_(loop), options_(options) {
  GlobalInit();
  multi_ = curl_multi_init();
  timer_ = evtimer_new(loop_, &OnTimerEvent, this);
  sweeper_ = event_new(
      loop_, -1, 0, [](evutil_socket_t, short, void* self) { static_cast<OriginClient*>(self)->Sweep(); },
      this);
  curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETFUNCTION, &OnSocket);
  curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERFUNCTION, &OnTimer);
  curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(Multi(multi_), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
}

OriginClient::~OriginClient() {
  for (auto& [id, fetch] : fetches_) curl_multi_remove_handle(Multi(multi_), fetch->easy);
  fetches_.clear();
  curl_multi_cleanup(Multi(multi_));  // closes the kept-alive connections
  for (auto& [socket, context] : sockets_) event_free(context->ev);
  event_free(timer_);
  event_free(sweeper_);
}

OriginClient::FetchId OriginClient::Start(const FetchRequest& request, FetchObserver* observer) {
  auto fetch = std::make_unique<Fetch>();
  fetch->client = this;
  fetch->id = next_id_++;
  fetch->observer = observer;
  fetch->easy = curl_easy_init();
  CURL* easy = fetch->easy;
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, fetch.get());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, fetch->error);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeaderLine);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, fetch.get());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, fetch.get());
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>(absl::ToInt64Seconds(options_.stall_timeout))));
  // An https:// origin must prove it is the host named (libcurl's default, made explicit so that no
  // build or environment turns it off); a private CA comes from origin.ca_file.
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
  // Bodies pass through as the origin sent them; the edge decides nothing about encodings here.
  curl_easy_setopt(easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
  curl_easy_setopt(easy, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
  // Bodies arrive in pieces of up to this much: fewer, larger writes to the cache and wakeups of
  // the clients waiting on them than libcurl's default 16 KiB.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 64L * 1024);
  if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.body != nullptr) {
    fetch->upload = request.body;
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, &OnUpload);
    curl_easy_setopt(easy, CURLOPT_READDATA, fetch.get());
    // A streamed body cannot be sent twice: libcurl would have to rewind it to retry on a kept-
    // alive connection the origin had closed. A new connection is never found closed.
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    // Without a length libcurl sends the body chunked.
    if (request.body_length) {
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(*request.body_length));
    }
  } else if (request.method == "POST" || request.method == "PUT") {
    // An empty body, said with Content-Length: 0.
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
  }
  for (const auto& [name, value] : request.headers) {
    // libcurl reads "Name:" as "do not send Name"; an empty header (Swift's way of removing an
    // ACL or metadata) is written "Name;".
    fetch->request_headers = curl_slist_append(
        fetch->request_headers,
        (value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value)).c_str());
  }
  // libcurl would add "Expect: 100-continue" and "Accept: */*": the origin sees what the client sent.
  fetch->request_headers = curl_slist_append(fetch->request_headers, "Accept:");
  fetch->request_headers = curl_slist_append(fetch->request_headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, fetch->request_headers);

  const FetchId id = fetch->id;
  Fetch* started = fetch.get();
  fetches_.emplace(id, std::move(fetch));
  if (in_callback_ == 0) {
    started->added = true;
    curl_multi_add_handle(Multi(multi_), easy);
  } else {
    event_active(sweeper_, EV_TIMEOUT, 0);
  }
  return id;
}

void OriginClient::Cancel(FetchId id) {
  auto it = fetches_.find(id);
  if (it == fetches_.end()) return;
  it->second->cancelled = true;
  it->second->observer = nullptr;
  if (in_callback_ == 0) {
    Remove(it->second.get());
  } else {
    // libcurl forbids removing a handle from inside its callbacks.
    event_active(sweeper_, EV_TIMEOUT, 0);
  }
}

void OriginClient::Sweep() {
  std::vector<Fetch*> cancelled;
  for (auto& [id, fetch] : fetches_) {
    if (fetch->cancelled) {
      cancelled.push_back(fetch.get());
    } else if (!fetch->added) {
      fetch->added = true;
      curl_multi_add_handle(Multi(multi_), fetch->easy);
    }
  }
  for (Fetch* fetch : cancelled) Remove(fetch);
}

// Sending and receiving are paused independently; libcurl takes both in one mask.
void OriginClient::ApplyPause(Fetch* fetch) {
  curl_easy_pause(fetch->easy,
                  (fetch->receive_paused ? CURLPAUSE_RECV : 0) | (fetch->send_paused ? CURLPAUSE_SEND : 0));
}

void OriginClient::Pause(FetchId id) {
  if (auto it = fetches_.find(id); it != fetches_.end()) {
    it->second->receive_paused = true;
    ApplyPause(it->second.get());
  }
}

void OriginClient::Resume(FetchId id) {
  if (auto it = fetches_.find(id); it != fetches_.end()) {
    it->second->receive_paused = false;
    ApplyPause(it->second.get());
  }
  CollectFinished();
}

void OriginClient::ResumeUpload(FetchId id) {
  if (auto it = fetches_.find(id); it != fetches_.end() && it->second->send_paused) {
    it->second->send_paused = false;
    ApplyPause(it->second.get());
  }
  CollectFinished();
}

size_t OriginClient::OnUpload(char* buffer, size_t size, size_t count, void* arg) {
  auto* fetch = static_cast<Fetch*>(arg);
  if (fetch->cancelled || fetch->upload == nullptr) return CURL_READFUNC_ABORT;
  ++fetch->client->in_callback_;
  const size_t n = fetch->upload->ReadBody(buffer, size * count);
  --fetch->client->in_callback_;
  if (fetch->cancelled) return CURL_READFUNC_ABORT;
  if (n == UploadSource::kPause) {
    fetch->send_paused = true;
    return CURL_READFUNC_PAUSE;
  }
  return n;
}

size_t OriginClient::OnHeaderLine(char* data, size_t size, size_t count, void* arg) {
  auto* fetch = static_cast<Fetch*>(arg);
  const std::string_view line(data, size * count);
  if (fetch->cancelled) return 0;
  if (line.starts_with("HTTP/")) {  // a new response (after a 1xx, or the first)
    fetch->header_block.clear();
    fetch->spans.clear();
    return line.size();
  }
  if (Trim(line).empty()) {
    long status = 0;
    curl_easy_getinfo(fetch->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 100 && status != 101) {
      fetch->views.clear();
      size_t offset = 0;
      for (const auto& [name_length, line_length] : fetch->spans) {
        const std::string_view stored(fetch->header_block.data() + offset, line_length);
        fetch->views.emplace_back(stored.substr(0, name_length), Trim(stored.substr(name_length + 1)));
        offset += line_length;
      }
      ++fetch->client->in_callback_;
      if (status >= 200) {
        fetch->observer->OnHeaders(static_cast<int>(status), fetch->views);
      } else {
        fetch->observer->OnInterim(static_cast<int>(status), fetch->views);
      }
      --fetch->client->in_callback_;
    }
    return line.size();
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    fetch->spans.emplace_back(colon, line.size());
    fetch->header_block.append(line);
  }
  return line.size();
}

size_t OriginClient::OnBody(char* data, size_t size, size_t count, void* arg) {
  auto* fetch = static_cast<Fetch*>(arg);
  if (fetch->cancelled) return 0;  // aborts the transfer; CollectFinished removes it
  ++fetch->client->in_callback_;
  fetch->observer->OnData(std::string_view(data, size * count));
  --fetch->client->in_callback_;
  return fetch->cancelled ? 0 : size * count;
}

int OriginClient::OnSocket(void*, int socket, int what, void* arg, void* socket_context) {
  auto* client = static_cast<OriginClient*>(arg);
  auto* context = static_cast<SocketContext*>(socket_context);
  if (what == CURL_POLL_REMOVE) {
    if (context != nullptr) {
      event_free(context->ev);
      curl_multi_assign(Multi(client->multi_), socket, nullptr);
      client->sockets_.erase(socket);
    }
    return 0;
  }
  if (context == nullptr) {
    auto owned = std::make_unique<SocketContext>();
    context = owned.get();
    client->sockets_[socket] = std::move(owned);
    curl_multi_assign(Multi(client->multi_), socket, context);
  } else {
    event_free(context->ev);
  }
  const short events = static_cast<short>(((what & CURL_POLL_IN) ? EV_READ : 0) |
                                          ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
  context->ev = event_new(client->loop_, socket, events, &OnSocketEvent, client);
  event_add(context->ev, nullptr);
  return 0;
}

int OriginClient::OnTimer(void*, long timeout_ms, void* arg) {
  auto* client = static_cast<OriginClient*>(arg);
  if (timeout_ms < 0) {
    evtimer_del(client->timer_);
  } else {
    const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(client->timer_, &tv);
  }
  return 0;
}

void OriginClient::OnSocketEvent(int socket, short events, void* arg) {
  const int curl_events =
      ((events & EV_READ) ? CURL_CSELECT_IN : 0) | ((events & EV_WRITE) ? CURL_CSELECT_OUT : 0);
  static_cast<OriginClient*>(arg)->Drive(socket, curl_events);
}

void OriginClient::OnTimerEvent(int, short, void* arg) {
  static_cast<OriginClient*>(arg)->Drive(CURL_SOCKET_TIMEOUT, 0);
}

void OriginClient::Drive(int socket, int curl_events) {
  int running = 0;
  curl_multi_socket_action(Multi(multi_), socket, curl_events, &running);
  CollectFinished();
}

void OriginClient::CollectFinished() {
  int pending = 0;
  while (CURLMsg* message = curl_multi_info_read(Multi(multi_), &pending)) {
    if (message->msg != CURLMSG_DONE) continue;
    Fetch* fetch = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &fetch);
    const CURLcode result = message->data.result;
    FetchObserver* observer = fetch->cancelled ? nullptr : fetch->observer;
    const absl::Status status = ToStatus(result, fetch->error);
    Remove(fetch);
    if (observer != nullptr) observer->OnComplete(status);
  }
}

void OriginClient::Remove(Fetch* fetch) {
  if (fetch->added) curl_multi_remove_handle(Multi(multi_), fetch->easy);
  fetches_.erase(fetch->id);
}

}  // namespace edge::origin
