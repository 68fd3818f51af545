#include "edge/https_rules.h"

#include "absl/strings/str_cat.h"

namespace edge {

std::string_view RequestedHost(std::string_view host, std::string_view server_name) {
  return host.empty() ? server_name : host;
}

HttpsAction DecideHttps(bool tls, std::string_view server_name, const vhost::Tenant* sni_tenant,
                        const vhost::Tenant& host_tenant) {
  if (!tls) return host_tenant.https_redirect ? HttpsAction::kRedirect : HttpsAction::kServe;
  // The certificate the client accepted was chosen for its TLS name: a Host of another tenant
  // (one connection reused for another site, or a forged Host) must not reach that site.
  if (!server_name.empty() && sni_tenant != &host_tenant) return HttpsAction::kMisdirected;
  return HttpsAction::kServe;
}

std::string_view HttpsLocation(std::string_view host, std::string_view target, uint16_t port,
                               std::string* out) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {  // an IPv6 literal: "[::1]:8080"
    name = name.substr(0, name.find(']') + 1);
  } else if (const size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  out->assign("https://");
  out->append(name);
  if (port != 443) absl::StrAppend(out, ":", port);
  out->append(target.empty() ? std::string_view("/") : target);
  return *out;
}

}  // namespace edge
