#include "cache/entry_format.h"

#include <cstring>
#include <limits>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/byte_codec.h"

namespace cache {

// Layout (little-endian):
//   u32 magic, u16 version, u16 reserved, u32 header_length, u32 body_offset, u32 checksum, u32 zero,
//   then the fields below, then zero padding up to body_offset. The crc covers the whole header
//   (padding excluded) with the crc field itself zeroed.
namespace {

constexpr size_t kCrcOffset = 16;

uint32_t HeaderCrc(std::string_view header) {
  // XXH32 of the header with the checksum field read as zero.
  XXH32_state_t state;
  XXH32_reset(&state, 0);
  XXH32_update(&state, header.data(), kCrcOffset);
  const uint32_t zero = 0;
  XXH32_update(&state, &zero, 4);
  XXH32_update(&state, header.data() + kCrcOffset + 4, header.size() - kCrcOffset - 4);
  return XXH32_digest(&state);
}

}  // namespace

int64_t EntryMetadata::UsefulUntil() const {
  return fresh_until + std::max(stale_while_revalidate, stale_if_error);
}

EncodedHeader EncodeHeader(const EntryMetadata& meta) {
  std::string out;
  ByteWriter w(&out);
  w.Int(kEntryMagic);
  w.Int(kEntryFormatVersion);
  w.Int<uint16_t>(0);
  w.Int<uint32_t>(0);  // header_length, patched below
  w.Int<uint32_t>(0);  // body_offset, patched below
  w.Int<uint32_t>(0);  // crc, patched below
  w.Int<uint32_t>(0);
  w.Str(meta.key);
  w.Str(meta.tenant);
  w.Int(meta.status);
  w.Int<uint32_t>(static_cast<uint32_t>(meta.headers.size()));
  for (const auto& [name, value] : meta.headers) {
    w.Str(name);
    w.Str(value);
  }
  w.Str(meta.etag);
  w.Str(meta.last_modified);
  w.Int(meta.stored_at);
  w.Int(meta.fresh_until);
  w.Int(meta.stale_while_revalidate);
  w.Int(meta.stale_if_error);
  w.Int<uint32_t>(static_cast<uint32_t>(meta.tags.size()));
  for (const auto& tag : meta.tags) w.Str(tag);
  w.Int(meta.stored_epoch);
  w.Int(meta.body_length);

  const uint32_t header_length = static_cast<uint32_t>(out.size());
  const uint32_t body_offset = BodyOffsetFor(header_length);
  std::memcpy(out.data() + 8, &header_length, 4);
  std::memcpy(out.data() + 12, &body_offset, 4);
  const uint32_t crc = HeaderCrc(out);
  std::memcpy(out.data() + kCrcOffset, &crc, 4);
  out.resize(body_offset, '\0');
  return EncodedHeader{std::move(out), body_offset};
}

absl::StatusOr<uint32_t> PeekHeaderLength(std::string_view prefix) {
  ByteReader r(prefix);
  uint32_t magic = 0, header_length = 0;
  uint16_t version = 0, reserved = 0;
  if (!r.Int(&magic) || !r.Int(&version) || !r.Int(&reserved) || !r.Int(&header_length)) {
    return absl::DataLossError("entry header truncated");
  }
  if (magic != kEntryMagic) return absl::DataLossError("not a cache entry (bad magic)");
  if (version != kEntryFormatVersion) {
    return absl::DataLossError(absl::StrCat("unsupported entry format version ", version));
  }
  if (header_length < kFixedHeaderBytes || header_length > kMaxHeaderBytes) {
    return absl::DataLossError(absl::StrCat("entry header length ", header_length, " out of range"));
  }
  return header_length;
}

absl::StatusOr<EntryMetadata> DecodeHeader(std::string_view bytes) {
  absl::StatusOr<uint32_t> header_length = PeekHeaderLength(bytes);
  if (!header_length.ok()) return header_length.status();
  if (bytes.size() < *header_length) return absl::DataLossError("entry header truncated");
  const std::string_view header = bytes.substr(0, *header_length);

  ByteReader r(header.substr(12));
  uint32_t body_offset = 0, crc = 0, zero = 0;
  r.Int(&body_offset);
  r.Int(&crc);
  r.Int(&zero);
  if (crc != HeaderCrc(header)) return absl::DataLossError("entry header checksum mismatch");
  if (body_offset != BodyOffsetFor(*header_length) || zero != 0) {
    return absl::DataLossError("entry body offset invalid");
  }

  EntryMetadata meta;
  uint32_t count = 0;
  bool ok = r.Str(&meta.key) && r.Str(&meta.tenant) && r.Int(&meta.status) && r.Count(&count, 8);
  for (uint32_t i = 0; ok && i < count; ++i) {
    auto& [name, value] = meta.headers.emplace_back();
    ok = r.Str(&name) && r.Str(&value);
  }
  ok = ok && r.Str(&meta.etag) && r.Str(&meta.last_modified) && r.Int(&meta.stored_at) &&
       r.Int(&meta.fresh_until) && r.Int(&meta.stale_while_revalidate) && r.Int(&meta.stale_if_error) &&
       r.Count(&count, 4);
  for (uint32_t i = 0; ok && i < count; ++i) ok = r.Str(&meta.tags.emplace_back());
  ok = ok && r.Int(&meta.stored_epoch) && r.Int(&meta.body_length) && r.empty();
  if (!ok) return absl::DataLossError("entry header fields malformed");
  return meta;
}

}  // namespace cache
