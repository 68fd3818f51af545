// Purge API keys are stored as their SHA-256, never in plain: the tenant file, the CLI that
// prints a hash for it, and the daemon that checks a presented key all hash the same way.
#pragma once

#include <string>
#include <string_view>

namespace vhost {

// Lowercase hex SHA-256 of `key`.
std::string HashPurgeKey(std::string_view key);

}  // namespace vhost
