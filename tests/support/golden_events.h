// The write events of tests/purge-daemon/golden/write_events.json: the one format both writers of
// events (the edge and the Swift proxy middleware) must produce, with the request behind each.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "purge-daemon/bus/protocol.h"

namespace testing_support {

struct GoldenEvent {
  std::string name;
  nlohmann::json request;   // method, path (decoded), query, headers (name -> value)
  nlohmann::json response;  // status (0: no answer), headers
  bus::Fields fields;       // as XADD puts them in the stream, in order
  std::string spool;        // the spool's line
};

inline std::vector<GoldenEvent> GoldenEvents() {
  std::ifstream in(std::string(EDGE_SOURCE_DIR) + "/tests/purge-daemon/golden/write_events.json");
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  std::vector<GoldenEvent> out;
  if (!doc.is_object()) return out;
  for (const nlohmann::json& e : doc["events"]) {
    GoldenEvent event{
        e["case"].get<std::string>(), e["request"], e["response"], {}, e["spool"].get<std::string>()};
    for (const nlohmann::json& field : e["fields"]) {
      event.fields.emplace_back(field[0].get<std::string>(), field[1].get<std::string>());
    }
    out.push_back(std::move(event));
  }
  return out;
}

}  // namespace testing_support
