#include "edge/writes.h"

#include <event2/event.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "vhost-config/path_mapping.h"

namespace edge {

bool IsWriteMethod(std::string_view method) {
  return method == "PUT" || method == "POST" || method == "DELETE" || method == "COPY";
}

BodyPump::BodyPump(http::Exchange& exchange)
    : exchange_(&exchange),
      resume_client_(event_new(exchange.loop(), -1, 0, &BodyPump::OnResumeClient, this)) {}

BodyPump::~BodyPump() {
  event_free(resume_client_);
}

void BodyPump::Attach(origin::OriginClient& client, origin::OriginClient::FetchId id) {
  client_ = &client;
  id_ = id;
}

void BodyPump::OnBody(std::string_view data) {
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {  // reuse the space already sent
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(data);
  if (buffer_.size() - offset_ >= kMaxBuffered && exchange_ != nullptr && !client_paused_) {
    client_paused_ = true;
    exchange_->PauseBody();
  }
  if (upload_waiting_ && client_ != nullptr) {
    upload_waiting_ = false;
    client_->ResumeUpload(id_);
  }
}

void BodyPump::OnBodyEnd() {
  ended_ = true;
  if (upload_waiting_ && client_ != nullptr) {
    upload_waiting_ = false;
    client_->ResumeUpload(id_);
  }
}

size_t BodyPump::ReadBody(char* out, size_t size) {
  const size_t available = buffer_.size() - offset_;
  if (available == 0) {
    if (ended_) return 0;
    upload_waiting_ = true;
    return kPause;
  }
  const size_t n = std::min(size, available);
  std::memcpy(out, buffer_.data() + offset_, n);
  offset_ += n;
  if (client_paused_ && buffer_.size() - offset_ < kMaxBuffered / 2) {
    // Resuming the client reads its socket at once, which feeds OnBody: not from inside libcurl.
    event_active(resume_client_, EV_TIMEOUT, 0);
  }
  return n;
}

void BodyPump::OnResumeClient(int, short, void* self) {
  auto* pump = static_cast<BodyPump*>(self);
  if (!pump->client_paused_ || pump->exchange_ == nullptr) return;
  pump->client_paused_ = false;
  pump->exchange_->ResumeBody();
}

WriteIntent WriteIntent::Of(const http::Request& request, std::string_view query) {
  WriteIntent intent;
  intent.method = std::string(request.method);
  intent.bulk_delete = vhost::QueryHasParameter(query, "bulk-delete");
  intent.result_streams = intent.bulk_delete || vhost::QueryHasParameter(query, "extract-archive");
  if (intent.method == "COPY") {
    absl::StatusOr<std::string> destination = vhost::PercentDecode(request.Find("destination"), false);
    if (destination.ok()) intent.destination = std::move(*destination);
    intent.destination_account = std::string(request.Find("destination-account"));
  }
  std::array<std::string_view, http::kMaxHeaders> names;
  for (size_t i = 0; i < request.header_count; ++i) names[i] = request.headers[i].name;
  intent.settings = bus::SettingHeaders(std::span(names.data(), request.header_count));
  return intent;
}

void WriteIntent::Read(std::string_view data) {
  if (!bulk_delete || paths_cut) return;
  if (paths.size() + data.size() > kMaxPaths) {
    paths_cut = true;
    std::string().swap(paths);
    return;
  }
  paths.append(data);
}

std::string PublicStorageUrl(std::string_view storage_url, std::string_view host, bool tls) {
  size_t authority = 0;
  if (storage_url.starts_with("http://")) {
    authority = 7;
  } else if (storage_url.starts_with("https://")) {
    authority = 8;
  } else {
    return std::string(storage_url);
  }
  const size_t path = std::min(storage_url.find('/', authority), storage_url.size());
  std::string url = tls ? "https://" : "http://";
  url.append(host);
  url.append(storage_url.substr(path));
  return url;
}

std::optional<bus::WriteEvent> MakeWriteEvent(
    std::string_view node, std::string_view cluster, const WriteIntent& intent,
    const vhost::OriginTarget& target, int status,
    std::span<const std::pair<std::string_view, std::string_view>> response_headers, int64_t now_ms) {
  if ((status != 0 && (status < 200 || status >= 300)) || target.pass || target.account.empty())
    return std::nullopt;
  if (intent.method == "COPY" && intent.destination.empty()) return std::nullopt;
  bus::WriteEvent event;
  event.node = std::string(node);
  event.method = intent.method;
  event.cluster = std::string(cluster);
  event.account = target.account;
  event.container = target.container;
  event.object = target.listing ? "" : target.name;
  event.query = target.query;
  event.status = status;
  event.time_ms = now_ms;
  for (const auto& [name, value] : response_headers) {
    if (http::EqualsIgnoreCase(name, "x-trans-id")) event.transaction = std::string(value);
  }
  event.destination = intent.destination;
  event.destination_account = intent.destination_account;
  // Settings belong to an account or a container; an object's metadata is the object itself.
  if (event.object.empty()) event.settings = intent.settings;
  if (intent.bulk_delete && !intent.paths_cut) event.paths = intent.paths;
  return event;
}

}  // namespace edge
