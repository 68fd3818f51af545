// Purge jobs in Redis: an API call becomes one purge-log entry and a job record; the job is done
// once every live edge's cursor has passed that entry. Each edge records how long it took.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "purge-daemon/bus/protocol.h"

namespace purge {

struct JobRecord {
  std::string id;
  std::string tenant;
  // The Swift accounts the purge touched: a Swift token sees the job if it is good for them (on
  // a swift-api host serving every account, the tenant alone does not say whose job it is).
  std::vector<std::string> accounts;
  int64_t created_ms = 0;
  bus::StreamId log_id;  // the job's entry in the purge log
  int invalidations = 0;
};

// Appends the job's invalidations to the log (capped at `max_log_length`) and saves its record
// for `ttl`. Unavailable if Redis cannot take it: then nothing is promised.
absl::StatusOr<JobRecord> SubmitJob(bus::RedisConnection& redis, std::string tenant,
                                    std::vector<std::string> accounts,
                                    const std::vector<cache::Invalidation>& invalidations,
                                    uint64_t max_log_length, absl::Duration ttl, int64_t now_ms);

struct EdgeState {
  std::string node;
  bool live = false;  // heartbeat within the live timeout
  bool applied = false;
  std::optional<int64_t> took_ms;
};

struct JobStatus {
  JobRecord job;
  std::vector<EdgeState> edges;
  bool done = false;  // every live edge has applied it
};

// NotFound for an unknown (or expired) job.
absl::StatusOr<JobStatus> LoadJobStatus(bus::RedisConnection& redis, const std::string& id, int64_t now_ms,
                                        absl::Duration live_timeout);
std::string JobStatusJson(const JobStatus& status);

// The live edges' progress (for metrics and job status).
absl::StatusOr<std::vector<bus::EdgeProgress>> LoadEdges(bus::RedisConnection& redis);

}  // namespace purge
