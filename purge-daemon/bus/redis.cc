#include "purge-daemon/bus/redis.h"

#include <hiredis/hiredis.h>

#include <charconv>

#include "absl/strings/str_cat.h"

namespace bus {

namespace {

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

absl::Status ParseRedisAddress(std::string_view address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  int value = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      std::from_chars(address.data() + colon + 1, address.data() + address.size(), value).ec != std::errc() ||
      value <= 0 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(address), "\" is not host:port (e.g. \"127.0.0.1:6379\")"));
  }
  *host = std::string(address.substr(0, colon));
  *port = value;
  return absl::OkStatus();
}

RedisConnection::RedisConnection(std::string host, int port, absl::Duration timeout)
    : host_(std::move(host)), port_(port), connect_timeout_(timeout), read_timeout_(timeout) {}

RedisConnection::~RedisConnection() {
  Drop();
}

void RedisConnection::Drop() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisConnection::Connect() {
  const timeval tv = absl::ToTimeval(connect_timeout_);
  context_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (context_ == nullptr || context_->err != 0) {
    const std::string error = context_ != nullptr ? context_->errstr : "out of memory";
    Drop();
    return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", error));
  }
  const timeval read = absl::ToTimeval(read_timeout_);
  redisSetTimeout(context_, read);
  return absl::OkStatus();
}

void RedisConnection::SetReadTimeout(absl::Duration timeout) {
  read_timeout_ = timeout;
  if (context_ != nullptr) redisSetTimeout(context_, absl::ToTimeval(timeout));
}

absl::StatusOr<RedisReply> RedisConnection::Command(const std::vector<std::string>& args) {
  // A connection that broke while idle (Redis restarted) fails its next command: connect again
  // and send it once more. Every command of the bus is safe to repeat (a repeated invalidation
  // changes nothing).
  const bool reused = context_ != nullptr;
  absl::StatusOr<RedisReply> reply = CommandOnce(args);
  if (!reply.ok() && reused && reply.status().code() == absl::StatusCode::kUnavailable)
    reply = CommandOnce(args);
  return reply;
}

absl::StatusOr<RedisReply> RedisConnection::CommandOnce(const std::vector<std::string>& args) {
  if (context_ == nullptr) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
  if (reply == nullptr) {
    const std::string error = context_->errstr;
    Drop();  // the connection is unusable after an I/O error or timeout
    return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", error));
  }
  RedisReply out = Convert(reply);
  freeReplyObject(reply);
  if (out.type == RedisReply::Type::kError) return absl::FailedPreconditionError(out.text);
  return out;
}

}  // namespace bus
