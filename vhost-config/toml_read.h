// Typed reads of one TOML value: the value, or what is wrong with it. Shared by the tenant loader
// and Settings, so both phrase problems the same way.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace vhost {

std::optional<std::string> ReadString(const toml::node& node, std::string* error);
std::optional<bool> ReadBool(const toml::node& node, std::string* error);
std::optional<absl::Duration> ReadDuration(const toml::node& node, std::string* error);
std::optional<double> ReadNumber(const toml::node& node, std::string* error);
std::optional<int64_t> ReadInteger(const toml::node& node, std::string* error);
// A byte size: an integer, or a string such as "512M", "10G", "1.5T" (powers of 1024).
std::optional<uint64_t> ReadBytes(const toml::node& node, std::string* error);
inline int NodeLine(const toml::node& node) {
  return static_cast<int>(node.source().begin.line);
}

}  // namespace vhost
