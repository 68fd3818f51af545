// Prometheus text format for the admin endpoints of the edge and the purge daemon.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace edge::http {

// Appends one unlabelled metric: its HELP and TYPE lines ("counter" or "gauge") and its sample.
template <typename Value>
void AppendMetric(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                  Value value) {
  absl::StrAppend(out, "# HELP ", std::string(name), " ", std::string(help), "\n# TYPE ", std::string(name),
                  " ", std::string(type), "\n", std::string(name), " ", value, "\n");
}

// Seconds in fixed buckets (fine below 20 ms, where waits for the bus and hits fall).
struct Histogram {
  static constexpr std::array<double, 16> kBuckets = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
                                                      0.02,   0.05,  0.1,   0.25,  0.5,   1,      2.5,  10};
  std::array<uint64_t, kBuckets.size() + 1> counts{};
  double sum = 0;

  void Observe(absl::Duration value);
  void Add(const Histogram& other);
  // Its HELP, TYPE, buckets, sum and count.
  void AppendTo(std::string* out, std::string_view name, std::string_view help) const;
};

}  // namespace edge::http
