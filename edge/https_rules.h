// What HTTPS changes for a request, as pure functions: a request whose Host belongs to another
// tenant than its TLS name chose is misdirected (421, RFC 9110 15.5.20); a tenant's plain HTTP
// requests may be redirected to https:// (308, RFC 9110 15.4.9: method and body kept).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vhost-config/tenant.h"

namespace edge {

enum class HttpsAction { kServe, kMisdirected, kRedirect };

// The name a request asks for: its Host, or, for a request without one (HTTP/1.0 needs none) on
// a TLS connection, the server name (SNI) the client connected with: that name chose the
// certificate the client accepted, so it stands for the missing Host.
std::string_view RequestedHost(std::string_view host, std::string_view server_name);

// `host_tenant` serves the request's Host; `sni_tenant` the connection's TLS server name
// (`server_name`, empty without SNI or over plain HTTP), or null when no tenant claims it. A
// client without SNI chose no tenant, so any Host is its own.
HttpsAction DecideHttps(bool tls, std::string_view server_name, const vhost::Tenant* sni_tenant,
                        const vhost::Tenant& host_tenant);

// The redirect's target: https:// with the request's host (its port dropped), `port` unless it
// is 443, and the target (path and query) as the client sent it. Written into `out`.
std::string_view HttpsLocation(std::string_view host, std::string_view target, uint16_t port,
                               std::string* out);

}  // namespace edge
