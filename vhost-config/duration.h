// Durations as the config files write them: an integer and a unit, "50ms", "30s", "5m", "2h",
// "7d", and sums of them ("1h30m"). Also the inverse, for printing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace vhost {

std::optional<absl::Duration> ParseDuration(std::string_view text);
std::string DurationText(absl::Duration d);

}  // namespace vhost
