#include "edge/zone_catch_up.h"

#include <doctest/doctest.h>

namespace edge {

namespace {

using Kind = ZoneCatchUp::Kind;

bus::StreamId Id(uint64_t ms) {
  return bus::StreamId{ms, 0};
}

}  // namespace

TEST_CASE("a returning zone replays from its position while the log still holds what follows it") {
  // The log kept entries 8.. (ids 108..), up to id 120.
  const LogBounds log{Id(120), Id(108), 8};
  SUBCASE("the position's next entry is kept") {
    const ZoneCatchUp decision = DecideZoneCatchUp("107-0 7", log);
    CHECK(decision.kind == Kind::kReplay);
    CHECK(decision.from.id == Id(107));
    CHECK(decision.from.seq == 7);
  }
  SUBCASE("further along, and at the end") {
    CHECK(DecideZoneCatchUp("115-0 15", log).kind == Kind::kReplay);
    CHECK(DecideZoneCatchUp("120-0 20", log).kind == Kind::kReplay);
  }
  SUBCASE("without a sequence number, the first entry kept must not be after the position") {
    CHECK(DecideZoneCatchUp("108-0 0", log).kind == Kind::kReplay);
    CHECK(DecideZoneCatchUp("107-0 0", log).kind == Kind::kEmpty);
  }
  SUBCASE("a log that kept nothing: only a zone at its end missed nothing") {
    CHECK(DecideZoneCatchUp("120-0 20", LogBounds{Id(120), {}, 0}).kind == Kind::kReplay);
    CHECK(DecideZoneCatchUp("119-0 19", LogBounds{Id(120), {}, 0}).kind == Kind::kEmpty);
    CHECK(DecideZoneCatchUp("0-0 0", LogBounds{}).kind == Kind::kReplay);  // no log begun yet
  }
}

TEST_CASE("a returning zone is emptied when what it missed cannot be known") {
  const LogBounds log{Id(120), Id(108), 8};
  CHECK(DecideZoneCatchUp("106-0 6", log).kind == Kind::kEmpty);   // entry 7 was trimmed unread
  CHECK(DecideZoneCatchUp("", log).kind == Kind::kEmpty);          // no position kept
  CHECK(DecideZoneCatchUp("garbage", log).kind == Kind::kEmpty);   // unreadable
  CHECK(DecideZoneCatchUp("130-0 30", log).kind == Kind::kEmpty);  // the log is behind: Redis lost it
  const ZoneCatchUp unreachable = DecideZoneCatchUp("115-0 15", std::nullopt);
  CHECK(unreachable.kind == Kind::kEmpty);
  CHECK(unreachable.why == "the purge log cannot be read");
}

}  // namespace edge
