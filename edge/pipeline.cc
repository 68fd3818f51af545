#include "edge/pipeline.h"

#include <event2/event.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "cache/dependencies.h"
#include "edge/http_rules.h"
#include "edge/https_rules.h"
#include "edge/slices.h"
#include "edge/write_events.h"
#include "edge/writes.h"
#include "purge-daemon/planner.h"
#include "vhost-config/http_date.h"
#include "vhost-config/path_mapping.h"

namespace edge {

namespace {

using HeaderViews = std::span<const std::pair<std::string_view, std::string_view>>;
using HeaderList = absl::InlinedVector<http::HeaderField, 32>;

// The tenant's HSTS value, on its HTTPS responses (in place of any the origin sent).
constexpr std::string_view kHsts = "Strict-Transport-Security";

// A relayed body waits in memory up to this much before the origin transfer is paused.
constexpr size_t kRelayHighWater = 256 * 1024;
constexpr uint64_t kUnbounded = UINT64_MAX;
// A client streaming a fill has at most about this much queued beyond what it has taken.
constexpr size_t kSpoolQueueAhead = 1 << 20;

// Credentials, a signed URL, or (an http site's) cookies: the answer is this client's alone. An
// http site's Authorization is not among them: its answer may be shared when it says so (RFC 9111
// 3.5, vhost::Decide); for Swift, Authorization is a credential.
bool CarriesCredentials(const http::Request& request, const vhost::Tenant& tenant,
                        const vhost::OriginTarget& target) {
  return (tenant.origin.kind != vhost::OriginKind::kHttp && !request.Find("authorization").empty()) ||
         !request.Find("x-auth-token").empty() || !request.Find("x-storage-token").empty() ||
         vhost::QueryHasParameter(target.query, "temp_url_sig") ||
         vhost::QueryHasParameter(target.query, "temp_url_expires") ||
         (tenant.origin.kind == vhost::OriginKind::kHttp && !request.Find("cookie").empty());
}

// Request headers an http site's shared fetch sends on: the ones it may negotiate on (Vary), not
// the ones that are the edge's business (conditionals, ranges) or a client's alone.
bool ForwardedToSite(std::string_view name, std::string_view connection) {
  for (std::string_view own :
       {"host", "cookie", "authorization", "range", "if-range", "if-match", "if-none-match",
        "if-modified-since", "if-unmodified-since", "cache-control", "pragma", "content-length", "expect"}) {
    if (http::EqualsIgnoreCase(name, own)) return false;
  }
  return !IsHopByHop(name, connection);
}

// Request Cache-Control (RFC 9111 5.2.1, every line of it), honoured for http tenants; Swift
// tenants protect their origin from reloads, as CDNs do. Pragma: no-cache stands for it when the
// request has no Cache-Control (RFC 9111 5.4).
vhost::CacheDirectives ParseRequestDirectives(const http::Request& request) {
  vhost::CacheDirectives d;
  bool any = false;
  for (size_t i = 0; i < request.header_count; ++i) {
    if (!http::EqualsIgnoreCase(request.headers[i].name, "cache-control")) continue;
    vhost::ParseCacheControl(request.headers[i].value, &d);
    any = true;
  }
  if (!any && request.Find("pragma").find("no-cache") != std::string_view::npos) d.no_cache = true;
  return d;
}

std::string_view FindHeader(HeaderViews headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (http::EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

std::optional<uint64_t> ParseLength(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The Range that chooses a request's slices: none for a HEAD, answered as a whole GET would be.
std::string_view SlicedRange(const http::Request& request) {
  return request.method == "HEAD" ? std::string_view() : request.Find("range");
}

// Sends [first, first + length) of a hit's body, from memory or from its file.
absl::Status SendBody(http::Exchange& exchange, const cache::Hit& hit, uint64_t first, uint64_t length) {
  if (const std::optional<std::string_view> body = hit.body_in_memory()) {
    exchange.Write(body->substr(first, length));
    return absl::OkStatus();
  }
  return exchange.SendFile(hit.fd(), hit.body_offset() + first, length);
}

// Whether the stale entry may answer for an origin that failed (RFC 5861 stale-if-error).
bool UsableOnError(const cache::Hit& hit, int64_t now) {
  return vhost::UsableOnError(FreshnessOf(hit), now);
}

AccessRecord Record(const http::Request& request, std::string_view tenant, absl::Time start) {
  AccessRecord record;
  record.start = start;
  record.tenant = tenant;
  record.host = request.host;
  record.method = request.method;
  record.target = request.target;
  return record;
}

// The byte window of an entry's body to send.
struct Window {
  uint64_t first = 0;
  uint64_t end = kUnbounded;
};

// What an answer is made from: a stored entry, or one arriving in a fill's spool file.
struct EntryBody {
  const cache::EntryMetadata* meta = nullptr;
  std::optional<uint64_t> length;   // unknown while a body of unknown length arrives
  const cache::Hit* hit = nullptr;  // a stored entry: its body, from memory or its file
  int spool_fd = -1;                // else the spool's, once the whole body is in it
  uint64_t spool_offset = 0;
  // A sliced object: the caller sends a multipart answer's parts (Answer::parts), slice by slice.
  bool parts_later = false;

  // Whether any part of the body can be sent now (a multipart answer sends its parts in one go).
  bool whole() const { return hit != nullptr || spool_fd >= 0; }
  bool parts_now() const { return whole() && !parts_later; }
  absl::Status Send(http::Exchange& exchange, uint64_t first, uint64_t n) const {
    if (hit != nullptr) return SendBody(exchange, *hit, first, n);
    return exchange.SendFile(spool_fd, spool_offset + first, n);
  }
};

// What RespondEntry leaves to its caller.
struct Answer {
  std::optional<Window> window;  // the body window still to send; none: nothing more to send
  uint64_t bytes = 0;            // body bytes RespondEntry queued itself (a multipart answer)
  absl::Status sent;             // not OK: a part could not be read after the head left: abort
  // A multipart answer whose parts the caller sends (EntryBody::parts_later): the head is out.
  struct Parts {
    MultipartFraming framing;
    ByteRanges ranges;
  };
  std::optional<Parts> parts;
};

// A boundary no body holds, in practice (RFC 2046 5.1.1): random, per answer.
std::string_view NewBoundary(char (&out)[17]) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(random()));
  return std::string_view(out, 16);
}

// Answers from a stored (or arriving) entry: preconditions (304, 412), byte ranges (206, as
// multipart/byteranges for several; 416) or the whole body. Returns the body window still to
// send (none when nothing more is to be sent: no body, HEAD, or a multipart body already queued);
// either way the caller finishes the exchange, after logging it (finishing may start the next
// pipelined request, whose head replaces this one's).
Answer RespondEntry(http::Exchange& exchange, const EntryBody& entry, CacheLabel label, int64_t now,
                    size_t max_ranges, std::string_view hsts, int* status) {
  const cache::EntryMetadata& meta = *entry.meta;
  const http::Request& request = exchange.request();
  char age[24];
  const int64_t age_seconds = std::max<int64_t>(0, now - meta.stored_at);
  const std::string_view age_text(age, std::to_chars(age, age + sizeof(age), age_seconds).ptr - age);
  std::string_view date, content_type;
  for (const auto& [name, value] : meta.headers) {
    if (http::EqualsIgnoreCase(name, "date")) date = value;
    if (http::EqualsIgnoreCase(name, "content-type")) content_type = value;
  }
  // An origin that sent no Date: the entry's says when it was made (RFC 9110 6.6.1, a cache adds
  // the Date the origin left out), on a 200 and on a 304 alike (15.4.5).
  char date_text[vhost::kHttpDateLength + 1];
  const bool own_date = date.empty();
  if (own_date) date = vhost::FormatHttpDate(absl::FromUnixSeconds(meta.stored_at), date_text);
  HeaderList headers;
  enum class Kind { kWhole, kNotModified, kMultipart };
  auto add_entry_headers = [&](Kind kind) {
    for (const auto& [name, value] : meta.headers) {
      if (kind == Kind::kNotModified && !IsNotModifiedHeader(name)) continue;
      if (kind == Kind::kMultipart && http::EqualsIgnoreCase(name, "content-type")) continue;
      if (!hsts.empty() && http::EqualsIgnoreCase(name, kHsts)) continue;  // the tenant's instead
      headers.emplace_back(name, value);
    }
    if (own_date) headers.emplace_back("Date", date);
    headers.emplace_back("Age", age_text);
    headers.emplace_back("X-Cache", CacheLabelText(label));
    if (!hsts.empty()) headers.emplace_back(kHsts, hsts);
  };

  Answer answer;
  *status = meta.status;
  if (meta.status >= 200 && meta.status < 300) {
    const ConditionalHeaders conditional{request.Find("if-match"), request.Find("if-none-match"),
                                         request.Find("if-modified-since"),
                                         request.Find("if-unmodified-since")};
    switch (EvaluatePreconditions(conditional, {meta.etag, meta.last_modified, date})) {
      case Precondition::kFailed:
        *status = 412;
        headers.emplace_back("X-Cache", CacheLabelText(label));
        headers.emplace_back("Content-Type", "text/plain");
        if (!hsts.empty()) headers.emplace_back(kHsts, hsts);
        exchange.Respond(412, headers, 20);
        exchange.Write("precondition failed\n");
        return answer;
      case Precondition::kNotModified:
        *status = 304;
        add_entry_headers(Kind::kNotModified);
        exchange.Respond(304, headers, std::nullopt);
        return answer;
      case Precondition::kProceed:
        break;
    }
  }
  const std::string_view range = request.Find("range");
  // A HEAD is answered as a GET without Range would be (200, the whole length), as Swift does.
  if (meta.status == 200 && entry.length && !range.empty() && request.method != "HEAD" &&
      IfRangeMatches(request.Find("if-range"), meta.etag, meta.last_modified)) {
    const uint64_t length = *entry.length;
    ByteRanges ranges;
    char content_range[64];
    switch (EvaluateRanges(range, length, max_ranges, &ranges)) {
      case RangeResult::kUnsatisfiable: {
        const int n = std::snprintf(content_range, sizeof(content_range), "bytes */%llu",
                                    static_cast<unsigned long long>(length));
        *status = 416;
        HeaderList fields = {{"Content-Range", std::string_view(content_range, n)},
                             {"X-Cache", CacheLabelText(label)},
                             {"Content-Type", "text/plain"}};
        if (!hsts.empty()) fields.emplace_back(kHsts, hsts);
        exchange.Respond(416, fields, 22);
        exchange.Write("range not satisfiable\n");
        return answer;
      }
      case RangeResult::kPartial:
        if (ranges.size() == 1) {
          const ByteRange& r = ranges.front();
          const int n =
              std::snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%llu",
                            static_cast<unsigned long long>(r.first), static_cast<unsigned long long>(r.last),
                            static_cast<unsigned long long>(length));
          add_entry_headers(Kind::kWhole);
          headers.emplace_back("Content-Range", std::string_view(content_range, n));
          *status = 206;
          exchange.Respond(206, headers, r.length());
          answer.window = Window{r.first, r.last + 1};
          return answer;
        }
        // Several ranges while the body still arrives would have to wait for their parts in
        // order: the whole body is a valid answer meanwhile (RFC 9110 14.2 lets a server ignore
        // Range), and the next request finds the entry stored.
        if (entry.whole() || entry.parts_later) {
          char boundary_text[17];
          const std::string_view boundary = NewBoundary(boundary_text);
          const MultipartFraming framing = FrameByteRanges(ranges, length, content_type, boundary);
          const std::string multipart_type = "multipart/byteranges; boundary=" + std::string(boundary);
          add_entry_headers(Kind::kMultipart);
          headers.emplace_back("Content-Type", multipart_type);
          *status = 206;
          exchange.Respond(206, headers, framing.content_length);
          if (!entry.parts_now()) {
            answer.parts = Answer::Parts{framing, ranges};
            return answer;
          }
          for (size_t i = 0; i < ranges.size(); ++i) {
            exchange.Write(framing.part_heads[i]);
            answer.sent = entry.Send(exchange, ranges[i].first, ranges[i].length());
            if (!answer.sent.ok()) return answer;
          }
          exchange.Write(framing.close);
          answer.bytes = framing.content_length;
          return answer;
        }
        break;
      case RangeResult::kWhole:
        break;
    }
  }
  add_entry_headers(Kind::kWhole);
  exchange.Respond(meta.status, headers, entry.length);
  if (exchange.head_only()) return answer;
  answer.window = Window{0, entry.length.value_or(kUnbounded)};
  return answer;
}

}  // namespace

// What routing decided about a request.
struct Pipeline::Route {
  std::shared_ptr<const vhost::TenantTable> tenants;  // keeps `tenant` alive
  const vhost::Tenant* tenant = nullptr;
  vhost::OriginTarget target;
  cache::Key key;         // with the request's Vary values when the object is known to vary
  cache::Key base_key;    // without them
  std::string_view hsts;  // the tenant's Strict-Transport-Security, over TLS; empty: none
};

struct Pipeline::Worker {
  size_t index = 0;
  event_base* loop = nullptr;
  std::unique_ptr<origin::OriginClient> origin;
  RunningFetches running;
  std::shared_ptr<const vhost::TenantTable> tenants;
  uint64_t tenants_version = 0;
  absl::flat_hash_map<ClientStream*, std::unique_ptr<ClientStream>> streams;
  std::vector<std::unique_ptr<ClientStream>> retired;
  event* reaper = nullptr;  // deletes retired streams outside their own callbacks
  // A hit's route comes from here and goes back, so that its strings keep their capacity and a
  // hit maps and keys its request without allocating. A route that goes on (a miss) is not back.
  Route spare_route;

  FetchLoop fetch_loop(Metrics& metrics) { return {*origin, running, metrics, index, loop}; }
};

// A write's answer as the origin gave it, held until the other edges have applied its purge.
struct HeldAnswer {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<uint64_t> length;
  std::string body;
  std::optional<absl::Status> end;  // the origin's answer is over
};

// Where the confirmer's thread leaves a write's outcome for its stream, and wakes the stream's
// loop; `wake` is null once the stream is gone.
struct WriteConfirmation {
  absl::Mutex mu;
  event* wake ABSL_GUARDED_BY(mu) = nullptr;
  bus::ConfirmResult result ABSL_GUARDED_BY(mu);
};

// A response that cannot be given at once: it waits on a shared fetch and streams the entry as it
// arrives, or relays an origin response that is not stored. Lives on its exchange's worker.
class ClientStream : public http::Exchange::Observer,
                     public SharedFetch::Relay,
                     public origin::FetchObserver {
 public:
  ClientStream(Pipeline& pipeline, Pipeline::Worker& worker, http::Exchange& exchange, Pipeline::Route route,
               absl::Time start)
      : pipeline_(pipeline), worker_(worker), exchange_(&exchange), route_(std::move(route)), start_(start) {
    exchange.SetObserver(this);
  }

  ~ClientStream() override {
    DropConfirmation();
    StopWaiting();
    if (own_fetch_ != 0) worker_.origin->Cancel(own_fetch_);
  }

  // Waits on `fetch`; `own_stale` is this client's stale entry (served on origin errors).
  void Wait(std::shared_ptr<SharedFetch> fetch, bool leader, std::optional<cache::Hit> own_stale) {
    fetch_ = std::move(fetch);
    leader_ = leader;
    own_stale_ = std::move(own_stale);
    wake_ = event_new(worker_.loop, -1, 0, &ClientStream::OnWakeEvent, this);
    fetch_->AddWaiter(wake_);
  }

  // A large object from its slices, the first found stored (`slice`).
  void ServeSliced(cache::Hit slice, CacheLabel label) {
    label_ = label;
    const uint64_t first = SliceOf(slice.metadata())->first;
    BeginSliced(std::make_shared<const cache::EntryMetadata>(slice.metadata()), first);
  }

  // Fetches alone and relays the origin's answer; a request body streams through.
  void Relay() {
    origin::FetchRequest request;
    const http::Request& r = exchange_->request();
    request.method = std::string(r.method);
    request.url = route_.target.url;
    const std::string_view connection = r.Find("connection");
    for (size_t i = 0; i < r.header_count; ++i) {
      const http::Header& h = r.headers[i];
      if (IsHopByHop(h.name, connection) || http::EqualsIgnoreCase(h.name, "host") ||
          http::EqualsIgnoreCase(h.name, "expect") || http::EqualsIgnoreCase(h.name, "content-length") ||
          http::EqualsIgnoreCase(h.name, kEdgeNodeHeader)) {
        continue;
      }
      request.headers.emplace_back(h.name, h.value);
    }
    // Tells the Swift middleware that this edge waits for the edges to apply the write's purge,
    // so the middleware does not wait too. Only an edge sets it: a client's is dropped above.
    if (IsWriteMethod(r.method) && pipeline_.confirmer_ != nullptr) {
      request.headers.emplace_back(kEdgeNodeHeader, pipeline_.options_.node_id);
    }
    if (r.body != http::BodyKind::kNone) {
      pump_ = std::make_unique<BodyPump>(*exchange_);
      request.body = pump_.get();
      if (r.body == http::BodyKind::kContentLength) request.body_length = r.content_length;
    }
    if (IsWriteMethod(r.method)) write_ = WriteIntent::Of(r, route_.target.query);
    Fetch(request);
  }

  // Sends `request` with `body` (a whole body the edge made) and relays the answer.
  void Relay(origin::FetchRequest request, std::string_view body) {
    pump_ = std::make_unique<BodyPump>(*exchange_);
    pump_->OnBody(body);
    pump_->OnBodyEnd();
    own_body_ = true;
    request.body = pump_.get();
    request.body_length = body.size();
    Fetch(request);
  }

  // http::Exchange::Observer
  void OnBody(std::string_view data) override {
    if (pump_ && !own_body_) pump_->OnBody(data);
    if (write_) write_->Read(data);
  }
  void OnBodyEnd() override {
    if (pump_ && !own_body_) pump_->OnBodyEnd();
  }
  void OnWritable() override {
    if (tailing_) {
      if (sliced_ && !fetch_) {
        SendSlices();  // from stored slices
      } else {
        OnWake();
      }
      return;
    }
    if (!relay_paused_ || held_) return;
    relay_paused_ = false;
    if (own_fetch_ != 0) {
      worker_.origin->Resume(own_fetch_);
    } else if (fetch_) {
      fetch_->ResumeOrigin();
    }
  }
  void OnAbort() override {
    if (status_ != 0) pipeline_.metrics_.CountCut(worker_.index, CutCause::kClient);  // mid-response
    Log();  // while the request's views are still valid
    exchange_ = nullptr;
    // A write whose whole request went out may still happen at the origin: its answer is awaited
    // (without a client) so that it invalidates all the same.
    if (write_ && own_fetch_ != 0 && (!pump_ || pump_->complete())) return;
    Retire();
  }

  // SharedFetch::Relay, and the own fetch's observer.
  void OnRelayHead(int status, HeaderViews headers) override {
    // A bulk operation's 2xx comes first and its work during the body: it is planned at the end.
    const bool at_end = write_ && write_->result_streams;
    const bool confirming = !at_end && CommitWrite(status, headers);
    if (exchange_ == nullptr) {
      if (at_end) CommitWrite(status, headers);  // cut short: what it did so far may be anything
      Retire();  // a write whose client left: its answer was all it waited for
      return;
    }
    if (status >= 500 && StaleAnswersError()) {
      ServeOwnStale(CacheLabel::kStale, nullptr);
      return;
    }
    label_ = CacheLabel::kBypass;
    status_ = status;
    HeaderList out;
    const std::string_view connection = FindHeader(headers, "connection");
    const bool swift_auth = route_.target.pass && route_.tenant->origin.kind == vhost::OriginKind::kSwiftApi;
    std::string storage_url;
    for (const auto& [name, value] : headers) {
      if (IsHopByHop(name, connection) || http::EqualsIgnoreCase(name, "content-length") ||
          http::EqualsIgnoreCase(name, "x-cache") ||
          (!route_.hsts.empty() && http::EqualsIgnoreCase(name, kHsts))) {
        continue;
      }
      if (swift_auth && http::EqualsIgnoreCase(name, "x-storage-url")) {
        storage_url = PublicStorageUrl(value, exchange_->request().host, exchange_->tls());
        out.emplace_back(name, storage_url);
        continue;
      }
      out.emplace_back(name, value);
    }
    if (FindHeader(headers, "age").empty()) out.emplace_back("Age", "0");
    out.emplace_back("X-Cache", CacheLabelText(label_));
    if (!route_.hsts.empty()) out.emplace_back(kHsts, route_.hsts);
    const std::optional<uint64_t> length = ParseLength(FindHeader(headers, "content-length"));
    if (confirming) {
      // Read-your-writes: the 2xx goes out once the other edges have applied the write's purge;
      // until then its head and body wait here (the body, bounded, pauses the origin).
      held_.emplace();
      held_->status = status;
      held_->length = length;
      for (const auto& [name, value] : out) held_->headers.emplace_back(name, value);
      return;
    }
    exchange_->Respond(status, out, length);
    // A HEAD answered from a shared GET: the head is all it wants; finishing drops the body.
    if (exchange_->head_only() && own_fetch_ == 0) Finish();
  }
  void OnRelayInterim(int status, HeaderViews headers) override {
    if (exchange_ == nullptr) return;
    HeaderList out;
    for (const auto& [name, value] : headers) {
      if (!IsHopByHop(name)) out.emplace_back(name, value);
    }
    exchange_->SendInterim(status, out);
  }
  void OnRelayData(std::string_view data) override {
    if (exchange_ == nullptr) return;
    size_t buffered;
    if (held_) {
      held_->body.append(data);
      buffered = held_->body.size();
    } else {
      exchange_->Write(data);
      buffered = exchange_->output_buffered();
    }
    bytes_ += data.size();
    if (!relay_paused_ && buffered > kRelayHighWater) {
      relay_paused_ = true;
      if (own_fetch_ != 0) {
        worker_.origin->Pause(own_fetch_);
      } else if (fetch_) {
        fetch_->PauseOrigin();
      }
    }
  }
  void OnRelayEnd(absl::Status status) override {
    if (exchange_ == nullptr) return;
    if (held_) {
      held_->end = std::move(status);  // answered once confirmed
      return;
    }
    if (status.ok()) {
      Finish();
    } else if (status_ != 0) {
      Abort(CutCause::kOrigin);  // the client sees a truncated response, never a wrong one
    } else {
      FailOrServeStale(status);
    }
  }

  // origin::FetchObserver (the own fetch).
  void OnHeaders(int status, HeaderViews headers) override {
    origin_time_ = pipeline_.clock_() - relay_started_;
    pipeline_.metrics_.ObserveOriginLatency(worker_.index, origin_time_);
    OnRelayHead(status, headers);
  }
  void OnInterim(int status, HeaderViews headers) override { OnRelayInterim(status, headers); }
  void OnData(std::string_view data) override { OnRelayData(data); }
  void OnComplete(absl::Status status) override {
    own_fetch_ = 0;
    if (!status.ok() && status_ == 0) pipeline_.metrics_.CountOriginError(worker_.index);
    // No answer: the write may have happened (status 0). A bulk operation's answer began with its status.
    CommitWrite(write_ && write_->result_streams ? status_ : 0, {});
    if (exchange_ == nullptr) {
      Retire();
      return;
    }
    OnRelayEnd(status);
  }

 private:
  static void OnWakeEvent(evutil_socket_t, short, void* self) { static_cast<ClientStream*>(self)->OnWake(); }

  // The write's outcome is known (or never will be, status 0): invalidate and publish, once.
  // True when its answer is to wait for the other edges (OnConfirmed).
  bool CommitWrite(int status, HeaderViews headers) {
    if (!write_ || write_committed_) return false;
    write_committed_ = true;
    if (exchange_ == nullptr || status == 0 || write_->result_streams) {
      pipeline_.CommitWrite(route_, *write_, status, headers, nullptr);
      return false;
    }
    confirmation_ = std::make_shared<WriteConfirmation>();
    confirmation_->wake = event_new(worker_.loop, -1, 0, &ClientStream::OnConfirmedEvent, this);
    auto done = [confirmation = confirmation_](const bus::ConfirmResult& result) {
      absl::MutexLock lock(&confirmation->mu);
      confirmation->result = result;
      if (confirmation->wake != nullptr) event_active(confirmation->wake, EV_TIMEOUT, 0);
    };
    if (pipeline_.CommitWrite(route_, *write_, status, headers, std::move(done))) return true;
    DropConfirmation();
    return false;
  }

  static void OnConfirmedEvent(evutil_socket_t, short, void* self) {
    static_cast<ClientStream*>(self)->OnConfirmed();
  }
  void OnConfirmed() {
    bus::ConfirmResult result;
    {
      absl::MutexLock lock(&confirmation_->mu);
      result = confirmation_->result;
    }
    pipeline_.metrics_.ObserveConfirmation(worker_.index,
                                           !result.appended     ? ConfirmOutcome::kSpooled
                                           : result.pending > 0 ? ConfirmOutcome::kTimedOut
                                                                : ConfirmOutcome::kConfirmed,
                                           result.waited);
    if (exchange_ == nullptr || !held_) return;
    HeldAnswer held = std::move(*held_);
    held_.reset();
    HeaderList out;
    for (const auto& [name, value] : held.headers) out.emplace_back(name, value);
    // How many edges applied the purge; any that may not have yet (the wait timed out), or that
    // nobody could be told (the purge log was unreachable: the event waits in the spool).
    const std::string confirmed = std::to_string(result.confirmed);
    const std::string pending = std::to_string(result.pending);
    if (result.appended) out.emplace_back("X-Purge-Confirmed", confirmed);
    if (!result.appended) {
      out.emplace_back("X-Purge-Pending", "spooled");
    } else if (result.pending > 0) {
      out.emplace_back("X-Purge-Pending", pending);
    }
    exchange_->Respond(held.status, out, held.length);
    if (!held.body.empty()) exchange_->Write(held.body);
    if (held.end) {
      OnRelayEnd(std::move(*held.end));
    } else {
      OnWritable();  // resumes an origin paused while the answer was held
    }
  }
  void DropConfirmation() {
    if (!confirmation_) return;
    event* wake;
    {
      absl::MutexLock lock(&confirmation_->mu);
      wake = std::exchange(confirmation_->wake, nullptr);
    }
    event_free(wake);
    confirmation_.reset();
  }

  void Fetch(const origin::FetchRequest& request) {
    label_ = CacheLabel::kBypass;
    relay_started_ = pipeline_.clock_();
    own_fetch_ = worker_.origin->Start(request, this);
    if (pump_) pump_->Attach(*worker_.origin, own_fetch_);
  }

  int64_t Now() const { return absl::ToUnixSeconds(pipeline_.clock_()); }
  // This client's stale entry may answer for an origin in error (stale-if-error).
  bool StaleAnswersError() const { return own_stale_ && UsableOnError(*own_stale_, Now()); }

  void OnWake() {
    if (exchange_ == nullptr || !fetch_) return;
    const SharedFetch::View view = fetch_->Snapshot();
    if (sliced_) {
      OnSliceWake(view);
      return;
    }
    switch (view.outcome) {
      case SharedFetch::Outcome::kPending:
        return;
      case SharedFetch::Outcome::kStreaming:
        ServeSpool(view);
        return;
      case SharedFetch::Outcome::kNotModified:
        origin_time_ = fetch_->head_latency();
        if (own_stale_) {
          ServeOwnStale(CacheLabel::kRevalidated, view.metadata.get());
        } else {
          StopWaiting();
          Relay();
        }
        return;
      case SharedFetch::Outcome::kPass:
        if (leader_ && !view.relay_own) return;  // the relay callbacks carry it
        if (fetch_->origin_status() >= 500 && StaleAnswersError()) {
          ServeOwnStale(CacheLabel::kStale, nullptr);
          return;
        }
        StopWaiting();
        Relay();
        return;
      case SharedFetch::Outcome::kFailed:
        StopWaiting();
        FailOrServeStale(view.failure);
        return;
    }
  }

  void ServeSpool(const SharedFetch::View& view) {
    if (!responded_ && !view.variant.empty()) {
      // The response varies: it is the leader's variant; another client asks the origin itself.
      std::string_view vary;
      for (const auto& [name, value] : view.metadata->headers) {
        if (http::EqualsIgnoreCase(name, "vary")) vary = value;
      }
      const http::Request& request = exchange_->request();
      if (VariantSuffix(VaryNames(vary), [&request](std::string_view name) { return request.Find(name); }) !=
          view.variant) {
        StopWaiting();
        Relay();
        return;
      }
    }
    if (!responded_ && SliceOf(*view.metadata)) {
      // The object is large: this is the slice the probe's answer began with. A stale slice of
      // it may be of another version: never sent among these.
      origin_time_ = fetch_->head_latency();
      label_ = own_stale_ ? CacheLabel::kExpired : CacheLabel::kMiss;
      own_stale_.reset();
      BeginSliced(view.metadata, SliceOf(*view.metadata)->first);
      return;
    }
    if (!responded_) {
      responded_ = true;
      origin_time_ = fetch_->head_latency();
      label_ = own_stale_ ? CacheLabel::kExpired : CacheLabel::kMiss;
      EntryBody entry{view.metadata.get(),
                      view.complete ? std::optional(view.available) : view.content_length};
      if (view.complete && !view.spill) {
        entry.spool_fd = view.spool->fd;
        entry.spool_offset = view.body_offset;
      }
      const Answer answer = RespondEntry(*exchange_, entry, label_, Now(), pipeline_.options_.max_ranges,
                                         route_.hsts, &status_);
      bytes_ += answer.bytes;
      if (!answer.sent.ok()) {
        Abort(CutCause::kZone);  // the head promised a body that cannot be read: never a wrong message
        return;
      }
      if (!answer.window) {
        Finish();
        return;
      }
      window_ = *answer.window;
      sent_ = window_.first;
    }
    StreamSpool(view);
  }

  // Sends what the fill has of window_ as the client takes it.
  void StreamSpool(const SharedFetch::View& view) {
    // What the client has been sent, not just queued: the spill behind it may be freed.
    if (view.spill) fetch_->Progress(wake_, sent_ - std::min<uint64_t>(sent_, exchange_->output_buffered()));
    tailing_ = true;
    // Each queued piece holds a descriptor until it is sent: queue more only once the client has
    // taken what is queued (OnWritable comes back here).
    if (exchange_->output_buffered() > kSpoolQueueAhead) return;
    const uint64_t end = std::min(view.ReadableFrom(sent_), window_.end);
    while (end > sent_) {
      // The spool up to a failed fill's spill, the spill after it.
      const bool spilled = view.spill && sent_ >= view.spill_from;
      const uint64_t upto = view.spill && !spilled ? std::min(end, view.spill_from) : end;
      const absl::Status sent =
          spilled ? exchange_->SendFile(view.spill->fd, sent_ - view.spill_from, upto - sent_)
                  : exchange_->SendFile(view.spool->fd, view.body_offset + sent_, upto - sent_);
      if (!sent.ok()) {
        Abort(CutCause::kZone);
        return;
      }
      bytes_ += upto - sent_;
      sent_ = upto;
    }
    if (sliced_ && sent_ >= window_.end) {
      SliceSent();
    } else if (sent_ >= window_.end || (view.complete && sent_ >= view.available)) {
      if (sliced_) {
        Abort(CutCause::kOrigin);  // a slice shorter than its Content-Range said
      } else {
        Finish();
      }
    } else if (view.broken) {
      Abort(view.zone_broke ? CutCause::kZone : CutCause::kOrigin);
    }
  }

  // The answer's head, from `first_slice` (of the bytes from `first_byte` on, whose fetch, if any,
  // is fetch_); then its body, slice after slice.
  void BeginSliced(std::shared_ptr<const cache::EntryMetadata> first_slice, uint64_t first_byte) {
    responded_ = true;
    sliced_ = std::make_unique<Sliced>();
    Sliced& s = *sliced_;
    s.slicing = SlicingOf(route_.tenant->cache);
    s.total = SliceOf(*first_slice)->total;
    s.head = ObjectHead(*first_slice);
    s.first = std::move(first_slice);
    s.fetching = fetch_ ? first_byte / s.slicing.size : kUnbounded;
    EntryBody entry{&s.head, s.total};
    entry.parts_later = true;
    Answer answer =
        RespondEntry(*exchange_, entry, label_, Now(),
                     std::min(pipeline_.options_.max_ranges, kMaxSlicedRanges), route_.hsts, &status_);
    if (answer.parts) {
      for (const ByteRange& r : answer.parts->ranges) s.windows.push_back({r.first, r.last + 1});
      exchange_->Write(answer.parts->framing.part_heads.front());
      s.parts = std::move(answer.parts);
    } else if (answer.window) {
      s.windows.push_back({answer.window->first, std::min(answer.window->end, s.total)});
    }
    if (s.windows.empty()) {
      Finish();  // HEAD, 304, 412, 416: no body
      return;
    }
    s.at = s.windows.front().first;
    SendSlices();
  }

  // Sends the answer's windows from stored slices, fetching those that are not.
  void SendSlices() {
    Sliced& s = *sliced_;
    while (exchange_ != nullptr) {
      if (s.at >= s.windows[s.window].end) {
        if (++s.window == s.windows.size()) {
          if (s.parts) exchange_->Write(s.parts->framing.close);
          Finish();
          return;
        }
        exchange_->Write(s.parts->framing.part_heads[s.window]);
        s.at = s.windows[s.window].first;
        continue;
      }
      // Each queued piece holds a descriptor until it is sent: more once the client took them.
      tailing_ = true;
      if (exchange_->output_buffered() > kSpoolQueueAhead) return;
      const uint64_t index = s.at / s.slicing.size;
      if (fetch_ && s.fetching == index) {
        OnWake();
        return;
      }
      StopWaiting();
      SliceKey(route_.key, s.slicing.size, index, &s.key);
      std::optional<cache::Hit> hit = pipeline_.store_.Lookup(s.key);
      const ByteRange bytes = SliceBytes(s.slicing, index, s.total);
      if (hit && (!IsSliceOf(hit->metadata(), *s.first, bytes) || hit->body_length() != bytes.length())) {
        // Stored from another version: the object changed. Its slices go; this answer goes on
        // only while the origin still has the version it began with.
        ObjectChanged();
        hit.reset();
      }
      if (hit) {
        const vhost::Use use = vhost::DecideUse(FreshnessOf(*hit), {}, Now(), pipeline_.trusted());
        if (use == vhost::Use::kStaleWhileRevalidate) {
          // Sent as it is, and refreshed meanwhile.
          std::optional<cache::Hit> copy = hit->Duplicate();
          if (copy) pipeline_.StartFetch(worker_, SlicePlan(s.key, index, std::move(copy)));
        } else if (use != vhost::Use::kFresh) {
          FetchSlice(index, std::move(hit));  // revalidated first
          return;
        }
      }
      if (!hit) {
        FetchSlice(index, std::nullopt);
        return;
      }
      ReadAhead(index);
      const uint64_t end = std::min(s.windows[s.window].end, bytes.last + 1);
      const uint64_t n = end - s.at, from = s.at - bytes.first;
      const bool large = !hit->body_in_memory() && n > http::Exchange::kInlineFileBytes;
      const absl::Status sent = large
                                    ? exchange_->SendOwnedFile(hit->ReleaseFd(), hit->body_offset() + from, n)
                                    : SendBody(*exchange_, *hit, from, n);
      if (!sent.ok()) {
        Abort(CutCause::kZone);
        return;
      }
      bytes_ += n;
      s.at = end;
    }
  }

  // The slices after `index` that the answer's window needs next are fetched ahead, each by a
  // shared fetch of its own (into its zone, not into memory), so the origin's round trip per slice
  // overlaps the sending of the one before. Called once slice `index` is at hand (stored, or
  // wholly fetched).
  void ReadAhead(uint64_t index) {
    constexpr uint64_t kSlicesAhead = 2;
    Sliced& s = *sliced_;
    const uint64_t last = (s.windows[s.window].end - 1) / s.slicing.size;
    const uint64_t until = std::min(last, index + kSlicesAhead);
    cache::Key key;
    for (uint64_t next = std::max(index + 1, s.read_ahead); next <= until; ++next) {
      SliceKey(route_.key, s.slicing.size, next, &key);
      if (pipeline_.store_.Lookup(key)) continue;
      pipeline_.StartFetch(worker_, SlicePlan(key, next, std::nullopt));
    }
    s.read_ahead = std::max(s.read_ahead, until + 1);
  }

  FillPlan SlicePlan(const cache::Key& key, uint64_t index, std::optional<cache::Hit> stale) {
    const Sliced& s = *sliced_;
    return pipeline_.MakeSlicePlan(route_, exchange_->request(), key, SliceBytes(s.slicing, index, s.total),
                                   *s.first, std::move(stale));
  }

  // Waits for slice `index` (s.key), revalidating `stale` if there is one.
  void FetchSlice(uint64_t index, std::optional<cache::Hit> stale) {
    Sliced& s = *sliced_;
    std::optional<cache::Hit> plan_stale = stale ? stale->Duplicate() : std::nullopt;
    FillPlan plan = SlicePlan(s.key, index, std::move(plan_stale));
    // A seek into a slice to fetch: the client's bytes first (a revalidation is of the whole).
    if (!stale) plan.slice->seek = SeekInto(s.slicing, s.at - plan.slice->bytes.first);
    // Stored since this client looked (the fetch before committed, then left the coalescer): sent
    // from the store, not asked for again.
    Coalescer::Acquired acquired =
        pipeline_.coalescer_.Acquire(plan, pipeline_.store_, pipeline_.clock_, /*unless_stored=*/!stale);
    if (!acquired.fetch) {
      SendSlices();
      return;
    }
    // The head went out as a hit's; the log and the metrics say the origin was asked.
    if (label_ == CacheLabel::kHit) label_ = CacheLabel::kMiss;
    s.fetching = index;
    s.streaming = false;
    Wait(acquired.fetch, false, std::move(stale));
    if (acquired.started_here) acquired.fetch->Start(worker_.fetch_loop(pipeline_.metrics_), nullptr);
  }

  void OnSliceWake(const SharedFetch::View& view) {
    Sliced& s = *sliced_;
    const ByteRange bytes = SliceBytes(s.slicing, s.fetching, s.total);
    switch (view.outcome) {
      case SharedFetch::Outcome::kPending:
        return;
      case SharedFetch::Outcome::kStreaming: {
        if (!IsSliceOf(*view.metadata, *s.first, bytes)) {
          // The origin has another version now: what was sent cannot be completed with it.
          ObjectChanged();
          Abort(CutCause::kOrigin);
          return;
        }
        // The next slices are asked for once this one is in (or its bytes from a seek are): asked
        // at once, they would share the origin's throughput with it and delay the client's first
        // byte.
        if (view.complete || (view.seek != UINT64_MAX && view.seek_end == bytes.length()))
          ReadAhead(s.fetching);
        if (!s.streaming) {
          s.streaming = true;
          window_ = {s.at - bytes.first, std::min(s.windows[s.window].end, bytes.last + 1) - bytes.first};
          sent_ = window_.first;
        }
        StreamSpool(view);
        return;
      }
      case SharedFetch::Outcome::kNotModified: {
        if (!own_stale_) {
          // Another client's revalidation, joined after this one found no copy it could read: a
          // 304 has no bytes for it. It looks again (the revalidation has left the coalescer).
          StopWaiting();
          SendSlices();
          return;
        }
        SendOwnStaleSlice(bytes);  // current: its refreshed copy is being stored
        return;
      }
      case SharedFetch::Outcome::kPass:
      case SharedFetch::Outcome::kFailed:
        if ((view.outcome == SharedFetch::Outcome::kFailed || fetch_->origin_status() >= 500) &&
            StaleAnswersError()) {
          SendOwnStaleSlice(bytes);  // stale-if-error
          return;
        }
        // Not the slice's 206 (if it says the object changed, the fetch dropped its slices).
        Abort(CutCause::kOrigin);  // the head is out: a truncated answer, never a wrong one
        return;
    }
  }

  // Sends the answer's bytes of the slice being fetched (`bytes`) from this client's stored copy,
  // then goes on.
  void SendOwnStaleSlice(ByteRange bytes) {
    Sliced& s = *sliced_;
    const uint64_t end = std::min(s.windows[s.window].end, bytes.last + 1);
    const absl::Status sent = SendBody(*exchange_, *own_stale_, s.at - bytes.first, end - s.at);
    if (!sent.ok()) {
      Abort(CutCause::kZone);
      return;
    }
    bytes_ += end - s.at;
    s.at = end;
    StopWaiting();
    SendSlices();
  }

  // The fetched slice is sent (window_, in its own offsets): on to the next.
  void SliceSent() {
    Sliced& s = *sliced_;
    s.at = s.fetching * s.slicing.size + sent_;
    StopWaiting();
    SendSlices();
  }

  // A slice of another version than the answer's first: every slice of the object goes, here at
  // once (the purge that should have removed them may still be on its way).
  void ObjectChanged() { DropSlices(pipeline_.store_, pipeline_.metrics_, worker_.index, route_.key); }

  // Serves this client's own stale entry, with refreshed headers after a 304.
  void ServeOwnStale(CacheLabel label, const cache::EntryMetadata* refreshed) {
    StopWaiting();
    if (SliceOf(own_stale_->metadata())) {
      // A large object's first slice: the answer goes on from its stored slices, each one that
      // is stale revalidated and, if the origin still fails, sent within stale-if-error.
      cache::Hit first = *std::exchange(own_stale_, std::nullopt);
      if (own_fetch_ != 0) worker_.origin->Cancel(std::exchange(own_fetch_, 0));  // its error's body
      ServeSliced(std::move(first), label);
      return;
    }
    const cache::Hit& hit = *own_stale_;
    label_ = label;
    const EntryBody entry{refreshed ? refreshed : &hit.metadata(), hit.body_length(), &hit};
    const Answer answer =
        RespondEntry(*exchange_, entry, label, Now(), pipeline_.options_.max_ranges, route_.hsts, &status_);
    bytes_ += answer.bytes;
    absl::Status sent = answer.sent;
    if (sent.ok() && answer.window) {
      const uint64_t end = std::min(answer.window->end, hit.body_length());
      if (end > answer.window->first) {
        sent = SendBody(*exchange_, hit, answer.window->first, end - answer.window->first);
        if (sent.ok()) bytes_ += end - answer.window->first;
      }
    }
    if (!sent.ok()) {
      Abort(CutCause::kZone);  // the head promised a body that cannot be read: never a wrong message
      return;
    }
    Finish();
  }

  void FailOrServeStale(const absl::Status& failure) {
    if (StaleAnswersError()) {
      ServeOwnStale(CacheLabel::kStale, nullptr);
      return;
    }
    status_ = failure.code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502;
    // In the client's terms: libcurl's text names the origin's address, which is the edge's business.
    Log();
    const http::HeaderField hsts[] = {{kHsts, route_.hsts}};
    exchange_->Reply(status_, "text/plain",
                     status_ == 504 ? "the origin server did not answer in time\n"
                                    : "the origin server could not be reached\n",
                     std::span(hsts, route_.hsts.empty() ? 0 : 1));
    exchange_ = nullptr;
    Retire();
  }

  void StopWaiting() {
    if (wake_ != nullptr) {
      fetch_->RemoveWaiter(wake_);
      event_free(wake_);
      wake_ = nullptr;
    }
    if (fetch_ && leader_) fetch_->DropLeader();
    fetch_.reset();
    leader_ = false;
  }

  void Log() {
    if (logged_) return;
    logged_ = true;
    const http::Request* request = exchange_ ? &exchange_->request() : nullptr;
    AccessRecord record;
    record.start = start_;
    record.tenant = route_.tenant->name;
    record.status = status_ != 0 ? status_ : 499;  // 499: the client went away first
    record.bytes = bytes_;
    record.cache = CacheLabelText(label_);
    record.origin_time = origin_time_;
    if (request != nullptr) {
      record.host = request->host;
      record.method = request->method;
      record.target = request->target;
    }
    pipeline_.metrics_.CountRequest(worker_.index, route_.tenant->name, label_, record.status, bytes_);
    pipeline_.Log(worker_.index, record);
  }

  void Finish() {
    Log();
    std::exchange(exchange_, nullptr)->Finish();
    Retire();
  }
  void Abort(CutCause cause) {
    pipeline_.metrics_.CountCut(worker_.index, cause);
    Log();
    std::exchange(exchange_, nullptr)->Abort();
    Retire();
  }
  void Retire() {
    if (retired_) return;
    retired_ = true;
    StopWaiting();
    if (own_fetch_ != 0) worker_.origin->Cancel(std::exchange(own_fetch_, 0));
    if (pump_) pump_->Detach();
    pipeline_.Retire(worker_, this);
  }

  Pipeline& pipeline_;
  Pipeline::Worker& worker_;
  http::Exchange* exchange_;  // null once the response is over or the client is gone
  const Pipeline::Route route_;
  const absl::Time start_;
  std::shared_ptr<SharedFetch> fetch_;
  bool leader_ = false;
  std::optional<cache::Hit> own_stale_;
  event* wake_ = nullptr;
  origin::OriginClient::FetchId own_fetch_ = 0;
  std::unique_ptr<BodyPump> pump_;    // the request body, when one goes to the origin
  bool own_body_ = false;             // the pump holds a body the edge made (PURGE): the client's is ignored
  std::optional<WriteIntent> write_;  // a write: its answer invalidates and is published
  bool write_committed_ = false;
  std::optional<HeldAnswer> held_;  // a write's 2xx, until the other edges have applied its purge
  std::shared_ptr<WriteConfirmation> confirmation_;
  absl::Time relay_started_;
  bool relay_paused_ = false;
  bool responded_ = false;
  bool tailing_ = false;  // streaming the spool: more is queued as the client drains
  Window window_;
  uint64_t sent_ = 0;
  uint64_t bytes_ = 0;
  int status_ = 0;
  CacheLabel label_ = CacheLabel::kMiss;
  absl::Duration origin_time_ = absl::ZeroDuration();
  bool logged_ = false;
  bool retired_ = false;
  // A large object's answer, slice after slice (edge/slices.h).
  struct Sliced {
    std::shared_ptr<const cache::EntryMetadata> first;  // the version every other slice must be of
    cache::EntryMetadata head;                          // the object's answer (ObjectHead)
    Slicing slicing;
    uint64_t total = 0;
    std::vector<Window> windows;         // the byte windows to send, in order
    std::optional<Answer::Parts> parts;  // several windows: the multipart framing around them
    size_t window = 0;
    uint64_t at = 0;                 // the next byte to send, in the object
    uint64_t fetching = kUnbounded;  // the slice fetch_ is of
    bool streaming = false;          // window_ and sent_ are set for it
    uint64_t read_ahead = 0;         // slices before this one have been asked for
    cache::Key key;                  // the slice looked up or fetched
  };
  std::unique_ptr<Sliced> sliced_;
};

Pipeline::Pipeline(size_t workers, PipelineOptions options, const vhost::TenantSnapshot& tenants,
                   cache::Store& store, Metrics& metrics, AccessLog* access_log, cache::Clock clock)
    : options_(std::move(options)),
      tenants_(tenants),
      store_(store),
      metrics_(metrics),
      access_log_(access_log),
      clock_(std::move(clock)) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->index = i;
  }
}

Pipeline::~Pipeline() = default;

void Pipeline::OnWorkerStart(size_t index, event_base* loop) {
  Worker& w = *workers_[index];
  w.loop = loop;
  w.origin = std::make_unique<origin::OriginClient>(loop, options_.origin);
  w.reaper = event_new(
      loop, -1, 0, [](evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->retired.clear(); }, &w);
}

void Pipeline::OnWorkerStop(size_t index) {
  Worker& w = *workers_[index];
  std::vector<std::shared_ptr<SharedFetch>> running;
  for (auto& [fetch, owned] : w.running) running.push_back(owned);
  for (auto& fetch : running) fetch->Abandon();
  w.streams.clear();
  w.retired.clear();
  w.origin.reset();
  if (w.reaper != nullptr) event_free(std::exchange(w.reaper, nullptr));
}

void Pipeline::Retire(Worker& w, ClientStream* stream) {
  if (auto node = w.streams.extract(stream)) {
    w.retired.push_back(std::move(node.mapped()));
    if (w.reaper != nullptr) event_active(w.reaper, EV_TIMEOUT, 0);
  }
}

void Pipeline::Log(size_t worker, const AccessRecord& record) {
  if (access_log_ != nullptr) access_log_->Write(worker, record, clock_());
}

void Pipeline::Reply(http::Exchange& exchange, const Route* route, int status, std::string_view message,
                     absl::Time start, std::span<const http::HeaderField> headers) {
  const std::string_view tenant = route != nullptr ? std::string_view(route->tenant->name) : "-";
  HeaderList with_hsts;
  if (route != nullptr && !route->hsts.empty()) {
    with_hsts.assign(headers.begin(), headers.end());
    with_hsts.emplace_back(kHsts, route->hsts);
    headers = with_hsts;
  }
  const http::Request& request = exchange.request();
  metrics_.CountRequest(exchange.worker(), tenant, CacheLabel::kNone, status, message.size());
  AccessRecord record = Record(request, tenant, start);
  record.status = status;
  record.bytes = message.size();
  Log(exchange.worker(), record);
  exchange.Reply(status, "text/plain", message, headers);
}

void Pipeline::OnRequest(http::Exchange& exchange) {
  const absl::Time start = clock_();
  Worker& w = *workers_[exchange.worker()];
  if (const uint64_t version = tenants_version_.load(std::memory_order_acquire);
      version != w.tenants_version) {
    w.tenants = tenants_.Current();
    w.tenants_version = version;
  }
  const http::Request& request = exchange.request();
  Route route = std::move(w.spare_route);
  absl::Cleanup give_back = [&w, &route] {
    route.tenants.reset();
    w.spare_route = std::move(route);
  };
  const std::string_view server_name = exchange.tls_server_name();
  const std::string_view request_host = RequestedHost(request.host, server_name);
  route.tenant = w.tenants ? w.tenants->FindByHost(request_host) : nullptr;
  if (route.tenant == nullptr) {
    // Never another tenant's data: a host nobody configured is misdirected.
    Reply(exchange, nullptr, 421, "no site is served for this host here\n", start);
    return;
  }
  route.tenants = w.tenants;
  route.hsts = exchange.tls() ? std::string_view(route.tenant->hsts) : std::string_view();
  // Most clients send the name they connected to as Host: its tenant is known already.
  const vhost::Tenant* sni_tenant = server_name.empty()           ? nullptr
                                    : server_name == request_host ? route.tenant
                                                                  : w.tenants->FindByHost(server_name);
  switch (DecideHttps(exchange.tls(), server_name, sni_tenant, *route.tenant)) {
    case HttpsAction::kMisdirected:
      Reply(exchange, nullptr, 421, "this connection was opened for another site: open one for this host\n",
            start);
      return;
    case HttpsAction::kRedirect: {
      thread_local std::string location;  // reused: no allocation per redirect once it has grown
      const http::HeaderField fields[] = {
          {"Location", HttpsLocation(request.host, request.target, options_.redirect_port, &location)}};
      Reply(exchange, &route, 308, "this site is served over https\n", start, fields);
      return;
    }
    case HttpsAction::kServe:
      break;
  }
  const bool read = request.method == "GET" || request.method == "HEAD";
  // Custom domains are read-only; the Swift API host and http tenants take writes to their origin.
  const bool writable = route.tenant->origin.kind != vhost::OriginKind::kSwift;
  if (!read && request.method != "PURGE" &&
      !(writable && (IsWriteMethod(request.method) || request.method == "OPTIONS"))) {
    Reply(exchange, &route, 405, "method not allowed here\n", start);
    return;
  }
  if (absl::Status mapped =
          vhost::MapRequest(*route.tenant, request.target, request.Find("accept"), &route.target);
      !mapped.ok()) {
    const int status = mapped.code() == absl::StatusCode::kPermissionDenied ? 403 : 400;
    Reply(exchange, &route, status, absl::StrCat(std::string(mapped.message()), "\n"), start);
    return;
  }
  if (request.method == "PURGE") {
    StartPurge(exchange, std::move(route), start);
    return;
  }
  if (!read) {
    if (IsWriteMethod(request.method) && publisher_ != nullptr && !publisher_->HasRoom()) {
      // The purges this write would cause could not be recorded: refuse it rather than lose them.
      Reply(exchange, &route, 503, "writes are paused: the purge bus has been unreachable too long\n", start);
      return;
    }
    if (IsWriteMethod(request.method) && confirmer_ != nullptr &&
        route.tenant->origin.kind == vhost::OriginKind::kSwiftApi && !lease_.reachable() &&
        !options_.accept_writes_unreachable) {
      // No other edge could hear of this write now: refuse it before it happens, so that a 2xx
      // always means no edge serves what it replaced.
      static constexpr http::HeaderField kRetry[] = {{"Retry-After", "1"}};
      Reply(exchange, &route, 503, "writes are paused: the purge bus is unreachable\n", start, kRetry);
      return;
    }
    StartRelay(exchange, std::move(route), start);
    return;
  }
  const vhost::PathRule* rule = vhost::MatchRule(route.tenant->cache, route.target.path);
  if (route.target.pass || (rule != nullptr && rule->bypass) ||
      CarriesCredentials(request, *route.tenant, route.target)) {
    StartRelay(exchange, std::move(route), start);
    return;
  }
  // Assigned member by member (not from a new Key), so the strings keep their capacity.
  route.key.kind = route.target.listing ? cache::KeyKind::kListing : cache::KeyKind::kObject;
  vhost::AssignCacheAccount(route.tenant->origin.cluster, route.target.account, &route.key.account);
  route.key.container = route.target.container;
  route.key.name = route.target.name;
  route.key.variant = route.target.variant;
  route.base_key = route.key;
  if (!vary_index_.empty()) {
    thread_local std::string encoded;  // reused: this runs per request once any site varies
    route.key.EncodeTo(&encoded);
    if (const std::vector<std::string> names = vary_index_.Find(encoded); !names.empty()) {
      route.key.variant +=
          VariantSuffix(names, [&request](std::string_view name) { return request.Find(name); });
    }
  }

  vhost::CacheDirectives directives;
  if (route.tenant->origin.kind == vhost::OriginKind::kHttp) directives = ParseRequestDirectives(request);
  std::optional<cache::Hit> hit = store_.Lookup(route.key);
  std::optional<cache::Hit> stale_slice;
  if (!hit && !route.target.listing && route.tenant->cache.slice_size != 0) {
    if (std::optional<SliceStart> found = FindSlice(w, route, request, directives, start, &stale_slice)) {
      NewStream(exchange, std::move(route), start).ServeSliced(std::move(found->slice), found->label);
      return;
    }
  }
  if (!hit) {
    if (directives.only_if_cached) {
      Reply(exchange, &route, 504, "not cached (only-if-cached)\n", start);
    } else if (directives.no_store) {
      StartRelay(exchange, std::move(route), start);
    } else {
      StartShared(exchange, std::move(route), std::nullopt, start, std::move(stale_slice));
    }
    return;
  }
  // Not caught up with the purge log (untrusted): any entry may have been purged meanwhile.
  switch (vhost::DecideUse(FreshnessOf(*hit), directives, absl::ToUnixSeconds(start), trusted())) {
    case vhost::Use::kFresh:
      ServeHit(exchange, route, *hit, CacheLabel::kHit, start);
      return;
    case vhost::Use::kStaleWhileRevalidate:
      RevalidateInBackground(w, route, request, *hit);  // first: serving hands the hit's descriptor away
      ServeHit(exchange, route, *hit, CacheLabel::kStale, start);
      return;
    case vhost::Use::kOnlyIfCached:
      ServeHit(exchange, route, *hit, CacheLabel::kStale, start);
      return;
    case vhost::Use::kRevalidate:
      break;
  }
  StartShared(exchange, std::move(route), std::move(hit), start);
}

std::optional<Pipeline::SliceStart> Pipeline::FindSlice(Worker& w, const Route& route,
                                                        const http::Request& request,
                                                        const vhost::CacheDirectives& directives,
                                                        absl::Time start, std::optional<cache::Hit>* stale) {
  const Slicing slicing = SlicingOf(route.tenant->cache);
  const std::string_view range = SlicedRange(request);
  // The slice the request begins in: without it, the probe for it tells the object's length and
  // head as well, in the same round trip.
  const uint64_t index = FirstWantedByte(range) / slicing.size;
  thread_local cache::Key key;
  SliceKey(route.key, slicing.size, index, &key);
  const auto use = [&](const cache::Hit& slice) {
    return vhost::DecideUse(FreshnessOf(slice), directives, absl::ToUnixSeconds(start), trusted());
  };
  std::optional<cache::Hit> slice = store_.Lookup(key);
  const std::optional<ContentRange> first = slice ? SliceOf(slice->metadata()) : std::nullopt;
  if (!first || !IsStrongEtag(slice->metadata().etag)) return std::nullopt;
  const vhost::Use first_use = use(*slice);
  if (first_use == vhost::Use::kRevalidate) *stale = std::move(slice);
  if (first_use != vhost::Use::kFresh && first_use != vhost::Use::kStaleWhileRevalidate) return std::nullopt;
  const uint64_t total = first->total;
  CacheLabel label = CacheLabel::kHit;
  if (first_use == vhost::Use::kStaleWhileRevalidate) {
    // Answered from it as it is, and refreshed meanwhile.
    label = CacheLabel::kStale;
    if (std::optional<cache::Hit> copy = slice->Duplicate()) {
      StartFetch(w, MakeSlicePlan(route, request, key, SliceBytes(slicing, index, total), slice->metadata(),
                                  std::move(copy)));
    }
  }
  // A suffix range begins where only the length tells: in another slice, whose own state is the
  // answer's label.
  const uint64_t begins = FirstWantedByte(range, total) / slicing.size;
  if (begins != index) {
    SliceKey(route.key, slicing.size, begins, &key);
    const std::optional<cache::Hit> other = store_.Lookup(key);
    // IsSliceOf holds only for a slice with the first one's strong ETag.
    label = other && IsSliceOf(other->metadata(), slice->metadata(), SliceBytes(slicing, begins, total)) &&
                    use(*other) == vhost::Use::kFresh
                ? CacheLabel::kHit
                : CacheLabel::kMiss;
  }
  return SliceStart{std::move(*slice), label};
}

void Pipeline::ServeHit(http::Exchange& exchange, const Route& route, cache::Hit& hit, CacheLabel label,
                        absl::Time start) {
  const http::Request& request = exchange.request();
  AccessRecord record = Record(request, route.tenant->name, start);
  record.cache = CacheLabelText(label);
  const EntryBody entry{&hit.metadata(), hit.body_length(), &hit};
  const Answer answer = RespondEntry(exchange, entry, label, absl::ToUnixSeconds(start), options_.max_ranges,
                                     route.hsts, &record.status);
  record.bytes = answer.bytes;
  absl::Status sent = answer.sent;
  if (sent.ok() && answer.window) {
    const uint64_t end = std::min(answer.window->end, hit.body_length());
    if (end > answer.window->first) {
      record.bytes = end - answer.window->first;
      // The hit is over after this: its descriptor goes to the send buffer, no copy of it; or,
      // where the file would be read into memory to be sent, the body held there already.
      const bool large = !hit.body_in_memory() && record.bytes > http::Exchange::kInlineFileBytes;
      std::shared_ptr<const cache::CachedEntry> held;
      if (large && exchange.reads_files_to_send()) held = store_.HoldBody(hit);
      if (held) {
        exchange.SendShared(held, std::string_view(held->body).substr(answer.window->first, record.bytes));
      } else {
        sent = large ? exchange.SendOwnedFile(hit.ReleaseFd(), hit.body_offset() + answer.window->first,
                                              record.bytes)
                     : SendBody(exchange, hit, answer.window->first, record.bytes);
      }
    }
  }
  if (!sent.ok()) {
    // The head promised a body that cannot be read: close rather than send a wrong message.
    metrics_.CountRequest(exchange.worker(), route.tenant->name, label, record.status, 0);
    record.bytes = 0;
    Log(exchange.worker(), record);
    metrics_.CountCut(exchange.worker(), CutCause::kZone);
    exchange.Abort();
    return;
  }
  metrics_.CountRequest(exchange.worker(), route.tenant->name, label, record.status, record.bytes);
  Log(exchange.worker(), record);
  exchange.Finish();
}

FillPlan Pipeline::MakePlan(const Route& route, const http::Request& request,
                            std::optional<cache::Hit> stale) {
  FillPlan plan;
  if (route.tenant->origin.kind == vhost::OriginKind::kHttp) {
    // A site may negotiate (Accept-Language, Accept-Encoding...): it sees the leader's headers,
    // and a response that varies is stored for the values it saw (shared_fetch.cc).
    const std::string_view connection = request.Find("connection");
    for (size_t i = 0; i < request.header_count; ++i) {
      if (ForwardedToSite(request.headers[i].name, connection)) {
        plan.request.headers.emplace_back(request.headers[i].name, request.headers[i].value);
      }
    }
    // The site answers the leader's Authorization; Decide stores (shares) that answer only when
    // it allows, else it goes to the leader alone (kPass).
    if (const std::string_view authorization = request.Find("authorization"); !authorization.empty()) {
      plan.request.headers.emplace_back("Authorization", authorization);
      plan.authorization = true;
    }
  }
  plan.tenants = route.tenants;
  plan.tenant = route.tenant;
  plan.key = route.key;
  plan.base_key = route.base_key;
  plan.vary = &vary_index_;
  plan.path = route.target.path;
  plan.listing = route.target.listing;
  plan.request.url = route.target.url;
  plan.stale = std::move(stale);
  return plan;
}

ClientStream& Pipeline::NewStream(http::Exchange& exchange, Route route, absl::Time start) {
  Worker& w = *workers_[exchange.worker()];
  auto stream = std::make_unique<ClientStream>(*this, w, exchange, std::move(route), start);
  ClientStream& ref = *stream;
  w.streams.emplace(stream.get(), std::move(stream));
  return ref;
}

void Pipeline::StartShared(http::Exchange& exchange, Route route, std::optional<cache::Hit> stale,
                           absl::Time start, std::optional<cache::Hit> stale_slice) {
  Worker& w = *workers_[exchange.worker()];
  std::optional<cache::Hit> plan_stale = stale ? stale->Duplicate() : std::nullopt;
  FillPlan plan = MakePlan(route, exchange.request(), std::move(plan_stale));
  if (!stale && !route.target.listing && route.tenant->cache.slice_size != 0) {
    // The object is unknown: its first answer tells its length, and holds it if it is small.
    const Slicing slicing = SlicingOf(route.tenant->cache);
    const http::Request& request = exchange.request();
    const std::string_view range = SlicedRange(request);
    const uint64_t wanted = FirstWantedByte(range);
    const ByteRange probe = ProbeRange(slicing, !range.empty(), wanted);
    // No seek into the first slice: an object that may be small comes whole in its one answer.
    // (Past it, an object no larger than the threshold is asked for from byte 0 again anyway.)
    const uint64_t seek = !range.empty() && probe.first != 0 ? SeekInto(slicing, wanted - probe.first) : 0;
    plan.slice = FillPlan::SliceRequest{.slicing = slicing,
                                        .bytes = probe,
                                        .probe = true,
                                        .dependencies = std::nullopt,
                                        .etag = {},
                                        .seek = seek,
                                        .client_range = !range.empty()};
    if (stale_slice) plan.stale_slice = FreshnessOf(*stale_slice);
  }
  Coalescer::Acquired acquired = coalescer_.Acquire(plan, store_, clock_);
  ClientStream& stream = NewStream(exchange, std::move(route), start);
  stream.Wait(acquired.fetch, acquired.started_here, stale ? std::move(stale) : std::move(stale_slice));
  if (acquired.started_here) acquired.fetch->Start(w.fetch_loop(metrics_), &stream);
}

void Pipeline::RevalidateInBackground(Worker& w, const Route& route, const http::Request& request,
                                      const cache::Hit& hit) {
  std::optional<cache::Hit> copy = hit.Duplicate();
  if (!copy) return;
  StartFetch(w, MakePlan(route, request, std::move(copy)));
}

FillPlan Pipeline::MakeSlicePlan(const Route& route, const http::Request& request, const cache::Key& key,
                                 ByteRange bytes, const cache::EntryMetadata& first,
                                 std::optional<cache::Hit> stale) {
  FillPlan plan = MakePlan(route, request, std::move(stale));
  plan.key = key;
  std::vector<std::string> dependencies;  // a static large object's segments
  for (const std::string& tag : first.tags) {
    if (cache::IsDependencyTag(tag)) dependencies.push_back(tag);
  }
  plan.slice = FillPlan::SliceRequest{.slicing = SlicingOf(route.tenant->cache),
                                      .bytes = bytes,
                                      .dependencies = std::move(dependencies),
                                      .etag = first.etag};
  return plan;
}

void Pipeline::StartFetch(Worker& w, FillPlan plan) {
  Coalescer::Acquired acquired = coalescer_.Acquire(plan, store_, clock_);
  if (acquired.started_here) acquired.fetch->Start(w.fetch_loop(metrics_), nullptr);
}

void Pipeline::StartRelay(http::Exchange& exchange, Route route, absl::Time start) {
  NewStream(exchange, std::move(route), start).Relay();
}

void Pipeline::StartPurge(http::Exchange& exchange, Route route, absl::Time start) {
  const http::Request& request = exchange.request();
  if (options_.purge_api.empty()) {
    Reply(exchange, &route, 501, "PURGE is not configured on this edge (purge.api)\n", start);
    return;
  }
  // It goes through the purge daemon like any other purge: same credentials, same checks.
  origin::FetchRequest purge;
  purge.method = "POST";
  purge.url = absl::StrCat(options_.purge_api, "/v1/purge");
  purge.headers = {{"Content-Type", "application/json"}};
  for (std::string_view name : {"authorization", "x-auth-token"}) {
    if (const std::string_view value = request.Find(name); !value.empty())
      purge.headers.emplace_back(name, value);
  }
  // The daemon limits failed authentications per client: this one's, not the edge's (it trusts
  // the field only from the edges it is configured to trust).
  purge.headers.emplace_back("X-Forwarded-For", exchange.peer_address());
  const std::string_view soft = request.Find("x-purge-soft");
  nlohmann::json body{{"urls", nlohmann::json::array({absl::StrCat("http://", std::string(request.host),
                                                                   std::string(request.target))})},
                      {"soft", soft == "1" || soft == "true"}};
  NewStream(exchange, std::move(route), start)
      .Relay(std::move(purge), body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool Pipeline::CommitWrite(const Route& route, const WriteIntent& intent, int status, HeaderViews headers,
                           std::function<void(const bus::ConfirmResult&)> done) {
  std::optional<bus::WriteEvent> event =
      MakeWriteEvent(options_.node_id, route.tenant->origin.cluster, intent, route.target, status, headers,
                     absl::ToUnixMillis(clock_()));
  if (!event) return false;
  std::vector<cache::Invalidation> plan = purge::PlanWrite(*event);
  for (const cache::Invalidation& inv : plan) store_.Apply(inv);
  if (confirmer_ == nullptr || plan.empty()) return false;
  // The plan goes into the log from here (the planner is the daemon's): the other edges apply it
  // without waiting for a daemon, and this write's answer waits for them. If the log cannot take
  // it, the event waits in the spool for the daemons, and the answer says the purge is pending.
  purge::Coalesce(&plan);
  std::string job = absl::StrCat("e-", options_.node_id, "-", event->time_ms, "-", writes_.fetch_add(1));
  confirmer_->AppendAndWait(
      std::move(job), std::move(plan),
      [this, event = std::move(*event), done = std::move(done)](const bus::ConfirmResult& result,
                                                                bus::RedisConnection&) {
        if (!result.appended) {
          if (absl::Status spooled = publisher_->Publish(event); !spooled.ok()) {
            // The spool filled up since the write was let through: the other edges will not hear of it.
            std::fprintf(stderr, "edge: a %s of %s/%s/%s is not recorded for the other edges: %s\n",
                         event.method.c_str(), event.account.c_str(), event.container.c_str(),
                         event.object.c_str(), std::string(spooled.message()).c_str());
          }
        }
        if (done) done(result);
      });
  return true;
}

}  // namespace edge
