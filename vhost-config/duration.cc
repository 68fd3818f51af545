#include "vhost-config/duration.h"

#include <cstdint>

namespace vhost {

std::optional<absl::Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  absl::Duration total = absl::ZeroDuration();
  while (!text.empty()) {
    int64_t n = 0;
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      if (digits == 12) return std::nullopt;
      n = n * 10 + (text[digits] - '0');
      ++digits;
    }
    if (digits == 0 || digits == text.size()) return std::nullopt;
    if (text.substr(digits).starts_with("ms")) {
      total += absl::Milliseconds(n);
      text.remove_prefix(digits + 2);
      continue;
    }
    switch (text[digits]) {
      case 's':
        total += absl::Seconds(n);
        break;
      case 'm':
        total += absl::Minutes(n);
        break;
      case 'h':
        total += absl::Hours(n);
        break;
      case 'd':
        total += absl::Hours(24 * n);
        break;
      default:
        return std::nullopt;
    }
    text.remove_prefix(digits + 1);
  }
  return total;
}

std::string DurationText(absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d);
  if (s == 0 && d > absl::ZeroDuration()) return std::to_string(absl::ToInt64Milliseconds(d)) + "ms";
  if (s == 0) return "0s";
  std::string out;
  for (auto [unit, seconds] : {std::pair{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}) {
    if (s >= seconds) {
      out += std::to_string(s / seconds);
      out += unit;
      s %= seconds;
    }
  }
  return out;
}

}  // namespace vhost
