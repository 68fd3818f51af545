// Response and request headers come from origins and clients: whatever Cache-Control, targeted
// fields, Expires, Date, Age and Vary hold, the caching decision never crashes, never gives a
// negative lifetime, the date and duration parsers agree with their printers, and Vary's names
// and variants tell apart exactly what they must (CheckVary).
// Input: a byte that picks the status, then header lines "Name: value" separated by '\n'.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/vary.h"
#include "vhost-config/cache_control.h"
#include "vhost-config/cache_policy.h"
#include "vhost-config/duration.h"
#include "vhost-config/freshness.h"
#include "vhost-config/http_date.h"

namespace {

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Vary: the names are lower case, sorted, each once ("*" alone), and read back the same when
// joined again. A variant tells request values apart exactly: two headers' values swapped give
// the same variant only when they are the same (values as the request parser admits them: no
// control characters); an Accept-Language is one variant in any order, case and spacing.
void CheckVary(std::string_view value, std::string_view previous) {
  const std::vector<std::string> names = edge::VaryNames(value);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (name.empty() || name.find(',') != std::string::npos || Trim(name) != name) std::abort();
    if (name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) std::abort();
    if (i > 0 && !(names[i - 1] < name)) std::abort();
    if (name == "*" && names.size() != 1) std::abort();
  }
  std::string joined;
  for (const std::string& name : names) joined += (joined.empty() ? "" : ",") + name;
  if (edge::VaryNames(joined) != names) std::abort();

  if (HasControl(value) || HasControl(previous)) return;
  const std::vector<std::string> two = {"x-a", "x-b"};
  auto variant = [&](std::string_view a, std::string_view b) {
    return edge::VariantSuffix(two, [&](std::string_view name) { return name == "x-a" ? a : b; });
  };
  if ((variant(value, previous) == variant(previous, value)) != (Trim(value) == Trim(previous))) std::abort();

  // The members of `value` reversed, upper case, spaced out.
  std::vector<std::string_view> members;
  for (std::string_view rest = value; !rest.empty();) {
    const size_t comma = rest.find(',');
    members.push_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  std::string respelled;
  for (auto member = members.rbegin(); member != members.rend(); ++member) {
    if (!respelled.empty()) respelled += " , ";
    for (char c : *member) respelled += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const std::vector<std::string> language = {"accept-language"};
  if (edge::VariantSuffix(language, [&](std::string_view) { return value; }) !=
      edge::VariantSuffix(language, [&](std::string_view) { return std::string_view(respelled); })) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr int kStatuses[] = {200, 203, 204, 206, 301, 302, 304, 400, 401,
                                      403, 404, 410, 500, 502, 503, 504, 599, 103};
  const int status = kStatuses[data[0] % std::size(kStatuses)];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view previous;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(line.substr(0, colon), value);

    if (const auto date = vhost::ParseHttpDate(value);
        date && absl::ToCivilYear(*date, absl::UTCTimeZone()).year() >= 1000) {
      if (vhost::ParseHttpDate(vhost::FormatHttpDate(*date)) != date) std::abort();
    }
    if (const auto duration = vhost::ParseDuration(value)) {
      if (*duration < absl::ZeroDuration()) std::abort();
      // DurationText prints milliseconds only below a second ("1h30ms" prints as "1h").
      const bool printable = *duration < absl::Seconds(1) || absl::ToInt64Milliseconds(*duration) % 1000 == 0;
      if (printable && vhost::ParseDuration(vhost::DurationText(*duration)) != duration) std::abort();
    }
    vhost::CacheDirectives directives;
    vhost::ParseCacheControl(value, &directives);
    (void)vhost::ParseTargetedField(value, &directives);
    for (const auto& seconds : {directives.max_age, directives.s_maxage, directives.stale_if_error}) {
      if (seconds && (*seconds < 0 || *seconds > vhost::kMaxDeltaSeconds)) std::abort();
    }
    CheckVary(value, previous);
    previous = value;
  }

  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (bool honour : {true, false}) {
    vhost::CachePolicy policy;
    policy.honour_origin = honour;
    policy.default_ttl = absl::ZeroDuration();
    policy.targeted_cache_control = "Edge-Cache-Control";
    for (bool authorization : {false, true}) {
      const vhost::RequestFacts request{.method = "GET", .path = "/a", .authorization = authorization};
      const vhost::CacheDecision d = vhost::Decide(policy, request, {status, headers}, now);
      if (d.fresh_for < absl::ZeroDuration() || d.stale_while_revalidate < absl::ZeroDuration() ||
          d.stale_if_error < absl::ZeroDuration() || d.age < 0) {
        std::abort();
      }
      if (d.store && (status == 401 || status == 403)) std::abort();
      const int64_t t = absl::ToUnixSeconds(now);
      const vhost::StoredFreshness entry{
          .stored_at = t - d.age,
          .fresh_until = t + absl::ToInt64Seconds(d.fresh_for),
          .stale_while_revalidate = absl::ToInt64Seconds(d.stale_while_revalidate),
          .stale_if_error = absl::ToInt64Seconds(d.stale_if_error)};
      (void)vhost::DecideUse(entry, vhost::ResponseCacheControl(headers), t, true);
      (void)vhost::UsableOnError(entry, t);
    }
  }
  return 0;
}
