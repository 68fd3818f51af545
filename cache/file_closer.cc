#include "cache/file_closer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace cache {

namespace {

class Closer {
 public:
  ~Closer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
    for (int fd : queue_) ::close(fd);
  }

  void Close(int fd) {
    absl::MutexLock lock(&mu_);
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { Run(); });
      } catch (const std::system_error&) {
        ::close(fd);  // no thread: closed here, slowly, rather than never
        return;
      }
    }
    queue_.push_back(fd);
  }

 private:
  void Run() {
    std::vector<int> closing;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) return;
        closing.swap(queue_);
      }
      for (int fd : closing) ::close(fd);
      closing.clear();
    }
  }

  absl::Mutex mu_;
  std::vector<int> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

Closer& TheCloser() {
  static Closer closer;
  return closer;
}

}  // namespace

void CloseFile(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_nlink == 0 &&
      static_cast<uint64_t>(st.st_size) >= kFreeInBackgroundBytes) {
    TheCloser().Close(fd);
    return;
  }
  ::close(fd);
}

void RemoveFile(const char* path, uint64_t bytes) {
  if (bytes < kFreeInBackgroundBytes) {
    ::unlink(path);
    return;
  }
  // Held open across the unlink, the file is freed when this descriptor closes: on the thread.
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  ::unlink(path);
  if (fd >= 0) CloseFile(fd);
}

}  // namespace cache
