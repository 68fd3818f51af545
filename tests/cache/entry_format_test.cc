#include "cache/entry_format.h"

#include <doctest/doctest.h>

#include "cache/key.h"

namespace cache {

namespace {
EntryMetadata Sample() {
  EntryMetadata meta;
  meta.key = Key{KeyKind::kObject, "acct", "c", "name", ""}.Encode();
  meta.tenant = "demo";
  meta.status = 200;
  meta.headers = {{"Content-Type", "image/jpeg"}, {"ETag", "\"abc\""}};
  meta.etag = "\"abc\"";
  meta.last_modified = "Tue, 24 Nov 2026 01:00:00 GMT";
  meta.stored_at = 1000;
  meta.fresh_until = 1600;
  meta.stale_while_revalidate = 30;
  meta.stale_if_error = 300;
  meta.tags = {"product-7", "banner"};
  meta.stored_epoch = 42;
  meta.body_length = 123456;
  return meta;
}
}  // namespace

TEST_CASE("a header round-trips and the body starts on a page boundary") {
  const EntryMetadata meta = Sample();
  const EncodedHeader header = EncodeHeader(meta);
  CHECK(header.body_offset % kPageSize == 0);
  CHECK(header.bytes.size() == header.body_offset);
  absl::StatusOr<EntryMetadata> decoded = DecodeHeader(header.bytes);
  REQUIRE(decoded.ok());
  CHECK(*decoded == meta);
  CHECK(decoded->UsefulUntil() == 1900);
}

TEST_CASE("a large header spans several pages") {
  EntryMetadata meta = Sample();
  meta.headers.emplace_back("X-Big", std::string(10000, 'x'));
  const EncodedHeader header = EncodeHeader(meta);
  CHECK(header.body_offset == 3 * kPageSize);
  CHECK(*PeekHeaderLength(header.bytes) > kPageSize);
  CHECK(DecodeHeader(header.bytes).ok());
}

TEST_CASE("any flipped byte or truncation is detected") {
  const EncodedHeader header = EncodeHeader(Sample());
  const uint32_t length = *PeekHeaderLength(header.bytes);
  for (uint32_t i = 0; i < length; ++i) {
    std::string corrupt = header.bytes;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x40);
    CHECK_FALSE(DecodeHeader(corrupt).ok());
  }
  CHECK_FALSE(DecodeHeader(std::string_view(header.bytes).substr(0, length - 1)).ok());
  CHECK(DecodeHeader("").status().message() == "entry header truncated");
  CHECK(DecodeHeader(std::string(64, 'x')).status().message() == "not a cache entry (bad magic)");
}

}  // namespace cache
