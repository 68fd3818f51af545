// The least work a server can do for a cached 1 MiB hit: the floor for the edge's large-hit
// throughput on this machine. Every request on a keep-alive connection gets a fixed head and the
// whole of FILE by sendfile; nothing is parsed, looked up, logged or counted.
//
// usage: sendfile_floor PORT FILE WORKERS   (one epoll loop per worker, SO_REUSEPORT listeners)
//
// Run in place of a server under the same load (benchmarks/edge_vs_peers.sh does, as "floor"):
// the load generator shares the two cores with the server, so a server can only raise throughput
// by the CPU it leaves to the client, and this one leaves the most.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Connection {
  int fd = -1;
  std::string input;
  std::string head_left;  // of the current response's head, not yet written
  off_t body_offset = 0;  // next byte of the file to send
  off_t body_end = 0;     // 0: no response under way
};

int Listen(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd, 1024) != 0) {
    std::perror("sendfile_floor: listen");
    std::exit(1);
  }
  return fd;
}

// Writes what it can of the current response; false when the connection is done for.
bool Send(Connection& c, int file, off_t size, const std::string& head) {
  while (true) {
    if (c.body_end == 0) {
      const size_t end = c.input.find("\r\n\r\n");
      if (end == std::string::npos) return true;
      c.input.erase(0, end + 4);
      c.head_left = head;
      c.body_offset = 0;
      c.body_end = size;
    }
    while (!c.head_left.empty()) {
      const ssize_t n = ::send(c.fd, c.head_left.data(), c.head_left.size(), MSG_MORE);
      if (n < 0) return errno == EAGAIN;
      c.head_left.erase(0, static_cast<size_t>(n));
    }
    while (c.body_offset < c.body_end) {
      const ssize_t n =
          ::sendfile(c.fd, file, &c.body_offset, static_cast<size_t>(c.body_end - c.body_offset));
      if (n < 0) return errno == EAGAIN;
      if (n == 0) return false;
    }
    c.body_end = 0;
  }
}

void Serve(int port, int file, off_t size) {
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(size) +
      "\r\n\r\n";
  const int listener = Listen(port);
  const int poll = ::epoll_create1(0);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  ::epoll_ctl(poll, EPOLL_CTL_ADD, listener, &event);
  std::vector<epoll_event> ready(256);
  char buffer[16384];
  std::unordered_map<int, std::unique_ptr<Connection>> connections;
  while (true) {
    const int count = ::epoll_wait(poll, ready.data(), static_cast<int>(ready.size()), -1);
    for (int i = 0; i < count; ++i) {
      if (ready[i].data.fd == listener) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (fd < 0) continue;
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        connections.emplace(fd, std::make_unique<Connection>()).first->second->fd = fd;
        epoll_event e{};
        e.events = EPOLLIN | EPOLLOUT | EPOLLET;
        e.data.fd = fd;
        ::epoll_ctl(poll, EPOLL_CTL_ADD, fd, &e);
        continue;
      }
      Connection* c = connections.at(ready[i].data.fd).get();
      bool open = true;
      while (open) {
        const ssize_t n = ::recv(c->fd, buffer, sizeof(buffer), 0);
        if (n > 0) {
          c->input.append(buffer, static_cast<size_t>(n));
        } else {
          open = n < 0 && errno == EAGAIN;
          break;
        }
      }
      if (!open || !Send(*c, file, size, head)) {
        const int fd = c->fd;
        ::close(fd);
        connections.erase(fd);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: sendfile_floor PORT FILE WORKERS\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a client that goes away is an error from sendfile, not a signal
  const int file = ::open(argv[2], O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (file < 0 || ::fstat(file, &st) != 0) {
    std::perror("sendfile_floor: open");
    return 1;
  }
  std::vector<std::thread> workers;
  for (int i = 0; i < std::atoi(argv[3]); ++i)
    workers.emplace_back(Serve, std::atoi(argv[1]), file, st.st_size);
  for (std::thread& worker : workers) worker.join();
}
