#include "cache/file_closer.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
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

std::vector<uint64_t> HeldAfterDelete(std::span<const std::string> roots) {
  std::vector<uint64_t> held(roots.size(), 0);
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return held;
  const int dir_fd = ::dirfd(dir);
  constexpr std::string_view kDeleted = " (deleted)";  // how the kernel names an unlinked file
  absl::flat_hash_set<std::pair<dev_t, ino_t>> seen;   // dups and reopens of one file count once
  char link[PATH_MAX];
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const ssize_t n = ::readlinkat(dir_fd, entry->d_name, link, sizeof(link));
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(link)) continue;
    std::string_view target(link, static_cast<size_t>(n));
    if (!target.ends_with(kDeleted)) continue;
    target.remove_suffix(kDeleted.size());
    for (size_t i = 0; i < roots.size(); ++i) {
      if (!target.starts_with(roots[i]) || target.size() <= roots[i].size() || target[roots[i].size()] != '/')
        continue;
      struct stat st;
      if (::fstatat(dir_fd, entry->d_name, &st, 0) == 0 && st.st_nlink == 0 &&
          seen.insert({st.st_dev, st.st_ino}).second) {
        held[i] += static_cast<uint64_t>(st.st_blocks) * 512;
      }
      break;
    }
  }
  ::closedir(dir);
  return held;
}

}  // namespace cache
