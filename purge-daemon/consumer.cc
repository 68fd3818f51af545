#include "purge-daemon/consumer.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "purge-daemon/bus/protocol.h"
#include "purge-daemon/planner.h"

namespace purge {

namespace {

constexpr int kBatch = 1000;
// Events in one read from which a batch window is waited for, to coalesce what follows.
constexpr size_t kBurst = 16;

// Appends the due repeats (score <= now) to the log, numbered like every entry (see
// bus::AppendToLog), and removes them, atomically, so two daemons never append the same repeat
// twice. An item is "job|invalidations-json".
constexpr char kMoveDueRepeats[] = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, item in ipairs(due) do
  local bar = string.find(item, '|', 1, true)
  local seq = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'job', string.sub(item, 1, bar - 1),
             'track', '0', 'inv', string.sub(item, bar + 1))
  redis.call('ZREM', KEYS[1], item)
end
return #due
)lua";

}  // namespace

EventConsumer::EventConsumer(ConsumerOptions options) : options_(std::move(options)) {}

EventConsumer::~EventConsumer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void EventConsumer::Start() {
  bus::ConfirmerOptions confirmer;
  confirmer.redis_host = options_.redis_host;
  confirmer.redis_port = options_.redis_port;
  confirmer.timeout = options_.confirm_timeout;
  confirmer_ = std::make_unique<bus::Confirmer>(std::move(confirmer));
  thread_ = std::thread([this] { Run(); });
}

EventConsumer::Stats EventConsumer::GetStats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status EventConsumer::EnsureGroup(bus::RedisConnection& redis) {
  // From the stream's start ("0"): events written before any daemon ever ran are planned too.
  absl::StatusOr<bus::RedisReply> created = redis.Command(
      {"XGROUP", "CREATE", std::string(bus::kEventStream), std::string(bus::kPlannerGroup), "0", "MKSTREAM"});
  if (created.ok() || absl::StrContains(created.status().message(), "BUSYGROUP")) return absl::OkStatus();
  return created.status();
}

absl::Status EventConsumer::Process(bus::RedisConnection& redis, const std::vector<bus::StreamEntry>& entries,
                                    bool claimed) {
  if (entries.empty()) return absl::OkStatus();
  std::vector<cache::Invalidation> plan;
  std::vector<std::pair<std::string, int64_t>> confirms;  // waiting writers: confirm id, event time
  for (const bus::StreamEntry& entry : entries) {
    absl::StatusOr<bus::WriteEvent> event = bus::ParseEvent(entry.fields);
    if (!event.ok()) {
      std::fprintf(stderr, "purge-daemon: skipped malformed write event %s: %s\n", entry.id.c_str(),
                   std::string(event.status().message()).c_str());
      continue;
    }
    for (cache::Invalidation& inv : PlanWrite(*event)) plan.push_back(std::move(inv));
    if (!event->confirm.empty()) confirms.emplace_back(std::move(event->confirm), event->time_ms);
  }
  Coalesce(&plan);
  const size_t planned = plan.size();
  const std::string job = absl::StrCat("w-", entries.front().id);
  std::optional<bus::StreamId> added;
  if (!plan.empty()) {
    absl::StatusOr<bus::StreamId> appended =
        bus::AppendPlan(redis, job, std::move(plan), options_.max_log_length, options_.repeat_delay);
    if (!appended.ok()) return appended.status();  // not acknowledged: planned again later
    added = *appended;
  }
  // The writers waiting (the Swift middleware) hear once every edge that may serve what their
  // write replaced has applied the entry.
  for (const auto& waiter : confirms) {
    const int64_t time_ms = waiter.second;  // a plain name: clang 14 cannot capture a structured binding
    auto reply = [this, key = bus::ConfirmKey(waiter.first), time_ms](const bus::ConfirmResult& result,
                                                                      bus::RedisConnection& r) {
      (void)r.Command({"RPUSH", key, absl::StrCat(result.confirmed, " ", result.pending)});
      (void)r.Command({"EXPIRE", key, "60"});
      absl::MutexLock lock(&mu_);
      ++(result.pending > 0 ? stats_.unconfirmed : stats_.confirmed);
      // The writer's wait, from its event's time (the middleware's clock, as the daemon's in sync).
      stats_.confirm_wait.Observe(absl::Now() - absl::FromUnixMillis(time_ms));
    };
    if (added) {
      confirmer_->Wait(*added, std::move(reply));
    } else {
      reply(bus::ConfirmResult{}, redis);  // nothing to purge: nothing to wait for
    }
  }
  // In the log: now the events may be acknowledged, and then dropped from their stream.
  std::vector<std::string> ack = {"XACK", std::string(bus::kEventStream), std::string(bus::kPlannerGroup)};
  std::vector<std::string> del = {"XDEL", std::string(bus::kEventStream)};
  for (const bus::StreamEntry& entry : entries) {
    ack.push_back(entry.id);
    del.push_back(entry.id);
  }
  if (absl::StatusOr<bus::RedisReply> acked = redis.Command(ack); !acked.ok()) return acked.status();
  (void)redis.Command(del);
  absl::MutexLock lock(&mu_);
  stats_.events += entries.size();
  if (claimed) stats_.claimed += entries.size();
  if (added) ++stats_.log_entries;
  stats_.invalidations += planned;
  return absl::OkStatus();
}

absl::Status EventConsumer::MoveDueRepeats(bus::RedisConnection& redis) {
  absl::StatusOr<bus::RedisReply> moved =
      redis.Command({"EVAL", kMoveDueRepeats, "3", std::string(bus::kRepeatSet), std::string(bus::kPurgeLog),
                     std::string(bus::kLogSequence), std::to_string(absl::ToUnixMillis(absl::Now())),
                     std::to_string(options_.max_log_length)});
  if (!moved.ok()) return moved.status();
  absl::MutexLock lock(&mu_);
  stats_.repeats_moved += static_cast<uint64_t>(moved->integer);
  return absl::OkStatus();
}

void EventConsumer::Run() {
  bus::RedisConnection redis(options_.redis_host, options_.redis_port, absl::Seconds(2));
  bool ready = false;
  absl::Time next_claim = absl::InfinitePast();
  absl::Time last_planned = absl::InfinitePast();
  while (!stopping_) {
    absl::Status status = ready ? absl::OkStatus() : EnsureGroup(redis);
    if (status.ok() && !ready) {
      // Our own unacknowledged events first (this daemon restarted under the same name).
      absl::StatusOr<bus::RedisReply> own =
          redis.Command({"XREADGROUP", "GROUP", std::string(bus::kPlannerGroup), options_.name, "COUNT",
                         std::to_string(kBatch), "STREAMS", std::string(bus::kEventStream), "0"});
      status = own.ok() ? Process(redis, bus::StreamEntries(*own), false) : own.status();
      ready = status.ok();
    }
    if (status.ok() && absl::Now() >= next_claim) {
      next_claim = absl::Now() + options_.claim_idle / 4;
      absl::StatusOr<bus::RedisReply> claimed =
          redis.Command({"XAUTOCLAIM", std::string(bus::kEventStream), std::string(bus::kPlannerGroup),
                         options_.name, std::to_string(absl::ToInt64Milliseconds(options_.claim_idle)), "0-0",
                         "COUNT", std::to_string(kBatch)});
      status = claimed.ok() ? Process(redis, bus::StreamEntries(*claimed), true) : claimed.status();
    }
    if (status.ok()) {
      // The Swift middleware waits for this daemon's answers while the mark holds (a loop turn
      // takes at most the read's 200 ms block and a batch).
      status = bus::Mark(redis, bus::kPlannersSet, options_.name, absl::Seconds(2));
    }
    if (status.ok()) {
      // A repeat that cannot be moved now is moved later; only a lost connection stops the loop.
      if (absl::Status moved = MoveDueRepeats(redis); moved.code() == absl::StatusCode::kUnavailable) {
        status = moved;
      } else if (!moved.ok()) {
        std::fprintf(stderr, "purge-daemon: delayed repeats: %s\n", std::string(moved.message()).c_str());
      }
    }
    if (status.ok()) {
      // Wait for events; once one comes, gather more for the batch window, so a burst is planned
      // (and coalesced) together.
      std::vector<bus::StreamEntry> batch;
      absl::Time deadline = absl::InfiniteFuture();  // set when the first event comes
      while (status.ok() && batch.size() < static_cast<size_t>(kBatch)) {
        const size_t gathered = batch.size();
        const int64_t block_ms =
            gathered == 0 ? 200 : std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
        absl::StatusOr<bus::RedisReply> read =
            redis.Command({"XREADGROUP", "GROUP", std::string(bus::kPlannerGroup), options_.name, "COUNT",
                           std::to_string(kBatch - static_cast<int>(gathered)), "BLOCK",
                           std::to_string(block_ms), "STREAMS", std::string(bus::kEventStream), ">"});
        if (!read.ok()) {
          status = read.status();
          break;
        }
        std::vector<bus::StreamEntry> entries = bus::StreamEntries(*read);
        if (entries.empty() && (gathered == 0 || absl::Now() >= deadline)) break;
        // A writer waiting for its event (`confirm`) has it planned at once, with whatever came
        // along. Otherwise, under load (a large read, or events still coming since the last
        // plan), a batch is gathered for the window, to be coalesced.
        const bool waiting = std::any_of(entries.begin(), entries.end(), [](const bus::StreamEntry& e) {
          return std::any_of(e.fields.begin(), e.fields.end(),
                             [](const auto& f) { return f.first == "confirm"; });
        });
        const bool load =
            gathered > 0 || entries.size() >= kBurst || absl::Now() - last_planned < options_.batch_window;
        if (gathered == 0) deadline = absl::Now() + options_.batch_window;
        std::move(entries.begin(), entries.end(), std::back_inserter(batch));
        if (waiting || !load || absl::Now() >= deadline) break;
      }
      if (status.ok() && !batch.empty()) last_planned = absl::Now();
      if (status.ok()) status = Process(redis, batch, false);
    }
    if (!status.ok()) {
      if (absl::StrContains(status.message(), "NOGROUP")) ready = false;  // the stream was lost: recreate
      absl::SleepFor(absl::Milliseconds(200));
    }
    absl::MutexLock lock(&mu_);
    stats_.connected = status.ok();
  }
  (void)bus::Unmark(redis, bus::kPlannersSet, options_.name);  // stopping: writers stop waiting for it
}

}  // namespace purge
