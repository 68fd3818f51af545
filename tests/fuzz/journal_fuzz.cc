// A journal is read back after crashes: the record decoder must stop at the first damaged record,
// never read past the buffer, and every record it accepts must re-encode to the same bytes. Each
// input is decoded as it is and once more with every frame's checksum made right, so the fuzzer
// reaches the records' fields behind the checksums.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "cache/journal.h"

namespace {

void Check(std::string_view bytes) {
  std::string reencoded;
  const size_t intact = cache::DecodeRecords(
      bytes, [&](const cache::JournalRecord& record) { reencoded += cache::EncodeRecord(record); });
  if (intact > bytes.size() || reencoded != bytes.substr(0, intact)) std::abort();
}

// The framing (cache/journal.cc): u32 payload length, u32 XXH32 of the payload, the payload.
std::string WithChecksums(std::string_view bytes) {
  std::string fixed(bytes);
  size_t at = 0;
  while (fixed.size() - at >= 8) {
    uint32_t length = 0;
    std::memcpy(&length, fixed.data() + at, 4);
    if (length == 0 || length > fixed.size() - at - 8) break;
    const uint32_t crc = XXH32(fixed.data() + at + 8, length, 0);
    std::memcpy(fixed.data() + at + 4, &crc, 4);
    at += 8 + length;
  }
  return fixed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Check(bytes);
  Check(WithChecksums(bytes));
  return 0;
}
