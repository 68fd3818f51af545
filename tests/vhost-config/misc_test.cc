#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "vhost-config/duration.h"
#include "vhost-config/http_date.h"
#include "vhost-config/schema.h"
#include "vhost-config/snapshot.h"

namespace vhost {

TEST_CASE("durations") {
  CHECK(ParseDuration("30s") == absl::Seconds(30));
  CHECK(ParseDuration("1h30m") == absl::Minutes(90));
  CHECK(ParseDuration("7d") == absl::Hours(168));
  CHECK(ParseDuration("0s") == absl::ZeroDuration());
  for (const char* bad : {"", "7", "d", "7 dayz", "-1s", "1.5h", "7dd", "99999999999999s"}) {
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
  CHECK(DurationText(absl::Minutes(90)) == "1h30m");
  CHECK(DurationText(absl::ZeroDuration()) == "0s");
}

TEST_CASE("HTTP dates in all three forms") {
  const absl::Time t = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT") == t);
  CHECK(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT") == t);
  CHECK(ParseHttpDate("Sun Nov  6 08:49:37 1994") == t);
  CHECK_FALSE(ParseHttpDate("yesterday").has_value());
  // RFC 9110 5.6.7: exactly these forms; anything else is not a date (and an Expires that is not
  // one has already expired, RFC 9111 5.3).
  for (std::string_view invalid : {
           "Sun, 06 Nov 1994 8:49:37 GMT",     // 1-digit hour
           "Sun, 06  Nov  1994 08:49:37 GMT",  // doubled spaces
           "Sun, 6 Nov 1994 08:49:37 GMT",     // 1-digit day
           "Sun, 06 Nov 94 08:49:37 GMT",      // 2-digit year in IMF-fixdate
           "Sun 06 Nov 1994 08:49:37 GMT",     // no comma
           "Sun, 06-Nov-1994 08:49:37 GMT",    // dashes
           "Sun, 06 Nov 1994 08.49.37 GMT",    // periods
           "Sun, 06 Nov 1994 08:49:37 UTC",    // another zone
           "SUN, 06 Nov 1994 08:49:37 GMT",    // case
           "Sun, 06 NOV 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 08:49:37 GMT ",  // trailing space
           "Sun, 31 Feb 1994 08:49:37 GMT",   // no such day
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sunday, 06-Nov-94 08:49:37 UTC",
           "Sun Nov 6 08:49:37 1994",  // asctime pads the day with a space
           "0",
           "",
       }) {
    CAPTURE(invalid);
    CHECK_FALSE(ParseHttpDate(invalid).has_value());
  }
  CHECK(ParseHttpDate("Sun Nov 16 08:49:37 1994") == t + absl::Hours(24 * 10));
  CHECK(FormatHttpDate(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
  // The allocation-free form says the same as absl's formatter, every weekday and month.
  for (int64_t seconds = 0; seconds < 400 * 86400; seconds += 86400 + 3661) {
    const absl::Time when = absl::FromUnixSeconds(1700000000 + seconds);
    char buffer[kHttpDateLength + 1];
    CHECK(FormatHttpDate(when, buffer) ==
          absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", when, absl::UTCTimeZone()));
  }
}

TEST_CASE("docs/configuration.md holds exactly the schema's reference tables") {
  std::ifstream in(std::string(EDGE_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- schema:begin -->\n", end = "<!-- schema:end -->";
  const size_t from = doc.find(begin), to = doc.find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  CHECK(doc.substr(from + begin.size(), to - from - begin.size()) == SchemaMarkdown());
}

TEST_CASE("readers never see half a table while it is replaced") {
  auto make = [](size_t n) {
    auto table = std::make_shared<TenantTable>();
    for (size_t i = 0; i < n; ++i) {
      Tenant t;
      t.name = std::to_string(n);
      table->tenants.push_back(t);
    }
    return std::shared_ptr<const TenantTable>(std::move(table));
  };
  TenantSnapshot snapshot(make(1));
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        const auto table = snapshot.Current();
        for (const Tenant& t : table->tenants) {
          if (t.name != std::to_string(table->tenants.size())) ++torn;
        }
      }
    });
  }
  for (size_t n = 2; n < 300; ++n) snapshot.Replace(make(n % 17 + 1));
  stop = true;
  for (auto& reader : readers) reader.join();
  CHECK(torn == 0);
}

}  // namespace vhost
