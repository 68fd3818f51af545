#include "edge/http/prometheus.h"

#include "absl/strings/str_format.h"

namespace edge::http {

void Histogram::Observe(absl::Duration value) {
  const double seconds = absl::FDivDuration(value, absl::Seconds(1));
  size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  ++counts[bucket];
  sum += seconds;
}

void Histogram::Add(const Histogram& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum += other.sum;
}

void Histogram::AppendTo(std::string* out, std::string_view name, std::string_view help) const {
  const std::string n(name);
  absl::StrAppend(out, "# HELP ", n, " ", std::string(help), "\n# TYPE ", n, " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += counts[i];
    absl::StrAppend(out, n, "_bucket{le=\"", kBuckets[i], "\"} ", cumulative, "\n");
  }
  cumulative += counts.back();
  absl::StrAppend(out, n, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(out, n, "_sum ", absl::StrFormat("%.6f", sum), "\n");
  absl::StrAppend(out, n, "_count ", cumulative, "\n");
}

}  // namespace edge::http
