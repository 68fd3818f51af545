// Range and conditional headers come from clients: whatever they hold, the ranges the edge answers
// lie inside the body, never overlap (so the answer is never larger than the body plus the
// framing of at most the limit of parts), entity-tag comparison is symmetric, and nothing crashes.
// An origin's Content-Range, as the edge reads it for slices, always lies inside its total, and
// the slice ranges the edge asks for lie inside the object.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "edge/http_rules.h"
#include "edge/slices.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t length = 0;
  std::memcpy(&length, data, 8);
  length %= uint64_t{1} << 40;
  const std::string_view text(reinterpret_cast<const char*>(data) + 8, size - 8);
  constexpr size_t kMaxRanges = 16;
  edge::ByteRanges ranges;
  if (edge::EvaluateRanges(text, length, kMaxRanges, &ranges) == edge::RangeResult::kPartial) {
    if (ranges.empty() || ranges.size() > kMaxRanges) std::abort();
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].first > ranges[i].last || ranges[i].last >= length) std::abort();
      for (size_t j = 0; j < i; ++j) {
        // Apart, with at least one byte between them.
        if (ranges[i].first <= ranges[j].last + 1 && ranges[j].first <= ranges[i].last + 1) std::abort();
      }
    }
    const edge::MultipartFraming framing = edge::FrameByteRanges(ranges, length, "text/plain", "b");
    uint64_t total = framing.close.size();
    for (size_t i = 0; i < ranges.size(); ++i) total += framing.part_heads[i].size() + ranges[i].length();
    if (total != framing.content_length) std::abort();
  }
  if (const std::optional<edge::ContentRange> r = edge::ParseContentRange(text)) {
    if (r->first > r->last || r->last >= r->total) std::abort();
  }
  const edge::Slicing slicing{(length % (uint64_t{1} << 30)) + 1, uint64_t{1} << 30};
  const uint64_t wanted = edge::FirstWantedByte(text);
  const edge::ByteRange probe = edge::ProbeRange(slicing, true, wanted);
  // One slice long, but for a start near 2^64, whose end stops at the largest offset.
  if (probe.first > wanted || probe.last < wanted ||
      (probe.length() != slicing.size && probe.last != UINT64_MAX)) {
    std::abort();
  }
  if (length > 0) {
    const uint64_t index = (wanted % length) / slicing.size;
    const edge::ByteRange slice = edge::SliceBytes(slicing, index, length);
    if (slice.first > slice.last || slice.last >= length || slice.length() > slicing.size) std::abort();
  }
  const size_t split = text.size() / 2;
  const std::string_view a = text.substr(0, split), b = text.substr(split);
  for (edge::TagComparison how : {edge::TagComparison::kStrong, edge::TagComparison::kWeak}) {
    if (edge::EntityTagsMatch(a, b, how) != edge::EntityTagsMatch(b, a, how)) std::abort();
  }
  (void)edge::IfRangeMatches(a, b, b);
  (void)edge::EvaluatePreconditions({a, b, a, b}, {b, a, a});
  return 0;
}
