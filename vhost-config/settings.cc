#include "vhost-config/settings.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "vhost-config/duration.h"
#include "vhost-config/toml_read.h"

namespace vhost {

std::optional<std::string> ReadString(const toml::node& node, std::string* error) {
  if (node.is_string()) return *node.value<std::string>();
  *error = "must be a string";
  return std::nullopt;
}

std::optional<bool> ReadBool(const toml::node& node, std::string* error) {
  if (node.is_boolean()) return *node.value<bool>();
  *error = "must be true or false";
  return std::nullopt;
}

std::optional<absl::Duration> ReadDuration(const toml::node& node, std::string* error) {
  if (!node.is_string()) {
    *error = "must be a duration string such as \"500ms\", \"30s\", \"5m\", \"2h\" or \"7d\"";
    return std::nullopt;
  }
  const std::string text = *node.value<std::string>();
  if (std::optional<absl::Duration> d = ParseDuration(text)) return d;
  *error = absl::StrCat("\"", text, "\" is not a duration (use ms, s, m, h or d, e.g. \"7d\")");
  return std::nullopt;
}

std::optional<double> ReadNumber(const toml::node& node, std::string* error) {
  if (node.is_number()) return *node.value<double>();
  *error = "must be a number";
  return std::nullopt;
}

std::optional<int64_t> ReadInteger(const toml::node& node, std::string* error) {
  if (node.is_integer()) return *node.value<int64_t>();
  *error = "must be an integer";
  return std::nullopt;
}

std::optional<uint64_t> ReadBytes(const toml::node& node, std::string* error) {
  if (node.is_integer() && *node.value<int64_t>() >= 0) return static_cast<uint64_t>(*node.value<int64_t>());
  const std::string text = node.is_string() ? *node.value<std::string>() : "";
  size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (unit.ends_with("iB")) unit.erase(unit.size() - 2);
  if (unit.ends_with("B")) unit.pop_back();
  static constexpr std::string_view kUnits = "KMGT";
  double scale = 1;
  if (unit.size() == 1 && kUnits.find(unit[0]) != std::string_view::npos) {
    scale = std::pow(1024.0, static_cast<double>(kUnits.find(unit[0]) + 1));
  } else if (!unit.empty()) {
    used = 0;
  }
  if (used == 0 || !(number >= 0) || number * scale > 1e18) {
    *error = absl::StrCat(node.is_string() ? absl::StrCat("\"", text, "\"") : "the value",
                          " is not a size (bytes, or a number with K, M, G or T, e.g. \"10G\")");
    return std::nullopt;
  }
  return static_cast<uint64_t>(number * scale);
}

struct Settings::State {
  std::string file;
  toml::table root;
  std::vector<const toml::table*> tables;
  toml::table defaults;  // parsed schema defaults, by key
  std::vector<std::pair<int, std::string>> errors;

  void Add(int line, std::string_view field, std::string_view message) {
    errors.emplace_back(line,
                        absl::StrCat(file, ":", line, ": ", std::string(field), ": ", std::string(message)));
  }
};

namespace {

// Reports keys of `table` that the schema does not know; dotted groups ("cache.zone") recurse.
void CheckKeys(const toml::table& table, const std::string& prefix, const std::string& field_prefix,
               std::span<const KeySpec> keys,
               const std::function<void(int, std::string, std::string)>& error) {
  for (auto&& [k, value] : table) {
    const std::string key = prefix + std::string(k.str());
    // A key may be both (the edge's "listen": [[listen]] tables, or the old [listen] group).
    if (FindKey(keys, key) != nullptr && !value.is_table()) continue;
    if (value.is_table()) {
      bool is_group = false;
      for (const KeySpec& candidate : keys) is_group |= candidate.key.starts_with(key + ".");
      if (is_group) {
        CheckKeys(*value.as_table(), key + ".", field_prefix, keys, error);
        continue;
      }
    }
    if (FindKey(keys, key) != nullptr) continue;
    error(NodeLine(value), field_prefix + key, "unknown key");
  }
}

}  // namespace

Settings::Settings(std::shared_ptr<State> state, size_t table, std::string field_prefix, int line,
                   std::span<const KeySpec> keys)
    : state_(std::move(state)),
      table_(table),
      field_prefix_(std::move(field_prefix)),
      line_(line),
      keys_(keys) {
  CheckKeys(*state_->tables[table_], "", field_prefix_, keys_,
            [this](int l, std::string field, std::string message) { state_->Add(l, field, message); });
}

Settings::~Settings() = default;
Settings::Settings(Settings&&) noexcept = default;

Settings Settings::FromText(std::string_view text, std::string file, std::span<const KeySpec> keys) {
  auto state = std::make_shared<State>();
  state->file = std::move(file);
  try {
    state->root = toml::parse(text, state->file);
  } catch (const toml::parse_error& e) {
    state->Add(static_cast<int>(e.source().begin.line), "syntax", e.description());
  }
  state->tables.push_back(&state->root);
  return Settings(std::move(state), 0, "", 1, keys);
}

absl::StatusOr<Settings> Settings::FromFile(const std::string& path, std::span<const KeySpec> keys) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read: ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  return FromText(text.str(), path, keys);
}

bool Settings::Has(std::string_view key) const {
  return state_->tables[table_]->at_path(key).node() != nullptr;
}

int Settings::Line(std::string_view key) const {
  const toml::node* node = state_->tables[table_]->at_path(key).node();
  return node ? NodeLine(*node) : line_;
}

void Settings::Error(std::string_view key, std::string_view message) {
  state_->Add(Line(key), field_prefix_ + std::string(key), message);
}

template <typename T, typename Reader>
T Settings::Read(std::string_view key, Reader reader) {
  const KeySpec* spec = FindKey(keys_, key);
  std::string error;
  if (const toml::node* node = state_->tables[table_]->at_path(key).node()) {
    if (std::optional<T> value = reader(*node, &error)) return *value;
    Error(key, error);
  } else if (spec != nullptr && spec->default_value.empty()) {
    Error(key, "is required");
  }
  // The schema's default, as TOML text; a key without one reads as the type's empty value.
  if (spec == nullptr || spec->default_value.empty() || spec->default_value == "-") return T{};
  const std::string name(key);
  if (!state_->defaults.contains(name)) {
    toml::table parsed = toml::parse("v = " + std::string(spec->default_value));
    state_->defaults.insert(name, std::move(*parsed.get("v")));
  }
  return reader(*state_->defaults.get(name), &error).value_or(T{});
}

std::string Settings::String(std::string_view key) {
  return Read<std::string>(key, ReadString);
}
bool Settings::Bool(std::string_view key) {
  return Read<bool>(key, ReadBool);
}
absl::Duration Settings::Duration(std::string_view key) {
  return Read<absl::Duration>(key, ReadDuration);
}
int64_t Settings::Integer(std::string_view key) {
  return Read<int64_t>(key, ReadInteger);
}
uint64_t Settings::Bytes(std::string_view key) {
  return Read<uint64_t>(key, ReadBytes);
}

std::vector<std::string> Settings::Strings(std::string_view key) {
  return Read<std::vector<std::string>>(key, [](const toml::node& node, std::string* error) {
    std::optional<std::vector<std::string>> out;
    const toml::array* array = node.as_array();
    if (array == nullptr || !array->is_homogeneous(toml::node_type::string)) {
      *error = "must be a list of strings";
      return out;
    }
    out.emplace();
    for (const toml::node& item : *array) out->push_back(*item.value<std::string>());
    return out;
  });
}

std::vector<Settings> Settings::Tables(std::string_view key, std::span<const KeySpec> keys) {
  std::vector<Settings> out;
  const toml::node* node = state_->tables[table_]->at_path(key).node();
  if (node == nullptr) return out;
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    Error(key, "must be an array of tables ([[" + std::string(key) + "]])");
    return out;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    state_->tables.push_back((*array)[i].as_table());
    out.push_back(Settings(state_, state_->tables.size() - 1,
                           absl::StrCat(field_prefix_, std::string(key), "[", i, "]."), NodeLine((*array)[i]),
                           keys));
  }
  return out;
}

const std::string& Settings::file() const {
  return state_->file;
}

absl::Status Settings::Finish() const {
  if (state_->errors.empty()) return absl::OkStatus();
  std::vector<std::pair<int, std::string>> errors = state_->errors;
  std::stable_sort(errors.begin(), errors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> lines;
  for (auto& [line, message] : errors) lines.push_back(std::move(message));
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace vhost
