#include "purge-daemon/bus/confirmer.h"

#include <utility>

#include "absl/time/clock.h"

namespace bus {

Confirmer::Confirmer(ConfirmerOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

Confirmer::~Confirmer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Confirmer::AppendAndWait(std::string job, std::vector<cache::Invalidation> invalidations, Done done) {
  Submit(Job{std::move(job), std::move(invalidations), std::nullopt, std::move(done), absl::Now()});
}

void Confirmer::Wait(StreamId entry, Done done) {
  Submit(Job{"", {}, entry, std::move(done), absl::Now()});
}

void Confirmer::Submit(Job job) {
  absl::MutexLock lock(&mu_);
  incoming_.push_back(std::move(job));
}

void Confirmer::Settle(RedisConnection& redis, bool all) {
  if (waiting_.empty()) return;
  absl::StatusOr<EdgesView> view = all ? absl::UnavailableError("stopping") : ReadEdges(redis);
  const absl::Time now = absl::Now();
  std::erase_if(waiting_, [&](Job& job) {
    ConfirmResult result;
    if (view.ok()) {
      for (const EdgeProgress& edge : view->edges) {
        if (MayServeOlder(edge, *job.entry, view->now_ms, options_.margin)) {
          ++result.pending;
        } else if (edge.cursor >= *job.entry) {
          ++result.confirmed;
        }
      }
    }
    const bool timed_out = all || now - job.start >= options_.timeout;
    if (!timed_out && (!view.ok() || result.pending > 0)) return false;
    // Unread reports (Redis away until the end) leave every edge unconfirmed: at least one pending.
    if (!view.ok()) result.pending = std::max(result.pending, 1);
    result.waited = now - job.start;
    job.done(result, redis);
    return true;
  });
}

void Confirmer::Run() {
  RedisConnection redis(options_.redis_host, options_.redis_port, absl::Seconds(1));
  while (true) {
    std::deque<Job> incoming;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !incoming_.empty(); };
      // Nothing to watch: sleep until a write comes. Else look at the edges again after `poll`.
      if (waiting_.empty()) {
        mu_.Await(absl::Condition(&ready));
      } else {
        mu_.AwaitWithTimeout(absl::Condition(&ready), options_.poll);
      }
      incoming.swap(incoming_);
      stopping = stopping_;
    }
    for (Job& job : incoming) {
      if (!job.entry) {
        absl::StatusOr<StreamId> added = AppendPlan(redis, job.name, std::move(job.invalidations),
                                                    options_.max_log_length, options_.repeat_delay);
        if (!added.ok()) {
          ConfirmResult result;
          result.appended = false;
          result.waited = absl::Now() - job.start;
          job.done(result, redis);
          continue;
        }
        job.entry = *added;
      }
      waiting_.push_back(std::move(job));
    }
    Settle(redis, stopping);
    if (stopping) return;
  }
}

}  // namespace bus
