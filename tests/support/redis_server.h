// A real redis-server for a test, on a free loopback port, in its own directory; stopped (by the
// PID it was started with) when the object goes. Stop() and Start() simulate an outage: with
// `persistent`, data survives it (append-only file), as in production. A Redis that does not
// answer fails the test there and then (with its log), not later as a mystery.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "purge-daemon/bus/redis.h"
#include "tests/support/temp_dir.h"

namespace testing_support {

// Outside the kernel's ephemeral range: a port in it may be taken by some process's outgoing
// connection while Redis is stopped for an outage and then cannot be bound again.
inline int FreePort() {
  int ephemeral_low = 32768, ephemeral_high = 60999;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range)
    range >> ephemeral_low >> ephemeral_high;
  // Below the range, else above it, else (all of it ephemeral) anywhere: as tests/support/free_ports.py.
  int low = 10000, high = 65535;
  if (ephemeral_low > 11000) {
    high = ephemeral_low - 1;
  } else if (ephemeral_high < 64535) {
    low = ephemeral_high + 1;
  }
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> ports(low, high);
  for (;;) {
    const int port = ports(random);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (bound) return port;
  }
}

class RedisServer {
 public:
  explicit RedisServer(bool persistent = false) : persistent_(persistent) {
    // The free port is free when picked, and may be taken before Redis binds it: another port then.
    Launched launched = Launched::kExited;
    for (int attempt = 0; attempt < 5 && launched == Launched::kExited; ++attempt) {
      port_ = FreePort();
      launched = Launch();
    }
    RequireAnswering(launched);
  }
  ~RedisServer() { Stop(); }
  RedisServer(const RedisServer&) = delete;

  // After Stop(): the same port again, as clients expect.
  void Start() { RequireAnswering(Launch()); }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  bus::RedisConnection Connect() const { return bus::RedisConnection("127.0.0.1", port_, absl::Seconds(2)); }

 private:
  enum class Launched { kAnswering, kExited, kSilent };
  // Starts redis-server and waits until it answers, exits (its port taken, say) or has been silent
  // for 20 s (then it is stopped).
  Launched Launch() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--dir",
               dir_.path().c_str(), "--save", "", "--appendonly", persistent_ ? "yes" : "no", "--loglevel",
               "warning", "--logfile", (dir_ / "redis.log").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid_ < 0) return Launched::kExited;
    bus::RedisConnection redis("127.0.0.1", port_, absl::Milliseconds(200));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (redis.Command({"PING"}).ok()) return Launched::kAnswering;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return Launched::kExited;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Stop();
    return Launched::kSilent;
  }
  void RequireAnswering(Launched launched) const {
    if (launched == Launched::kAnswering) return;
    std::ifstream log(dir_ / "redis.log");
    std::ostringstream text;
    text << log.rdbuf();
    FAIL(absl::StrCat("redis-server did not answer on port ", port_, "; its log:\n", text.str()));
  }

  int port_ = 0;
  const bool persistent_;
  TempDir dir_;
  pid_t pid_ = -1;
};

}  // namespace testing_support
