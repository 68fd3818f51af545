// Checks a Swift token the way Swift would: a HEAD of the account with it. Answers are kept for
// a short while (good and bad), so a burst of purges costs one check; checks of tokens not seen
// lately are limited per account, so a client sending made-up tokens cannot make the daemon
// hammer Swift or hold its API threads. Tokens are kept only as hashes. Thread-safe; a check
// blocks its caller for at most the timeout.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "purge-daemon/rate_limiter.h"

namespace purge {

class SwiftTokenChecker {
 public:
  // At most `checks_per_second` (and `burst` at once) uncached checks per account.
  SwiftTokenChecker(cache::Clock clock, absl::Duration ttl, absl::Duration timeout, double checks_per_second,
                    int burst)
      : ttl_(ttl), timeout_(timeout), checks_per_second_(checks_per_second), burst_(burst), checks_(clock) {}

  // OK if `token` may act on `account` of the Swift at `swift_url`; PermissionDenied if Swift
  // refuses it; ResourceExhausted if the account's checks are used up for now; Unavailable if
  // Swift cannot be asked.
  absl::Status Check(std::string_view swift_url, std::string_view account, std::string_view token);

 private:
  struct Answer {
    bool valid;
    absl::Time until;
  };
  const absl::Duration ttl_;
  const absl::Duration timeout_;
  const double checks_per_second_;
  const int burst_;
  RateLimiter checks_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Answer> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace purge
