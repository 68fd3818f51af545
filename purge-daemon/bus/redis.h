// A synchronous Redis connection for one thread (hiredis): a command and its reply as values,
// a timeout on every command, and a reconnect on the next command after the connection failed.
// Not thread-safe: each thread that talks to Redis has its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct redisContext;

namespace bus {

struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kArray, kNil, kError };
  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool nil() const { return type == Type::kNil; }
};

// "host:port" into its parts; InvalidArgument if it is not one.
absl::Status ParseRedisAddress(std::string_view address, std::string* host, int* port);

class RedisConnection {
 public:
  RedisConnection(std::string host, int port, absl::Duration timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;

  // Runs one command. Unavailable if Redis cannot be reached; FailedPrecondition carrying Redis's
  // message for an error reply. A command that finds its connection broken connects again and is
  // sent once more (so a command may reach Redis twice: every command of the bus is repeatable).
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);
  // For blocking commands (XREAD BLOCK): how long a reply may take.
  void SetReadTimeout(absl::Duration timeout);
  bool connected() const { return context_ != nullptr; }

 private:
  absl::Status Connect();
  void Drop();
  absl::StatusOr<RedisReply> CommandOnce(const std::vector<std::string>& args);

  const std::string host_;
  const int port_;
  const absl::Duration connect_timeout_;
  absl::Duration read_timeout_;
  redisContext* context_ = nullptr;
};

}  // namespace bus
