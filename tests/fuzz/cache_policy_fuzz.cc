// Response and request headers come from origins and clients: whatever Cache-Control, targeted
// fields, Expires, Date, Age and Vary hold, the caching decision never crashes, never gives a
// negative lifetime, and the date and duration parsers agree with their printers.
// Input: a byte that picks the status, then header lines "Name: value" separated by '\n'.
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr int kStatuses[] = {200, 203, 204, 206, 301, 302, 304, 400, 401,
                                      403, 404, 410, 500, 502, 503, 504, 599, 103};
  const int status = kStatuses[data[0] % std::size(kStatuses)];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::pair<std::string_view, std::string_view>> headers;
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
    (void)edge::VariantSuffix(edge::VaryNames(value), [&](std::string_view) { return value; });
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
