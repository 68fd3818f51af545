#include "vhost-config/path_mapping.h"

#include <algorithm>
#include <span>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace vhost {

namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view value, bool plus_is_space) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '+' && plus_is_space) {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= value.size()) return absl::InvalidArgumentError("malformed percent-escape");
      const int hi = Hex(value[i + 1]), lo = Hex(value[i + 2]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("malformed percent-escape");
      c = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (c < 0x20 || c == 0x7f) return absl::InvalidArgumentError("NUL or control character");
    out.push_back(static_cast<char>(c));
  }
  return out;
}

namespace {

// Decodes one path segment; refuses what could change the path's structure or reach the origin
// as something else than the client sent.
absl::StatusOr<std::string> DecodeSegment(std::string_view segment) {
  absl::StatusOr<std::string> out = PercentDecode(segment, false);
  if (!out.ok())
    return absl::InvalidArgumentError(absl::StrCat(std::string(out.status().message()), " in path"));
  // A raw slash or backslash never reaches here (the path is split on one, refused with the
  // other): these came from escapes.
  if (out->find('/') != std::string::npos) return absl::InvalidArgumentError("encoded slash in path");
  if (out->find('\\') != std::string::npos) return absl::InvalidArgumentError("encoded backslash in path");
  if (*out == "..") return absl::InvalidArgumentError("'..' segment in path");
  return out;
}

}  // namespace

std::string PercentEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {

// A listing's query: `prefix` becomes the name, the other parameters (sorted, as sent) the variant.
absl::Status SplitListingQuery(std::string_view query, OriginTarget* result) {
  std::vector<std::string_view> others;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    const std::string_view key = param.substr(0, param.find('='));
    const std::string_view raw_value = key.size() < param.size() ? param.substr(key.size() + 1) : "";
    if (key == "prefix") {
      absl::StatusOr<std::string> prefix = PercentDecode(raw_value, true);
      if (!prefix.ok()) return absl::InvalidArgumentError("malformed prefix in listing query");
      result->name = std::move(*prefix);
      continue;
    }
    if (key == "format") result->listing_format = std::string(raw_value);
    others.push_back(param);
  }
  std::sort(others.begin(), others.end());
  for (std::string_view param : others) {
    if (!result->variant.empty()) result->variant.push_back('&');
    result->variant.append(param);
  }
  return absl::OkStatus();
}

// Swift's listing_formats middleware: JSON or XML when Accept asks for it, else plain text.
std::string_view FormatFromAccept(std::string_view accept) {
  if (accept.find("application/json") != std::string_view::npos) return "json";
  if (accept.find("application/xml") != std::string_view::npos ||
      accept.find("text/xml") != std::string_view::npos) {
    return "xml";
  }
  return "plain";
}

absl::Status MapListing(std::string_view accept, const std::string& base, OriginTarget* result) {
  result->listing = true;
  if (absl::Status status = SplitListingQuery(result->query, result); !status.ok()) return status;
  std::string query = result->query;
  if (result->listing_format.empty()) {
    result->listing_format = std::string(FormatFromAccept(accept));
    const std::string format = "format=" + result->listing_format;
    absl::StrAppend(&query, query.empty() ? "" : "&", format);
    absl::StrAppend(&result->variant, result->variant.empty() ? "" : "&", format);
  }
  result->url = absl::StrCat(base, "?", query);
  return absl::OkStatus();
}

absl::StatusOr<OriginTarget> MapSwiftApi(const Tenant& tenant, std::span<const std::string> segments,
                                         bool directory, std::string_view accept, OriginTarget result) {
  const Origin& origin = tenant.origin;
  if (segments.size() < 2 || segments[0] != "v1") {
    // Auth, info, healthcheck: the origin answers, the cache never stores.
    std::string path;
    for (const std::string& segment : segments) absl::StrAppend(&path, "/", PercentEncode(segment, false));
    if (path.empty() || directory) path.push_back('/');
    result.pass = true;
    result.url = absl::StrCat(origin.url, path, result.query.empty() ? "" : "?", result.query);
    return result;
  }
  result.account = segments[1];
  if (!origin.account.empty() && result.account != origin.account) {
    return absl::PermissionDeniedError(
        absl::StrCat("account ", result.account, " is not served on this host"));
  }
  std::string base = absl::StrCat(origin.url, "/v1/", PercentEncode(result.account, false));
  if (segments.size() > 2) {
    result.container = segments[2];
    absl::StrAppend(&base, "/", PercentEncode(result.container, false));
  }
  if (segments.size() <= 3) {  // an account's or a container's listing
    if (absl::Status status = MapListing(accept, base, &result); !status.ok()) return status;
    return result;
  }
  for (size_t i = 3; i < segments.size(); ++i) {
    if (i > 3) result.name.push_back('/');
    result.name += segments[i];
  }
  if (directory) result.name.push_back('/');
  result.variant = result.query;
  result.url = absl::StrCat(base, "/", PercentEncode(result.name, true), result.query.empty() ? "" : "?",
                            result.query);
  return result;
}

}  // namespace

absl::StatusOr<OriginTarget> MapRequest(const Tenant& tenant, std::string_view target,
                                        std::string_view accept) {
  OriginTarget result;
  if (target.starts_with("http://") || target.starts_with("https://")) {  // absolute form: keep the path
    const size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (!target.starts_with("/")) return absl::InvalidArgumentError("request path must start with '/'");
  const size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos) result.query = std::string(target.substr(question + 1));
  if (raw_path.find('\\') != std::string_view::npos) return absl::InvalidArgumentError("backslash in path");
  for (unsigned char c : result.query) {
    if (c <= 0x20 || c == 0x7f) return absl::InvalidArgumentError("space or control character in query");
  }

  // Inline: most paths have a few segments, and this runs for every request.
  absl::InlinedVector<std::string, 8> segments;
  size_t start = 1;
  while (start <= raw_path.size()) {
    const size_t end = std::min(raw_path.find('/', start), raw_path.size());
    absl::StatusOr<std::string> segment = DecodeSegment(raw_path.substr(start, end - start));
    if (!segment.ok()) return segment.status();
    if (!segment->empty() && *segment != ".") segments.push_back(std::move(*segment));
    start = end + 1;
  }
  const bool directory = raw_path.ends_with("/") || raw_path.ends_with("/.");
  const Origin& origin = tenant.origin;
  if (origin.kind == OriginKind::kSwiftApi)
    return MapSwiftApi(tenant, segments, directory, accept, std::move(result));

  std::string path;
  for (const std::string& segment : segments) {
    if (!path.empty()) path.push_back('/');
    path += segment;
  }
  if (directory && !path.empty()) path.push_back('/');

  if (origin.kind == OriginKind::kHttp) {
    result.account = std::string(kHttpAccount);
    result.container = tenant.name;
    result.name = "/" + path;
    result.variant = result.query;
    result.url = absl::StrCat(origin.url, PercentEncode(result.name, true), result.query.empty() ? "" : "?",
                              result.query);
    return result;
  }

  result.account = origin.account;
  result.container = origin.container;
  if (origin.container_from_path) {
    const size_t slash = path.find('/');
    result.container = path.substr(0, slash);
    path = slash == std::string::npos ? "" : path.substr(slash + 1);
    if (result.container.empty()) return absl::InvalidArgumentError("no container in path");
  }
  result.name = origin.prefix + path;
  const std::string base = absl::StrCat(origin.url, "/v1/", PercentEncode(result.account, false), "/",
                                        PercentEncode(result.container, false));
  if (tenant.cache.listings && (path.empty() || path.ends_with("/"))) {
    result.listing = true;
    result.listing_format = "plain";
    for (std::string_view format : {"json", "xml"}) {
      if (result.query == absl::StrCat("format=", std::string(format))) result.listing_format = format;
    }
    result.query.clear();
    result.variant = absl::StrCat("delimiter=%2F&format=", result.listing_format);
    result.url = absl::StrCat(base, "?prefix=", PercentEncode(result.name, false), "&", result.variant);
    return result;
  }
  // Without listings a directory path goes to Swift as is (staticweb may answer with its index).
  result.variant = result.query;
  result.url = absl::StrCat(base, "/", PercentEncode(result.name, true));
  if (!result.query.empty()) absl::StrAppend(&result.url, "?", result.query);
  return result;
}

bool QueryHasParameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.substr(0, param.find('=')) == name) return true;
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  return false;
}

}  // namespace vhost
