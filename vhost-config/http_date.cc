#include "vhost-config/http_date.h"

namespace vhost {

std::optional<absl::Time> ParseHttpDate(std::string_view text) {
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  const std::string input(text);
  for (const char* format : kFormats) {
    absl::Time time;
    std::string error;
    if (absl::ParseTime(format, input, absl::UTCTimeZone(), &time, &error)) return time;
  }
  return std::nullopt;
}

std::string FormatHttpDate(absl::Time time) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", time, absl::UTCTimeZone());
}

}  // namespace vhost
