#include "edge/slices.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "edge/http/request_parser.h"

namespace edge {

namespace {

bool ReadNumber(std::string_view text, uint64_t* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<ContentRange> ParseContentRange(std::string_view value) {
  constexpr std::string_view kUnit = "bytes ";
  if (!value.starts_with(kUnit)) return std::nullopt;
  value.remove_prefix(kUnit.size());
  const size_t dash = value.find('-');
  const size_t slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) return std::nullopt;
  ContentRange r;
  if (!ReadNumber(value.substr(0, dash), &r.first) ||
      !ReadNumber(value.substr(dash + 1, slash - dash - 1), &r.last) ||
      !ReadNumber(value.substr(slash + 1), &r.total)) {
    return std::nullopt;
  }
  if (r.first > r.last || r.last >= r.total) return std::nullopt;
  return r;
}

uint64_t FirstWantedByte(std::string_view range, uint64_t total) {
  range = Trim(range);
  if (range.size() < 6 || !http::EqualsIgnoreCase(range.substr(0, 6), "bytes=")) return 0;
  range.remove_prefix(6);
  range = Trim(range.substr(0, range.find(',')));
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos) return 0;
  uint64_t n = 0;
  const std::string_view before = Trim(range.substr(0, dash));
  if (before.empty()) {  // a suffix: the last n bytes
    return ReadNumber(Trim(range.substr(dash + 1)), &n) ? total - std::min(n, total) : 0;
  }
  return ReadNumber(before, &n) ? n : 0;
}

ByteRange ProbeRange(const Slicing& slicing, bool ranged, uint64_t start) {
  if (!ranged) return {0, slicing.threshold - 1};
  const uint64_t first = start / slicing.size * slicing.size;
  // A start near 2^64 (a client's number) must not wrap the end around.
  return {first, first + std::min(slicing.size - 1, UINT64_MAX - first)};
}

uint64_t SeekInto(const Slicing& slicing, uint64_t offset) {
  // 512 KiB come from one Swift proxy in under a millisecond here, a tenth of its time to a
  // first byte (benchmarks/RESULTS.md); smaller slices wait for an eighth of one at most.
  constexpr uint64_t kMostWaitedFor = 512 << 10;
  return offset >= std::min(kMostWaitedFor, slicing.size / 8) && offset < slicing.size ? offset : 0;
}

ByteRange SliceBytes(const Slicing& slicing, uint64_t index, uint64_t total) {
  const uint64_t first = index * slicing.size;
  return {first, std::min(total, first + slicing.size) - 1};
}

void SliceKey(const cache::Key& object, uint64_t size, uint64_t index, cache::Key* out) {
  *out = object;
  // A control character no request target can carry: no client's variant (a query string, Vary
  // values) looks like a slice's.
  out->variant += '\x1f';
  absl::StrAppend(&out->variant, size, "/", index);
}

std::optional<ContentRange> SliceOf(const cache::EntryMetadata& meta) {
  if (meta.status != 206) return std::nullopt;
  for (const auto& [name, value] : meta.headers) {
    if (http::EqualsIgnoreCase(name, "content-range")) return ParseContentRange(value);
  }
  return std::nullopt;
}

bool IsStrongEtag(std::string_view etag) {
  return !etag.empty() && !etag.starts_with("W/");
}

bool IsSliceOf(const cache::EntryMetadata& slice, const cache::EntryMetadata& first, ByteRange bytes) {
  const std::optional<ContentRange> x = SliceOf(slice), y = SliceOf(first);
  return x && y && x->first == bytes.first && x->last == bytes.last && x->total == y->total &&
         IsStrongEtag(first.etag) && slice.etag == first.etag;
}

void DropSlices(cache::Store& store, Metrics& metrics, size_t worker, const cache::Key& object) {
  metrics.CountSlice(worker, SliceEvent::kVersionChanged);
  store.Apply(cache::Invalidation::Object(object.account, object.container, object.name, /*soft=*/false));
}

void DropContentRange(cache::EntryMetadata* meta) {
  std::erase_if(meta->headers,
                [](const auto& field) { return http::EqualsIgnoreCase(field.first, "content-range"); });
}

cache::EntryMetadata ObjectHead(const cache::EntryMetadata& slice) {
  cache::EntryMetadata head = slice;
  head.status = 200;
  DropContentRange(&head);
  if (const std::optional<ContentRange> range = SliceOf(slice)) head.body_length = range->total;
  return head;
}

}  // namespace edge
