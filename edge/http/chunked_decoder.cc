#include "edge/http/chunked_decoder.h"

namespace edge::http {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The line at the start of `in` without its CRLF, if complete. False with *bad set for a bare LF.
bool TakeLine(std::string_view in, std::string_view* line, size_t* length, bool* bad) {
  const size_t lf = in.find('\n');
  if (lf == std::string_view::npos) return false;
  if (lf == 0 || in[lf - 1] != '\r') {
    *bad = true;
    return false;
  }
  *line = in.substr(0, lf - 1);
  *length = lf + 1;
  return true;
}

}  // namespace

ChunkedDecoder::Status ChunkedDecoder::Fail(std::string_view reason) {
  state_ = State::kError;
  error_ = reason;
  return Status::kError;
}

ChunkedDecoder::Status ChunkedDecoder::Next(std::string_view in, size_t* consumed, std::string_view* data) {
  *consumed = 0;
  std::string_view line;
  size_t length = 0;
  bool bad = false;
  switch (state_) {
    case State::kSize: {
      if (!TakeLine(in, &line, &length, &bad)) {
        if (bad) return Fail("bare LF in chunk size line");
        return in.size() > kMaxSizeLine ? Fail("chunk size line too long") : Status::kNeedMore;
      }
      if (line.size() > kMaxSizeLine) return Fail("chunk size line too long");
      uint64_t size = 0;
      size_t digits = 0;
      for (; digits < line.size() && HexValue(line[digits]) >= 0; ++digits) {
        if (digits == 15) return Fail("chunk size too large");
        size = size * 16 + static_cast<uint64_t>(HexValue(line[digits]));
      }
      if (digits == 0) return Fail("invalid chunk size");
      const std::string_view extension = line.substr(digits);
      if (!extension.empty() && extension.front() != ';') return Fail("invalid chunk size");
      for (unsigned char c : extension) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return Fail("invalid chunk extension");
      }
      *consumed = length;
      remaining_ = size;
      state_ = size == 0 ? State::kTrailers : State::kData;
      return Status::kNeedMore;
    }
    case State::kData: {
      if (in.empty()) return Status::kNeedMore;
      const size_t take = in.size() < remaining_ ? in.size() : static_cast<size_t>(remaining_);
      *data = in.substr(0, take);
      *consumed = take;
      remaining_ -= take;
      body_bytes_ += take;
      if (remaining_ == 0) state_ = State::kDataEnd;
      return Status::kData;
    }
    case State::kDataEnd:
      if (in.size() < 2) return Status::kNeedMore;
      if (in[0] != '\r' || in[1] != '\n') return Fail("chunk data not followed by CRLF");
      *consumed = 2;
      state_ = State::kSize;
      return Status::kNeedMore;
    case State::kTrailers: {
      if (!TakeLine(in, &line, &length, &bad)) {
        if (bad) return Fail("bare LF in trailers");
        return trailer_bytes_ + in.size() > kMaxTrailerBytes ? Fail("trailers too large") : Status::kNeedMore;
      }
      trailer_bytes_ += length;
      if (trailer_bytes_ > kMaxTrailerBytes) return Fail("trailers too large");
      *consumed = length;
      if (line.empty()) {
        state_ = State::kDone;
        return Status::kDone;
      }
      const size_t colon = line.find(':');
      if (colon == 0 || colon == std::string_view::npos || line.front() == ' ' || line.front() == '\t') {
        return Fail("malformed trailer");
      }
      for (unsigned char c : line) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return Fail("invalid character in trailer");
      }
      return Status::kNeedMore;
    }
    case State::kDone:
      return Status::kDone;
    case State::kError:
      return Status::kError;
  }
  return Status::kError;
}

}  // namespace edge::http
