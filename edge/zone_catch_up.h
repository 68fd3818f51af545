// What a cache zone that returns (re-admitted after an error, or found behind the others at start)
// does about the purges it may have missed while it was away: catch up from the purge-log position
// it kept (cache::Store::NotePurgePosition), or start empty. Pure: its rules are tested without
// Redis or drives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "purge-daemon/bus/protocol.h"

namespace edge {

// Where the log stands (XINFO STREAM, and its first entry).
struct LogBounds {
  bus::StreamId last;      // the last id it ever had (0-0: none yet)
  bus::StreamId first;     // its first entry still kept (0-0: none kept)
  uint64_t first_seq = 0;  // that entry's sequence number (0: none, or not known)
};

struct ZoneCatchUp {
  enum class Kind { kReplay, kEmpty };
  Kind kind = Kind::kEmpty;
  bus::SavedCursor from;  // kReplay: every entry after it is applied to the zone before it serves
  std::string_view why;   // kEmpty: for the log
};

// `stored` is the zone's position, as the cursor file holds it (bus::CursorFileText; empty: none); `log` is
// nullopt when the bus cannot be read. A replay needs every entry after the position still in the log: the
// sequence numbers show a gap (or, with none known, the first entry kept must not be after the position).
ZoneCatchUp DecideZoneCatchUp(std::string_view stored, const std::optional<LogBounds>& log);

}  // namespace edge
