// Entry files come from disk, where a crash or a bad drive can leave anything: the header parser
// must reject garbage without reading out of bounds, and what it accepts must re-encode the same.
// The checksum would keep the fuzzer out of everything behind it, so each input is decoded as it
// is and once more with its checksum (and body offset) made right: damage a checksum cannot see
// (a drive that wrote the wrong bytes consistently, a bug of an older version) is still safe.
// The key stored in a header is decoded as the store decodes it (so is the input itself), and
// keys built from the input encode to what decodes to them.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "cache/entry_format.h"
#include "cache/key.h"

namespace {

// The layout's fixed part (cache/entry_format.cc): header_length at 8, body_offset at 12, the
// checksum at 16, computed over the header with the checksum read as zero.
constexpr size_t kLengthOffset = 8, kBodyOffsetOffset = 12, kCrcOffset = 16;

std::string WithChecksum(std::string_view bytes) {
  std::string fixed(bytes);
  if (fixed.size() < cache::kFixedHeaderBytes) return fixed;
  uint32_t length = 0;
  std::memcpy(&length, fixed.data() + kLengthOffset, 4);
  if (length < cache::kFixedHeaderBytes || length > fixed.size()) return fixed;
  const uint32_t body_offset = cache::BodyOffsetFor(length);
  std::memcpy(fixed.data() + kBodyOffsetOffset, &body_offset, 4);
  std::memset(fixed.data() + kCrcOffset, 0, 4);
  const uint32_t crc = XXH32(fixed.data(), length, 0);
  std::memcpy(fixed.data() + kCrcOffset, &crc, 4);
  return fixed;
}

void CheckKey(std::string_view encoded) {
  cache::KeyParts parts;
  if (!cache::DecodeKey(encoded, &parts)) return;
  const cache::Key key{parts.kind, std::string(parts.account), std::string(parts.container),
                       std::string(parts.name), std::string(parts.variant)};
  if (key.Encode() != encoded) std::abort();
  // The ranges that select the entry (purges, listings) hold it.
  if (!encoded.starts_with(cache::ContainerRange(parts.kind, parts.account, parts.container)) ||
      !encoded.starts_with(cache::ExactNameRange(parts.kind, parts.account, parts.container, parts.name)) ||
      !encoded.starts_with(cache::NamePrefixRange(parts.kind, parts.account, parts.container,
                                                  parts.name.substr(0, parts.name.size() / 2)))) {
    std::abort();
  }
}

void CheckHeader(std::string_view bytes) {
  (void)cache::PeekHeaderLength(bytes);
  absl::StatusOr<cache::EntryMetadata> meta = cache::DecodeHeader(bytes);
  if (!meta.ok()) {
    if (meta.status().message().empty()) std::abort();
    return;
  }
  const cache::EncodedHeader again = cache::EncodeHeader(*meta);
  absl::StatusOr<cache::EntryMetadata> round_trip = cache::DecodeHeader(again.bytes);
  if (!round_trip.ok() || !(*round_trip == *meta)) std::abort();
  CheckKey(meta->key);
}

// A key of the input's parts (split at '\n'), as the edge builds one: no NUL in account,
// container or name (the path mapping refuses it), anything in the variant.
void CheckBuiltKey(std::string_view input) {
  std::string_view parts[4];
  for (int i = 0; i < 3; ++i) {
    const size_t end = input.find('\n');
    if (end == std::string_view::npos) return;
    parts[i] = input.substr(0, end);
    if (parts[i].find('\0') != std::string_view::npos) return;
    input.remove_prefix(end + 1);
  }
  parts[3] = input;
  for (cache::KeyKind kind : {cache::KeyKind::kObject, cache::KeyKind::kListing}) {
    const cache::Key key{kind, std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                         std::string(parts[3])};
    const std::string encoded = key.Encode();
    cache::KeyParts decoded;
    if (!cache::DecodeKey(encoded, &decoded) || decoded.kind != kind || decoded.account != key.account ||
        decoded.container != key.container || decoded.name != key.name || decoded.variant != key.variant) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckHeader(bytes);
  CheckHeader(WithChecksum(bytes));
  CheckKey(bytes);
  CheckBuiltKey(bytes);
  return 0;
}
