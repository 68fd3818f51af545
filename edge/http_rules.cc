#include "edge/http_rules.h"

#include <charconv>
#include <optional>

#include "edge/http/request_parser.h"
#include "vhost-config/http_date.h"

namespace edge {

namespace {

using http::EqualsIgnoreCase;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> Number(std::string_view s) {
  uint64_t value = 0;
  if (s.empty() || s.size() > 19) return std::nullopt;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string_view Opaque(std::string_view etag) {
  return etag.starts_with("W/") ? etag.substr(2) : etag;
}

// Whether `list` (an If-Match / If-None-Match value) names `etag`; `weak` compares opaque tags only.
bool ListMatches(std::string_view list, std::string_view etag, bool weak) {
  if (etag.empty()) return false;
  if (Trim(list) == "*") return true;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view candidate = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (weak ? Opaque(candidate) == Opaque(etag)
             : (candidate == etag && !candidate.starts_with("W/") && !etag.starts_with("W/"))) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool IsHopByHop(std::string_view name, std::string_view connection) {
  for (std::string_view hop : {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                               "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}) {
    if (EqualsIgnoreCase(name, hop)) return true;
  }
  while (!connection.empty()) {
    const size_t comma = connection.find(',');
    if (EqualsIgnoreCase(Trim(connection.substr(0, comma)), name)) return true;
    connection = comma == std::string_view::npos ? std::string_view() : connection.substr(comma + 1);
  }
  return false;
}

bool IsStoredHeader(std::string_view name, std::string_view connection) {
  if (IsHopByHop(name, connection)) return false;
  for (std::string_view own : {"content-length", "age", "x-cache", "set-cookie"}) {
    if (EqualsIgnoreCase(name, own)) return false;
  }
  return true;
}

bool IsNotModifiedHeader(std::string_view name) {
  for (std::string_view kept :
       {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"}) {
    if (EqualsIgnoreCase(name, kept)) return true;
  }
  return false;
}

RangeResult EvaluateRange(std::string_view range, uint64_t length, ByteRange* out) {
  range = Trim(range);
  if (range.size() < 6 || !EqualsIgnoreCase(range.substr(0, 6), "bytes=")) return RangeResult::kWhole;
  const std::string_view spec = Trim(range.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeResult::kWhole;  // several ranges: send all
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::kWhole;
  const std::string_view first_text = Trim(spec.substr(0, dash)), last_text = Trim(spec.substr(dash + 1));
  if (first_text.empty()) {  // suffix: the last N bytes
    const std::optional<uint64_t> suffix = Number(last_text);
    if (!suffix) return RangeResult::kWhole;
    if (*suffix == 0 || length == 0) return RangeResult::kUnsatisfiable;
    out->first = length - std::min(*suffix, length);
    out->last = length - 1;
    return RangeResult::kPartial;
  }
  const std::optional<uint64_t> first = Number(first_text);
  std::optional<uint64_t> last = last_text.empty() ? std::optional<uint64_t>(UINT64_MAX) : Number(last_text);
  if (!first || !last || *last < *first) return RangeResult::kWhole;
  if (*first >= length) return RangeResult::kUnsatisfiable;
  out->first = *first;
  out->last = std::min(*last, length - 1);
  return RangeResult::kPartial;
}

bool IfRangeMatches(std::string_view if_range, std::string_view etag, std::string_view last_modified) {
  if_range = Trim(if_range);
  if (if_range.empty()) return true;
  if (if_range.starts_with("\"") || if_range.starts_with("W/")) {
    return !if_range.starts_with("W/") && !etag.starts_with("W/") && if_range == etag;
  }
  const auto date = vhost::ParseHttpDate(if_range);
  const auto modified = vhost::ParseHttpDate(last_modified);
  return date && modified && *date == *modified;
}

Precondition EvaluatePreconditions(const ConditionalHeaders& request, std::string_view etag,
                                   std::string_view last_modified) {
  if (!request.if_match.empty()) {
    if (!ListMatches(request.if_match, etag, false)) return Precondition::kFailed;
  } else if (!request.if_unmodified_since.empty()) {
    const auto since = vhost::ParseHttpDate(request.if_unmodified_since);
    const auto modified = vhost::ParseHttpDate(last_modified);
    if (since && modified && *modified > *since) return Precondition::kFailed;
  }
  if (!request.if_none_match.empty()) {
    return ListMatches(request.if_none_match, etag, true) ? Precondition::kNotModified
                                                          : Precondition::kProceed;
  }
  if (!request.if_modified_since.empty()) {
    const auto since = vhost::ParseHttpDate(request.if_modified_since);
    const auto modified = vhost::ParseHttpDate(last_modified);
    if (since && modified && *modified <= *since) return Precondition::kNotModified;
  }
  return Precondition::kProceed;
}

}  // namespace edge
