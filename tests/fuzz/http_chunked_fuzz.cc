// Chunked upload bodies come from clients: the decoder must never read out of bounds, never
// report more body than the input held, and stop for good after an error.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/http/chunked_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  edge::http::ChunkedDecoder decoder;
  uint64_t body = 0;
  for (int steps = 0; steps < 100000; ++steps) {
    size_t consumed = 0;
    std::string_view piece;
    const auto status = decoder.Next(in, &consumed, &piece);
    if (consumed > in.size()) std::abort();
    if (status == edge::http::ChunkedDecoder::Status::kData) body += piece.size();
    in.remove_prefix(consumed);
    if (status == edge::http::ChunkedDecoder::Status::kError) {
      if (decoder.Next(in, &consumed, &piece) != edge::http::ChunkedDecoder::Status::kError) std::abort();
      break;
    }
    if (status == edge::http::ChunkedDecoder::Status::kDone || consumed == 0) break;
  }
  if (body != decoder.body_bytes() || body > size) std::abort();
  return 0;
}
