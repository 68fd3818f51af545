// Large objects in fixed-size slices. The first fetch of an object asks the origin for a range
// (ProbeRange): an object that fits in it is stored whole from that one answer; a larger one is
// stored as slices, each an entry of its own under SliceKey (placed, coalesced, fenced and evicted
// like any other), fetched with Range when a client needs its bytes. A slice's name and variant
// are its object's, so one object invalidation removes every slice.
//
// A slice entry is the origin's 206 for exactly that slice: status 206, the object's headers, and
// its own Content-Range "bytes first-last/total". Every slice of one answer must come with the
// ETag and total length of the first one (IsSliceOf), so a body never mixes two versions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cache/entry_format.h"
#include "cache/key.h"
#include "cache/store.h"
#include "edge/http_rules.h"
#include "edge/metrics.h"
#include "vhost-config/tenant.h"

namespace edge {

// A tenant's slicing: objects larger than `threshold` are stored in slices of `size` bytes.
struct Slicing {
  uint64_t size = 0;       // 0: slicing is off, every object is fetched and stored whole
  uint64_t threshold = 0;  // >= size
};
inline Slicing SlicingOf(const vhost::CachePolicy& cache) {
  return {cache.slice_size, cache.slice_threshold};
}

// The most ranges a sliced answer serves as parts; with more it is the whole object (RFC 9110 14.2
// lets a server ignore many small ranges). Each part may cost a slice from the origin that the
// client's reading does not pace (a few bytes fill no buffer): a request with many tiny parts
// would pull many slices for a few bytes sent. nginx's slice module allows one.
inline constexpr size_t kMaxSlicedRanges = 4;

// "bytes first-last/total" (RFC 9110 14.4), strictly; nullopt for anything else (an unknown total
// "*" included: a slice must know its object's length).
struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t total = 0;
};
std::optional<ContentRange> ParseContentRange(std::string_view value);

// The first byte a request asks for of an object of `total` bytes: its first range's start, 0 when
// it has none (no Range, a Range the edge ignores). A suffix range's needs the length: with
// `total` 0 (unknown) it is 0.
uint64_t FirstWantedByte(std::string_view range, uint64_t total = 0);

// What the first fetch of an unknown object asks for: for a whole object, everything up to the
// threshold (a small object comes whole in one answer); for a range beginning at `start`, the
// slice holding it, so a seek costs one slice (an object no larger than the threshold is then
// asked for again from byte 0, and stored whole).
ByteRange ProbeRange(const Slicing& slicing, bool ranged, uint64_t start);

// Where a slice fetched for a client whose first wanted byte is `offset` bytes into it is asked for
// from first (its bytes before then come in a second answer, into the same entry), so that the
// client's first byte waits for one origin round trip, not for the bytes before it too; 0 (the
// slice in one answer) when those are few enough to cost less than the second request.
uint64_t SeekInto(const Slicing& slicing, uint64_t offset);

// The bytes of slice `index` of an object of `total` bytes.
ByteRange SliceBytes(const Slicing& slicing, uint64_t index, uint64_t total);

// The key of slice `index` of `object`, into `out` (its strings' capacity reused).
void SliceKey(const cache::Key& object, uint64_t size, uint64_t index, cache::Key* out);

// What a slice entry (or a fill's metadata) says: its Content-Range; nullopt if it is not a slice.
std::optional<ContentRange> SliceOf(const cache::EntryMetadata& meta);

// Whether `etag` tells one version of an object from another: a strong validator (RFC 9110 8.8.1;
// Swift's unquoted hex ETags are). Only an object with one is sliced: ranges of two versions may
// be combined into one answer only under the same strong validator (RFC 9110 15.3.7.3).
bool IsStrongEtag(std::string_view etag);

// Whether `slice` holds exactly `bytes` of the version `first` is of: the same strong ETag and
// total length (a body never mixes versions).
bool IsSliceOf(const cache::EntryMetadata& slice, const cache::EntryMetadata& first, ByteRange bytes);

// Removes every stored slice of `object` (and the object) in one hard invalidation: it changed
// since they were stored. Counted as `version_changed` in `metrics`.
void DropSlices(cache::Store& store, Metrics& metrics, size_t worker, const cache::Key& object);

// Removes the stored Content-Range: what stands for the whole object has none.
void DropContentRange(cache::EntryMetadata* meta);

// The object's answer as a whole entry would store it, made from one of its slices: status 200,
// without the slice's Content-Range.
cache::EntryMetadata ObjectHead(const cache::EntryMetadata& slice);

}  // namespace edge
