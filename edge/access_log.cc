#include "edge/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace edge {

namespace {

constexpr size_t kFlushBytes = 64 * 1024;

int OpenAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

// Fields are tab-separated: a tab, newline or control character in a client-chosen field would
// forge a line, so it is written as '?'.
void AppendField(std::string* out, std::string_view value) {
  if (value.empty()) value = "-";
  for (char c : value) out->push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  out->push_back('\t');
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(std::string path, size_t workers) {
  const int fd = OpenAppend(path);
  if (fd < 0)
    return absl::UnavailableError(absl::StrCat("cannot open access log ", path, ": ", std::strerror(errno)));
  return std::unique_ptr<AccessLog>(new AccessLog(std::move(path), fd, workers));
}

AccessLog::AccessLog(std::string path, int fd, size_t workers) : path_(std::move(path)), fd_(fd) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) buffers_.push_back(std::make_unique<Buffer>());
}

AccessLog::~AccessLog() {
  Flush();
  absl::MutexLock lock(&fd_mu_);
  ::close(fd_);
}

void AccessLog::Write(size_t worker, const AccessRecord& r, absl::Time end) {
  Buffer& buffer = *buffers_[worker % buffers_.size()];
  absl::MutexLock lock(&buffer.mu);
  std::string& out = buffer.lines;
  // Formatting a time is costly; the date and time to the second change once a second.
  const int64_t millis = absl::ToUnixMillis(r.start);
  if (millis / 1000 != buffer.second) {
    buffer.second = millis / 1000;
    buffer.second_text =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(buffer.second), absl::UTCTimeZone());
  }
  absl::StrAppend(&out, buffer.second_text, absl::StrFormat(".%03dZ\t", static_cast<int>(millis % 1000)));
  AppendField(&out, r.tenant);
  AppendField(&out, r.host);
  AppendField(&out, r.method);
  AppendField(&out, r.target);
  absl::StrAppend(&out, r.status, "\t", r.bytes, "\t");
  AppendField(&out, r.cache);
  absl::StrAppend(&out, absl::StrFormat("%.3f\t%.3f\n", absl::ToDoubleMilliseconds(end - r.start),
                                        absl::ToDoubleMilliseconds(r.origin_time)));
  if (out.size() >= kFlushBytes) WriteOut(out);
}

void AccessLog::Flush() {
  for (auto& buffer : buffers_) {
    absl::MutexLock lock(&buffer->mu);
    if (!buffer->lines.empty()) WriteOut(buffer->lines);
  }
}

void AccessLog::WriteOut(std::string& lines) {
  absl::MutexLock lock(&fd_mu_);
  if (reopen_.exchange(false, std::memory_order_relaxed)) {
    if (const int fd = OpenAppend(path_); fd >= 0) {
      ::close(fd_);
      fd_ = fd;
    }
  }
  std::string_view rest = lines;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full or failing log disk loses log lines, never requests
    rest.remove_prefix(static_cast<size_t>(n));
  }
  lines.clear();
}

}  // namespace edge
