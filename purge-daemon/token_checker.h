// Checks a Swift token the way Swift would: a HEAD of the account with it. Answers are kept for
// a short while (good and bad), so a burst of purges costs one check and a guessing client cannot
// make the daemon hammer Swift. Tokens are kept only as hashes. Thread-safe; a check blocks its
// caller for at most the timeout.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace purge {

class SwiftTokenChecker {
 public:
  SwiftTokenChecker(absl::Duration ttl, absl::Duration timeout) : ttl_(ttl), timeout_(timeout) {}

  // OK if `token` may act on `account` of the Swift at `swift_url`; PermissionDenied if Swift
  // refuses it; Unavailable if Swift cannot be asked.
  absl::Status Check(std::string_view swift_url, std::string_view account, std::string_view token);

 private:
  struct Answer {
    bool valid;
    absl::Time until;
  };
  const absl::Duration ttl_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Answer> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace purge
