#include "edge/http/chunked_decoder.h"

#include <doctest/doctest.h>

#include <string>

namespace edge::http {

namespace {

// Feeds `wire` in pieces of `step` bytes the way a connection would (keeping unconsumed bytes)
// and returns the body, or "ERROR: reason".
std::string Decode(std::string_view wire, size_t step, std::string* rest = nullptr) {
  ChunkedDecoder decoder;
  std::string buffer, body;
  size_t fed = 0;
  for (;;) {
    size_t consumed = 0;
    std::string_view data;
    const ChunkedDecoder::Status status = decoder.Next(buffer, &consumed, &data);
    if (status == ChunkedDecoder::Status::kData) body.append(data);
    buffer.erase(0, consumed);
    if (status == ChunkedDecoder::Status::kError) return "ERROR: " + std::string(decoder.error());
    if (status == ChunkedDecoder::Status::kDone) {
      if (rest) *rest = buffer + std::string(wire.substr(fed));
      return body;
    }
    if (consumed == 0) {
      if (fed == wire.size()) return "INCOMPLETE";
      const size_t n = std::min(step, wire.size() - fed);
      buffer.append(wire.substr(fed, n));
      fed += n;
    }
  }
}

}  // namespace

TEST_CASE("chunked bodies decode whatever the piece size") {
  const std::string wire = "5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nGET /next";
  for (size_t step : {1, 2, 3, 7, 64, 4096}) {
    std::string rest;
    CHECK(Decode(wire, step, &rest) == "hello, world");
    CHECK(rest == "GET /next");
  }
  CHECK(Decode("A\r\n0123456789\r\n0\r\n\r\n", 5) == "0123456789");
  CHECK(Decode("0\r\n\r\n", 1).empty());
}

TEST_CASE("malformed chunked framing is an error, never a guess") {
  CHECK(Decode("5\nhello\r\n0\r\n\r\n", 4) == "ERROR: bare LF in chunk size line");
  CHECK(Decode("-5\r\nhello\r\n0\r\n\r\n", 4) == "ERROR: invalid chunk size");
  CHECK(Decode(" 5\r\nhello\r\n0\r\n\r\n", 4) == "ERROR: invalid chunk size");
  CHECK(Decode("5 \r\nhello\r\n0\r\n\r\n", 4) == "ERROR: invalid chunk size");
  CHECK(Decode("0x5\r\nhello\r\n0\r\n\r\n", 4) == "ERROR: invalid chunk size");
  CHECK(Decode("5\r\nhelloX\r\n0\r\n\r\n", 4) == "ERROR: chunk data not followed by CRLF");
  CHECK(Decode("fffffffffffffffff\r\n", 4) == "ERROR: chunk size too large");
  CHECK(Decode(std::string(2000, '1'), 100) == "ERROR: chunk size line too long");
  CHECK(Decode("1;" + std::string(2000, 'e'), 100) == "ERROR: chunk size line too long");
  CHECK(Decode("0\r\n bad: fold\r\n\r\n", 4) == "ERROR: malformed trailer");
  CHECK(Decode("0\r\nX: " + std::string(9000, 't') + "\r\n\r\n", 512) == "ERROR: trailers too large");
  CHECK(Decode("5\r\nhel", 2) == "INCOMPLETE");
}

}  // namespace edge::http
