// Incremental, strict decoder of a chunked request body (RFC 9112 7.1). Chunk sizes are hex with
// no sign and no whitespace, every line ends in CRLF, extensions and trailers are bounded and
// dropped. It copies nothing: body pieces are views into the caller's input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace edge::http {

class ChunkedDecoder {
 public:
  enum class Status {
    kNeedMore,  // consumed what it could; call again with more input
    kData,      // *data is a piece of body (a view into the input)
    kDone,      // the last chunk and the trailers are consumed
    kError,     // malformed: answer 400 and close
  };

  // Consumes from the start of `in`: framing, or at most one body piece. The caller drops
  // `*consumed` bytes from its buffer and calls again until kNeedMore with nothing consumed, or
  // kDone. A line (a chunk size or a trailer) is only consumed whole, so the caller keeps a
  // partial line in its buffer; over the limits below that is an error, not a wait.
  Status Next(std::string_view in, size_t* consumed, std::string_view* data);

  uint64_t body_bytes() const { return body_bytes_; }
  std::string_view error() const { return error_; }

  static constexpr size_t kMaxSizeLine = 1024;
  static constexpr size_t kMaxTrailerBytes = 8 * 1024;

 private:
  enum class State { kSize, kData, kDataEnd, kTrailers, kDone, kError };
  Status Fail(std::string_view reason);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  std::string_view error_;
};

}  // namespace edge::http
