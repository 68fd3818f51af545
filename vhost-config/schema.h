// Every key of the tenant file, in one table: its type, its default and what it means. The
// loader's unknown-key and type checks, `vhost-config schema` and docs/configuration.md all come
// from this table, so they cannot disagree.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace vhost {

enum class KeyType { kString, kStringList, kBool, kDuration, kInteger, kNumber, kBytes, kRuleList };

struct KeySpec {
  std::string_view key;  // dotted, relative to a [[tenant]] (or [defaults]) table
  KeyType type;
  std::string_view default_value;  // as written in TOML; empty: required; "-": optional, no default
  bool in_defaults;                // may also be set in [defaults]
  std::string_view doc;
};

std::span<const KeySpec> TenantKeys();
// The keys of one [[tenant.cache.rule]] table.
std::span<const KeySpec> RuleKeys();
// The keys of one [[tenant.tls]] table.
std::span<const KeySpec> TlsKeys();
const KeySpec* FindKey(std::span<const KeySpec> keys, std::string_view key);
std::string_view TypeName(KeyType type);
// The reference tables in Markdown, as docs/configuration.md holds them.
std::string SchemaMarkdown();
// One table of keys in Markdown; the `[defaults]` column only for tenant keys.
std::string KeysMarkdown(std::span<const KeySpec> keys, bool with_defaults_column = false);

}  // namespace vhost
