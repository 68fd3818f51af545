#include "edge/access_log.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace edge {

namespace {
std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

TEST_CASE("access log lines carry every field, are buffered, and a reopen starts a new file") {
  testing_support::TempDir dir;
  const std::string path = dir / "access.log";
  auto log = AccessLog::Open(path, 2);
  REQUIRE(log.ok());
  AccessRecord r;
  r.start = absl::FromUnixMillis(1795000000123);
  r.tenant = "demo";
  r.host = "demo.example.test";
  r.method = "GET";
  r.target = "/a\tb\nc.jpg";  // a forged field or line is neutralised
  r.status = 200;
  r.bytes = 2767;
  r.cache = "HIT";
  r.origin_time = absl::Milliseconds(3);
  (*log)->Write(1, r, r.start + absl::Microseconds(1500));
  CHECK(Read(path).empty());  // buffered until a flush
  (*log)->Flush();
  CHECK(Read(path) ==
        "2026-11-18T11:06:40.123Z\tdemo\tdemo.example.test\tGET\t/a?b?c.jpg\t200\t2767\tHIT\t1.500\t3.000\n");
  std::rename(path.c_str(), (dir / "access.log.1").c_str());
  (*log)->Reopen();
  (*log)->Write(0, r, r.start);
  (*log)->Flush();
  CHECK(Read(path).find("\tdemo\t") != std::string::npos);
  CHECK(Read(dir / "access.log.1").size() > 0);
}

}  // namespace edge
