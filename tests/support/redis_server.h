// A real redis-server for a test, on a free loopback port, in its own directory; stopped (by the
// PID it was started with) when the object goes. Stop() and Start() simulate an outage: with
// `persistent`, data survives it (append-only file), as in production.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <thread>

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
  explicit RedisServer(bool persistent = false) : port_(FreePort()), persistent_(persistent) { Start(); }
  ~RedisServer() { Stop(); }
  RedisServer(const RedisServer&) = delete;

  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--dir",
               dir_.path().c_str(), "--save", "", "--appendonly", persistent_ ? "yes" : "no", "--loglevel",
               "warning", "--logfile", (dir_ / "redis.log").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    bus::RedisConnection redis("127.0.0.1", port_, absl::Milliseconds(200));
    for (int i = 0; i < 100 && !redis.Command({"PING"}).ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  bus::RedisConnection Connect() const { return bus::RedisConnection("127.0.0.1", port_, absl::Seconds(2)); }

 private:
  const int port_;
  const bool persistent_;
  TempDir dir_;
  pid_t pid_ = -1;
};

}  // namespace testing_support
