// A load client for large responses that reads heads and discards bodies in the kernel
// (recv with MSG_TRUNC: TCP drops the bytes without copying them to user space).
//
// usage: discard_load HOST PORT HOSTHEADER PATH CONNECTIONS SECONDS
// prints: requests_per_second mib_per_second broken_connections (a non-200 answer or a short body)
//
// Why not wrk alone: on one machine a client that copies every byte of a 1 MiB body out of its
// socket spends more CPU than the server that sent it (wrk used 7.9 of the 10 CPU-seconds of a
// 5 s run on two cores), so throughput would measure the client. Keep-alive connections, one
// blocking thread each: with 1 MiB bodies the per-request cost of a thread is negligible.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Totals {
  std::atomic<uint64_t> responses{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> bad{0};
};

int Connect(const char* host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// The Content-Length of a 200 head, or -1 for any other answer.
long long ContentLength(std::string_view head) {
  if (!head.starts_with("HTTP/1.1 200")) return -1;
  for (size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
    constexpr std::string_view kName = "content-length:";
    if (line.size() <= kName.size()) continue;
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i) match = (line[i] | 0x20) == kName[i];
    if (!match) continue;
    line.remove_prefix(kName.size());
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    long long length = -1;
    std::from_chars(line.data(), line.data() + line.size(), length);
    return length;
  }
  return -1;
}

// One connection's loop: request, head, body discarded, until `stop`. False on a broken answer.
bool Run(const char* host, int port, const std::string& request, const std::atomic<bool>& stop,
         Totals& totals) {
  const int fd = Connect(host, port);
  if (fd < 0) return false;
  std::vector<char> buffer(64 * 1024);
  bool ok = true;
  while (ok && !stop.load(std::memory_order_relaxed)) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      ok = false;
      break;
    }
    std::string head;
    size_t head_end = std::string::npos;
    while (head_end == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      head.append(buffer.data(), static_cast<size_t>(n));
      head_end = head.find("\r\n\r\n");
    }
    const long long length = head_end == std::string::npos ? -1 : ContentLength(head.substr(0, head_end));
    if (length < 0) {
      ok = false;
      break;
    }
    long long remaining = length - static_cast<long long>(head.size() - head_end - 4);
    while (remaining > 0) {
      const ssize_t n = ::recv(fd, buffer.data(), static_cast<size_t>(remaining), MSG_TRUNC);
      if (n <= 0) break;
      remaining -= n;
    }
    if (remaining != 0) {
      ok = false;
      break;
    }
    totals.responses.fetch_add(1, std::memory_order_relaxed);
    totals.bytes.fetch_add(static_cast<uint64_t>(length), std::memory_order_relaxed);
  }
  ::close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: discard_load HOST PORT HOSTHEADER PATH CONNECTIONS SECONDS\n");
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string request = std::string("GET ") + argv[4] + " HTTP/1.1\r\nHost: " + argv[3] +
                              "\r\nUser-Agent: discard_load\r\n\r\n";
  const int connections = std::atoi(argv[5]);
  const int seconds = std::atoi(argv[6]);

  Totals totals;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&] {
      if (!Run(host, port, request, stop, totals)) totals.bad.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f %.1f %llu\n", static_cast<double>(totals.responses) / elapsed,
              static_cast<double>(totals.bytes) / elapsed / (1024.0 * 1024.0),
              static_cast<unsigned long long>(totals.bad.load()));
  return 0;
}
