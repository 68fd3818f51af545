// The purge bus: the Redis streams and keys that edges and purge daemons share, and how write
// events and invalidations are written in them. Edges append write events to kEventStream; the
// daemons read it as one consumer group, plan, and append invalidations to kPurgeLog, which every
// edge reads in order from its own cursor and reports its progress in kEdgesHash.
#pragma once

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cache/invalidation.h"
#include "purge-daemon/bus/redis.h"

namespace bus {

inline constexpr std::string_view kEventStream = "edge:events";
inline constexpr std::string_view kPlannerGroup = "planners";
inline constexpr std::string_view kPurgeLog = "edge:purge-log";
// Every log entry carries the next number of this counter (see AppendToLog): an edge that sees a
// hole in the numbers missed entries, whatever trimmed them.
inline constexpr std::string_view kLogSequence = "edge:purge-log:seq";
inline constexpr std::string_view kEdgesHash = "edge:edges";
// Invalidations to append to the log later (listings, again, once Swift has updated them),
// scored by when they are due (unix ms).
inline constexpr std::string_view kRepeatSet = "edge:repeats";
// Writers sending a spool of write events from a time Redis was away (sorted set: node, scored by
// when the mark runs out, Redis's unix ms). An edge that lost the bus trusts its cache again only
// once none is left (AnyMarked), so it never trusts a version those events replace.
inline constexpr std::string_view kSpoolingSet = "edge:spooling";
// The purge daemons planning events now (renewed on every read of kEventStream): the Swift
// middleware waits for a daemon's answer only while one is.
inline constexpr std::string_view kPlannersSet = "edge:planners";
// A job's record (hash: tenant, created_ms, log_id, invalidations, request) and, per node, the
// milliseconds it took to apply (hash node -> ms).
std::string JobKey(std::string_view id);
std::string JobAppliedKey(std::string_view id);

// A Redis stream entry id: milliseconds and a sequence, ordered.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  std::string ToString() const;
};
absl::StatusOr<StreamId> ParseStreamId(std::string_view text);

// An edge's cursor file (purge-log.cursor in its state directory): the last log entry it applied
// and that entry's sequence number (0: not known), as "ID SEQ\n".
struct SavedCursor {
  StreamId id;
  uint64_t seq = 0;
  bool operator==(const SavedCursor&) const = default;
};
std::string CursorFileText(const SavedCursor& cursor);
// InvalidArgument when the text holds no cursor (the edge starts as one without). A sequence
// number that is missing or damaged is not known (0): the next entry read tells it.
absl::StatusOr<SavedCursor> ParseCursorFile(std::string_view text);

// A successful write, through an edge or seen by the Swift proxy middleware
// (purge-daemon/swift_middleware/edge_purge.py, which encodes it the same way:
// tests/purge-daemon/golden/write_events.json holds the format for both).
struct WriteEvent {
  std::string node;
  std::string method;  // PUT, POST, DELETE, COPY
  std::string account;
  std::string container;  // empty for the account itself
  std::string object;     // empty for a container or the account
  std::string destination_account;
  std::string destination;  // COPY: "container/object"
  std::string query;        // the request's query (bulk-delete, extract-archive, ...)
  int status = 0;           // the origin's answer; 0 when it is not known (it may have happened)
  int64_t time_ms = 0;
  std::string transaction;  // Swift's X-Trans-Id
  // An account or container PUT/POST: the settings its request set or removed (SettingHeaders),
  // so that a PUT of an existing container that sets nothing can be told from one that changes
  // what readers see. Empty for objects. Added later: an event without it decodes as empty.
  std::string settings;
  std::string cluster;  // the Swift cluster's name (vhost::Origin::cluster); empty: the default
  // Set by a writer that waits for the edges (the Swift middleware): the daemon that plans the
  // event pushes the outcome to ConfirmKey(confirm). Only when set, as `cluster`.
  std::string confirm;
  // A bulk delete's body (one URL-encoded "/container/object" per line), when the writer read all
  // of it (the edge does, up to 1 MiB): the planner then purges exactly those. Only when set.
  std::string paths;
  bool operator==(const WriteEvent&) const = default;
};

// The names of a request's headers that set or remove an account's or a container's settings
// (metadata, ACLs, CORS, staticweb, versioning, quotas, sync; not system metadata, which only
// middlewares write): lower case, '_' as '-', sorted, each once, joined by ",". Both writers of
// events name settings with this rule.
std::string SettingHeaders(std::span<const std::string_view> header_names);

using Fields = std::vector<std::pair<std::string, std::string>>;
Fields EventFields(const WriteEvent& event);
absl::StatusOr<WriteEvent> ParseEvent(const Fields& fields);
// One line of JSON, for the edge's spool.
std::string EventJson(const WriteEvent& event);
absl::StatusOr<WriteEvent> ParseEventJson(std::string_view json);

// One entry of the purge log: a job's invalidations, applied together.
struct LogEntry {
  std::string job;
  bool track = false;  // the edges record how long they took (API purges)
  std::vector<cache::Invalidation> invalidations;
  uint64_t seq = 0;  // set by AppendToLog
};
Fields LogFields(const LogEntry& entry);
absl::StatusOr<LogEntry> ParseLogEntry(const Fields& fields);
std::string InvalidationsJson(const std::vector<cache::Invalidation>& invalidations);
absl::StatusOr<std::vector<cache::Invalidation>> ParseInvalidationsJson(std::string_view json);

// An edge's progress through the log, as it reports it (ReportProgress) after every read.
struct EdgeProgress {
  std::string node;
  StreamId cursor;           // every entry up to here is applied
  int64_t heartbeat_ms = 0;  // Redis's clock when the report was made
  bool trusted = false;      // caught up: its cache is served without revalidation
  // The edge serves from its cache for at most lease_ms after a read that reached the end of the
  // log, and only once the report of that read is in: lease_granted_ms is Redis's clock then.
  int64_t lease_ms = 0;
  int64_t lease_granted_ms = 0;
};
std::string ProgressJson(const EdgeProgress& progress);
absl::StatusOr<EdgeProgress> ParseProgressJson(std::string_view node, std::string_view json);

// Stores `progress` in kEdgesHash with Redis's clock as its heartbeat and, when `grants_lease`,
// as its lease_granted_ms (else the previous grant is kept). One clock for every edge and writer.
absl::Status ReportProgress(RedisConnection& redis, const EdgeProgress& progress, bool grants_lease);

// Every edge's last report, and Redis's clock (ms) when they were read, in one round trip.
struct EdgesView {
  int64_t now_ms = 0;
  std::vector<EdgeProgress> edges;
};
absl::StatusOr<EdgesView> ReadEdges(RedisConnection& redis);

// Whether `edge` may still be serving a version older than log entry `entry` at Redis time
// `now_ms`: it has not reported `entry` applied, and its lease (with `margin` for the time a read
// spends on its way) has not run out. A writer waits for these edges, and only these: an edge
// whose lease has run out revalidates every hit.
bool MayServeOlder(const EdgeProgress& edge, StreamId entry, int64_t now_ms, absl::Duration margin);

// Sets of names, each marked until a point on Redis's clock: writers sending a spool
// (kSpoolingSet), daemons planning events (kPlannersSet). A mark is renewed while it holds, so a
// process that dies holds nobody up for longer than `ttl`.
absl::Status Mark(RedisConnection& redis, std::string_view set, std::string_view name, absl::Duration ttl);
absl::Status Unmark(RedisConnection& redis, std::string_view set, std::string_view name);
// Whether any mark in `set` still holds.
absl::StatusOr<bool> AnyMarked(RedisConnection& redis, std::string_view set);

// Where the daemon pushes the outcome of a write event that carried `confirm` ("confirmed
// pending": edge counts); a list, expiring.
std::string ConfirmKey(std::string_view confirm);

struct StreamEntry {
  std::string id;
  Fields fields;
};
// The entries of an XREAD / XREADGROUP / XRANGE / XAUTOCLAIM reply, whatever its nesting.
std::vector<StreamEntry> StreamEntries(const RedisReply& reply);

// XADD's arguments for `fields` with the log's approximate length cap.
std::vector<std::string> XAddArgs(std::string_view stream, const Fields& fields, uint64_t max_length);

// Appends `entry` to the purge log with the next sequence number, atomically (one Lua script), so
// numbers and log order agree whoever appends. The log keeps about `max_length` entries.
absl::StatusOr<StreamId> AppendToLog(RedisConnection& redis, const LogEntry& entry, uint64_t max_length);
// Appends a planned write (`invalidations`, not empty) as log entry `job`, and schedules its
// listings invalidations to be appended again after `repeat_delay` (Swift updates listings
// asynchronously) through kRepeatSet. Both the daemon and an edge that proxied the write plan this.
absl::StatusOr<StreamId> AppendPlan(RedisConnection& redis, std::string_view job,
                                    std::vector<cache::Invalidation> invalidations, uint64_t max_length,
                                    absl::Duration repeat_delay);
// The Lua that appends KEYS[1]'s entry with the next number of KEYS[2] (ARGV: max length, then
// field/value pairs); for scripts that append log entries themselves.
extern const char kAppendToLogLua[];

}  // namespace bus
