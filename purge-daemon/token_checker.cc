#include "purge-daemon/token_checker.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "vhost-config/path_mapping.h"
#include "vhost-config/purge_key.h"

namespace purge {

absl::Status SwiftTokenChecker::Check(std::string_view swift_url, std::string_view account,
                                      std::string_view token) {
  const std::string key =
      absl::StrCat(std::string(swift_url), "|", std::string(account), "|", vhost::HashPurgeKey(token));
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (auto it = answers_.find(key); it != answers_.end() && it->second.until > now) {
      return it->second.valid ? absl::OkStatus()
                              : absl::PermissionDeniedError("the Swift token is not valid for this account");
    }
    if (answers_.size() > 100000)
      answers_.clear();  // bounded: a flood of bad tokens costs re-checks, not memory
  }
  if (checks_.Take(absl::StrCat(std::string(swift_url), "|", std::string(account)), checks_per_second_,
                   burst_) > absl::ZeroDuration()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many new Swift tokens for account ", std::string(account), "; retry in a second"));
  }
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat(std::string(swift_url), "/v1/", vhost::PercentEncode(account, false));
  const std::string header = absl::StrCat("X-Auth-Token: ", std::string(token));
  curl_slist* headers = curl_slist_append(nullptr, header.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK || status >= 500 || status == 0) {
    return absl::UnavailableError(
        absl::StrCat("Swift could not check the token: ", curl_easy_strerror(code)));
  }
  const bool valid = status >= 200 && status < 300;
  absl::MutexLock lock(&mu_);
  answers_[key] = Answer{valid, now + ttl_};
  return valid ? absl::OkStatus()
               : absl::PermissionDeniedError("the Swift token is not valid for this account");
}

}  // namespace purge
