// The purge daemon's settings file (TOML); every key, its type, default and meaning is in
// PurgeDaemonKeys(), shared by the loader, `purge-daemon --help-config` and the docs.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "purge-daemon/api.h"
#include "purge-daemon/consumer.h"
#include "vhost-config/schema.h"

namespace purge {

struct DaemonConfig {
  std::string node_id;
  std::string tenants_file;
  std::string api_address;
  uint16_t api_port = 9100;
  int api_workers = 2;
  // Both set: the API is served over TLS with this chain (leaf first) and key, checked at load.
  std::string api_certificate;
  std::string api_key;
  std::string admin_address;
  uint16_t admin_port = 9101;  // 0: no admin listener
  ApiOptions api;
  ConsumerOptions consumer;
};

std::span<const vhost::KeySpec> PurgeDaemonKeys();
absl::StatusOr<DaemonConfig> LoadDaemonConfig(const std::string& path);
// The same from the file's text (`path` names it in errors and anchors a relative `tenants`).
absl::StatusOr<DaemonConfig> LoadDaemonConfigText(std::string_view text, const std::string& path);
std::string PurgeDaemonConfigMarkdown();

}  // namespace purge
