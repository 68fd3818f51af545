// Which client an API request counts against for the failed-authentication limit: the peer of the
// connection, or, when that peer is a trusted proxy (an edge forwarding a PURGE), the address the
// proxy names in X-Forwarded-For. Pure, so the trust rule has its own tests.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "edge/http/request_parser.h"

namespace purge {

// An IPv4 or IPv6 address in its canonical text ("::ffff:1.2.3.4" stays as written by inet_ntop),
// or nullopt if `text` is not one.
std::optional<std::string> NormalizeIp(std::string_view text);

// `peer` unless it is one of `trusted_proxies` (canonical text) and the request carries an
// X-Forwarded-For: then its last address (the one the proxy added; those before it are the
// client's own word). A header that is not an address leaves the peer.
std::string ClientAddress(std::string_view peer, const edge::http::Request& request,
                          std::span<const std::string> trusted_proxies);

}  // namespace purge
