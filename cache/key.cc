#include "cache/key.h"

#include <xxhash.h>

namespace cache {

namespace {
constexpr char kSep = '\0';

void JoinTo(KeyKind kind, std::initializer_list<std::string_view> fields, bool trailing_separator,
            std::string* out) {
  size_t size = 1 + fields.size();
  for (std::string_view field : fields) size += field.size();
  out->clear();
  out->reserve(size);
  out->push_back(static_cast<char>(kind));
  // A separator between fields, whatever they hold: an empty first one must not merge with the next.
  for (const std::string_view* field = fields.begin(); field != fields.end(); ++field) {
    if (field != fields.begin()) out->push_back(kSep);
    out->append(*field);
  }
  if (trailing_separator) out->push_back(kSep);
}

std::string Join(KeyKind kind, std::initializer_list<std::string_view> fields, bool trailing_separator) {
  std::string out;
  JoinTo(kind, fields, trailing_separator, &out);
  return out;
}
}  // namespace

std::string Key::Encode() const {
  std::string out;
  EncodeTo(&out);
  return out;
}

void Key::EncodeTo(std::string* out) const {
  JoinTo(kind, {account, container, name, variant}, false, out);
}

uint64_t HashEncodedKey(std::string_view encoded) {
  return XXH3_64bits(encoded.data(), encoded.size());
}

std::string ContainerRange(KeyKind kind, std::string_view account, std::string_view container) {
  return Join(kind, {account, container}, true);
}

std::string ExactNameRange(KeyKind kind, std::string_view account, std::string_view container,
                           std::string_view name) {
  return Join(kind, {account, container, name}, true);
}

std::string NamePrefixRange(KeyKind kind, std::string_view account, std::string_view container,
                            std::string_view prefix) {
  return Join(kind, {account, container, prefix}, false);
}

bool DecodeKey(std::string_view encoded, KeyParts* parts) {
  if (encoded.empty()) return false;
  const char kind = encoded[0];
  if (kind != static_cast<char>(KeyKind::kObject) && kind != static_cast<char>(KeyKind::kListing)) {
    return false;
  }
  std::string_view rest = encoded.substr(1);
  std::string_view* fields[] = {&parts->account, &parts->container, &parts->name};
  for (std::string_view* field : fields) {
    const size_t end = rest.find(kSep);
    if (end == std::string_view::npos) return false;
    *field = rest.substr(0, end);
    rest.remove_prefix(end + 1);
  }
  parts->kind = static_cast<KeyKind>(kind);
  parts->variant = rest;
  return true;
}

}  // namespace cache
