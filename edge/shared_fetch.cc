#include "edge/shared_fetch.h"

#include <event2/event.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "cache/dependencies.h"
#include "cache/file_closer.h"
#include "edge/http/request_parser.h"
#include "edge/http_rules.h"
#include "edge/large_objects.h"
#include "purge-daemon/planner.h"
#include "vhost-config/cache_control.h"

namespace edge {

namespace {

using HeaderViews = std::span<const std::pair<std::string_view, std::string_view>>;

std::string_view FindHeader(HeaderViews headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (http::EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

std::optional<uint64_t> ParseCount(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A response's tags, stored per tenant (see purge::ScopedTag).
std::vector<std::string> TenantTags(std::string_view tenant, const std::vector<std::string>& tags) {
  std::vector<std::string> scoped;
  for (const std::string& tag : tags) scoped.push_back(purge::ScopedTag(tenant, tag));
  return scoped;
}

// A slice's request answered so that the object must have changed since its slices were stored:
// deleted, shrunk, made private or no longer answered by range (a 408 or a 429 says only that the
// origin was busy).
bool SaysObjectChanged(int status) {
  return status == 200 || status == 401 || status == 403 || status == 404 || status == 410 || status == 416;
}

uint32_t Seconds32(absl::Duration d) {
  return static_cast<uint32_t>(std::clamp<int64_t>(absl::ToInt64Seconds(d), 0, UINT32_MAX));
}

}  // namespace

SpoolFile::~SpoolFile() {
  cache::CloseFile(fd);  // the last descriptor of an entry deleted meanwhile
}

// The fetch of a static large object's manifest (multipart-manifest=get), on the loop of the
// fetch of its object, which it tells the segments once (or why it cannot).
class SharedFetch::SloManifest : public origin::FetchObserver {
 public:
  SloManifest(SharedFetch& owner, origin::OriginClient& client) : owner_(owner), client_(client) {}
  ~SloManifest() override {
    if (id_ != 0) client_.Cancel(id_);
  }
  void Start(const origin::FetchRequest& request) { id_ = client_.Start(request, this); }

  void OnHeaders(int status, HeaderViews) override { status_ = status; }
  void OnData(std::string_view data) override {
    if (body_.size() + data.size() > kMaxSloManifestBytes) {
      client_.Cancel(std::exchange(id_, 0));
      Tell(absl::ResourceExhaustedError("the SLO manifest is too large to follow"));
      return;
    }
    body_.append(data);
  }
  void OnComplete(absl::Status status) override {
    id_ = 0;
    if (status.ok() && status_ != 200) status = absl::UnavailableError("the SLO manifest was not answered");
    if (!status.ok()) {
      Tell(status);
      return;
    }
    Tell(SloDependencies(owner_.plan_.key.account, body_));
  }

 private:
  // Last: the owner may be done with this fetch, and it with this object.
  void Tell(absl::StatusOr<std::vector<std::string>> dependencies) {
    owner_.OnSloManifest(std::move(dependencies));
  }

  SharedFetch& owner_;
  origin::OriginClient& client_;
  origin::OriginClient::FetchId id_ = 0;
  int status_ = 0;
  std::string body_;
};

void StoreHeaders(HeaderViews headers, cache::EntryMetadata* metadata) {
  metadata->headers.clear();
  const std::string_view connection = FindHeader(headers, "connection");
  std::optional<size_t> vary;  // index of the stored Vary line
  for (const auto& [name, value] : headers) {
    if (!IsStoredHeader(name, connection)) continue;
    const bool is_vary = http::EqualsIgnoreCase(name, "vary");
    if (is_vary && vary) {
      metadata->headers[*vary].second.append(",").append(value);
      continue;
    }
    if (is_vary) vary = metadata->headers.size();
    metadata->headers.emplace_back(name, value);
  }
  metadata->etag = std::string(FindHeader(headers, "etag"));
  metadata->last_modified = std::string(FindHeader(headers, "last-modified"));
}

vhost::StoredFreshness FreshnessOf(const cache::Hit& hit) {
  const cache::EntryMetadata& m = hit.metadata();
  return {.stored_at = m.stored_at,
          .fresh_until = m.fresh_until,
          .stale_while_revalidate = m.stale_while_revalidate,
          .stale_if_error = m.stale_if_error,
          .invalidated = hit.invalidated()};
}

SharedFetch::SharedFetch(std::string encoded_key, FillPlan plan, cache::Store& store, Coalescer& coalescer,
                         cache::Clock clock)
    : encoded_key_(std::move(encoded_key)),
      plan_(std::move(plan)),
      store_(store),
      coalescer_(coalescer),
      clock_(std::move(clock)),
      fence_token_(store.FenceToken()) {}

SharedFetch::~SharedFetch() {
  if (regulate_ != nullptr) event_free(regulate_);
}

bool SharedFetch::Invalidated() const {
  std::shared_ptr<const cache::EntryMetadata> metadata;
  {
    absl::MutexLock lock(&mu_);
    metadata = view_.metadata;
  }
  return store_.InvalidatedSince(plan_.key, plan_.tenant->name, fence_token_,
                                 metadata ? &metadata->tags : nullptr);
}

void SharedFetch::Start(const FetchLoop& loop, Relay* leader) {
  client_ = &loop.origin;
  metrics_ = &loop.metrics;
  worker_ = loop.worker;
  leader_ = leader;
  running_ = &loop.running;
  loop_ = loop.loop;
  running_->emplace(this, shared_from_this());
  SendRequest();
}

void SharedFetch::SendRequest() {
  started_ = clock_();
  origin::FetchRequest request = plan_.request;
  if (plan_.slice) {
    const FillPlan::SliceRequest& slice = *plan_.slice;
    const uint64_t first = slice.bytes.first + (before_seek_ ? 0 : slice.seek);
    const uint64_t last = before_seek_ ? slice.bytes.first + slice.seek - 1 : slice.bytes.last;
    char range[64];
    std::snprintf(range, sizeof(range), "bytes=%llu-%llu", static_cast<unsigned long long>(first),
                  static_cast<unsigned long long>(last));
    request.headers.emplace_back("Range", range);
  }
  if (plan_.stale) {
    // ETag only when there is one: Swift 2.30 answers 304 to a non-matching If-None-Match when
    // If-Modified-Since matches, which would bring an overwritten object's old body back.
    const cache::EntryMetadata& stale = plan_.stale->metadata();
    if (!stale.etag.empty()) {
      request.headers.emplace_back("If-None-Match", stale.etag);
    } else if (!stale.last_modified.empty()) {
      request.headers.emplace_back("If-Modified-Since", stale.last_modified);
    }
  }
  fetch_id_ = client_->Start(request, this);
}

void SharedFetch::DropLeader() {
  leader_ = nullptr;
  bool pass = false;
  {
    absl::MutexLock lock(&mu_);
    pass = view_.outcome == Outcome::kPass;
  }
  if (pass && running_ != nullptr) {
    client_->Cancel(fetch_id_);
    Finish();
  }
}

void SharedFetch::PauseOrigin() {
  relay_paused_ = true;
  if (running_ != nullptr) client_->Pause(fetch_id_);
}

void SharedFetch::ResumeOrigin() {
  relay_paused_ = false;
  if (running_ != nullptr) client_->Resume(fetch_id_);
}

void SharedFetch::Abandon() {
  if (running_ == nullptr) return;
  client_->Cancel(fetch_id_);
  if (fill_) fill_->Abort();
  fill_.reset();
  Publish([](View& v) {
    if (v.outcome == Outcome::kPending) {
      v.outcome = Outcome::kFailed;
      v.failure = absl::UnavailableError("the edge is stopping");
    }
    v.broken = !v.complete;
  });
  if (leader_ != nullptr) std::exchange(leader_, nullptr)->OnRelayEnd(absl::UnavailableError("stopping"));
  coalescer_.Release(this);
  Finish();
}

SharedFetch::View SharedFetch::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return view_;
}

void SharedFetch::AddWaiter(event* wake) {
  absl::MutexLock lock(&mu_);
  waiters_.push_back({wake, 0});
  event_active(wake, EV_READ, 0);
}

void SharedFetch::RemoveWaiter(event* wake) {
  absl::MutexLock lock(&mu_);
  std::erase_if(waiters_, [wake](const Waiter& w) { return w.wake == wake; });
  if (origin_paused_) event_active(regulate_, EV_READ, 0);
}

void SharedFetch::Progress(event* wake, uint64_t delivered) {
  absl::MutexLock lock(&mu_);
  for (Waiter& w : waiters_) {
    if (w.wake == wake) w.delivered = std::max(w.delivered, delivered);
  }
  if (origin_paused_) event_active(regulate_, EV_READ, 0);
}

uint64_t SharedFetch::SlowestLocked() const {
  uint64_t slowest = spill_from_ + spilled_;
  for (const Waiter& w : waiters_) slowest = std::min(slowest, w.delivered);
  return slowest;
}

absl::Duration SharedFetch::head_latency() const {
  absl::MutexLock lock(&mu_);
  return head_latency_;
}

int SharedFetch::origin_status() const {
  absl::MutexLock lock(&mu_);
  return origin_status_;
}

void SharedFetch::Publish(const std::function<void(View&)>& change) {
  absl::MutexLock lock(&mu_);
  change(view_);
  for (const Waiter& w : waiters_) event_active(w.wake, EV_READ, 0);
}

void SharedFetch::PublishBody(uint64_t available, uint64_t seek_end) {
  // Waking every waiter for every buffer libcurl hands over would cost a wakeup per client per
  // 16 KiB; a client with data queued has no use for it.
  constexpr uint64_t kWakeBytes = 64 * 1024;
  absl::MutexLock lock(&mu_);
  view_.available = available;
  view_.seek_end = seek_end;
  const uint64_t moved = available + seek_end;  // grows as either part does
  if (moved - woken_at_ < kWakeBytes) return;
  woken_at_ = moved;
  for (const Waiter& w : waiters_) event_active(w.wake, EV_READ, 0);
}

void SharedFetch::OnHeaders(int status, HeaderViews headers) {
  // The leader's callbacks may drop the last other reference to this fetch.
  const std::shared_ptr<SharedFetch> keep_alive = shared_from_this();
  if (before_seek_) {
    if (!TakeBytesBeforeSeek(status, headers)) Break(/*zone=*/false);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    head_latency_ = clock_() - started_;
    origin_status_ = status;
    metrics_->ObserveOriginLatency(worker_, head_latency_);
  }
  if (plan_.stale && status == 304) {
    HandleNotModified(headers);
    return;
  }
  if (plan_.slice && plan_.slice->probe && status == 416) {
    // A range past the object's end is asked again from its first byte (a bounded answer that
    // tells the length: the client's range is then judged against it); one from the first byte
    // past the end means an empty object, asked for again without Range.
    client_->Cancel(fetch_id_);
    if (plan_.slice->bytes.first != 0) {
      plan_.slice->bytes = ProbeRange(plan_.slice->slicing, /*ranged=*/false, 0);
      plan_.slice->seek = 0;
    } else {
      plan_.slice.reset();
    }
    SendRequest();
    return;
  }
  if (plan_.slice && status == 200) metrics_->CountSlice(worker_, SliceEvent::kRangeIgnored);
  if (!BeginStoring(status, headers)) Pass(status, headers);
}

void SharedFetch::Pass(int status, HeaderViews headers) {
  // Not stored: later clients must not wait for this response.
  coalescer_.Release(this);
  // A range the edge asked for is no client's answer, nor is the whole object asked for in place
  // of a probe's range (which may have been a client's Range): the leader asks for its own.
  const bool own = (plan_.slice && status == 206) || (asked_whole_ && status == 200);
  Publish([own](View& v) {
    v.outcome = Outcome::kPass;
    v.relay_own = own;
  });
  if (leader_ != nullptr && !own) {
    leader_->OnRelayHead(status, headers);
  } else {
    client_->Cancel(fetch_id_);
    Finish();
  }
}

void SharedFetch::OnInterim(int status, HeaderViews headers) {
  // Only the leader's request went to the origin: the hints are its answer's, not the entry's.
  if (leader_ != nullptr) leader_->OnRelayInterim(status, headers);
}

bool SharedFetch::BeginStoring(int status, HeaderViews headers) {
  // Not stored (a 206 among others, vhost::Decide): the leader relays it, and the others fetch
  // for themselves, so a part of the object never reaches them as the whole.
  const absl::Time now = clock_();
  const vhost::RequestFacts facts{
      .method = "GET", .path = plan_.path, .listing = plan_.listing, .authorization = plan_.authorization};
  // A range the edge asked for stands for the object's answer, a 200: whether that may be stored.
  const bool ranged = plan_.slice && status == 206;
  if (plan_.slice && !plan_.slice->probe && !ranged) {
    metrics_->CountSlice(worker_, SliceEvent::kBadAnswer);  // a slice must be the 206 for its bytes
    // The stored slices would cut every answer begun from them.
    if (SaysObjectChanged(status)) DropSlices();
    return false;
  }
  const vhost::CacheDecision decision =
      vhost::Decide(plan_.tenant->cache, facts, {ranged ? 200 : status, headers}, now);
  if (!decision.store) return false;
  if (ranged && plan_.slice->probe && AskAgain(headers)) return true;
  // A 5xx that may be stored (explicit freshness) does not replace an entry that may still answer
  // for an origin in error (stale-if-error): it is relayed, and the clients get the stale entry.
  if (status >= 500 &&
      ((plan_.stale && vhost::UsableOnError(FreshnessOf(*plan_.stale), absl::ToUnixSeconds(now))) ||
       (plan_.stale_slice && vhost::UsableOnError(*plan_.stale_slice, absl::ToUnixSeconds(now)))))
    return false;
  cache::EntryMetadata meta;
  meta.tenant = plan_.tenant->name;
  meta.status = static_cast<uint16_t>(status);
  StoreHeaders(headers, &meta);
  const int64_t now_seconds = absl::ToUnixSeconds(now);
  // Age counts from when the origin made the response: stored_at is that moment.
  meta.stored_at = now_seconds - decision.age;
  meta.fresh_until = now_seconds + absl::ToInt64Seconds(decision.fresh_for);
  meta.stale_while_revalidate = Seconds32(decision.stale_while_revalidate);
  meta.stale_if_error = Seconds32(decision.stale_if_error);
  meta.tags = TenantTags(plan_.tenant->name, decision.tags);
  std::optional<uint64_t> length = ParseCount(FindHeader(headers, "content-length"));
  // A response that varies is stored for the request it answers: the values of the headers it
  // varies on (the leader's, which the origin saw) become part of its key.
  std::string variant;
  cache::Key key = plan_.key;
  bool sliced = false;
  if (ranged && !plan_.slice->probe && FindHeader(headers, "etag") != plan_.slice->etag) {
    DropSlices();  // another version: not stored among this one's slices, with its segment tags
    return false;
  }
  if (ranged && !PrepareSlice(headers, &meta, &key, &length, &sliced)) {
    metrics_->CountSlice(worker_, SliceEvent::kBadAnswer);
    if (!plan_.slice->probe) DropSlices();  // another length, or another version
    return false;
  }
  // Every Vary line counts: "Vary: ," then "Vary: *" is "*" (RFC 9110 5.3).
  if (const std::vector<std::string> names = VaryNames(vhost::CombinedField(headers, "vary"));
      !names.empty()) {
    // Varies on what cannot be named: never shared. A slice's key is its object's request's.
    if (names.front() == "*" || sliced) return false;
    variant = VariantSuffix(names, [this](std::string_view name) {
      for (const auto& [n, v] : plan_.request.headers) {
        if (http::EqualsIgnoreCase(n, name)) return std::string_view(v);
      }
      return std::string_view();
    });
    if (plan_.vary != nullptr) plan_.vary->Learn(plan_.base_key.Encode(), names);
    key = plan_.base_key;
    key.variant += variant;
  }
  if (sliced) metrics_->CountSlice(worker_, SliceEvent::kFetched);
  if (seek_ != 0) metrics_->CountSlice(worker_, SliceEvent::kSeek);
  PendingFill pending{std::move(key), std::move(meta), length, std::move(variant)};
  // A Swift large object's manifest: the entry depends on its segments (cache/dependencies.h).
  if (plan_.tenant->origin.kind != vhost::OriginKind::kHttp && !plan_.listing) {
    absl::StatusOr<std::optional<std::string>> dlo = DloDependency(pending.key.account, headers);
    if (!dlo.ok()) return false;
    if (*dlo) pending.metadata.tags.push_back(std::move(**dlo));
    if (IsSlo(headers) && sliced && plan_.slice->dependencies) {
      for (const std::string& tag : *plan_.slice->dependencies) pending.metadata.tags.push_back(tag);
    } else if (IsSlo(headers)) {
      // Its segments go into the entry's header, so the fill waits for them; the body is held
      // back meanwhile. The fence token is the object's: a segment written since it was taken
      // fences the fill.
      origin::FetchRequest request = plan_.request;
      request.url = SloManifestUrl(request.url);
      slo_pending_ = std::move(pending);
      slo_manifest_ = std::make_unique<SloManifest>(*this, *client_);
      client_->Pause(fetch_id_);
      slo_manifest_->Start(request);
      return true;
    }
  }
  return StartFill(std::move(pending));
}

bool SharedFetch::AskAgain(HeaderViews headers) {
  FillPlan::SliceRequest& asked = *plan_.slice;
  const std::optional<ContentRange> range = ParseContentRange(FindHeader(headers, "content-range"));
  if (!range || (range->first == 0 && range->last + 1 == range->total)) return false;  // whole
  const ByteRange from_start = ProbeRange(asked.slicing, /*ranged=*/false, 0);
  if (!IsStrongEtag(FindHeader(headers, "etag"))) {
    // Slices without a strong ETag could not be told from another version's: the object is
    // asked for again without Range and stored whole, as if unsliced.
    metrics_->CountSlice(worker_, SliceEvent::kNoValidator);
    asked_whole_ = asked.client_range;
    plan_.slice.reset();
  } else if (range->total <= asked.slicing.threshold &&
             (asked.bytes.first != from_start.first || asked.bytes.last != from_start.last)) {
    // Too small to slice, asked for by a range: asked again from byte 0 (once), stored whole.
    asked.bytes = from_start;
    asked.seek = 0;
  } else {
    return false;
  }
  client_->Cancel(fetch_id_);
  SendRequest();
  return true;
}

void SharedFetch::DropSlices() {
  edge::DropSlices(store_, *metrics_, worker_, plan_.key);
}

bool SharedFetch::PrepareSlice(HeaderViews headers, cache::EntryMetadata* meta, cache::Key* key,
                               std::optional<uint64_t>* length, bool* sliced) {
  const FillPlan::SliceRequest& asked = *plan_.slice;
  const std::optional<ContentRange> range = ParseContentRange(FindHeader(headers, "content-range"));
  if (!range) return false;
  if (asked.probe && range->first == 0 && range->last + 1 == range->total &&
      range->total <= asked.slicing.threshold) {
    meta->status = 200;  // the whole object, in the one answer
    DropContentRange(meta);
    *length = range->total;
    return true;
  }
  const uint64_t size = asked.slicing.size;
  if (asked.seek != 0 ? range->first != asked.bytes.first + asked.seek
                      : range->first % size != 0 || (!asked.probe && range->first != asked.bytes.first)) {
    return false;
  }
  const uint64_t index = (range->first - asked.seek) / size;
  const ByteRange slice = SliceBytes(asked.slicing, index, range->total);
  if (range->last < slice.last) return false;  // the answer must hold the rest of the slice
  DropContentRange(meta);
  char content_range[80];
  std::snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%llu",
                static_cast<unsigned long long>(slice.first), static_cast<unsigned long long>(slice.last),
                static_cast<unsigned long long>(range->total));
  meta->headers.emplace_back("Content-Range", content_range);
  meta->status = 206;
  if (asked.probe) SliceKey(plan_.key, size, index, key);  // else plan_.key is the slice's already
  answer_length_ = *length;
  *length = slice.length();
  seek_ = asked.seek;
  body_limit_ = slice.length() - seek_;
  *sliced = true;
  return true;
}

void SharedFetch::AskForBytesBeforeSeek() {
  before_seek_ = true;
  body_received_ = 0;
  body_limit_ = seek_;
  answer_length_.reset();
  fill_->Seek(0);
  SendRequest();
  // Every byte from the seek on is in (as published): worth a wake-up however few came since.
  Publish([](View&) {});
}

bool SharedFetch::TakeBytesBeforeSeek(int status, HeaderViews headers) {
  std::shared_ptr<const cache::EntryMetadata> meta;
  {
    absl::MutexLock lock(&mu_);
    meta = view_.metadata;
  }
  const std::optional<ContentRange> range = ParseContentRange(FindHeader(headers, "content-range"));
  const std::optional<ContentRange> slice = SliceOf(*meta);
  const bool same_version =
      range && range->total == slice->total && FindHeader(headers, "etag") == meta->etag;
  if (status == 206 && same_version && range->first == slice->first &&
      range->last + 1 == slice->first + seek_) {
    answer_length_ = ParseCount(FindHeader(headers, "content-length"));
    return true;
  }
  if (status == 200) metrics_->CountSlice(worker_, SliceEvent::kRangeIgnored);
  metrics_->CountSlice(worker_, SliceEvent::kBadAnswer);
  if (status == 206 ? !same_version : SaysObjectChanged(status)) DropSlices();
  fill_.reset();  // not stored: the clients that wanted the bytes before the seek are cut
  coalescer_.Release(this);
  return false;
}

bool SharedFetch::StartFill(PendingFill pending) {
  auto fill = store_.BeginFill(pending.key, pending.metadata, pending.length, fence_token_);
  if (!fill.ok()) return false;  // no zone can take it: relay it uncached
  const int spool_fd = ::dup((*fill)->fd());
  if (spool_fd < 0) return false;
  fill_ = std::move(*fill);
  pending.metadata.key = pending.key.Encode();
  auto shared_meta = std::make_shared<const cache::EntryMetadata>(std::move(pending.metadata));
  auto spool = std::make_shared<const SpoolFile>(spool_fd);
  if (seek_ != 0) fill_->Seek(seek_);
  Publish([&](View& v) {
    v.outcome = Outcome::kStreaming;
    v.metadata = shared_meta;
    v.content_length = pending.length;
    v.spool = spool;
    v.body_offset = fill_->body_offset();
    v.variant = pending.variant;
    if (seek_ != 0) {
      v.seek = seek_;
      v.seek_end = seek_;
    }
  });
  return true;
}

void SharedFetch::OnSloManifest(absl::StatusOr<std::vector<std::string>> dependencies) {
  const std::shared_ptr<SharedFetch> keep_alive = shared_from_this();
  PendingFill pending = *std::exchange(slo_pending_, std::nullopt);
  const int status = pending.metadata.status;
  if (dependencies.ok()) {
    for (std::string& tag : *dependencies) pending.metadata.tags.push_back(std::move(tag));
  }
  // Copied: StartFill consumes `pending`, and Pass needs the head it would have stored.
  std::vector<std::pair<std::string, std::string>> head = pending.metadata.headers;
  if (pending.length) head.emplace_back("Content-Length", std::to_string(*pending.length));
  if (!dependencies.ok() || !StartFill(std::move(pending))) {
    // Its segments unknown (or no zone for it): relayed, never stored.
    const std::vector<std::pair<std::string_view, std::string_view>> views(head.begin(), head.end());
    Pass(status, views);
    if (running_ == nullptr) return;
  }
  // The body held back, in order: what had come, then (resumed) the rest, or its end.
  if (!slo_early_body_.empty()) OnData(std::exchange(slo_early_body_, {}));
  if (running_ == nullptr) return;
  if (slo_completed_) {
    OnComplete(*slo_completed_);
  } else if (!relay_paused_) {
    client_->Resume(fetch_id_);
  }
}

void SharedFetch::HandleNotModified(HeaderViews headers) {
  const cache::Hit& stale = *plan_.stale;
  cache::EntryMetadata meta = stale.metadata();
  // RFC 9111 4.3.4: the 304's headers replace the stored ones of the same name.
  std::vector<std::pair<std::string, std::string>> merged;
  for (const auto& [name, value] : meta.headers) {
    if (FindHeader(headers, name).empty()) merged.emplace_back(name, value);
  }
  const std::string_view connection = FindHeader(headers, "connection");
  for (const auto& [name, value] : headers) {
    if (IsStoredHeader(name, connection)) merged.emplace_back(name, value);
  }
  std::vector<std::pair<std::string_view, std::string_view>> views(merged.begin(), merged.end());
  StoreHeaders(views, &meta);
  const absl::Time now = clock_();
  const vhost::RequestFacts facts{
      .method = "GET", .path = plan_.path, .listing = plan_.listing, .authorization = plan_.authorization};
  // A slice is stored as its object's answer would be (BeginStoring): Decide sees a 200.
  const int status = meta.status == 206 ? 200 : meta.status;
  const vhost::CacheDecision decision = vhost::Decide(plan_.tenant->cache, facts, {status, views}, now);
  const int64_t now_seconds = absl::ToUnixSeconds(now);
  meta.stored_at = now_seconds;
  meta.fresh_until = now_seconds + absl::ToInt64Seconds(decision.fresh_for);
  meta.stale_while_revalidate = Seconds32(decision.stale_while_revalidate);
  meta.stale_if_error = Seconds32(decision.stale_if_error);
  meta.tags = TenantTags(plan_.tenant->name, decision.tags);
  // The body is unchanged, so are the objects it is made of (a large object's segments).
  for (const std::string& tag : stale.metadata().tags) {
    if (cache::IsDependencyTag(tag)) meta.tags.push_back(tag);
  }
  // The waiting clients are answered first; the copy below only refreshes the stored entry.
  coalescer_.Release(this);
  auto shared_meta = std::make_shared<const cache::EntryMetadata>(meta);
  Publish([&](View& v) {
    v.outcome = Outcome::kNotModified;
    v.metadata = shared_meta;
  });
  // An entry revalidated while still fresh (the edge was not caught up with the purge log) needs
  // no new copy: the origin only confirmed it.
  if (decision.store &&
      vhost::DecideUse(FreshnessOf(stale), {}, now_seconds, /*trusted=*/true) != vhost::Use::kFresh) {
    // The body is unchanged: the refreshed entry copies it (file to file, off this loop).
    if (std::optional<cache::Hit> source = stale.Duplicate())
      store_.Refresh(plan_.key, std::move(meta), fence_token_, std::move(*source));
  }
}

void SharedFetch::OnData(std::string_view data) {
  const std::shared_ptr<SharedFetch> keep_alive = shared_from_this();
  if (slo_pending_) {
    slo_early_body_.append(data);  // what libcurl had in hand when paused: one receive buffer
    return;
  }
  if (body_limit_ == UINT64_MAX) {
    TakeBody(data);
    return;
  }
  // A slice: what lies past its end is not its; a longer answer (a probe's) ends there.
  const uint64_t room = body_limit_ - std::min(body_limit_, body_received_);
  const bool end = data.size() >= room;
  data = data.substr(0, std::min<uint64_t>(room, data.size()));
  body_received_ += data.size();
  TakeBody(data);
  if (end && running_ != nullptr && (!answer_length_ || *answer_length_ > body_limit_)) {
    client_->Cancel(fetch_id_);
    slo_completed_.reset();  // this is the answer's end, whatever came after the bytes held back
    OnComplete(absl::OkStatus());
  }
}

void SharedFetch::TakeBody(std::string_view data) {
  if (spill_) {
    if (Spill(data)) Regulate();
    return;
  }
  if (fill_) {
    if (!fill_->Append(data).ok()) {
      // The zone failed or filled up mid-body: the entry is not stored, and later clients fetch
      // anew, but the clients streaming it get the rest of the origin's bytes from the spill.
      const uint64_t written = fill_->written();
      fill_.reset();
      coalescer_.Release(this);
      if (seek_ != 0 || !StartSpill(written)) {  // the spill holds bytes in order only
        Break(/*zone=*/true);
        return;
      }
      metrics_->CountFillSpilled(worker_);
      if (Spill(data)) Regulate();
      return;
    }
    PublishBody(FromFirstByte(), seek_ != 0 ? fill_->written() : 0);
    return;
  }
  if (leader_ != nullptr) {
    leader_->OnRelayData(data);
  } else if (running_ != nullptr) {
    client_->Cancel(fetch_id_);
    Finish();
  }
}

uint64_t SharedFetch::FromFirstByte() const {
  if (seek_ == 0) return fill_->written();
  if (!before_seek_) return 0;
  return fill_->position() < seek_ ? fill_->position() : fill_->written();
}

void SharedFetch::OnComplete(absl::Status status) {
  const std::shared_ptr<SharedFetch> keep_alive = shared_from_this();
  if (slo_pending_) {
    slo_completed_ = status;  // the whole body came with the head: it waits for the manifest
    return;
  }
  if (spill_) {
    const uint64_t total = spill_from_ + spilled_;
    Publish([&](View& v) {
      v.available = total;
      v.complete = status.ok() && (!v.content_length || *v.content_length == total);
      v.broken = !v.complete;
    });
  } else if (fill_) {
    // (A purge since the fetch began fences the fill: its bytes before the seek would go nowhere.)
    if (seek_ != 0 && !before_seek_ && status.ok() && body_received_ == body_limit_ && !Invalidated()) {
      AskForBytesBeforeSeek();
      return;
    }
    const uint64_t written = FromFirstByte();
    const uint64_t seek_end = fill_->written();
    bool complete = false;
    std::optional<uint64_t> expected;
    {
      absl::MutexLock lock(&mu_);
      expected = view_.content_length;
    }
    if (status.ok() && (!expected || *expected == written)) {
      complete = true;
      (void)fill_->Commit();  // fenced or failed: handed to the waiting clients, not stored
    }
    fill_.reset();
    // Committed first, released after: a request in between finds the fetch, never neither.
    coalescer_.Release(this);
    Publish([&](View& v) {
      v.available = written;
      v.seek_end = seek_end;
      v.complete = complete;
      v.broken = !complete;
    });
  } else {
    coalescer_.Release(this);
    Outcome outcome = Outcome::kPending;
    Publish([&](View& v) {
      outcome = v.outcome;
      if (outcome == Outcome::kPending) {
        metrics_->CountOriginError(worker_);
        v.outcome = Outcome::kFailed;
        v.failure = status.ok() ? absl::UnavailableError("origin sent no response") : status;
      }
    });
    if (outcome == Outcome::kPass && leader_ != nullptr) std::exchange(leader_, nullptr)->OnRelayEnd(status);
  }
  Finish();
}

bool SharedFetch::StartSpill(uint64_t written) {
  // Memory, not another drive: whatever failed this zone may fail the next, and the spill is
  // bounded by Regulate.
  const int fd = ::memfd_create("edge-spill", MFD_CLOEXEC);
  if (fd < 0) return false;
  regulate_ = event_new(
      loop_, -1, 0, [](evutil_socket_t, short, void* self) { static_cast<SharedFetch*>(self)->Regulate(); },
      this);
  if (regulate_ == nullptr) {
    ::close(fd);
    return false;
  }
  spill_ = std::make_shared<const SpoolFile>(fd);
  spill_from_ = written;
  Publish([&](View& v) {
    v.spill = spill_;
    v.spill_from = written;
  });
  return true;
}

bool SharedFetch::Spill(std::string_view data) {
  const uint64_t at = spilled_;
  for (size_t done = 0; done < data.size();) {
    const ssize_t n =
        ::pwrite(spill_->fd, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Break(/*zone=*/false);  // out of memory: the origin's bytes have nowhere to go
      return false;
    }
    done += static_cast<size_t>(n);
  }
  spilled_ += data.size();
  PublishBody(spill_from_ + spilled_, 0);
  return true;
}

void SharedFetch::Regulate() {
  if (running_ == nullptr || !spill_) return;
  uint64_t slowest = 0;
  bool pause = false, resume = false;
  {
    absl::MutexLock lock(&mu_);
    slowest = SlowestLocked();
    const bool behind = spill_from_ + spilled_ - slowest > kSpillAhead;
    pause = behind && !origin_paused_;
    resume = !behind && origin_paused_;
    origin_paused_ = behind;
  }
  // Every waiter has been sent what lies behind `slowest`: its memory goes back, in 1 MiB steps.
  constexpr uint64_t kStep = 1 << 20;
  const uint64_t freeable = slowest > spill_from_ ? (slowest - spill_from_) / kStep * kStep : 0;
  if (freeable > punched_ &&
      ::fallocate(spill_->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(punched_),
                  static_cast<off_t>(freeable - punched_)) == 0) {
    punched_ = freeable;
  }
  if (pause) client_->Pause(fetch_id_);
  if (resume) client_->Resume(fetch_id_);
}

void SharedFetch::Break(bool zone) {
  Publish([zone](View& v) {
    v.broken = true;
    v.zone_broke = zone;
  });
  client_->Cancel(fetch_id_);
  Finish();
}

void SharedFetch::Finish() {
  if (running_ == nullptr) return;
  slo_manifest_.reset();  // its fetch is on this loop's client, which this fetch may outlive
  std::exchange(running_, nullptr)->erase(this);  // may destroy this
}

Coalescer::Acquired Coalescer::Acquire(FillPlan& plan, cache::Store& store, cache::Clock clock,
                                       bool unless_stored) {
  std::string encoded = plan.key.Encode();
  absl::MutexLock lock(&mu_);
  if (auto it = fetches_.find(encoded); it != fetches_.end()) {
    // A fetch that began before a purge of its key streams the old version: its clients keep it,
    // new ones get a fetch of their own.
    if (!it->second->Invalidated()) return {it->second, false};
    fetches_.erase(it);
  }
  if (unless_stored && store.Lookup(plan.key)) return {};
  auto fetch = std::make_shared<SharedFetch>(encoded, std::move(plan), store, *this, std::move(clock));
  fetches_.emplace(std::move(encoded), fetch);
  return {std::move(fetch), true};
}

void Coalescer::Release(const SharedFetch* fetch) {
  absl::MutexLock lock(&mu_);
  if (auto it = fetches_.find(fetch->encoded_key()); it != fetches_.end() && it->second.get() == fetch) {
    fetches_.erase(it);
  }
}

size_t Coalescer::in_flight() const {
  absl::MutexLock lock(&mu_);
  return fetches_.size();
}

}  // namespace edge
