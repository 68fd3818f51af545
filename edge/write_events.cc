#include "edge/write_events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge {

absl::StatusOr<std::unique_ptr<WriteEventPublisher>> WriteEventPublisher::Start(PublisherOptions options) {
  const int fd = ::open(options.spool_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the write-event spool ", options.spool_path, ": ", std::strerror(errno)));
  }
  // A crash mid-append leaves a torn last line: cut it, so the next event starts a line of its own.
  off_t size = std::max<off_t>(::lseek(fd, 0, SEEK_END), 0);
  char c = '\n';
  while (size > 0 && ::pread(fd, &c, 1, size - 1) == 1 && c != '\n') --size;
  if (::ftruncate(fd, size) != 0) size = 0;
  std::unique_ptr<WriteEventPublisher> publisher(
      new WriteEventPublisher(std::move(options), fd, static_cast<uint64_t>(size)));
  publisher->thread_ = std::thread([p = publisher.get()] { p->Run(); });
  return publisher;
}

WriteEventPublisher::WriteEventPublisher(PublisherOptions options, int fd, uint64_t size)
    : options_(std::move(options)), fd_(fd), size_(size) {}

WriteEventPublisher::~WriteEventPublisher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  ::close(fd_);
}

bool WriteEventPublisher::HasRoom() const {
  // Room for one more event whatever its names (Swift caps an object name at 1 KiB).
  constexpr uint64_t kLargestEvent = 4096;
  absl::MutexLock lock(&mu_);
  return size_ + kLargestEvent <= options_.max_spool_bytes;
}

uint64_t WriteEventPublisher::spool_bytes() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

absl::Status WriteEventPublisher::Publish(const bus::WriteEvent& event) {
  const std::string line = bus::EventJson(event) + "\n";
  absl::MutexLock lock(&mu_);
  if (size_ + line.size() > options_.max_spool_bytes) {
    return absl::ResourceExhaustedError("the write-event spool is full (Redis unreachable for long)");
  }
  // One write of a whole line with O_APPEND, then a sync: a crash leaves whole lines, or a torn
  // last one that the reader skips.
  if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fdatasync(fd_) != 0) {
    const int error = errno;
    (void)::ftruncate(fd_, static_cast<off_t>(size_));  // no partial line left for the sender
    return absl::UnavailableError(absl::StrCat("cannot write the write-event spool: ", std::strerror(error)));
  }
  size_ += line.size();
  return absl::OkStatus();
}

bool WriteEventPublisher::SendSpool(bus::RedisConnection& redis) {
  uint64_t from, to;
  int fd;
  {
    absl::MutexLock lock(&mu_);
    from = sent_;
    to = size_;
    fd = fd_;
  }
  if (from == to) return true;
  std::string data(to - from, '\0');
  // The descriptor is only closed by the destructor, after this thread has stopped.
  if (::pread(fd, data.data(), data.size(), static_cast<off_t>(from)) != static_cast<ssize_t>(data.size())) {
    return false;
  }
  // Edges that lost the bus wait for this mark to go before they trust their caches again.
  constexpr absl::Duration kMark = absl::Seconds(5);
  if (!bus::Mark(redis, bus::kSpoolingSet, options_.node_id, kMark).ok()) return false;
  absl::Time marked = absl::Now();
  size_t done = 0;
  while (done < data.size()) {
    if (absl::Now() - marked > kMark / 2) {
      if (!bus::Mark(redis, bus::kSpoolingSet, options_.node_id, kMark).ok()) break;
      marked = absl::Now();
    }
    const size_t newline = data.find('\n', done);
    if (newline == std::string::npos) break;  // a torn line (a crash mid-append) waits for its end
    const std::string_view line(data.data() + done, newline - done);
    if (absl::StatusOr<bus::WriteEvent> event = bus::ParseEventJson(line); event.ok()) {
      if (!redis.Command(bus::XAddArgs(bus::kEventStream, bus::EventFields(*event), 0)).ok()) break;
    }
    done = newline + 1;
    absl::MutexLock lock(&mu_);
    sent_ = from + done;
  }
  {
    absl::MutexLock lock(&mu_);
    if (sent_ != size_) return false;
    // All sent: start the spool anew (only this thread shortens it, under the lock Publish takes).
    if (::ftruncate(fd_, 0) == 0) size_ = sent_ = 0;
  }
  (void)bus::Unmark(redis, bus::kSpoolingSet, options_.node_id);  // else it runs out
  return true;
}

void WriteEventPublisher::Run() {
  bus::RedisConnection redis(options_.redis_host, options_.redis_port, absl::Seconds(2));
  while (true) {
    const bool all_sent = SendSpool(redis);
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    // All sent: wait for a new event. Not: try again after a pause (Redis is away).
    auto new_event = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || size_ > sent_; };
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (all_sent) {
      mu_.AwaitWithTimeout(absl::Condition(&new_event), absl::Seconds(1));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stop), options_.retry);
    }
    if (stopping_) return;
  }
}

}  // namespace edge
