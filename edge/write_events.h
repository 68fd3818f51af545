// Write events from this edge to the purge daemons. Every event is appended (and synced) to a
// spool file first, so none is lost while Redis is down or across a restart of the edge; a thread
// sends the spool to Redis in order and empties it once all of it is sent. Sending twice after a
// crash is harmless (invalidations are idempotent). The spool is bounded: when it is full the
// edge refuses writes (503) rather than lose the purges they would cause.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "purge-daemon/bus/protocol.h"

namespace edge {

struct PublisherOptions {
  std::string node_id;  // names this edge's mark while it sends its spool (bus::Mark in bus::kSpoolingSet)
  std::string redis_host;
  int redis_port = 6379;
  std::string spool_path;
  uint64_t max_spool_bytes = 64 << 20;
  absl::Duration retry = absl::Milliseconds(500);  // between attempts while Redis is down
};

class WriteEventPublisher {
 public:
  // Opens (and keeps) the spool, then starts sending what it holds.
  static absl::StatusOr<std::unique_ptr<WriteEventPublisher>> Start(PublisherOptions options);
  ~WriteEventPublisher();  // stops the thread; what is not sent stays in the spool

  // Spools the event (synced) and wakes the sender. ResourceExhausted when the spool is full,
  // Unavailable when it cannot be written.
  absl::Status Publish(const bus::WriteEvent& event);
  // Whether the spool can take another event (checked before a write is proxied).
  bool HasRoom() const;
  // Bytes of events in the spool, sent or not (it is emptied once all of it is in Redis).
  uint64_t spool_bytes() const;

 private:
  WriteEventPublisher(PublisherOptions options, int fd, uint64_t size);
  void Run();
  // Sends the spool from `sent_`; true when it is all in Redis.
  bool SendSpool(bus::RedisConnection& redis);

  const PublisherOptions options_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  uint64_t size_ ABSL_GUARDED_BY(mu_);      // bytes in the spool
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;  // bytes of it already in Redis
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace edge
