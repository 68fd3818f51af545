#include "edge/http_rules.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "absl/strings/str_cat.h"
#include "edge/http/request_parser.h"
#include "vhost-config/http_date.h"

namespace edge {

namespace {

using http::EqualsIgnoreCase;

std::optional<uint64_t> Number(std::string_view s) {
  uint64_t value = 0;
  if (s.empty() || s.size() > 19) return std::nullopt;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// An entity tag as RFC 9110 8.8.3 reads it; a value without quotes is the opaque tag it would be
// quoted (Swift's plain ETags).
struct Tag {
  std::string_view opaque;
  bool weak = false;
};

Tag ReadTag(std::string_view text) {
  Tag tag;
  text = Trim(text);
  if (text.starts_with("W/\"")) {
    tag.weak = true;
    text.remove_prefix(2);
  }
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  tag.opaque = text;
  return tag;
}

// Whether `list` (an If-Match / If-None-Match value) names `etag`. A quoted tag may hold commas,
// so the list is split around quoted tags, not at every comma.
bool ListMatches(std::string_view list, std::string_view etag, TagComparison comparison) {
  if (Trim(list) == "*") return true;  // any current representation: the entry is one
  while (true) {
    while (!list.empty() && (list.front() == ' ' || list.front() == '\t' || list.front() == ',')) {
      list.remove_prefix(1);
    }
    if (list.empty()) return false;
    size_t end = list.find(',');
    if (list.starts_with("\"") || list.starts_with("W/\"")) {
      const size_t open = list.find('"');
      const size_t close = list.find('"', open + 1);
      if (close == std::string_view::npos) return false;  // malformed: names nothing
      end = close + 1;
    }
    const std::string_view candidate = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view() : list.substr(end);
    if (EntityTagsMatch(candidate, etag, comparison)) return true;
  }
}

// Sorts and merges ranges that overlap or touch, if any do; else leaves them as asked. Ranges with
// a gap between them stay apart even when the gap is small, as Swift answers them.
void Coalesce(ByteRanges* ranges) {
  if (ranges->size() < 2) return;
  ByteRanges merged = *ranges;
  std::sort(merged.begin(), merged.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.first < b.first; });
  size_t kept = 0;
  for (size_t i = 1; i < merged.size(); ++i) {
    ByteRange& last = merged[kept];
    if (merged[i].first <= last.last || merged[i].first - last.last == 1) {
      last.last = std::max(last.last, merged[i].last);
    } else {
      merged[++kept] = merged[i];
    }
  }
  merged.resize(kept + 1);
  if (merged.size() < ranges->size()) *ranges = std::move(merged);
}

}  // namespace

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

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

bool EntityTagsMatch(std::string_view a, std::string_view b, TagComparison comparison) {
  if (Trim(a).empty() || Trim(b).empty()) return false;  // no tag at all is nobody's
  const Tag x = ReadTag(a), y = ReadTag(b);
  return x.opaque == y.opaque && (comparison == TagComparison::kWeak || (!x.weak && !y.weak));
}

RangeResult EvaluateRanges(std::string_view range, uint64_t length, size_t max_ranges, ByteRanges* out) {
  out->clear();
  range = Trim(range);
  if (range.size() < 6 || !EqualsIgnoreCase(range.substr(0, 6), "bytes=")) return RangeResult::kWhole;
  std::string_view specs = range.substr(6);
  size_t count = 0;
  while (!specs.empty()) {
    const size_t comma = specs.find(',');
    const std::string_view spec = Trim(specs.substr(0, comma));
    specs = comma == std::string_view::npos ? std::string_view() : specs.substr(comma + 1);
    if (spec.empty()) continue;  // empty list elements are allowed (RFC 9110 5.6.1)
    if (++count > max_ranges) return RangeResult::kWhole;
    const size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeResult::kWhole;
    const std::string_view first_text = Trim(spec.substr(0, dash)), last_text = Trim(spec.substr(dash + 1));
    if (first_text.empty()) {  // suffix: the last N bytes
      const std::optional<uint64_t> suffix = Number(last_text);
      if (!suffix) return RangeResult::kWhole;
      if (*suffix == 0 || length == 0) continue;  // unsatisfiable
      out->push_back({length - std::min(*suffix, length), length - 1});
      continue;
    }
    const std::optional<uint64_t> first = Number(first_text);
    const std::optional<uint64_t> last =
        last_text.empty() ? std::optional<uint64_t>(UINT64_MAX) : Number(last_text);
    if (!first || !last || *last < *first) return RangeResult::kWhole;
    if (*first >= length) continue;  // unsatisfiable
    out->push_back({*first, std::min(*last, length - 1)});
  }
  if (count == 0) return RangeResult::kWhole;
  if (out->empty()) return RangeResult::kUnsatisfiable;
  Coalesce(out);
  return RangeResult::kPartial;
}

bool IfRangeMatches(std::string_view if_range, std::string_view etag, std::string_view last_modified) {
  if_range = Trim(if_range);
  if (if_range.empty()) return true;
  // An entity tag (quoted, or as Swift sends it), or an HTTP-date; a quote tells at once (13.1.5).
  if (if_range.starts_with("\"") || if_range.starts_with("W/")) {
    return EntityTagsMatch(if_range, etag, TagComparison::kStrong);
  }
  if (const auto date = vhost::ParseHttpDate(if_range)) {
    const auto modified = vhost::ParseHttpDate(last_modified);
    return modified && *date == *modified;
  }
  return EntityTagsMatch(if_range, etag, TagComparison::kStrong);
}

MultipartFraming FrameByteRanges(std::span<const ByteRange> ranges, uint64_t length,
                                 std::string_view content_type, std::string_view boundary) {
  MultipartFraming framing;
  for (const ByteRange& r : ranges) {
    std::string head(framing.part_heads.empty() ? "--" : "\r\n--");
    head.append(boundary).append("\r\n");
    if (!content_type.empty()) head.append("Content-Type: ").append(content_type).append("\r\n");
    absl::StrAppend(&head, "Content-Range: bytes ", r.first, "-", r.last, "/", length, "\r\n\r\n");
    framing.content_length += head.size() + r.length();
    framing.part_heads.push_back(std::move(head));
  }
  framing.close.append("\r\n--").append(boundary).append("--\r\n");
  framing.content_length += framing.close.size();
  return framing;
}

Precondition EvaluatePreconditions(const ConditionalHeaders& request, const Validators& entry) {
  if (!request.if_match.empty()) {
    if (!ListMatches(request.if_match, entry.etag, TagComparison::kStrong)) return Precondition::kFailed;
  } else if (!request.if_unmodified_since.empty()) {
    const auto since = vhost::ParseHttpDate(request.if_unmodified_since);
    const auto modified = vhost::ParseHttpDate(entry.last_modified);
    if (since && modified && *modified > *since) return Precondition::kFailed;
  }
  if (!request.if_none_match.empty()) {
    return ListMatches(request.if_none_match, entry.etag, TagComparison::kWeak) ? Precondition::kNotModified
                                                                                : Precondition::kProceed;
  }
  if (!request.if_modified_since.empty()) {
    // Without Last-Modified, the entry's Date says when it was last known unchanged.
    const auto since = vhost::ParseHttpDate(request.if_modified_since);
    const auto modified =
        vhost::ParseHttpDate(entry.last_modified.empty() ? entry.date : entry.last_modified);
    if (since && modified && *modified <= *since) return Precondition::kNotModified;
  }
  return Precondition::kProceed;
}

}  // namespace edge
