// Checks a Swift token the way Swift would: a HEAD of the account with it, sent through the
// calling worker's libcurl-multi client, so a slow Swift holds up only the purges waiting for it,
// never the API thread. Answers are kept for a short while (good and bad), so a burst of purges
// costs one check; checks of tokens not seen lately are limited per account, so a client sending
// made-up tokens cannot make the daemon hammer Swift. Tokens are kept only as hashes. The cache
// and the limit are shared by every worker (thread-safe); a check runs on one worker's loop.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/origin/origin_client.h"
#include "purge-daemon/rate_limiter.h"

namespace purge {

class SwiftTokenChecker {
 public:
  // At most `checks_per_second` (and `burst` at once) uncached checks per account.
  SwiftTokenChecker(cache::Clock clock, absl::Duration ttl, double checks_per_second, int burst)
      : clock_(clock), ttl_(ttl), checks_per_second_(checks_per_second), burst_(burst), checks_(clock) {}

  // A check under way; destroying it cancels it (`done` is then never called).
  class Pending {
   public:
    virtual ~Pending() = default;
  };

  // Checks that `token` may act on every one of `accounts` of the Swift at `swift_url`. `done`
  // hears OK; PermissionDenied if Swift refuses the token for one of them; ResourceExhausted if an
  // account's checks are used up for now; Unavailable if Swift cannot be asked. When every answer
  // is known (remembered, or refused before asking) `done` is called before Check returns and
  // Check returns null; otherwise it is called later on `client`'s loop, once.
  std::unique_ptr<Pending> Check(edge::origin::OriginClient& client, std::string_view swift_url,
                                 const std::vector<std::string>& accounts, std::string_view token,
                                 std::function<void(absl::Status)> done);

 private:
  class Questions;
  std::string CacheKey(std::string_view swift_url, std::string_view account, std::string_view token) const;
  std::optional<bool> Remembered(const std::string& key);
  void Remember(const std::string& key, bool valid);

  const cache::Clock clock_;
  const absl::Duration ttl_;
  const double checks_per_second_;
  const int burst_;
  RateLimiter checks_;
  absl::Mutex mu_;
  struct Answer {
    bool valid;
    absl::Time until;
  };
  absl::flat_hash_map<std::string, Answer> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace purge
