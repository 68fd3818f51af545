// The edge's settings file is written by people: any bytes give a config or a list of errors,
// never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = edge::LoadEdgeConfigText(std::string_view(reinterpret_cast<const char*>(data), size),
                                         "/fuzz/edge.toml");
  if (config.ok()) {
    if (config->node_id.empty() || config->cache.zones.empty()) std::abort();
  } else if (config.status().message().empty()) {
    std::abort();
  }
  return 0;
}
