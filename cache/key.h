// What identifies a cache entry: the origin identity (account, container, name), never the Host,
// so a write through the API host and a read through a custom domain meet on the same entry.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cache {

enum class KeyKind : char {
  kObject = 'o',   // name is the object name; variant distinguishes Vary variants
  kListing = 'l',  // name is the listing prefix; variant is the rest of the listing query
};

// A key as the edge builds it. The encoded form orders all entries of one container together and,
// within it, by name, so prefix and variant ranges are contiguous in the index.
struct Key {
  KeyKind kind = KeyKind::kObject;
  std::string account;
  std::string container;  // empty for an account listing
  std::string name;
  std::string variant;

  // kind, account, container, name, variant separated by NUL (names never contain NUL: the
  // path mapping rejects it).
  std::string Encode() const;
  // The same into `out`, whose capacity is reused: no allocation once it is large enough.
  void EncodeTo(std::string* out) const;
  bool operator==(const Key&) const = default;
};

// Hash of an encoded key: the index key and the file name. Equal hashes do not mean equal keys;
// the index and the file header compare the full encoded key.
uint64_t HashEncodedKey(std::string_view encoded);

// Encoded-key prefixes that select ranges of entries.
std::string ContainerRange(KeyKind kind, std::string_view account, std::string_view container);
// Every variant of one object or one listing prefix.
std::string ExactNameRange(KeyKind kind, std::string_view account, std::string_view container,
                           std::string_view name);
// Every name that starts with `prefix`.
std::string NamePrefixRange(KeyKind kind, std::string_view account, std::string_view container,
                            std::string_view prefix);

// The parts of an encoded key, as views into it; false if it is not a well-formed key.
struct KeyParts {
  KeyKind kind;
  std::string_view account, container, name, variant;
};
bool DecodeKey(std::string_view encoded, KeyParts* parts);

}  // namespace cache
