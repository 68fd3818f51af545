// A journal is read back after crashes: the record decoder must stop at the first damaged record,
// never read past the buffer, and every record it accepts must re-encode to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cache/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string reencoded;
  const size_t intact = cache::DecodeRecords(
      bytes, [&](const cache::JournalRecord& record) { reencoded += cache::EncodeRecord(record); });
  if (intact > size || reencoded != bytes.substr(0, intact)) std::abort();
  return 0;
}
