#include "vhost-config/http_date.h"

#include <algorithm>
#include <cstdio>

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
  char out[kHttpDateLength + 1];
  return std::string(FormatHttpDate(time, out));
}

std::string_view FormatHttpDate(absl::Time time, char (&out)[kHttpDateLength + 1]) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const absl::CivilSecond t = absl::ToCivilSecond(time, absl::UTCTimeZone());
  const int day = static_cast<int>(absl::GetWeekday(absl::CivilDay(t)));  // Monday is 0
  const int n =
      std::snprintf(out, sizeof(out), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[day], t.day(),
                    kMonths[t.month() - 1], static_cast<int>(t.year()), t.hour(), t.minute(), t.second());
  return std::string_view(out, std::min<size_t>(n < 0 ? 0 : static_cast<size_t>(n), kHttpDateLength));
}

}  // namespace vhost
