// The binaries' own settings files (edge.toml, purge-daemon.toml): TOML checked against a schema
// table of KeySpecs, so unknown keys, wrong types and bad values are all reported at once, each as
// "file:line: key: message", and defaults and documentation come from the same table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vhost-config/schema.h"

namespace vhost {

class Settings {
 public:
  // Reads a file: NotFound if it cannot be read; a syntax error is recorded as the first error.
  static absl::StatusOr<Settings> FromFile(const std::string& path, std::span<const KeySpec> keys);
  static Settings FromText(std::string_view text, std::string file, std::span<const KeySpec> keys);
  ~Settings();
  Settings(Settings&&) noexcept;

  // The value of `key`, or its schema default. A wrong value is recorded and the default returned.
  std::string String(std::string_view key);
  bool Bool(std::string_view key);
  absl::Duration Duration(std::string_view key);
  int64_t Integer(std::string_view key);
  uint64_t Bytes(std::string_view key);
  std::vector<std::string> Strings(std::string_view key);
  bool Has(std::string_view key) const;
  // The tables of an array of tables ("[[cache.zone]]"), each checked against `keys`.
  std::vector<Settings> Tables(std::string_view key, std::span<const KeySpec> keys);
  // The line `key` is set at, or the table's when it is not set: for messages about what it names.
  int Line(std::string_view key) const;
  // Records a problem with `key` (at its line, or the table's when it is not set).
  void Error(std::string_view key, std::string_view message);
  // OK, or InvalidArgument with every recorded problem, one per line, in line order.
  absl::Status Finish() const;
  const std::string& file() const;

 private:
  struct State;
  Settings(std::shared_ptr<State> state, size_t table, std::string field_prefix, int line,
           std::span<const KeySpec> keys);
  template <typename T, typename Reader>
  T Read(std::string_view key, Reader reader);

  std::shared_ptr<State> state_;
  size_t table_;  // index into the state's tables
  std::string field_prefix_;
  int line_;
  std::span<const KeySpec> keys_;
};

}  // namespace vhost
