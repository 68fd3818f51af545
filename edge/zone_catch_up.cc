#include "edge/zone_catch_up.h"

namespace edge {

ZoneCatchUp DecideZoneCatchUp(std::string_view stored, const std::optional<LogBounds>& log) {
  auto empty = [](std::string_view why) { return ZoneCatchUp{ZoneCatchUp::Kind::kEmpty, {}, why}; };
  if (!log) return empty("the purge log cannot be read");
  const absl::StatusOr<bus::SavedCursor> from = bus::ParseCursorFile(stored);
  if (!from.ok()) return empty("the zone kept no purge-log position");
  if (log->last < from->id) return empty("the purge log is behind the zone's position (Redis lost it)");
  const bool kept_any = log->first != bus::StreamId{};
  if (!kept_any && log->last != from->id) return empty("the purge log was trimmed past the zone's position");
  if (kept_any &&
      (from->seq > 0 && log->first_seq > 0 ? log->first_seq > from->seq + 1 : log->first > from->id))
    return empty("the purge log was trimmed past the zone's position");
  return ZoneCatchUp{ZoneCatchUp::Kind::kReplay, *from, ""};
}

}  // namespace edge
