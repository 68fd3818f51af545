#include "edge/http_rules.h"

#include <doctest/doctest.h>

namespace edge {

TEST_CASE("stored headers leave out hop-by-hop ones and those the edge writes itself") {
  CHECK(IsStoredHeader("Content-Type"));
  CHECK(IsStoredHeader("ETag"));
  CHECK(IsStoredHeader("X-Object-Meta-Color"));
  for (const char* name : {"Connection", "keep-alive", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate",
                           "Content-Length", "Age", "X-Cache", "Set-Cookie", "TE", "Trailer"}) {
    INFO(name);
    CHECK_FALSE(IsStoredHeader(name));
  }
  CHECK(IsNotModifiedHeader("ETag"));
  CHECK(IsNotModifiedHeader("cache-control"));
  CHECK_FALSE(IsNotModifiedHeader("Content-Type"));
}

TEST_CASE("fields a Connection field names are hop-by-hop too (RFC 9110 7.6.1)") {
  CHECK(IsHopByHop("Keep-Alive"));
  CHECK_FALSE(IsHopByHop("X-Secret"));
  CHECK(IsHopByHop("X-Secret", "close, X-Secret"));
  CHECK(IsHopByHop("x-secret", " keep-alive ,X-SECRET "));
  CHECK_FALSE(IsHopByHop("X-Secret-2", "X-Secret"));
  CHECK_FALSE(IsStoredHeader("X-Private-Hop", "X-Private-Hop"));
  CHECK(IsStoredHeader("X-Private-Hop", "close"));
}

TEST_CASE("single byte ranges: first-last, open-ended, suffix; others are ignored or unsatisfiable") {
  ByteRange r;
  REQUIRE(EvaluateRange("bytes=0-9", 100, &r) == RangeResult::kPartial);
  CHECK(r.first == 0);
  CHECK(r.last == 9);
  REQUIRE(EvaluateRange("bytes=90-", 100, &r) == RangeResult::kPartial);
  CHECK(r.length() == 10);
  REQUIRE(EvaluateRange("bytes=50-500", 100, &r) == RangeResult::kPartial);
  CHECK(r.last == 99);
  REQUIRE(EvaluateRange("bytes=-30", 100, &r) == RangeResult::kPartial);
  CHECK(r.first == 70);
  REQUIRE(EvaluateRange("bytes=-300", 100, &r) == RangeResult::kPartial);
  CHECK(r.first == 0);
  CHECK(EvaluateRange("bytes=100-", 100, &r) == RangeResult::kUnsatisfiable);
  CHECK(EvaluateRange("bytes=-0", 100, &r) == RangeResult::kUnsatisfiable);
  CHECK(EvaluateRange("bytes=0-", 0, &r) == RangeResult::kUnsatisfiable);
  for (const char* ignored : {"bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=a-b", "bytes=", "bytes=1",
                              "bytes=-", "bytes=99999999999999999999-"}) {
    INFO(ignored);
    CHECK(EvaluateRange(ignored, 100, &r) == RangeResult::kWhole);
  }
}

TEST_CASE("If-Range applies the range only for the same strong ETag or exact date") {
  CHECK(IfRangeMatches("", "\"a\"", ""));
  CHECK(IfRangeMatches("\"a\"", "\"a\"", ""));
  CHECK_FALSE(IfRangeMatches("\"b\"", "\"a\"", ""));
  CHECK_FALSE(IfRangeMatches("W/\"a\"", "W/\"a\"", ""));
  CHECK(IfRangeMatches("Tue, 01 Sep 2026 10:00:00 GMT", "", "Tue, 01 Sep 2026 10:00:00 GMT"));
  CHECK_FALSE(IfRangeMatches("Tue, 01 Sep 2026 10:00:01 GMT", "", "Tue, 01 Sep 2026 10:00:00 GMT"));
}

TEST_CASE("preconditions follow RFC 9110 13.2.2") {
  const std::string_view etag = "\"v2\"", modified = "Tue, 01 Sep 2026 10:00:00 GMT";
  struct Case {
    std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since;
  };
  auto eval = [&](Case c) {
    return EvaluatePreconditions({c.if_match, c.if_none_match, c.if_modified_since, c.if_unmodified_since},
                                 etag, modified);
  };
  CHECK(eval({}) == Precondition::kProceed);
  CHECK(eval({"", "\"v1\", \"v2\"", "", ""}) == Precondition::kNotModified);
  CHECK(eval({"", "W/\"v2\"", "", ""}) == Precondition::kNotModified);  // weak comparison
  CHECK(eval({"", "*", "", ""}) == Precondition::kNotModified);
  CHECK(eval({"", "\"v1\"", "", ""}) == Precondition::kProceed);
  // If-None-Match wins over If-Modified-Since.
  CHECK(eval({"", "\"v1\"", "Wed, 02 Sep 2026 10:00:00 GMT", ""}) == Precondition::kProceed);
  CHECK(eval({"", "", "Wed, 02 Sep 2026 10:00:00 GMT", ""}) == Precondition::kNotModified);
  CHECK(eval({"", "", "Mon, 31 Aug 2026 10:00:00 GMT", ""}) == Precondition::kProceed);
  CHECK(eval({"", "", "garbage", ""}) == Precondition::kProceed);
  CHECK(eval({"\"v2\"", "", "", ""}) == Precondition::kProceed);
  CHECK(eval({"\"v1\"", "", "", ""}) == Precondition::kFailed);
  CHECK(eval({"W/\"v2\"", "", "", ""}) == Precondition::kFailed);  // strong comparison
  CHECK(eval({"", "", "", "Mon, 31 Aug 2026 10:00:00 GMT"}) == Precondition::kFailed);
  CHECK(EvaluatePreconditions({"", "*", "", ""}, "", "") == Precondition::kProceed);
}

}  // namespace edge
