// Prometheus text format for the admin endpoints of the edge and the purge daemon.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace edge::http {

// Appends one unlabelled metric: its HELP and TYPE lines ("counter" or "gauge") and its sample.
template <typename Value>
void AppendMetric(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                  Value value) {
  absl::StrAppend(out, "# HELP ", std::string(name), " ", std::string(help), "\n# TYPE ", std::string(name),
                  " ", std::string(type), "\n", std::string(name), " ", value, "\n");
}

}  // namespace edge::http
