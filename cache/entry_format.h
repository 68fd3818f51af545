// The bytes of one cache entry file: a versioned, checksummed header (key, response metadata,
// validators, times, tags, generation data), then the body at a page-aligned offset, because
// sendfile from an unaligned offset is measurably slower.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace cache {

inline constexpr uint32_t kEntryMagic = 0x43474445;  // "EDGC" little-endian
inline constexpr uint16_t kEntryFormatVersion = 1;
inline constexpr uint32_t kPageSize = 4096;
// A header larger than this is refused: it bounds what a corrupt length field can make us read.
inline constexpr uint32_t kMaxHeaderBytes = 1 << 20;

// Everything stored about an entry except its body.
struct EntryMetadata {
  std::string key;  // Key::Encode(); compared on open so a hash collision never serves another key
  std::string tenant;
  uint16_t status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string etag;
  std::string last_modified;
  int64_t stored_at = 0;                // unix seconds
  int64_t fresh_until = 0;              // unix seconds
  uint32_t stale_while_revalidate = 0;  // seconds after fresh_until
  uint32_t stale_if_error = 0;          // seconds after fresh_until
  std::vector<std::string> tags;
  uint32_t stored_epoch = 0;  // invalidation epoch when the fill began (see invalidation.h)
  uint64_t body_length = 0;

  // The last moment the entry can be of any use (fresh or servable stale).
  int64_t UsefulUntil() const;
  bool operator==(const EntryMetadata&) const = default;
};

// The serialized header, padded so that the body starts at `body_offset`, a multiple of kPageSize.
struct EncodedHeader {
  std::string bytes;  // bytes.size() == body_offset
  uint32_t body_offset = 0;
};
EncodedHeader EncodeHeader(const EntryMetadata& meta);

// Where the body starts for a header of `header_length` bytes: the next page boundary.
inline constexpr uint32_t BodyOffsetFor(uint32_t header_length) {
  return (header_length + kPageSize - 1) / kPageSize * kPageSize;
}

// How many leading bytes of a file to read to learn its full header length.
inline constexpr size_t kFixedHeaderBytes = 24;
// The header length announced by the fixed prefix, or an error if the prefix is not ours.
absl::StatusOr<uint32_t> PeekHeaderLength(std::string_view prefix);
// Parses and verifies (magic, version, checksum, every length) a header. Never reads past `bytes`.
absl::StatusOr<EntryMetadata> DecodeHeader(std::string_view bytes);

}  // namespace cache
