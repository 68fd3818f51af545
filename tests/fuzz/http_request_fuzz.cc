// The request parser faces the internet: whatever bytes arrive, it must not read out of bounds,
// and whatever it accepts must satisfy the framing invariants the server relies on, with a host
// that the tenant lookup reads as the parser did.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/http/request_parser.h"
#include "vhost-config/host_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  edge::http::Request request;
  edge::http::ParseError error;
  edge::http::Limits limits;
  limits.max_head_bytes = 4096;
  limits.max_request_line = 1024;
  if (edge::http::ParseRequest(bytes, limits, &request, &error) == edge::http::ParseStatus::kComplete) {
    const bool has_length = !request.Find("content-length").empty();
    const bool has_encoding = !request.Find("transfer-encoding").empty();
    if (request.head_bytes > size || request.head_bytes > limits.max_head_bytes) std::abort();
    if (has_length && has_encoding) std::abort();
    if (bytes.substr(0, request.head_bytes).find("\n\r\n") == std::string_view::npos) std::abort();
    for (size_t i = 0; i < request.header_count; ++i) {
      for (unsigned char c : request.headers[i].value) {
        if (c == '\r' || c == '\n' || c == 0) std::abort();
      }
    }
    // What routes the request: an origin-form target (absolute form was turned into one) and a
    // host of non-empty labels.
    if (request.target != "*" && !request.target.starts_with("/")) std::abort();
    const std::string_view host = request.host;
    if (host.starts_with(".") || host.find("..") != std::string_view::npos ||
        host.find_first_of("@/?# ") != std::string_view::npos) {
      std::abort();
    }
    // The host as the tenant lookup normalises it: named at all, lower case, without port or
    // trailing dot, and normalised once for good (another pass reads it no differently).
    char buffer[256], again[256];
    const std::string_view normal = vhost::NormalizeHost(host, buffer, sizeof(buffer));
    if (!host.empty()) {
      if (normal.empty() || normal.ends_with(".")) std::abort();
      if (normal.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) std::abort();
      if (!normal.starts_with("[") && normal.find(':') != std::string_view::npos) std::abort();
      if (vhost::NormalizeHost(normal, again, sizeof(again)) != normal) std::abort();
    }
    // Split feed: the head arriving in pieces is never taken for a complete head before its end.
    const size_t step = request.head_bytes > 256 ? request.head_bytes / 64 : 1;
    for (size_t cut = 0; cut < request.head_bytes; cut += step) {
      edge::http::Request partial;
      if (edge::http::ParseRequest(bytes.substr(0, cut), limits, &partial, &error) ==
          edge::http::ParseStatus::kComplete) {
        std::abort();
      }
    }
  }
  return 0;
}
