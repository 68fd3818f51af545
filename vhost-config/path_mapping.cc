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

namespace {

// Appends the decoding of `value` to `out`.
absl::Status AppendPercentDecoded(std::string_view value, bool plus_is_space, std::string& out) {
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
  return absl::OkStatus();
}

void AppendPercentEncoded(std::string_view text, bool keep_slash, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
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
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view value, bool plus_is_space) {
  std::string out;
  out.reserve(value.size());
  if (absl::Status status = AppendPercentDecoded(value, plus_is_space, out); !status.ok()) return status;
  return out;
}

std::string PercentEncode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  AppendPercentEncoded(text, keep_slash, out);
  return out;
}

namespace {

// The request path, decoded: its segments, which point into the string they were joined in.
// Inline: most paths have a few segments, and this runs per request.
struct DecodedPath {
  absl::InlinedVector<std::string_view, 16> segments;
  bool directory = false;  // the path ends with '/' (or "/.")
};

// Decodes `raw_path` (which starts with '/') into `joined`, its segments joined by '/' (no leading
// one); refuses what could change the path's structure or reach the origin as something else than
// the client sent. "." and empty segments are dropped.
absl::Status DecodePath(std::string_view raw_path, std::string& joined, DecodedPath& path) {
  joined.clear();
  absl::InlinedVector<std::pair<size_t, size_t>, 16> spans;  // offsets: `joined` may move as it grows
  size_t start = 1;
  while (start <= raw_path.size()) {
    const size_t end = std::min(raw_path.find('/', start), raw_path.size());
    const size_t mark = joined.size();
    if (!spans.empty()) joined.push_back('/');
    const size_t first = joined.size();
    if (absl::Status status = AppendPercentDecoded(raw_path.substr(start, end - start), false, joined);
        !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(status.message()), " in path"));
    }
    const std::string_view segment = std::string_view(joined).substr(first);
    // A raw slash or backslash never reaches here (the path is split on one, refused with the
    // other): these came from escapes.
    if (segment.find('/') != std::string_view::npos)
      return absl::InvalidArgumentError("encoded slash in path");
    if (segment.find('\\') != std::string_view::npos)
      return absl::InvalidArgumentError("encoded backslash in path");
    if (segment == "..") return absl::InvalidArgumentError("'..' segment in path");
    if (segment.empty() || segment == ".") {
      joined.resize(mark);
    } else {
      spans.emplace_back(first, segment.size());
    }
    start = end + 1;
  }
  path.segments.clear();
  for (const auto& [first, size] : spans)
    path.segments.push_back(std::string_view(joined).substr(first, size));
  path.directory = raw_path.ends_with("/") || raw_path.ends_with("/.");
  return absl::OkStatus();
}

// A listing's query: `prefix` becomes the name, the other parameters (sorted, as sent) the variant.
absl::Status SplitListingQuery(std::string_view query, OriginTarget* result) {
  absl::InlinedVector<std::string_view, 8> others;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    const std::string_view key = param.substr(0, param.find('='));
    const std::string_view raw_value = key.size() < param.size() ? param.substr(key.size() + 1) : "";
    if (key == "prefix") {
      result->name.clear();
      if (!AppendPercentDecoded(raw_value, true, result->name).ok())
        return absl::InvalidArgumentError("malformed prefix in listing query");
      continue;
    }
    if (key == "format") result->listing_format.assign(raw_value);
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

// `result->url` holds the listed account's or container's URL.
absl::Status MapListing(std::string_view accept, OriginTarget* result) {
  result->listing = true;
  result->name.clear();
  if (absl::Status status = SplitListingQuery(result->query, result); !status.ok()) return status;
  absl::StrAppend(&result->url, "?", result->query);
  if (result->listing_format.empty()) {
    result->listing_format.assign(FormatFromAccept(accept));
    absl::StrAppend(&result->url, result->query.empty() ? "" : "&", "format=", result->listing_format);
    absl::StrAppend(&result->variant, result->variant.empty() ? "" : "&", "format=", result->listing_format);
  }
  return absl::OkStatus();
}

// `path` was decoded into `result->name`.
absl::Status MapSwiftApi(const Tenant& tenant, const DecodedPath& path, std::string_view accept,
                         OriginTarget* result) {
  const Origin& origin = tenant.origin;
  const auto& segments = path.segments;
  std::string& url = result->url;
  if (segments.size() < 2 || segments[0] != "v1") {
    // Auth, info, healthcheck: the origin answers, the cache never stores.
    url = origin.url;
    for (std::string_view segment : segments) {
      url.push_back('/');
      AppendPercentEncoded(segment, false, url);
    }
    if (segments.empty() || path.directory) url.push_back('/');
    if (!result->query.empty()) absl::StrAppend(&url, "?", result->query);
    result->pass = true;
    result->name.clear();
    return absl::OkStatus();
  }
  result->account.assign(segments[1]);
  if (!origin.account.empty() && result->account != origin.account) {
    return absl::PermissionDeniedError(
        absl::StrCat("account ", result->account, " is not served on this host"));
  }
  absl::StrAppend(&url, origin.url, "/v1/");
  AppendPercentEncoded(result->account, false, url);
  if (segments.size() > 2) {
    result->container.assign(segments[2]);
    url.push_back('/');
    AppendPercentEncoded(result->container, false, url);
  }
  if (segments.size() <= 3) return MapListing(accept, result);  // an account's or a container's listing
  result->name.erase(0, static_cast<size_t>(segments[3].data() - result->name.data()));
  if (path.directory) result->name.push_back('/');
  result->variant = result->query;
  url.push_back('/');
  AppendPercentEncoded(result->name, true, url);
  if (!result->query.empty()) absl::StrAppend(&url, "?", result->query);
  return absl::OkStatus();
}

}  // namespace

absl::Status MapRequest(const Tenant& tenant, std::string_view target, std::string_view accept,
                        OriginTarget* result) {
  result->account.clear();
  result->container.clear();
  result->path.clear();
  result->variant.clear();
  result->listing = false;
  result->pass = false;
  result->listing_format.clear();
  result->query.clear();
  result->url.clear();
  if (!target.starts_with("/")) return absl::InvalidArgumentError("request path must start with '/'");
  const size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos) result->query.assign(target.substr(question + 1));
  if (raw_path.find('\\') != std::string_view::npos) return absl::InvalidArgumentError("backslash in path");
  for (unsigned char c : result->query) {
    if (c <= 0x20 || c == 0x7f) return absl::InvalidArgumentError("space or control character in query");
  }

  // The decoded path is built in the name, which every kind of origin derives from it.
  std::string& name = result->name;
  DecodedPath path;
  if (absl::Status status = DecodePath(raw_path, name, path); !status.ok()) return status;
  result->path.push_back('/');  // cleared above
  result->path.append(name);
  if (path.directory && !name.empty()) result->path.push_back('/');
  const Origin& origin = tenant.origin;
  if (origin.kind == OriginKind::kSwiftApi) return MapSwiftApi(tenant, path, accept, result);
  if (path.directory && !name.empty()) name.push_back('/');

  std::string& url = result->url;
  if (origin.kind == OriginKind::kHttp) {
    result->account.assign(kHttpAccount);
    result->container = tenant.name;
    name.insert(0, 1, '/');
    result->variant = result->query;
    url = origin.url;
    AppendPercentEncoded(name, true, url);
    if (!result->query.empty()) absl::StrAppend(&url, "?", result->query);
    return absl::OkStatus();
  }

  result->account = origin.account;
  result->container = origin.container;
  if (origin.container_from_path) {
    const size_t slash = std::min(name.find('/'), name.size());
    result->container.assign(name, 0, slash);
    name.erase(0, std::min(slash + 1, name.size()));
    if (result->container.empty()) return absl::InvalidArgumentError("no container in path");
  }
  // What follows the container: nothing or a directory is a listing (when the tenant has them).
  const bool listing = tenant.cache.listings && (name.empty() || name.ends_with("/"));
  name.insert(0, origin.prefix);
  absl::StrAppend(&url, origin.url, "/v1/");
  AppendPercentEncoded(result->account, false, url);
  url.push_back('/');
  AppendPercentEncoded(result->container, false, url);
  if (listing) {
    result->listing = true;
    result->listing_format = "plain";
    for (std::string_view format : {"json", "xml"}) {
      if (result->query.starts_with("format=") && result->query.substr(7) == format)
        result->listing_format.assign(format);
    }
    result->query.clear();
    absl::StrAppend(&result->variant, "delimiter=%2F&format=", result->listing_format);
    url.append("?prefix=");
    AppendPercentEncoded(name, false, url);
    absl::StrAppend(&url, "&", result->variant);
    return absl::OkStatus();
  }
  // Without listings a directory path goes to Swift as is (staticweb may answer with its index).
  result->variant = result->query;
  url.push_back('/');
  AppendPercentEncoded(name, true, url);
  if (!result->query.empty()) absl::StrAppend(&url, "?", result->query);
  return absl::OkStatus();
}

absl::StatusOr<OriginTarget> MapRequest(const Tenant& tenant, std::string_view target,
                                        std::string_view accept) {
  OriginTarget result;
  if (absl::Status status = MapRequest(tenant, target, accept, &result); !status.ok()) return status;
  return result;
}

void AssignCacheAccount(std::string_view cluster, std::string_view account, std::string* out) {
  out->clear();
  if (!cluster.empty()) {
    out->append(cluster);
    out->push_back('/');
  }
  out->append(account);
}

std::string CacheAccount(std::string_view cluster, std::string_view account) {
  std::string out;
  AssignCacheAccount(cluster, account, &out);
  return out;
}

namespace {

// Whether `raw` percent-decodes (with '+' as a space) to `name`, as Python's parse_qs in Swift's
// middlewares decodes it: a malformed escape stays as it is.
bool DecodesTo(std::string_view raw, std::string_view name) {
  size_t n = 0;
  for (size_t i = 0; i < raw.size(); ++i, ++n) {
    char c = raw[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < raw.size() && Hex(raw[i + 1]) >= 0 && Hex(raw[i + 2]) >= 0) {
      c = static_cast<char>(Hex(raw[i + 1]) * 16 + Hex(raw[i + 2]));
      i += 2;
    }
    if (n >= name.size() || name[n] != c) return false;
  }
  return n == name.size();
}

}  // namespace

bool QueryHasParameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (DecodesTo(param.substr(0, param.find('=')), name)) return true;
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  return false;
}

}  // namespace vhost
