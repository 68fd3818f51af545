// HTTP dates (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms a
// recipient must accept, exactly as written there (case, digits and single spaces). Anything else
// is not a date: an Expires that is not one means already expired (RFC 9111 5.3).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace vhost {

std::optional<absl::Time> ParseHttpDate(std::string_view text);
std::string FormatHttpDate(absl::Time time);  // IMF-fixdate
// The same into `out`, without allocating (for a response on the hot path); returns the text.
inline constexpr size_t kHttpDateLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"
std::string_view FormatHttpDate(absl::Time time, char (&out)[kHttpDateLength + 1]);

}  // namespace vhost
