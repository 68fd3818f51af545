#include "purge-daemon/jobs.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/str_cat.h"

namespace purge {

namespace {

std::string NewJobId() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char id[17];
  std::snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(random()));
  return id;
}

const std::string* HashField(const bus::RedisReply& reply, std::string_view name) {
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    if (reply.elements[i].text == name) return &reply.elements[i + 1].text;
  }
  return nullptr;
}

int64_t ToInt(const std::string* text) {
  int64_t value = 0;
  if (text != nullptr) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

}  // namespace

absl::StatusOr<JobRecord> SubmitJob(bus::RedisConnection& redis, std::string tenant,
                                    std::vector<std::string> accounts,
                                    const std::vector<cache::Invalidation>& invalidations,
                                    uint64_t max_log_length, absl::Duration ttl, int64_t now_ms) {
  JobRecord job;
  job.id = NewJobId();
  job.tenant = std::move(tenant);
  job.accounts = std::move(accounts);
  job.created_ms = now_ms;
  job.invalidations = static_cast<int>(invalidations.size());
  bus::LogEntry entry;
  entry.job = job.id;
  entry.track = true;
  entry.invalidations = invalidations;
  absl::StatusOr<bus::StreamId> log_id = bus::AppendToLog(redis, entry, max_log_length);
  if (!log_id.ok()) return log_id.status();
  job.log_id = *log_id;
  const std::string key = bus::JobKey(job.id);
  // The invalidations are in the log already: a record that fails to save loses the status, not
  // the purge.
  (void)redis.Command({"HSET", key, "tenant", job.tenant, "accounts", nlohmann::json(job.accounts).dump(),
                       "created_ms", std::to_string(job.created_ms), "log_id", job.log_id.ToString(),
                       "invalidations", std::to_string(job.invalidations)});
  (void)redis.Command({"EXPIRE", key, std::to_string(absl::ToInt64Seconds(ttl))});
  return job;
}

absl::StatusOr<std::vector<bus::EdgeProgress>> LoadEdges(bus::RedisConnection& redis) {
  absl::StatusOr<bus::RedisReply> reply = redis.Command({"HGETALL", std::string(bus::kEdgesHash)});
  if (!reply.ok()) return reply.status();
  std::vector<bus::EdgeProgress> edges;
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    absl::StatusOr<bus::EdgeProgress> progress =
        bus::ParseProgressJson(reply->elements[i].text, reply->elements[i + 1].text);
    if (progress.ok()) edges.push_back(std::move(*progress));
  }
  return edges;
}

absl::StatusOr<JobStatus> LoadJobStatus(bus::RedisConnection& redis, const std::string& id, int64_t now_ms,
                                        absl::Duration live_timeout) {
  absl::StatusOr<bus::RedisReply> record = redis.Command({"HGETALL", bus::JobKey(id)});
  if (!record.ok()) return record.status();
  if (record->elements.empty()) return absl::NotFoundError(absl::StrCat("no purge job \"", id, "\""));
  JobStatus status;
  status.job.id = id;
  if (const std::string* tenant = HashField(*record, "tenant")) status.job.tenant = *tenant;
  if (const std::string* accounts = HashField(*record, "accounts")) {
    const nlohmann::json list = nlohmann::json::parse(*accounts, nullptr, false);
    if (list.is_array()) {
      for (const nlohmann::json& account : list) {
        if (account.is_string()) status.job.accounts.push_back(account.get<std::string>());
      }
    }
  }
  status.job.created_ms = ToInt(HashField(*record, "created_ms"));
  status.job.invalidations = static_cast<int>(ToInt(HashField(*record, "invalidations")));
  if (const std::string* log_id = HashField(*record, "log_id")) {
    status.job.log_id = bus::ParseStreamId(*log_id).value_or(bus::StreamId{});
  }
  absl::StatusOr<bus::RedisReply> applied = redis.Command({"HGETALL", bus::JobAppliedKey(id)});
  absl::StatusOr<std::vector<bus::EdgeProgress>> edges = LoadEdges(redis);
  if (!applied.ok() || !edges.ok()) return absl::UnavailableError("the purge bus did not answer");
  status.done = true;
  for (const bus::EdgeProgress& progress : *edges) {
    EdgeState edge;
    edge.node = progress.node;
    edge.live = now_ms - progress.heartbeat_ms <= absl::ToInt64Milliseconds(live_timeout);
    // An edge records the job when it applies it; its cursor in the edges hash lags a heartbeat.
    if (const std::string* took = HashField(*applied, progress.node)) edge.took_ms = ToInt(took);
    edge.applied = edge.took_ms.has_value() || progress.cursor >= status.job.log_id;
    if (edge.live && !edge.applied) status.done = false;
    status.edges.push_back(std::move(edge));
  }
  return status;
}

std::string JobStatusJson(const JobStatus& status) {
  nlohmann::json edges = nlohmann::json::array();
  for (const EdgeState& e : status.edges) {
    nlohmann::json edge{{"node", e.node}, {"state", !e.live ? "down" : e.applied ? "applied" : "pending"}};
    if (e.took_ms) edge["ms"] = *e.took_ms;
    edges.push_back(std::move(edge));
  }
  return nlohmann::json{{"id", status.job.id},
                        {"tenant", status.job.tenant},
                        {"state", status.done ? "done" : "pending"},
                        {"created_ms", status.job.created_ms},
                        {"invalidations", status.job.invalidations},
                        {"log_id", status.job.log_id.ToString()},
                        {"edges", std::move(edges)}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace purge
