#include "cache/file_closer.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

namespace cache {

namespace {

int MakeFile(const std::filesystem::path& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
  return fd;
}

bool IsOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

}  // namespace

TEST_CASE("small or still named files are closed at once, a large deleted one on the closer thread") {
  testing_support::TempDir dir;
  const int small = MakeFile(dir / "small", 1024);
  ::unlink((dir / "small").c_str());
  CloseFile(small);
  CHECK_FALSE(IsOpen(small));

  const int named = MakeFile(dir / "named", kFreeInBackgroundBytes);
  CloseFile(named);
  CHECK_FALSE(IsOpen(named));

  const int large = MakeFile(dir / "large", kFreeInBackgroundBytes);
  ::unlink((dir / "large").c_str());
  CloseFile(large);
  CHECK(testing_support::Eventually([&] { return !IsOpen(large); }));
}

TEST_CASE("removing a file takes it away at once, whatever its size") {
  testing_support::TempDir dir;
  ::close(MakeFile(dir / "small", 10));
  ::close(MakeFile(dir / "large", 2 * kFreeInBackgroundBytes));
  RemoveFile((dir / "small").c_str(), 10);
  RemoveFile((dir / "large").c_str(), 2 * kFreeInBackgroundBytes);
  RemoveFile((dir / "never-was").c_str(), 2 * kFreeInBackgroundBytes);
  CHECK_FALSE(std::filesystem::exists(dir / "small"));
  CHECK_FALSE(std::filesystem::exists(dir / "large"));
}

}  // namespace cache
