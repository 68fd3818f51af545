#include "edge/purge_subscriber.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cache/zone.h"

namespace edge {

namespace {

constexpr int kBatch = 512;

// The value after `name` in a flat [name, value, ...] reply (XINFO STREAM).
const bus::RedisReply* InfoField(const bus::RedisReply& reply, std::string_view name) {
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    if (reply.elements[i].text == name) return &reply.elements[i + 1];
  }
  return nullptr;
}

}  // namespace

PurgeSubscriber::PurgeSubscriber(SubscriberOptions options, cache::Store& store, BusLease& lease,
                                 std::function<void(bool trusted)> on_trust)
    : options_(std::move(options)), store_(store), lease_(lease), on_trust_(std::move(on_trust)) {
  lease_.Revoke();  // until the log is read to its end
  std::ifstream in(options_.cursor_path);
  std::ostringstream text;
  text << in.rdbuf();
  if (absl::StatusOr<bus::SavedCursor> saved = bus::ParseCursorFile(text.str()); saved.ok()) {
    cursor_ = saved->id;
    cursor_seq_ = saved->seq;
  }
}

PurgeSubscriber::~PurgeSubscriber() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void PurgeSubscriber::Start() {
  thread_ = std::thread([this] { Run(); });
}

PurgeSubscriber::Stats PurgeSubscriber::GetStats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void PurgeSubscriber::SetTrusted(bool trusted) {
  {
    absl::MutexLock lock(&mu_);
    if (stats_.trusted == trusted) return;
    stats_.trusted = trusted;
  }
  on_trust_(trusted);
}

void PurgeSubscriber::SaveCursor() {
  // Written whole then renamed: a crash leaves the old cursor or the new one. An old one only
  // makes the edge apply some entries again.
  const bus::SavedCursor saved{*cursor_, cursor_seq_};
  cache::ReplaceFile(options_.cursor_path, bus::CursorFileText(saved));
  // Every entry up to here is applied: the zones keep it, to catch up from if they leave service.
  store_.NotePurgePosition(bus::CursorFileText(saved));
  absl::MutexLock lock(&mu_);
  stats_.cursor = cursor_->ToString();
}

void PurgeSubscriber::PurgeWholeCache(const char* why) {
  store_.Apply(cache::Invalidation::All(false));
  std::fprintf(stderr, "edge: %s: invalidated the whole cache\n", why);
  absl::MutexLock lock(&mu_);
  ++stats_.whole_cache_purges;
}

absl::StatusOr<LogBounds> PurgeSubscriber::ReadLogBounds(bus::RedisConnection& redis) {
  // Where the log ends, and its first entry (with its sequence number).
  LogBounds bounds;
  absl::StatusOr<bus::RedisReply> info = redis.Command({"XINFO", "STREAM", std::string(bus::kPurgeLog)});
  // "no such key" is a log not begun yet; anything else (LOADING after a restart...) is asked again
  // later, never taken for an empty log, which would purge the whole cache for nothing.
  if (!info.ok() && !absl::StrContains(info.status().message(), "no such key")) return info.status();
  if (info.ok()) {
    if (const bus::RedisReply* last_id = InfoField(*info, "last-generated-id")) {
      bounds.last = bus::ParseStreamId(last_id->text).value_or(bus::StreamId{});
    }
  }  // else: no log yet (ERR no such key): it starts at 0-0
  absl::StatusOr<bus::RedisReply> first_reply =
      redis.Command({"XRANGE", std::string(bus::kPurgeLog), "-", "+", "COUNT", "1"});
  if (!first_reply.ok()) return first_reply.status();
  const std::vector<bus::StreamEntry> first = bus::StreamEntries(*first_reply);
  if (!first.empty()) {
    bounds.first = bus::ParseStreamId(first[0].id).value_or(bus::StreamId{});
    bounds.first_seq = bus::ParseLogEntry(first[0].fields).value_or(bus::LogEntry{}).seq;
  }
  return bounds;
}

absl::Status PurgeSubscriber::Synchronize(bus::RedisConnection& redis) {
  absl::StatusOr<LogBounds> bounds = ReadLogBounds(redis);
  if (!bounds.ok()) return bounds.status();
  const bus::StreamId last = bounds->last;
  const uint64_t first_seq = bounds->first_seq;
  if (!cursor_) {
    // No cursor: a new edge, or one that lost its state. What its cache missed is unknown.
    if (store_.GetStats().entries > 0) PurgeWholeCache("no purge-log cursor");
    cursor_ = last;
    cursor_seq_ = 0;  // learnt from the next entry
    SaveCursor();
  } else if (last < *cursor_) {
    PurgeWholeCache("the purge log is behind this edge's cursor (Redis lost it)");
    cursor_ = last;
    cursor_seq_ = 0;
    SaveCursor();
  } else if (cursor_seq_ > 0 && first_seq > cursor_seq_ + 1) {
    // The entries between this edge's cursor and the log's first were trimmed away unread.
    PurgeWholeCache("the purge log was trimmed past this edge's cursor");
    cursor_seq_ = first_seq - 1;  // the gap is dealt with: reading on from the log's first entry
  }
  synchronized_ = true;
  reconnected_ = absl::Now();
  return absl::OkStatus();
}

absl::Status PurgeSubscriber::ReadBatch(bus::RedisConnection& redis) {
  // Catching up (after a start or an outage) reads without waiting: an empty answer means caught
  // up, and the cache is trusted at once rather than after a blocked read's timeout.
  std::vector<std::string> command{"XREAD", "COUNT", std::to_string(kBatch)};
  if (read_to_end_) {
    command.insert(command.end(), {"BLOCK", std::to_string(absl::ToInt64Milliseconds(Block()))});
  }
  command.insert(command.end(), {"STREAMS", std::string(bus::kPurgeLog), cursor_->ToString()});
  // The lease runs from before the read: whatever was appended before now is in its answer.
  const BusLease::Clock::time_point sent = BusLease::Clock::now();
  absl::StatusOr<bus::RedisReply> reply = redis.Command(command);
  if (!reply.ok()) return reply.status();
  const std::vector<bus::StreamEntry> entries = bus::StreamEntries(*reply);
  uint64_t invalidations = 0;
  for (const bus::StreamEntry& entry : entries) {
    absl::StatusOr<bus::LogEntry> parsed = bus::ParseLogEntry(entry.fields);
    const absl::StatusOr<bus::StreamId> id = bus::ParseStreamId(entry.id);
    if (!id.ok()) continue;
    if (parsed.ok()) {
      // A hole in the numbers: entries were trimmed between two reads (or Redis lost the log).
      if (parsed->seq > 0 && cursor_seq_ > 0 && parsed->seq != cursor_seq_ + 1) {
        PurgeWholeCache(parsed->seq > cursor_seq_ ? "the purge log was trimmed past this edge's cursor"
                                                  : "the purge log was begun again (Redis lost it)");
      }
      if (parsed->seq > 0) cursor_seq_ = parsed->seq;
      for (const cache::Invalidation& inv : parsed->invalidations) store_.Apply(inv);
      invalidations += parsed->invalidations.size();
      if (parsed->track && !parsed->job.empty()) {
        // How long from the job's entry to here: the entry id is its time in the log.
        const int64_t took_ms =
            std::max<int64_t>(0, absl::ToUnixMillis(absl::Now()) - static_cast<int64_t>(id->ms));
        (void)redis.Command(
            {"HSET", bus::JobAppliedKey(parsed->job), options_.node_id, std::to_string(took_ms)});
        (void)redis.Command({"EXPIRE", bus::JobAppliedKey(parsed->job), "86400"});
      }
    } else {
      std::fprintf(stderr, "edge: skipped a malformed purge-log entry %s: %s\n", entry.id.c_str(),
                   std::string(parsed.status().message()).c_str());
    }
    cursor_ = *id;
  }
  if (!entries.empty()) SaveCursor();
  {
    absl::MutexLock lock(&mu_);
    stats_.entries_applied += entries.size();
    stats_.invalidations_applied += invalidations;
  }
  // Fewer than asked for: this is the end of the log. The lease is granted only once the report
  // is in, so a writer reading the reports never misses an edge that trusts its cache.
  read_to_end_ = entries.size() < static_cast<size_t>(kBatch);
  bool trust = read_to_end_;
  if (trust && recovering_) {
    // After a start or an outage, writers that spooled events meanwhile have reconnected within
    // their retry interval (`settle`) and marked themselves: wait that long, then for their spools.
    absl::StatusOr<bool> spooling = bus::AnyMarked(redis, bus::kSpoolingSet);
    if (!spooling.ok()) return spooling.status();
    trust = absl::Now() - reconnected_ >= options_.settle && !*spooling;
    recovering_ = !trust;
  }
  if (absl::Status reported = Report(redis, trust); !reported.ok()) return reported;
  const auto until = sent + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.lease));
  lease_.Reach(until);
  if (trust) {
    lease_.Trust(until);
    SetTrusted(true);
  }
  return absl::OkStatus();
}

absl::Status PurgeSubscriber::CatchUpZones(bus::RedisConnection& redis) {
  const std::vector<cache::Store::CatchingUpZone> zones = store_.ZonesCatchingUp();
  // A replay whose zone is no longer catching up in that session is over (it failed again).
  std::erase_if(replays_, [&](const Replay& replay) {
    return std::none_of(zones.begin(), zones.end(), [&](const cache::Store::CatchingUpZone& zone) {
      return zone.zone == replay.zone && zone.session == replay.session;
    });
  });
  std::optional<LogBounds> bounds;  // read once a step, for the zones that begin
  for (const cache::Store::CatchingUpZone& zone : zones) {
    auto replay = std::find_if(replays_.begin(), replays_.end(), [&](const Replay& r) {
      return r.zone == zone.zone && r.session == zone.session;
    });
    if (replay == replays_.end()) {
      if (!bounds) {
        absl::StatusOr<LogBounds> read = ReadLogBounds(redis);
        if (!read.ok()) return read.status();
        bounds = *read;
      }
      ZoneCatchUp decision = DecideZoneCatchUp(zone.position, bounds);
      if (decision.kind == ZoneCatchUp::Kind::kReplay && *cursor_ < decision.from.id) {
        decision = {ZoneCatchUp::Kind::kEmpty, {}, "the zone's position is past this edge's cursor"};
      }
      if (decision.kind == ZoneCatchUp::Kind::kEmpty) {
        std::fprintf(stderr, "edge: cache zone %d returns emptied: %s\n", zone.zone,
                     std::string(decision.why).c_str());
        store_.EmptyZone(zone.zone, zone.session);
        continue;
      }
      // What it missed: the entries after its position up to this edge's cursor. Those after the
      // cursor reach its entries as they are applied to the whole store.
      replay = replays_.insert(replays_.end(), Replay{zone.zone, zone.session, decision.from, *cursor_});
    }
    if (absl::Status status = ReplayStep(redis, *replay); !status.ok()) return status;
  }
  return absl::OkStatus();
}

void PurgeSubscriber::EmptyZonesCatchingUp() {
  // A zone waiting for the log would serve nothing for as long as the bus is away.
  for (const cache::Store::CatchingUpZone& zone : store_.ZonesCatchingUp()) {
    const ZoneCatchUp decision = DecideZoneCatchUp(zone.position, std::nullopt);
    std::fprintf(stderr, "edge: cache zone %d returns emptied: %s\n", zone.zone,
                 std::string(decision.why).c_str());
    store_.EmptyZone(zone.zone, zone.session);
  }
  replays_.clear();
}

absl::Status PurgeSubscriber::ReplayStep(bus::RedisConnection& redis, Replay& replay) {
  // One batch a step: the log is read on (and the lease renewed) between batches.
  absl::StatusOr<bus::RedisReply> reply =
      redis.Command({"XRANGE", std::string(bus::kPurgeLog), absl::StrCat("(", replay.from.id.ToString()),
                     replay.to.ToString(), "COUNT", std::to_string(kBatch)});
  if (!reply.ok()) return reply.status();
  const std::vector<bus::StreamEntry> entries = bus::StreamEntries(*reply);
  std::vector<cache::Invalidation> invalidations;
  for (const bus::StreamEntry& entry : entries) {
    absl::StatusOr<bus::LogEntry> parsed = bus::ParseLogEntry(entry.fields);
    const absl::StatusOr<bus::StreamId> id = bus::ParseStreamId(entry.id);
    if (!id.ok()) continue;
    if (parsed.ok()) {
      if (parsed->seq > 0 && replay.from.seq > 0 && parsed->seq != replay.from.seq + 1) {
        // Trimmed since the decision: what the zone missed is no longer all there.
        std::fprintf(stderr, "edge: cache zone %d returns emptied: the purge log was trimmed past it\n",
                     replay.zone);
        store_.EmptyZone(replay.zone, replay.session);
        return absl::OkStatus();  // the next step forgets the replay
      }
      if (parsed->seq > 0) replay.from.seq = parsed->seq;
      invalidations.insert(invalidations.end(), parsed->invalidations.begin(), parsed->invalidations.end());
    }
    replay.from.id = *id;
  }
  store_.CatchUp(replay.zone, replay.session, invalidations);
  if (entries.size() < static_cast<size_t>(kBatch) || !(replay.from.id < replay.to)) {
    if (store_.FinishCatchUp(replay.zone, replay.session)) {
      std::fprintf(stderr, "edge: cache zone %d caught up with the purge log: it keeps its entries\n",
                   replay.zone);
    }
  }
  return absl::OkStatus();
}

absl::Status PurgeSubscriber::Report(bus::RedisConnection& redis, bool caught_up) {
  bus::EdgeProgress progress;
  progress.node = options_.node_id;
  progress.cursor = *cursor_;
  progress.trusted = caught_up;
  progress.lease_ms = absl::ToInt64Milliseconds(options_.lease);
  return bus::ReportProgress(redis, progress, caught_up);
}

absl::Duration PurgeSubscriber::Block() const {
  return std::max(options_.lease / 4, absl::Milliseconds(10));
}

void PurgeSubscriber::Run() {
  bus::RedisConnection redis(options_.redis_host, options_.redis_port, absl::Seconds(1));
  // A read that hangs past this is a lost connection; the lease has long run out by then.
  redis.SetReadTimeout(Block() + options_.lease);
  while (!stopping_) {
    absl::Status status = synchronized_ ? absl::OkStatus() : Synchronize(redis);
    if (status.ok()) status = ReadBatch(redis);
    if (status.ok()) status = CatchUpZones(redis);
    if (!status.ok()) {
      // Whatever was written meanwhile is unknown here: every hit is revalidated from now on.
      lease_.Revoke();
      EmptyZonesCatchingUp();
      SetTrusted(false);
      recovering_ = true;
      read_to_end_ = false;
      synchronized_ = false;  // look at where the log stands again once back
      absl::SleepFor(absl::Milliseconds(100));
    }
    absl::MutexLock lock(&mu_);
    stats_.connected = status.ok();
  }
}

}  // namespace edge
