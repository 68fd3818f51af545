#include "edge/http/request_parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace edge::http {

namespace {

// RFC 9110 5.6.2 token characters.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kToken = MakeTokenTable();

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!kToken[c]) return false;
  }
  return true;
}

// Field values: VCHAR, obs-text, SP and HTAB. Never CR, LF, NUL or other controls.
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Request targets: visible ASCII only (no space, no control, no obs-text).
bool IsTargetChar(unsigned char c) {
  return c > 0x20 && c < 0x7f;
}

bool IsDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}

bool IsHostNameChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '_';
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// uri-host [":" port] (RFC 9110 7.2) as a server names itself: a host name of non-empty labels (one
// trailing dot allowed), an IPv4 address or a bracketed IPv6 literal, and a TCP port (0-65535). Lax
// values ("a..b", ".b", "b:x") are refused rather than guessed at: a host that one component reads
// differently from another picks the tenant.
bool IsValidHost(std::string_view host) {
  if (host.empty()) return true;  // allowed (no authority); it names no site
  std::string_view port;
  if (host.front() == '[') {
    // An IPv6 address exactly as inet_pton reads it (no zone, no IPvFuture): "[::1..2]" is no
    // address, and is refused rather than matched as text.
    const size_t close = host.find(']');
    if (close == std::string_view::npos || close - 1 >= INET6_ADDRSTRLEN) return false;
    char literal[INET6_ADDRSTRLEN];
    host.copy(literal, close - 1, 1);
    literal[close - 1] = '\0';
    in6_addr address;
    if (inet_pton(AF_INET6, literal, &address) != 1) return false;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest;
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon);
      host = host.substr(0, colon);
    }
    if (host.size() > 253 + 1 || host.empty()) return false;
    if (host.back() == '.') host.remove_suffix(1);
    size_t label = 0;
    for (unsigned char c : host) {
      if (c == '.') {
        if (label == 0) return false;
        label = 0;
      } else if (!IsHostNameChar(c) || ++label > 63) {
        return false;
      }
    }
    if (label == 0) return false;
  }
  if (port.empty()) return true;
  port.remove_prefix(1);
  if (port.empty() || port.size() > 5) return false;
  uint32_t number = 0;
  for (unsigned char c : port) {
    if (!IsDigit(c)) return false;
    number = number * 10 + (c - '0');
  }
  return number <= 65535;  // a TCP port
}

ParseStatus Fail(ParseError* error, int status, std::string_view reason) {
  error->status = status;
  error->reason = reason;
  return ParseStatus::kError;
}

// Finds the next line at `pos`. Lines end in CRLF; a bare LF or a CR elsewhere is an error.
enum class LineStatus { kLine, kIncomplete, kBareLf };
LineStatus NextLine(std::string_view buffer, size_t pos, std::string_view* line, size_t* next) {
  const size_t lf = buffer.find('\n', pos);
  if (lf == std::string_view::npos) return LineStatus::kIncomplete;
  if (lf == pos || buffer[lf - 1] != '\r') return LineStatus::kBareLf;
  *line = buffer.substr(pos, lf - 1 - pos);
  *next = lf + 1;
  return LineStatus::kLine;
}

ParseStatus ParseRequestLine(std::string_view line, Request* request, ParseError* error) {
  const size_t first_space = line.find(' ');
  const size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return Fail(error, 400, "malformed request line");
  }
  request->method = line.substr(0, first_space);
  request->target = line.substr(first_space + 1, last_space - first_space - 1);
  const std::string_view version = line.substr(last_space + 1);
  if (!IsToken(request->method)) return Fail(error, 400, "invalid method");
  if (request->target.empty()) return Fail(error, 400, "empty request target");
  for (unsigned char c : request->target) {
    if (!IsTargetChar(c)) return Fail(error, 400, "invalid character in request target");
  }
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(error, 400, "malformed HTTP version");
  }
  if (version[5] != '1') return Fail(error, 505, "HTTP version not supported");
  request->minor_version = version[7] - '0';
  if (request->minor_version > 1) request->minor_version = 1;  // HTTP/1.x: answer as 1.1

  if (request->method == "CONNECT") return Fail(error, 501, "CONNECT is not supported");
  if (request->target == "*") {
    if (request->method != "OPTIONS") return Fail(error, 400, "asterisk target outside OPTIONS");
  } else if (request->target.front() != '/') {
    // Absolute form (RFC 9112 3.2.2): its authority, not the Host header, names the site; the rest
    // of the request sees an origin-form target.
    std::string_view rest = request->target;
    if (StartsWithIgnoreCase(rest, "http://")) {
      rest.remove_prefix(7);
    } else if (StartsWithIgnoreCase(rest, "https://")) {
      rest.remove_prefix(8);
    } else {
      return Fail(error, 400, "request target is not origin or absolute form");
    }
    const size_t end = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, end);
    if (authority.empty() || authority.find('@') != std::string_view::npos || !IsValidHost(authority)) {
      return Fail(error, 400, "invalid authority in request target");
    }
    rest.remove_prefix(authority.size());
    if (!rest.empty() && rest.front() != '/') return Fail(error, 400, "absolute-form target without a path");
    request->host = authority;
    request->absolute_form = true;
    request->target = rest.empty() ? std::string_view("/") : rest;
  }
  return ParseStatus::kComplete;
}

bool ParseContentLength(std::string_view value, uint64_t* length) {
  // 1*DIGIT, no sign, no list: "5, 5" is refused like any other duplicate.
  if (value.empty() || value.size() > 18) return false;
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *length = n;
  return true;
}

// Applies the headers that decide framing and connection handling.
ParseStatus ApplyHeaders(Request* request, ParseError* error) {
  bool have_length = false, have_encoding = false, have_host = false;
  for (size_t i = 0; i < request->header_count; ++i) {
    const Header& h = request->headers[i];
    if (EqualsIgnoreCase(h.name, "content-length")) {
      if (have_length) return Fail(error, 400, "duplicate Content-Length");
      if (!ParseContentLength(h.value, &request->content_length))
        return Fail(error, 400, "invalid Content-Length");
      have_length = true;
    } else if (EqualsIgnoreCase(h.name, "transfer-encoding")) {
      if (have_encoding) return Fail(error, 400, "duplicate Transfer-Encoding");
      if (!EqualsIgnoreCase(h.value, "chunked")) return Fail(error, 501, "unsupported transfer coding");
      have_encoding = true;
    } else if (EqualsIgnoreCase(h.name, "host")) {
      if (have_host) return Fail(error, 400, "duplicate Host");
      if (!IsValidHost(h.value)) return Fail(error, 400, "invalid Host");
      if (!request->absolute_form) request->host = h.value;
      have_host = true;
    } else if (EqualsIgnoreCase(h.name, "connection")) {
      std::string_view rest = h.value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view option = TrimOws(rest.substr(0, comma));
        if (EqualsIgnoreCase(option, "close")) request->keep_alive = false;
        if (EqualsIgnoreCase(option, "keep-alive") && request->minor_version == 0) request->keep_alive = true;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (EqualsIgnoreCase(h.name, "expect")) {
      request->expect_continue = EqualsIgnoreCase(h.value, "100-continue");
    }
  }
  if (have_length && have_encoding) return Fail(error, 400, "both Content-Length and Transfer-Encoding");
  if (have_encoding && request->minor_version == 0) return Fail(error, 400, "Transfer-Encoding in HTTP/1.0");
  if (!have_host && request->minor_version == 1) return Fail(error, 400, "missing Host");
  if (have_encoding) {
    request->body = BodyKind::kChunked;
  } else if (have_length && request->content_length > 0) {
    request->body = BodyKind::kContentLength;
  }
  return ParseStatus::kComplete;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view Request::Find(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

ParseStatus ParseRequest(std::string_view buffer, const Limits& limits, Request* request, ParseError* error) {
  request->header_count = 0;
  request->host = {};
  request->absolute_form = false;
  request->body = BodyKind::kNone;
  request->content_length = 0;
  request->expect_continue = false;
  const size_t max_headers = limits.max_headers < kMaxHeaders ? limits.max_headers : kMaxHeaders;

  // RFC 9112 2.2: a server SHOULD ignore empty lines received before the request line.
  size_t pos = 0;
  while (buffer.size() - pos >= 2 && buffer[pos] == '\r' && buffer[pos + 1] == '\n' &&
         pos < limits.max_request_line) {
    pos += 2;
  }
  std::string_view line;
  size_t next = 0;
  switch (NextLine(buffer, pos, &line, &next)) {
    case LineStatus::kIncomplete:
      if (buffer.size() - pos > limits.max_request_line) return Fail(error, 414, "request line too long");
      return ParseStatus::kIncomplete;
    case LineStatus::kBareLf:
      return Fail(error, 400, "bare LF");
    case LineStatus::kLine:
      break;
  }
  if (line.size() > limits.max_request_line) return Fail(error, 414, "request line too long");
  if (line.find('\r') != std::string_view::npos) return Fail(error, 400, "bare CR");
  request->minor_version = 1;
  if (ParseRequestLine(line, request, error) == ParseStatus::kError) return ParseStatus::kError;
  request->keep_alive = request->minor_version == 1;
  pos = next;

  for (;;) {
    switch (NextLine(buffer, pos, &line, &next)) {
      case LineStatus::kIncomplete:
        if (buffer.size() > limits.max_head_bytes) return Fail(error, 431, "request header fields too large");
        return ParseStatus::kIncomplete;
      case LineStatus::kBareLf:
        return Fail(error, 400, "bare LF");
      case LineStatus::kLine:
        break;
    }
    if (next > limits.max_head_bytes) return Fail(error, 431, "request header fields too large");
    pos = next;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') return Fail(error, 400, "obsolete line folding");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail(error, 400, "header line without a colon");
    const std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Fail(error, 400, "invalid header name");
    const std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value)) return Fail(error, 400, "invalid character in header value");
    if (request->header_count == max_headers) return Fail(error, 431, "too many header fields");
    request->headers[request->header_count++] = Header{name, value};
  }
  request->head_bytes = pos;
  return ApplyHeaders(request, error);
}

}  // namespace edge::http
