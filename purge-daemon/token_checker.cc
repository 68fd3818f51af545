#include "purge-daemon/token_checker.h"

#include "absl/strings/str_cat.h"
#include "vhost-config/path_mapping.h"
#include "vhost-config/purge_key.h"

namespace purge {

namespace {

absl::Status Refused() {
  return absl::PermissionDeniedError("the Swift token is not valid for this account");
}

}  // namespace

// One HEAD per account not remembered; the first refusal, or the last answer, settles it.
class SwiftTokenChecker::Questions : public Pending {
 public:
  Questions(SwiftTokenChecker& checker, edge::origin::OriginClient& client,
            std::function<void(absl::Status)> done)
      : checker_(checker), client_(client), done_(std::move(done)) {}
  ~Questions() override { CancelAll(); }

  void Ask(std::string cache_key, const edge::origin::FetchRequest& request) {
    auto& question = questions_.emplace_back(std::make_unique<Question>(*this, std::move(cache_key)));
    question->id = client_.Start(request, question.get());
  }

 private:
  struct Question : edge::origin::FetchObserver {
    Question(Questions& pending, std::string cache_key) : pending(pending), cache_key(std::move(cache_key)) {}
    void OnHeaders(int code, std::span<const std::pair<std::string_view, std::string_view>>) override {
      status = code;
    }
    void OnData(std::string_view) override {}
    void OnComplete(absl::Status transfer) override {
      id = 0;
      pending.Answered(*this, transfer);
    }
    Questions& pending;
    const std::string cache_key;
    edge::origin::OriginClient::FetchId id = 0;
    int status = 0;
  };

  void Answered(Question& question, const absl::Status& transfer) {
    if (!transfer.ok() || question.status >= 500 || question.status == 0) {
      if (unavailable_.ok()) {
        unavailable_ =
            absl::UnavailableError(absl::StrCat("Swift could not check the token: ", transfer.message()));
      }
    } else {
      const bool valid = question.status >= 200 && question.status < 300;
      checker_.Remember(question.cache_key, valid);
      if (!valid) return Settle(Refused());
    }
    if (++answered_ == questions_.size()) Settle(unavailable_);
  }

  void Settle(absl::Status status) {
    CancelAll();
    if (done_) std::exchange(done_, nullptr)(std::move(status));
  }

  void CancelAll() {
    for (auto& question : questions_) {
      if (question->id != 0) client_.Cancel(std::exchange(question->id, 0));
    }
  }

  SwiftTokenChecker& checker_;
  edge::origin::OriginClient& client_;
  std::function<void(absl::Status)> done_;
  std::vector<std::unique_ptr<Question>> questions_;
  size_t answered_ = 0;
  absl::Status unavailable_;
};

std::string SwiftTokenChecker::CacheKey(std::string_view swift_url, std::string_view account,
                                        std::string_view token) const {
  return absl::StrCat(std::string(swift_url), "|", std::string(account), "|", vhost::HashPurgeKey(token));
}

std::optional<bool> SwiftTokenChecker::Remembered(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = answers_.find(key);
  if (it == answers_.end() || it->second.until <= clock_()) return std::nullopt;
  return it->second.valid;
}

void SwiftTokenChecker::Remember(const std::string& key, bool valid) {
  absl::MutexLock lock(&mu_);
  if (answers_.size() > 100000) answers_.clear();  // bounded: a flood of tokens costs re-checks, not memory
  answers_[key] = Answer{valid, clock_() + ttl_};
}

std::unique_ptr<SwiftTokenChecker::Pending> SwiftTokenChecker::Check(edge::origin::OriginClient& client,
                                                                     std::string_view swift_url,
                                                                     const std::vector<std::string>& accounts,
                                                                     std::string_view token,
                                                                     std::function<void(absl::Status)> done) {
  // Everything known is decided before anything is asked.
  std::vector<std::pair<std::string, edge::origin::FetchRequest>> questions;
  for (const std::string& account : accounts) {
    std::string key = CacheKey(swift_url, account, token);
    if (std::optional<bool> valid = Remembered(key)) {
      if (*valid) continue;
      done(Refused());
      return nullptr;
    }
    if (checks_.Take(absl::StrCat(std::string(swift_url), "|", account), checks_per_second_, burst_) >
        absl::ZeroDuration()) {
      done(absl::ResourceExhaustedError(
          absl::StrCat("too many new Swift tokens for account ", account, "; retry in a second")));
      return nullptr;
    }
    edge::origin::FetchRequest request;
    request.method = "HEAD";
    request.url = absl::StrCat(std::string(swift_url), "/v1/", vhost::PercentEncode(account, false));
    request.headers.emplace_back("X-Auth-Token", std::string(token));
    questions.emplace_back(std::move(key), std::move(request));
  }
  if (questions.empty()) {
    done(absl::OkStatus());
    return nullptr;
  }
  auto pending = std::make_unique<Questions>(*this, client, std::move(done));
  for (auto& [key, request] : questions) pending->Ask(std::move(key), request);
  return pending;
}

}  // namespace purge
