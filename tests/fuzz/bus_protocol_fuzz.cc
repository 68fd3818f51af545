// Whatever the purge bus holds (Redis may hold anything a writer of any version, or a hand, put
// there; the spool is re-read from disk), decoding gives a value or an error with a message, and a
// decoded value encodes to what decodes to it again. The first byte picks the decoder; for those of
// a stream entry's fields, the rest is name and value lines in turn.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "purge-daemon/bus/protocol.h"

namespace {

template <typename T>
bool Failed(const absl::StatusOr<T>& parsed) {
  if (parsed.ok()) return false;
  if (parsed.status().message().empty()) std::abort();
  return true;
}

bus::Fields FieldsOf(std::string_view input) {
  std::vector<std::string> lines;
  for (size_t start = 0; start <= input.size();) {
    const size_t end = std::min(input.find('\n', start), input.size());
    lines.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  bus::Fields fields;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) fields.emplace_back(lines[i], lines[i + 1]);
  return fields;
}

void CheckEvent(const bus::WriteEvent& event) {
  absl::StatusOr<bus::WriteEvent> from_json = bus::ParseEventJson(bus::EventJson(event));
  absl::StatusOr<bus::WriteEvent> from_fields = bus::ParseEvent(bus::EventFields(event));
  // The spool's JSON replaces bytes that are not UTF-8 (Swift refuses such names anyway): what it
  // reads back encodes the same again.
  if (!from_json.ok() || bus::EventJson(*from_json) != bus::EventJson(event)) std::abort();
  if (!from_fields.ok() || !(*from_fields == event)) std::abort();
}

void CheckInvalidations(const std::vector<cache::Invalidation>& invalidations) {
  const std::string json = bus::InvalidationsJson(invalidations);
  absl::StatusOr<std::vector<cache::Invalidation>> again = bus::ParseInvalidationsJson(json);
  if (!again.ok() || bus::InvalidationsJson(*again) != json) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {  // a stream id (entry ids, cursors), and an edge's cursor file
      if (absl::StatusOr<bus::SavedCursor> cursor = bus::ParseCursorFile(input); !Failed(cursor)) {
        absl::StatusOr<bus::SavedCursor> again = bus::ParseCursorFile(bus::CursorFileText(*cursor));
        if (!again.ok() || !(*again == *cursor)) std::abort();
      }
      absl::StatusOr<bus::StreamId> id = bus::ParseStreamId(input);
      if (Failed(id)) return 0;
      // Only digits and the dash between the two numbers: nothing damaged passes for an id.
      if (input.find_first_not_of("0123456789-") != std::string_view::npos) std::abort();
      absl::StatusOr<bus::StreamId> again = bus::ParseStreamId(id->ToString());
      if (!again.ok() || *again != *id) std::abort();
      // A cursor file is an id and its entry's number.
      absl::StatusOr<bus::SavedCursor> saved = bus::ParseCursorFile(std::string(input) + " 7\n");
      if (!saved.ok() || saved->id != *id || saved->seq != 7) std::abort();
      return 0;
    }
    case 1: {  // a spool line
      absl::StatusOr<bus::WriteEvent> event = bus::ParseEventJson(input);
      if (!Failed(event)) CheckEvent(*event);
      return 0;
    }
    case 2: {  // an entry of the event stream
      absl::StatusOr<bus::WriteEvent> event = bus::ParseEvent(FieldsOf(input));
      if (!Failed(event)) CheckEvent(*event);
      return 0;
    }
    case 3: {  // an entry of the purge log
      absl::StatusOr<bus::LogEntry> entry = bus::ParseLogEntry(FieldsOf(input));
      if (Failed(entry)) return 0;
      absl::StatusOr<bus::LogEntry> again = bus::ParseLogEntry(bus::LogFields(*entry));
      if (!again.ok() || again->job != entry->job || again->track != entry->track) std::abort();
      CheckInvalidations(entry->invalidations);
      return 0;
    }
    case 4: {  // a log entry's or a repeat's invalidations
      absl::StatusOr<std::vector<cache::Invalidation>> invalidations = bus::ParseInvalidationsJson(input);
      if (!Failed(invalidations)) CheckInvalidations(*invalidations);
      return 0;
    }
    default: {  // an edge's progress report
      absl::StatusOr<bus::EdgeProgress> progress = bus::ParseProgressJson("edge-1", input);
      if (Failed(progress)) return 0;
      absl::StatusOr<bus::EdgeProgress> again =
          bus::ParseProgressJson("edge-1", bus::ProgressJson(*progress));
      if (!again.ok() || again->cursor != progress->cursor || again->heartbeat_ms != progress->heartbeat_ms ||
          again->trusted != progress->trusted || again->lease_ms != progress->lease_ms) {
        std::abort();
      }
      return 0;
    }
  }
}
