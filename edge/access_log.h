// The access log: one line per request (time, tenant, host, method, path, status, bytes, cache
// status, time spent, origin time), tab-separated, in one file with the tenant as a field. Each
// worker buffers its own lines and writes them in one append when the buffer fills or a second
// has passed, so logging costs no lock and no syscall per request. Reopen() (on SIGUSR1) makes
// the next write go to a new file of the same name, for log rotation.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge {

struct AccessRecord {
  absl::Time start;
  std::string_view tenant;  // "-" when no tenant matched
  std::string_view host, method, target;
  int status = 0;
  uint64_t bytes = 0;
  std::string_view cache = "-";
  absl::Duration origin_time = absl::ZeroDuration();
};

class AccessLog {
 public:
  // Opens (appends to) `path`.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(std::string path, size_t workers);
  ~AccessLog();

  // Worker `worker` adds a line; written when its buffer passes 64 KiB or at the next Flush.
  void Write(size_t worker, const AccessRecord& record, absl::Time end);
  // Writes every worker's buffer (call about once a second, and before exit).
  void Flush();
  // Reopens the file by name at the next write.
  void Reopen() { reopen_.store(true, std::memory_order_relaxed); }

 private:
  AccessLog(std::string path, int fd, size_t workers);
  struct Buffer {
    absl::Mutex mu;
    std::string lines ABSL_GUARDED_BY(mu);
    int64_t second ABSL_GUARDED_BY(mu) = -1;  // the second `second_text` shows
    std::string second_text ABSL_GUARDED_BY(mu);
  };
  void WriteOut(std::string& lines);

  const std::string path_;
  absl::Mutex fd_mu_;
  int fd_ ABSL_GUARDED_BY(fd_mu_);
  std::atomic<bool> reopen_{false};
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

}  // namespace edge
