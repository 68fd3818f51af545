#include "purge-daemon/api.h"

#include <nlohmann/json.hpp>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "purge-daemon/client_address.h"
#include "purge-daemon/jobs.h"
#include "purge-daemon/purge_request.h"
#include "vhost-config/purge_key.h"

namespace purge {

namespace {

using edge::http::EqualsIgnoreCase;
using edge::http::Exchange;

// Swift token checks of tokens not seen lately, per account: a tenant's scripts use a few tokens,
// a client guessing them uses many.
constexpr double kTokenChecksPerSecond = 5;
constexpr int kTokenCheckBurst = 20;
constexpr absl::Duration kTokenCheckTimeout = absl::Seconds(5);
// Client addresses whose failed authentications are remembered; past that the one that failed
// longest ago is forgotten (a few MiB at most, however many addresses a client has).
constexpr size_t kAuthFailureClients = 65536;

std::string RetryAfter(absl::Duration wait) {
  return std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1)))));
}

int HttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    default:
      return 503;
  }
}

}  // namespace

// Who is asking.
struct PurgeApi::Credentials {
  enum class Kind { kKey, kAdmin, kToken } kind = Kind::kKey;
  const vhost::Tenant* tenant = nullptr;  // kKey
  std::string token;                      // kToken
};

// One request: collects the body (bounded), then is handled at once. Lives until its worker's
// next request; the exchange is gone once `done`.
class PurgeApi::Call : public Exchange::Observer {
 public:
  Call(PurgeApi& api, Exchange& exchange) : api_(api), exchange_(&exchange) {}

  void OnBody(std::string_view data) override {
    if (exchange_ == nullptr) return;
    if (body.size() + data.size() > api_.options_.max_body_bytes) {
      Answer(400, {{"error", absl::StrCat("the body is over ", api_.options_.max_body_bytes, " bytes")}});
      return;
    }
    body.append(data);
  }
  void OnBodyEnd() override {
    if (exchange_ != nullptr) api_.Handle(*this);
  }
  void OnAbort() override { exchange_ = nullptr; }

  const edge::http::Request& request() const { return exchange_->request(); }
  size_t worker() const { return exchange_->worker(); }
  // Whom failed authentications count against; set when the head arrives.
  const std::string& client() const { return client_; }
  void SetClient(std::string client) { client_ = std::move(client); }
  bool done() const { return exchange_ == nullptr; }

  void Answer(int status, const nlohmann::json& body_json, std::string_view retry_after = {}) {
    if (exchange_ == nullptr) return;
    const std::string text = body_json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::vector<edge::http::HeaderField> headers;
    if (!retry_after.empty()) headers.emplace_back("Retry-After", retry_after);
    if (status == 401) headers.emplace_back("WWW-Authenticate", "Bearer");
    {
      absl::MutexLock lock(&api_.mu_);
      ++api_.answers_[status];
    }
    std::exchange(exchange_, nullptr)->Reply(status, "application/json", text, headers);
  }
  void Fail(const absl::Status& status) {
    const int code = HttpStatus(status);
    // A wait longer than a second travels as the status's payload (see AuthFailed).
    std::string retry_after = code == 429 ? "1" : "";
    if (auto wait = status.GetPayload(kRetryAfterPayload)) retry_after = std::string(*wait);
    Answer(code, {{"error", std::string(status.message())}}, retry_after);
  }
  static constexpr absl::string_view kRetryAfterPayload = "retry-after";

  std::string body;
  // A Swift token check under way: cancelled if the call goes first.
  std::unique_ptr<SwiftTokenChecker::Pending> token_check;

 private:
  PurgeApi& api_;
  Exchange* exchange_;
  std::string client_;
};

PurgeApi::PurgeApi(ApiOptions options, const vhost::TenantSnapshot& tenants, size_t workers,
                   cache::Clock clock)
    : options_(std::move(options)),
      tenants_(tenants),
      clock_(clock),
      limiter_(clock),
      auth_failures_(clock, kAuthFailureClients),
      tokens_(clock, options_.token_cache_ttl, kTokenChecksPerSecond, kTokenCheckBurst),
      clients_(std::max<size_t>(workers, 1)),
      calls_(std::max<size_t>(workers, 1)),
      health_redis_(options_.redis_host, options_.redis_port, absl::Seconds(2)) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) {
    redis_.push_back(
        std::make_unique<bus::RedisConnection>(options_.redis_host, options_.redis_port, absl::Seconds(2)));
  }
}

PurgeApi::~PurgeApi() = default;

void PurgeApi::OnWorkerStart(size_t worker, event_base* loop) {
  edge::origin::OriginOptions options;
  options.stall_timeout = kTokenCheckTimeout;
  clients_[worker] = std::make_unique<edge::origin::OriginClient>(loop, options);
}

void PurgeApi::OnWorkerStop(size_t worker) {
  calls_[worker].clear();  // their token checks, before the client they run on
  clients_[worker].reset();
}

void PurgeApi::OnRequest(Exchange& exchange) {
  auto& calls = calls_[exchange.worker()];
  std::erase_if(calls, [](const std::unique_ptr<Call>& call) { return call->done(); });
  calls.push_back(std::make_unique<Call>(*this, exchange));
  Call& call = *calls.back();
  call.SetClient(ClientAddress(exchange.peer_address(), exchange.request(), options_.trusted_proxies));
  exchange.SetObserver(&call);
  if (exchange.request().body == edge::http::BodyKind::kNone) Handle(call);
}

absl::StatusOr<PurgeApi::Credentials> PurgeApi::Authenticate(const Call& call,
                                                             const vhost::TenantTable& table) {
  if (const absl::Duration wait =
          auth_failures_.Wait(call.client(), AuthFailureRate(), options_.auth_failures);
      wait > absl::ZeroDuration()) {
    absl::Status limited = absl::ResourceExhaustedError(
        absl::StrCat("too many failed authentications from ", call.client(), "; retry later"));
    limited.SetPayload(Call::kRetryAfterPayload, absl::Cord(RetryAfter(wait)));
    return limited;
  }
  const edge::http::Request& request = call.request();
  Credentials credentials;
  const std::string_view authorization = request.Find("authorization");
  const std::string_view token = request.Find("x-auth-token");
  if (authorization.size() > 7 && EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
    const std::string hash = vhost::HashPurgeKey(authorization.substr(7));
    for (const std::string& admin : options_.admin_key_hashes) {
      if (admin == hash) {
        credentials.kind = Credentials::Kind::kAdmin;
        return credentials;
      }
    }
    for (const vhost::Tenant& tenant : table.tenants) {
      for (const std::string& key_hash : tenant.purge.key_hashes) {
        if (key_hash == hash) {
          credentials.tenant = &tenant;
          return credentials;
        }
      }
    }
    return AuthFailed(call, absl::UnauthenticatedError("the purge key is not known"));
  }
  if (!token.empty()) {
    credentials.kind = Credentials::Kind::kToken;
    credentials.token = std::string(token);
    return credentials;
  }
  return absl::UnauthenticatedError("credentials needed: Authorization: Bearer KEY, or X-Auth-Token");
}

absl::Status PurgeApi::AuthFailed(const Call& call, absl::Status status) {
  (void)auth_failures_.Take(call.client(), AuthFailureRate(), options_.auth_failures);
  return status;
}

void PurgeApi::Handle(Call& call) {
  const edge::http::Request& request = call.request();
  const std::string_view path = request.target.substr(0, request.target.find('?'));
  if (path == "/v1/purge" && request.method == "POST") {
    Submit(call);
  } else if (path.starts_with("/v1/purge/") && request.method == "GET") {
    Status(call, path.substr(10));
  } else if (path == "/v1/purge" || path.starts_with("/v1/purge/")) {
    call.Answer(405, {{"error", "POST /v1/purge, or GET /v1/purge/{id}"}});
  } else {
    call.Answer(404, {{"error", "no such endpoint; see docs/purge-api.md"}});
  }
}

void PurgeApi::Submit(Call& call) {
  // One table for the whole request: a reload meanwhile must not mix two.
  std::shared_ptr<const vhost::TenantTable> table = tenants_.Current();
  absl::StatusOr<Credentials> credentials = Authenticate(call, *table);
  if (!credentials.ok()) return call.Fail(credentials.status());
  absl::StatusOr<PurgeRequest> request = ParsePurgeRequest(call.body);
  if (!request.ok()) return call.Fail(request.status());
  Caller caller;
  switch (credentials->kind) {
    case Credentials::Kind::kKey:
      caller.tenant = credentials->tenant;
      break;
    case Credentials::Kind::kAdmin:
      caller.admin = true;
      // An admin may name no tenant (the whole cache) or several (URLs of each); one it names that
      // does not exist is a 404, not "say which tenant".
      if (absl::StatusOr<const vhost::Tenant*> tenant = TenantOf(*request, *table); tenant.ok()) {
        caller.tenant = *tenant;
      } else if (tenant.status().code() == absl::StatusCode::kNotFound) {
        return call.Fail(tenant.status());
      }
      break;
    case Credentials::Kind::kToken: {
      absl::StatusOr<const vhost::Tenant*> tenant = TenantOf(*request, *table);
      if (!tenant.ok()) return call.Fail(tenant.status());
      // Which accounts the token must be good for is PlanPurge's to say.
      caller.tenant = *tenant;
      caller.token = true;
      break;
    }
  }
  absl::StatusOr<PurgePlan> plan = PlanPurge(*request, *table, caller);
  if (!plan.ok()) return call.Fail(plan.status());
  if (credentials->kind != Credentials::Kind::kToken) return Commit(call, caller, *plan);
  // The token must be good for every account the purge touches; the purge goes on when Swift
  // has said so, on this worker's loop.
  const std::vector<std::string> accounts(plan->accounts.begin(), plan->accounts.end());
  call.token_check =
      tokens_.Check(*clients_[call.worker()], caller.tenant->origin.url, accounts, credentials->token,
                    [this, &call, table, caller, plan = std::move(*plan)](absl::Status status) {
                      if (status.code() == absl::StatusCode::kPermissionDenied)
                        status = AuthFailed(call, status);
                      if (!status.ok()) return call.Fail(status);
                      Commit(call, caller, plan);
                    });
}

void PurgeApi::Commit(Call& call, const Caller& caller, const PurgePlan& plan) {
  if (!caller.admin) {
    const absl::Duration wait =
        limiter_.Take(caller.tenant->name, caller.tenant->purge.rate, caller.tenant->purge.burst);
    if (wait > absl::ZeroDuration()) {
      return call.Answer(
          429, {{"error", absl::StrCat("purge rate of tenant \"", caller.tenant->name, "\" exceeded")}},
          RetryAfter(wait));
    }
  }
  absl::StatusOr<JobRecord> job =
      SubmitJob(Redis(call.worker()), caller.tenant != nullptr ? caller.tenant->name : "*admin*",
                {plan.accounts.begin(), plan.accounts.end()}, plan.invalidations, options_.max_log_length,
                options_.job_ttl, absl::ToUnixMillis(clock_()));
  if (!job.ok())
    return call.Fail(absl::UnavailableError("the purge bus (Redis) is unavailable; nothing was purged"));
  call.Answer(202,
              {{"id", job->id}, {"invalidations", job->invalidations}, {"log_id", job->log_id.ToString()}});
}

void PurgeApi::Status(Call& call, std::string_view id) {
  const std::shared_ptr<const vhost::TenantTable> table = tenants_.Current();
  absl::StatusOr<Credentials> credentials = Authenticate(call, *table);
  if (!credentials.ok()) return call.Fail(credentials.status());
  absl::StatusOr<JobStatus> status = LoadJobStatus(Redis(call.worker()), std::string(id),
                                                   absl::ToUnixMillis(clock_()), options_.edge_live_timeout);
  if (!status.ok()) return call.Fail(status.status());
  // Only its tenant sees a job; to anyone else it does not exist.
  const absl::Status not_found = absl::NotFoundError(absl::StrCat("no purge job \"", std::string(id), "\""));
  switch (credentials->kind) {
    case Credentials::Kind::kAdmin:
      break;
    case Credentials::Kind::kKey:
      if (credentials->tenant->name != status->job.tenant) return call.Fail(not_found);
      break;
    case Credentials::Kind::kToken: {
      const vhost::Tenant* tenant = nullptr;
      for (const vhost::Tenant& t : table->tenants) {
        if (t.name == status->job.tenant) tenant = &t;
      }
      if (tenant == nullptr || tenant->origin.kind == vhost::OriginKind::kHttp) return call.Fail(not_found);
      // The token must be good for the accounts the job touched (a job recorded without them: the
      // tenant's own account).
      std::vector<std::string> accounts = status->job.accounts;
      if (accounts.empty() && !tenant->origin.account.empty()) accounts.push_back(tenant->origin.account);
      if (accounts.empty()) return call.Fail(not_found);
      call.token_check =
          tokens_.Check(*clients_[call.worker()], tenant->origin.url, accounts, credentials->token,
                        [this, &call, not_found, answer = JobStatusJson(*status)](absl::Status checked) {
                          if (checked.code() == absl::StatusCode::kPermissionDenied)
                            (void)AuthFailed(call, checked);
                          if (!checked.ok()) return call.Fail(not_found);
                          call.Answer(200, nlohmann::json::parse(answer));
                        });
      return;
    }
  }
  call.Answer(200, nlohmann::json::parse(JobStatusJson(*status)));
}

std::string PurgeApi::UnhealthyReason() {
  absl::MutexLock lock(&health_mu_);
  return health_redis_.Command({"PING"}).ok() ? "" : "the purge bus (Redis) does not answer";
}

std::string PurgeApi::Metrics() {
  std::string out =
      "# HELP purge_api_responses_total Purge API answers by status.\n# TYPE purge_api_responses_total "
      "counter\n";
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [status, count] : answers_) {
      absl::StrAppend(&out, "purge_api_responses_total{status=\"", status, "\"} ", count, "\n");
    }
  }
  if (metrics_source_) out += metrics_source_();
  return out;
}

}  // namespace purge
