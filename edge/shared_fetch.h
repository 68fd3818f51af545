// One origin fetch shared by every client that asks for the same key while it runs, on any
// worker thread. A storable body goes into the cache fill's temp file as it arrives and each
// client streams it from there at its own pace (sendfile), so a slow client never stalls the fetch
// for the others and memory stays bounded however large the object. A response that may not be
// stored goes to the client that started the fetch only (the leader, on the fetch's own loop);
// the others are told to fetch for themselves.
//
// Threads: Start and the origin callbacks run on the loop the fetch was started on; Snapshot,
// AddWaiter and RemoveWaiter may be called from any thread. Waiters are libevent events on their
// own loops, activated whenever there is something new to see.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "cache/store.h"
#include "edge/metrics.h"
#include "edge/origin/origin_client.h"
#include "edge/slices.h"
#include "edge/vary.h"
#include "vhost-config/cache_policy.h"
#include "vhost-config/freshness.h"
#include "vhost-config/loader.h"

struct event;
struct event_base;

namespace edge {

class Coalescer;
class SharedFetch;

// The fetches running on one loop: each holds itself here until its origin fetch is over.
using RunningFetches = absl::flat_hash_map<const SharedFetch*, std::shared_ptr<SharedFetch>>;

// One worker loop's means to fetch: its origin client, its running fetches, its metrics shard.
struct FetchLoop {
  origin::OriginClient& origin;
  RunningFetches& running;
  Metrics& metrics;
  size_t worker;
  event_base* loop;
};

// A descriptor shared by the waiters of a fill; closed when the last one lets go.
struct SpoolFile {
  explicit SpoolFile(int fd) : fd(fd) {}
  ~SpoolFile();
  SpoolFile(const SpoolFile&) = delete;
  const int fd;
};

// What a fetch needs to decide whether and how to store: copied out of the request that started
// it, because the fetch outlives that request.
struct FillPlan {
  std::shared_ptr<const vhost::TenantTable> tenants;  // keeps `tenant` alive
  const vhost::Tenant* tenant = nullptr;
  cache::Key key;       // what is fetched: the base key, or a variant when the object's Vary is known
  cache::Key base_key;  // the key without Vary values
  VaryIndex* vary = nullptr;
  std::string path;  // request path, for the tenant's path rules
  bool listing = false;
  // The leader sent Authorization (http tenants; `request` carries it to the site): the response
  // is stored, and so shared, only when it allows that (RFC 9111 3.5); otherwise only the leader
  // gets it (kPass) and every other waiter fetches for itself.
  bool authorization = false;
  origin::FetchRequest request;
  // The stale entry being revalidated, if any: its validators go to the origin and a 304 refreshes it.
  std::optional<cache::Hit> stale;
  // A ranged fetch of an object (edge/slices.h), for `bytes`. A probe (the object unknown) stores
  // an answer that holds the whole object, up to the threshold, whole under `key`; any other
  // answer is stored as the slice it begins with. Else the fetch is of one slice: only a 206 of
  // those bytes is stored, under `key` (the slice's).
  struct SliceRequest {
    Slicing slicing;
    ByteRange bytes;
    bool probe = false;
    // A slice of a static large object: the segments its first slice depends on (the manifest is
    // not fetched again per slice; a changed object has another ETag, which IsSliceOf catches).
    std::optional<std::vector<std::string>> dependencies;
    // Not a probe: the ETag of the version the slice belongs to. An answer with another is not
    // stored (it would carry that version's segment tags) and drops the object's slices.
    std::string etag;
    // > 0 (SeekInto): the slice's bytes from bytes.first + seek on are asked for first, those
    // before once they have come, both answers into the one entry (the second must be the same
    // version's). A probe's answer that begins anywhere else is not stored.
    uint64_t seek = 0;
    bool client_range = false;  // a probe for a client's Range
  };
  std::optional<SliceRequest> slice;
  // A large object's stored first slice, stale: not revalidated (the object is probed), but it
  // answers an origin in error within stale-if-error, so a 5xx does not replace it.
  std::optional<vhost::StoredFreshness> stale_slice;
};

class SharedFetch : public origin::FetchObserver, public std::enable_shared_from_this<SharedFetch> {
 public:
  enum class Outcome {
    kPending,      // no response head yet
    kStreaming,    // a storable response: its body grows in the spool file
    kNotModified,  // the origin confirmed the stale entry: `metadata` is its refreshed header
    kPass,         // not storable: the leader relays it; the others fetch for themselves
    kFailed,       // no response (refused, reset, timed out, or the edge is stopping)
  };

  // What a waiter sees; taken under the lock.
  struct View {
    Outcome outcome = Outcome::kPending;
    std::shared_ptr<const cache::EntryMetadata> metadata;
    std::optional<uint64_t> content_length;  // the origin's, when it sent one
    std::shared_ptr<const SpoolFile> spool;  // the fill's file, readable (kStreaming)
    uint64_t body_offset = 0;
    uint64_t available = 0;  // body bytes in the spool from the first on
    // A slice fetched from a seek (FillPlan::SliceRequest::seek): its bytes [seek, seek_end) are
    // in the spool too, before those ahead of them.
    uint64_t seek = UINT64_MAX;
    uint64_t seek_end = 0;
    // The end of the body bytes in the spool that follow on from `offset`.
    uint64_t ReadableFrom(uint64_t offset) const {
      return offset >= seek || available >= seek ? std::max(available, seek_end) : available;
    }
    bool complete = false;    // the whole body is there
    bool broken = false;      // the body ended early: no more will come
    bool zone_broke = false;  // ... because the fill's zone failed and no spill could be made
    // The fill failed mid-body (its zone filled up or erred): body bytes from `spill_from` on are
    // in `spill`, an anonymous memory file, from its offset 0, and are not stored. Bytes of it
    // behind every waiter's Progress are freed, and the origin waits while the slowest waiter
    // is kSpillAhead behind, so memory stays bounded.
    std::shared_ptr<const SpoolFile> spill;
    uint64_t spill_from = 0;
    absl::Status failure;  // kFailed
    std::string variant;   // kStreaming, a response with Vary: the VariantSuffix it is stored for
    // kPass of what the edge asked for in place of the client's request (a slice, a probe's
    // object): no client gets it, the leader too fetches what it asked for itself.
    bool relay_own = false;
  };

  // The leader's side of a pass response, called on the fetch's loop.
  class Relay {
   public:
    virtual ~Relay() = default;
    virtual void OnRelayHead(int status,
                             std::span<const std::pair<std::string_view, std::string_view>> headers) = 0;
    virtual void OnRelayData(std::string_view data) = 0;
    // An interim (1xx) response from the origin: never stored, the leader may pass it on.
    virtual void OnRelayInterim(int status,
                                std::span<const std::pair<std::string_view, std::string_view>> headers) = 0;
    virtual void OnRelayEnd(absl::Status status) = 0;
  };

  SharedFetch(std::string encoded_key, FillPlan plan, cache::Store& store, Coalescer& coalescer,
              cache::Clock clock);
  ~SharedFetch() override;

  // Sends the origin request on `loop` and keeps the fetch in its running set until it is over.
  // `leader` (may be null) relays a pass response.
  void Start(const FetchLoop& loop, Relay* leader);
  // The leader went away: a pass response is then cancelled.
  void DropLeader();
  // Relay backpressure (the fetch's loop only).
  void PauseOrigin();
  void ResumeOrigin();
  // The fetch's loop is stopping: waiters see kFailed or a broken body.
  void Abandon();

  View Snapshot() const;
  // `wake` is activated on every change until removed; it is activated once at once, so the
  // waiter takes its first snapshot from its own loop.
  void AddWaiter(event* wake);
  void RemoveWaiter(event* wake);
  // A waiter's client has been sent (not just queued) the body up to `delivered`.
  void Progress(event* wake, uint64_t delivered);
  static constexpr uint64_t kSpillAhead = 8 << 20;
  const std::string& encoded_key() const { return encoded_key_; }
  // Whether an invalidation since this fetch began may cover it (or, once its head is known, the
  // objects it depends on: a large object's segments): then it must not be joined.
  bool Invalidated() const;
  // Time to the response head; zero until then.
  absl::Duration head_latency() const;
  int origin_status() const;  // the response's status, 0 until the head

  // origin::FetchObserver, on the fetch's loop.
  void OnHeaders(int status, std::span<const std::pair<std::string_view, std::string_view>> headers) override;
  void OnInterim(int status, std::span<const std::pair<std::string_view, std::string_view>> headers) override;
  void OnData(std::string_view data) override;
  void OnComplete(absl::Status status) override;

 private:
  void SendRequest();
  // The body as it arrives, a slice's cut at its end.
  void TakeBody(std::string_view data);
  // A probe's 206 that may be stored but not as slices: asks again (true) without Range when it
  // has no strong ETag, or once from byte 0 when the object is no larger than the threshold.
  bool AskAgain(std::span<const std::pair<std::string_view, std::string_view>> headers);
  // The answer to a slice's request says its object changed: every stored slice of it goes.
  void DropSlices();
  // A slice answer (a 206): stores it whole (a probe that holds the whole object) or as its
  // slice, in `meta`, `key` and `length`; false if the answer is not what was asked for.
  bool PrepareSlice(std::span<const std::pair<std::string_view, std::string_view>> headers,
                    cache::EntryMetadata* meta, cache::Key* key, std::optional<uint64_t>* length,
                    bool* sliced);
  // Applies `change` and wakes the waiters.
  void Publish(const std::function<void(View&)>& change);
  // More body arrived: waiters are woken once enough has come that it is worth their while.
  void PublishBody(uint64_t available, uint64_t seek_end);
  // The fill's body bytes that follow on from its first (a seek's leave a hole before them).
  uint64_t FromFirstByte() const;
  // A slice fetched from a seek: the bytes before it are asked for, into the same fill.
  void AskForBytesBeforeSeek();
  // The answer for the bytes before a seek: false (the fetch is over) unless it is those bytes of
  // the version the fill holds.
  bool TakeBytesBeforeSeek(int status,
                           std::span<const std::pair<std::string_view, std::string_view>> headers);
  void HandleNotModified(std::span<const std::pair<std::string_view, std::string_view>> headers);
  bool BeginStoring(int status, std::span<const std::pair<std::string_view, std::string_view>> headers);
  // What BeginStoring decided to store, before the fill begins.
  struct PendingFill {
    cache::Key key;
    cache::EntryMetadata metadata;
    std::optional<uint64_t> length;
    std::string variant;
  };
  // Begins the fill (the waiters stream it from now on); false if no zone can take it.
  bool StartFill(PendingFill pending);
  // Not stored: the leader relays the answer, later clients do not wait for it.
  void Pass(int status, std::span<const std::pair<std::string_view, std::string_view>> headers);
  // A static large object: its segments are learnt from its manifest before its fill begins
  // (they are part of the entry's header), the body held back (origin paused) meanwhile.
  class SloManifest;
  void OnSloManifest(absl::StatusOr<std::vector<std::string>> dependencies);
  void Finish();  // the origin fetch is over: leaves `running_` (which may destroy it)
  // The fill failed with `written` body bytes in the spool: the rest goes to the spill. False
  // if no spill can be made.
  bool StartSpill(uint64_t written);
  // Appends to the spill; false (and the fetch over, the body broken) if that fails.
  bool Spill(std::string_view data);
  // On the fetch's loop: frees the spill behind every waiter, pauses or resumes the origin.
  void Regulate();
  uint64_t SlowestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Break(bool zone);  // the body ends here: waiters see it broken, the fetch is over

  const std::string encoded_key_;
  FillPlan plan_;
  cache::Store& store_;
  Coalescer& coalescer_;
  const cache::Clock clock_;

  // The fetch's loop only.
  origin::OriginClient* client_ = nullptr;
  origin::OriginClient::FetchId fetch_id_ = 0;
  Metrics* metrics_ = nullptr;
  size_t worker_ = 0;
  Relay* leader_ = nullptr;
  std::unique_ptr<cache::Fill> fill_;
  std::optional<PendingFill> slo_pending_;  // waiting for the manifest
  std::unique_ptr<SloManifest> slo_manifest_;
  std::string slo_early_body_;                 // body bytes libcurl had in hand when the fetch was paused
  std::optional<absl::Status> slo_completed_;  // the object's fetch ended before its manifest's
  bool relay_paused_ = false;                  // by the leader (PauseOrigin)
  // A slice taken from a longer answer (a probe's): body bytes past `body_limit_` are not stored,
  // and the transfer ends there.
  uint64_t body_limit_ = UINT64_MAX;
  uint64_t body_received_ = 0;
  std::optional<uint64_t> answer_length_;  // the answer's Content-Length
  // A slice fetched from a seek: the body offset its first answer began at, and whether the
  // bytes before it are being fetched now.
  uint64_t seek_ = 0;
  bool before_seek_ = false;
  bool asked_whole_ = false;  // a probe for a client's Range asked for again without (AskAgain)
  // Taken when the fetch is made, before its request leaves: an invalidation applied after this
  // fences the fill and keeps new clients from joining.
  const uint64_t fence_token_;
  absl::Time started_;
  RunningFetches* running_ = nullptr;  // set while the origin fetch runs
  event_base* loop_ = nullptr;
  std::shared_ptr<const SpoolFile> spill_;
  uint64_t spill_from_ = 0;
  uint64_t spilled_ = 0;       // bytes in the spill
  uint64_t punched_ = 0;       // spill bytes freed (a hole punched), from its start
  event* regulate_ = nullptr;  // runs Regulate on the fetch's loop when a waiter moves on

  mutable absl::Mutex mu_;
  View view_ ABSL_GUARDED_BY(mu_);
  // `available` + `seek_end` when waiters were last woken for data.
  uint64_t woken_at_ ABSL_GUARDED_BY(mu_) = 0;
  struct Waiter {
    event* wake;
    uint64_t delivered;
  };
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  bool origin_paused_ ABSL_GUARDED_BY(mu_) = false;  // by Regulate, for the spill
  absl::Duration head_latency_ ABSL_GUARDED_BY(mu_);
  int origin_status_ ABSL_GUARDED_BY(mu_) = 0;
};

// The fetches in flight, by encoded key, for every worker thread. Thread-safe.
class Coalescer {
 public:
  struct Acquired {
    std::shared_ptr<SharedFetch> fetch;  // null: stored meanwhile (`unless_stored`)
    bool started_here = false;           // the caller must Start it
  };
  // The fetch in flight for the plan's key, or a new one made from `plan` and registered. With
  // `unless_stored`, none if the key is stored by then: a fill commits before it leaves, so a
  // caller whose lookup missed just before never fetches what was stored meanwhile.
  Acquired Acquire(FillPlan& plan, cache::Store& store, cache::Clock clock, bool unless_stored = false);
  // Unregisters `fetch` if it is still the one registered for its key: later clients look up the
  // cache (or start anew) instead of joining it.
  void Release(const SharedFetch* fetch);
  size_t in_flight() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<SharedFetch>> fetches_ ABSL_GUARDED_BY(mu_);
};

// The origin headers to store with an entry (IsStoredHeader), and its validators. Vary's lines
// are stored as one, combined (RFC 9110 5.3), so whoever reads the entry's Vary reads all of it.
void StoreHeaders(std::span<const std::pair<std::string_view, std::string_view>> headers,
                  cache::EntryMetadata* metadata);

// An entry's times, for vhost::DecideUse and vhost::UsableOnError.
vhost::StoredFreshness FreshnessOf(const cache::Hit& hit);

}  // namespace edge
