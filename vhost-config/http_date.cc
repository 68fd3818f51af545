#include "vhost-config/http_date.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace vhost {

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                       "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A cursor over the text: each step consumes exactly what the grammar says or fails, so that
// anything but the three forms (a 1-digit hour, doubled spaces, another zone) is refused.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  bool Literal(std::string_view s) {
    if (!text_.starts_with(s)) return false;
    text_.remove_prefix(s.size());
    return true;
  }
  // One of `names` (case-sensitive, RFC 9110 5.6.7); its index or -1.
  template <size_t N>
  int Name(const std::array<std::string_view, N>& names) {
    for (size_t i = 0; i < N; ++i) {
      if (Literal(names[i])) return static_cast<int>(i);
    }
    return -1;
  }
  // Exactly `digits` digits; a leading space stands for a digit when `space_padded` (asctime's day).
  bool Number(size_t digits, int* out, bool space_padded = false) {
    if (text_.size() < digits) return false;
    int n = 0;
    for (size_t i = 0; i < digits; ++i) {
      const char c = text_[i];
      if (space_padded && i == 0 && c == ' ') continue;
      if (c < '0' || c > '9') return false;
      n = n * 10 + (c - '0');
    }
    if (space_padded && text_[digits - 1] == ' ') return false;
    text_.remove_prefix(digits);
    *out = n;
    return true;
  }
  bool Time(int* hour, int* minute, int* second) {
    return Number(2, hour) && Literal(":") && Number(2, minute) && Literal(":") && Number(2, second);
  }
  bool done() const { return text_.empty(); }

 private:
  std::string_view text_;
};

std::optional<absl::Time> Make(int year, int month, int day, int hour, int minute, int second) {
  if (month < 0 || day < 1 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const absl::CivilSecond civil(year, month + 1, day, hour, minute, second);
  // CivilSecond normalises 31 Feb into March: such a day does not exist.
  if (civil.day() != day && second != 60) return std::nullopt;
  return absl::FromCivil(civil, absl::UTCTimeZone());
}

}  // namespace

std::optional<absl::Time> ParseHttpDate(std::string_view text) {
  int day = 0, month = 0, year = 0, hour = 0, minute = 0, second = 0;
  {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    Reader r(text);
    if (r.Name(kDays) >= 0 && r.Literal(", ") && r.Number(2, &day) && r.Literal(" ") &&
        (month = r.Name(kMonths)) >= 0 && r.Literal(" ") && r.Number(4, &year) && r.Literal(" ") &&
        r.Time(&hour, &minute, &second) && r.Literal(" GMT") && r.done()) {
      return Make(year, month, day, hour, minute, second);
    }
  }
  {  // rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years as POSIX %y reads them)
    Reader r(text);
    if (r.Name(kLongDays) >= 0 && r.Literal(", ") && r.Number(2, &day) && r.Literal("-") &&
        (month = r.Name(kMonths)) >= 0 && r.Literal("-") && r.Number(2, &year) && r.Literal(" ") &&
        r.Time(&hour, &minute, &second) && r.Literal(" GMT") && r.done()) {
      return Make(year < 69 ? 2000 + year : 1900 + year, month, day, hour, minute, second);
    }
  }
  {  // asctime-date: Sun Nov  6 08:49:37 1994
    Reader r(text);
    if (r.Name(kDays) >= 0 && r.Literal(" ") && (month = r.Name(kMonths)) >= 0 && r.Literal(" ") &&
        r.Number(2, &day, true) && r.Literal(" ") && r.Time(&hour, &minute, &second) && r.Literal(" ") &&
        r.Number(4, &year) && r.done()) {
      return Make(year, month, day, hour, minute, second);
    }
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
