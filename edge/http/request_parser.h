// A strict HTTP/1.1 request-head parser over the connection's read buffer. It allocates nothing:
// the request holds views into the buffer. Anything ambiguous is an error with the status to
// answer before closing the connection, because a lenient parser behind or in front of another
// one is how requests are smuggled: both Content-Length and Transfer-Encoding, two
// Content-Lengths, bare LF, obs-fold, whitespace before the colon, invalid characters.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace edge::http {

struct Limits {
  size_t max_request_line = 8 * 1024;  // over it: 414
  size_t max_head_bytes = 32 * 1024;   // request line and headers; over it: 431
  size_t max_headers = 100;            // over it: 431
};

inline constexpr size_t kMaxHeaders = 128;  // hard ceiling of Limits::max_headers

struct Header {
  std::string_view name;   // as sent; compare case-insensitively
  std::string_view value;  // without surrounding whitespace
};

enum class BodyKind { kNone, kContentLength, kChunked };

struct Request {
  std::string_view method;
  std::string_view target;     // origin-form ("/path?query") or "*"; an absolute-form target's path
  bool absolute_form = false;  // the target was absolute-form: `host` is its authority
  int minor_version = 1;       // HTTP/1.<minor_version>
  std::array<Header, kMaxHeaders> headers;
  size_t header_count = 0;

  std::string_view host;  // the Host header (required in HTTP/1.1), or an absolute-form target's authority
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  size_t head_bytes = 0;  // bytes of the buffer the head took, blank line included

  // The first header named `name` (case-insensitive), or an empty view.
  std::string_view Find(std::string_view name) const;
};

enum class ParseStatus { kComplete, kIncomplete, kError };

struct ParseError {
  int status = 400;         // 400, 414, 431, 501 or 505
  std::string_view reason;  // short, for the response body and the log
};

// Parses the head at the start of `buffer`. kIncomplete: wait for more bytes (the limits are
// already enforced on what is there). kError: answer `error->status` and close.
ParseStatus ParseRequest(std::string_view buffer, const Limits& limits, Request* request, ParseError* error);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace edge::http
