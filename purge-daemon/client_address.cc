#include "purge-daemon/client_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "edge/http/request_parser.h"

namespace purge {

std::optional<std::string> NormalizeIp(std::string_view text) {
  const std::string copy(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  char out[INET6_ADDRSTRLEN];
  in6_addr v6;
  in_addr v4;
  if (inet_pton(AF_INET, copy.c_str(), &v4) == 1 && inet_ntop(AF_INET, &v4, out, sizeof(out)) != nullptr)
    return std::string(out);
  if (inet_pton(AF_INET6, copy.c_str(), &v6) == 1 && inet_ntop(AF_INET6, &v6, out, sizeof(out)) != nullptr)
    return std::string(out);
  return std::nullopt;
}

std::string ClientAddress(std::string_view peer, const edge::http::Request& request,
                          std::span<const std::string> trusted_proxies) {
  if (std::find(trusted_proxies.begin(), trusted_proxies.end(), peer) == trusted_proxies.end())
    return std::string(peer);
  // The last field line, and its last element: a proxy appends to what its client sent.
  std::string_view forwarded;
  for (size_t i = 0; i < request.header_count; ++i) {
    if (edge::http::EqualsIgnoreCase(request.headers[i].name, "x-forwarded-for"))
      forwarded = request.headers[i].value;
  }
  if (forwarded.empty()) return std::string(peer);
  const size_t comma = forwarded.rfind(',');
  if (comma != std::string_view::npos) forwarded.remove_prefix(comma + 1);
  return NormalizeIp(forwarded).value_or(std::string(peer));
}

}  // namespace purge
