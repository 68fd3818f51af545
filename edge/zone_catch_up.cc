#include "edge/zone_catch_up.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace edge {

std::string FormatLogPosition(const LogPosition& position) {
  return absl::StrCat(position.id.ToString(), " ", position.seq);
}

std::optional<LogPosition> ParseLogPosition(std::string_view text) {
  const size_t space = text.find(' ');
  absl::StatusOr<bus::StreamId> id = bus::ParseStreamId(text.substr(0, space));
  if (!id.ok()) return std::nullopt;
  LogPosition position{*id, 0};
  if (space != std::string_view::npos) {  // a cursor file of old has the id alone
    const std::string_view seq = text.substr(space + 1);
    const auto [end, error] = std::from_chars(seq.data(), seq.data() + seq.size(), position.seq);
    if (error != std::errc() || end != seq.data() + seq.size()) return std::nullopt;
  }
  return position;
}

ZoneCatchUp DecideZoneCatchUp(std::string_view stored, const std::optional<LogBounds>& log) {
  auto empty = [](std::string_view why) { return ZoneCatchUp{ZoneCatchUp::Kind::kEmpty, {}, why}; };
  if (!log) return empty("the purge log cannot be read");
  const std::optional<LogPosition> from = ParseLogPosition(stored);
  if (!from) return empty("the zone kept no purge-log position");
  if (log->last < from->id) return empty("the purge log is behind the zone's position (Redis lost it)");
  const bool kept_any = log->first != bus::StreamId{};
  if (!kept_any && log->last != from->id) return empty("the purge log was trimmed past the zone's position");
  if (kept_any &&
      (from->seq > 0 && log->first_seq > 0 ? log->first_seq > from->seq + 1 : log->first > from->id))
    return empty("the purge log was trimmed past the zone's position");
  return ZoneCatchUp{ZoneCatchUp::Kind::kReplay, *from, ""};
}

}  // namespace edge
