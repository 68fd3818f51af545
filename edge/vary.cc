#include "edge/vary.h"

#include <algorithm>

#include "edge/http_rules.h"

namespace edge {

namespace {

// Accept-Language and Accept-Encoding are lists whose order, case and whitespace carry nothing
// (preference is in q=): "en-US, fr;q=0.5" and "fr; q=0.5,en-us" are one variant.
bool IsUnorderedList(std::string_view name) {
  return name == "accept-language" || name == "accept-encoding";
}

void AppendNormalisedList(std::string_view value, std::string* out) {
  std::vector<std::string> members;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    std::string member;
    for (char c : item) {
      if (c != ' ' && c != '\t') member += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!member.empty()) members.push_back(std::move(member));
  }
  std::sort(members.begin(), members.end());
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) *out += ',';
    *out += members[i];
  }
}

}  // namespace

std::vector<std::string> VaryNames(std::string_view vary) {
  std::vector<std::string> names;
  while (!vary.empty()) {
    const size_t comma = vary.find(',');
    const std::string_view item = Trim(vary.substr(0, comma));
    vary = comma == std::string_view::npos ? std::string_view() : vary.substr(comma + 1);
    if (item.empty()) continue;
    if (item == "*") return {"*"};
    std::string name(item);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string VariantSuffix(const std::vector<std::string>& names,
                          const std::function<std::string_view(std::string_view)>& find) {
  std::string suffix;
  for (const std::string& name : names) {
    suffix += kVarySeparator;
    suffix += name;
    suffix += '=';
    if (IsUnorderedList(name)) {
      AppendNormalisedList(find(name), &suffix);
    } else {
      suffix += Trim(find(name));
    }
  }
  return suffix;
}

std::vector<std::string> VaryIndex::Find(std::string_view base_key) const {
  if (empty()) return {};
  absl::MutexLock lock(&mu_);
  auto it = names_.find(absl::string_view(base_key.data(), base_key.size()));
  return it == names_.end() ? std::vector<std::string>() : it->second;
}

void VaryIndex::Learn(std::string_view base_key, std::vector<std::string> names) {
  absl::MutexLock lock(&mu_);
  if (names_.size() >= kMaxObjects) names_.clear();
  names_[std::string(base_key)] = std::move(names);
  size_.store(names_.size(), std::memory_order_relaxed);
}

}  // namespace edge
