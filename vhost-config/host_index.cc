#include "vhost-config/host_index.h"

namespace vhost {

namespace {
absl::string_view Absl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
}  // namespace

std::string_view NormalizeHost(std::string_view host, char* buffer, size_t size) {
  if (!host.empty() && host.front() == '[') {  // IPv6 literal: "[::1]:8080"
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    host = host.substr(0, close + 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() >= size) return {};
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    buffer[i] = c;
  }
  return std::string_view(buffer, host.size());
}

bool HostIndex::Add(std::string_view domain, int tenant) {
  if (domain.starts_with("*.")) return wildcard_.emplace(std::string(domain.substr(2)), tenant).second;
  return exact_.emplace(std::string(domain), tenant).second;
}

int HostIndex::Find(std::string_view host) const {
  char buffer[256];
  const std::string_view name = NormalizeHost(host, buffer, sizeof(buffer));
  if (name.empty()) return -1;
  if (auto it = exact_.find(Absl(name)); it != exact_.end()) return it->second;
  // Longest suffix first: "*.a.b.c" is more specific than "*.b.c".
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (auto it = wildcard_.find(Absl(name.substr(dot + 1))); it != wildcard_.end()) return it->second;
  }
  return -1;
}

}  // namespace vhost
