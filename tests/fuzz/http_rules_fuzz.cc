// Range and conditional headers come from clients: whatever they hold, a range the edge answers
// lies inside the body, and nothing crashes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "edge/http_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t length = 0;
  std::memcpy(&length, data, 8);
  length %= uint64_t{1} << 40;
  const std::string_view text(reinterpret_cast<const char*>(data) + 8, size - 8);
  edge::ByteRange range;
  if (edge::EvaluateRange(text, length, &range) == edge::RangeResult::kPartial) {
    if (range.first > range.last || range.last >= length) std::abort();
  }
  const size_t split = text.size() / 2;
  const std::string_view a = text.substr(0, split), b = text.substr(split);
  (void)edge::IfRangeMatches(a, b, b);
  (void)edge::EvaluatePreconditions({a, b, a, b}, b, a);
  return 0;
}
