// Entry files come from disk, where a crash or a bad drive can leave anything: the header parser
// must reject garbage without reading out of bounds, and what it accepts must re-encode the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cache/entry_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)cache::PeekHeaderLength(bytes);
  absl::StatusOr<cache::EntryMetadata> meta = cache::DecodeHeader(bytes);
  if (meta.ok()) {
    const cache::EncodedHeader again = cache::EncodeHeader(*meta);
    absl::StatusOr<cache::EntryMetadata> round_trip = cache::DecodeHeader(again.bytes);
    if (!round_trip.ok() || !(*round_trip == *meta)) std::abort();
  }
  return 0;
}
