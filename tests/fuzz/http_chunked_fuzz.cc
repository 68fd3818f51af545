// Chunked upload bodies come from clients, in whatever pieces the network delivers them: the
// decoder must never read out of bounds, never report more body than the input held, stop for
// good after an error, and give the same body, the same end and the same framing consumed
// whether the input comes whole or split anywhere (split feed: the server keeps what was not
// consumed and appends what arrives next).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "edge/http/chunked_decoder.h"

namespace {

using Status = edge::http::ChunkedDecoder::Status;

struct Outcome {
  Status status = Status::kNeedMore;  // kNeedMore: the input ended before the body did
  std::string body;
  size_t consumed = 0;
  bool operator==(const Outcome&) const = default;
};

// Feeds `input` cut at `cuts` (ascending) as a server does: a buffer of what is not consumed yet,
// with each arriving piece appended to it.
Outcome Feed(std::string_view input, const std::vector<size_t>& cuts) {
  edge::http::ChunkedDecoder decoder;
  Outcome out;
  std::string buffer;
  size_t offered = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : input.size();
    buffer.append(input.substr(offered, end - offered));
    offered = end;
    while (true) {
      size_t consumed = 0;
      std::string_view piece;
      const Status status = decoder.Next(buffer, &consumed, &piece);
      if (consumed > buffer.size()) std::abort();
      if (status == Status::kData) {
        if (piece.empty() || consumed == 0) std::abort();  // a piece of nothing would never end
        out.body.append(piece);
      }
      buffer.erase(0, consumed);
      out.consumed += consumed;
      if (status == Status::kError) {
        size_t after = 0;
        std::string_view nothing;
        if (decoder.Next(buffer, &after, &nothing) != Status::kError || after != 0) std::abort();
      }
      if (status == Status::kDone || status == Status::kError) {
        out.status = status;
        if (decoder.body_bytes() != out.body.size()) std::abort();
        return out;
      }
      if (consumed == 0) break;  // kNeedMore: wait for the next piece
    }
  }
  if (decoder.body_bytes() != out.body.size()) std::abort();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Outcome whole = Feed(input, {});
  if (whole.body.size() > size || whole.consumed > size) std::abort();
  // Cuts picked by the input itself, so that a failure replays: a few anywhere, then (for small
  // inputs) one byte at a time.
  std::mt19937 random(static_cast<uint32_t>(std::hash<std::string_view>{}(input)));
  std::vector<size_t> cuts;
  if (size > 1) {
    std::uniform_int_distribution<size_t> at(1, size - 1);
    for (int i = 0; i < 4; ++i) cuts.push_back(at(random));
    std::sort(cuts.begin(), cuts.end());
    if (!(Feed(input, cuts) == whole)) std::abort();
  }
  if (size <= 1024) {
    cuts.clear();
    for (size_t i = 1; i < size; ++i) cuts.push_back(i);
    if (!(Feed(input, cuts) == whole)) std::abort();
  }
  return 0;
}
