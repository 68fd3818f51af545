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

// RFC 9110 15.4.5: a 304 carries the Content-Location, Date, ETag, Vary, Cache-Control and Expires
// a 200 would have; not the representation's other metadata.
TEST_CASE("a 304 repeats the fields RFC 9110 15.4.5 names") {
  for (const char* kept :
       {"Content-Location", "Date", "ETag", "Vary", "cache-control", "Expires", "Last-Modified"}) {
    INFO(kept);
    CHECK(IsNotModifiedHeader(kept));
  }
  for (const char* dropped : {"Content-Type", "Content-Encoding", "Content-Length", "X-Object-Meta-Color"}) {
    INFO(dropped);
    CHECK_FALSE(IsNotModifiedHeader(dropped));
  }
}

// RFC 9110 8.8.3.2's table, and Swift's unquoted ETags read as the opaque tag they would be quoted.
TEST_CASE("entity tags compare as RFC 9110 8.8.3.2 says, Swift's unquoted form being the same tag") {
  struct Case {
    std::string_view a, b;
    bool strong, weak;
  };
  const Case cases[] = {
      {"W/\"1\"", "W/\"1\"", false, true},  // the RFC's four rows
      {"W/\"1\"", "W/\"2\"", false, false},
      {"W/\"1\"", "\"1\"", false, true},
      {"\"1\"", "\"1\"", true, true},
      {"d41d8cd98f00b204e9800998ecf8427e", "\"d41d8cd98f00b204e9800998ecf8427e\"", true, true},  // Swift
      {"\"d41d8cd98f00b204e9800998ecf8427e\"", "d41d8cd98f00b204e9800998ecf8427e", true, true},
      {"d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e", true, true},
      {"W/\"abc\"", "abc", false, true},
      {"\"abc\"", "\"abd\"", false, false},
      {"abc", "\"abc", false, false},  // an unterminated quote is part of the tag
      {"", "", false, false},          // no tag is nobody's
      {"\"\"", "\"\"", true, true},    // the empty opaque tag is a tag
  };
  for (const Case& c : cases) {
    INFO(c.a, " vs ", c.b);
    CHECK(EntityTagsMatch(c.a, c.b, TagComparison::kStrong) == c.strong);
    CHECK(EntityTagsMatch(c.a, c.b, TagComparison::kWeak) == c.weak);
  }
}

TEST_CASE("byte ranges: one range, several, coalesced, capped, unsatisfiable (RFC 9110 14.1.2, 14.2)") {
  struct Case {
    std::string_view range;
    uint64_t length;
    RangeResult result;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
  };
  using R = RangeResult;
  const Case cases[] = {
      {"bytes=0-9", 100, R::kPartial, {{0, 9}}},
      {"bytes=90-", 100, R::kPartial, {{90, 99}}},
      {"bytes=50-500", 100, R::kPartial, {{50, 99}}},
      {"bytes=-30", 100, R::kPartial, {{70, 99}}},
      {"bytes=-300", 100, R::kPartial, {{0, 99}}},
      {"BYTES= 0-9 ", 100, R::kPartial, {{0, 9}}},  // the unit is case-insensitive
      {"bytes=100-", 100, R::kUnsatisfiable, {}},
      {"bytes=-0", 100, R::kUnsatisfiable, {}},
      {"bytes=0-", 0, R::kUnsatisfiable, {}},
      // Several ranges, far apart: kept as asked, in the order asked (14.6).
      {"bytes=0-1,500-600", 1000, R::kPartial, {{0, 1}, {500, 600}}},
      {"bytes=500-600,0-1", 1000, R::kPartial, {{500, 600}, {0, 1}}},
      {"bytes=0-1, 500-600 ,,-10", 1000, R::kPartial, {{0, 1}, {500, 600}, {990, 999}}},
      // An unsatisfiable one among them is left out; all unsatisfiable is a 416 (15.5.17).
      {"bytes=0-1,2000-3000", 1000, R::kPartial, {{0, 1}}},
      {"bytes=2000-,3000-", 1000, R::kUnsatisfiable, {}},
      // Overlapping or adjacent ranges are coalesced, sorted (14.2, 14.6); a gap keeps them apart.
      {"bytes=0-1,5-6", 1000, R::kPartial, {{0, 1}, {5, 6}}},
      {"bytes=500-600,0-1,550-700", 1000, R::kPartial, {{0, 1}, {500, 700}}},
      {"bytes=0-99,0-99,0-99", 1000, R::kPartial, {{0, 99}}},
      {"bytes=10-20,21-30", 1000, R::kPartial, {{10, 30}}},
      {"bytes=21-30,10-20,40-50", 1000, R::kPartial, {{10, 30}, {40, 50}}},
      {"bytes=0-,-1", 1000, R::kPartial, {{0, 999}}},
      // Malformed, other units, and more specs than the limit: the whole body.
      {"items=0-1", 100, R::kWhole, {}},
      {"bytes=5-1", 100, R::kWhole, {}},
      {"bytes=a-b", 100, R::kWhole, {}},
      {"bytes=", 100, R::kWhole, {}},
      {"bytes=,", 100, R::kWhole, {}},
      {"bytes=1", 100, R::kWhole, {}},
      {"bytes=-", 100, R::kWhole, {}},
      {"bytes=0-1,x", 100, R::kWhole, {}},
      {"bytes=99999999999999999999-", 100, R::kWhole, {}},
      {"bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32",
       100,
       R::kWhole,
       {}},  // 17 > 16
  };
  for (const Case& c : cases) {
    INFO(c.range, " of ", c.length);
    ByteRanges out;
    REQUIRE(EvaluateRanges(c.range, c.length, 16, &out) == c.result);
    if (c.result != R::kPartial) continue;
    REQUIRE(out.size() == c.ranges.size());
    for (size_t i = 0; i < out.size(); ++i) {
      CHECK(out[i].first == c.ranges[i].first);
      CHECK(out[i].last == c.ranges[i].second);
    }
  }
  ByteRanges out;
  CHECK(EvaluateRanges("bytes=0-1,500-600", 1000, 2, &out) == RangeResult::kPartial);
  CHECK(EvaluateRanges("bytes=0-1,500-600,900-", 1000, 2, &out) == RangeResult::kWhole);  // past the cap
  CHECK(EvaluateRanges("bytes=0-1", 1000, 0, &out) == RangeResult::kWhole);               // 0: ranges are off
}

TEST_CASE("multipart/byteranges framing (RFC 9110 14.6) and its exact length") {
  const ByteRange ranges[] = {{0, 1}, {500, 502}};
  const MultipartFraming framing = FrameByteRanges(ranges, 1000, "text/plain", "B0UND");
  REQUIRE(framing.part_heads.size() == 2);
  CHECK(framing.part_heads[0] ==
        "--B0UND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/1000\r\n\r\n");
  CHECK(framing.part_heads[1] ==
        "\r\n--B0UND\r\nContent-Type: text/plain\r\nContent-Range: bytes 500-502/1000\r\n\r\n");
  CHECK(framing.close == "\r\n--B0UND--\r\n");
  CHECK(framing.content_length ==
        framing.part_heads[0].size() + 2 + framing.part_heads[1].size() + 3 + framing.close.size());
  const MultipartFraming untyped = FrameByteRanges(ranges, 1000, "", "B");
  CHECK(untyped.part_heads[0] == "--B\r\nContent-Range: bytes 0-1/1000\r\n\r\n");
}

TEST_CASE("If-Range applies the range only for the same strong ETag or exact date (RFC 9110 13.1.5)") {
  struct Case {
    std::string_view if_range, etag, last_modified;
    bool applies;
  };
  const std::string_view date = "Tue, 01 Sep 2026 10:00:00 GMT";
  const Case cases[] = {
      {"", "\"a\"", "", true},
      {"\"a\"", "\"a\"", "", true},
      {"\"b\"", "\"a\"", "", false},
      {"W/\"a\"", "W/\"a\"", "", false},  // weak tags never match strongly
      {"\"d41d8cd98f00b204e9800998ecf8427e\"", "d41d8cd98f00b204e9800998ecf8427e", "", true},  // Swift
      {"d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e", "", true},
      {"d41d8cd98f00b204e9800998ecf8427f", "d41d8cd98f00b204e9800998ecf8427e", "", false},
      {date, "", date, true},
      {"Tue, 01 Sep 2026 10:00:01 GMT", "", date, false},
      {date, "\"a\"", "", false},  // a date against an entry without Last-Modified
  };
  for (const Case& c : cases) {
    INFO(c.if_range, " vs ", c.etag, " / ", c.last_modified);
    CHECK(IfRangeMatches(c.if_range, c.etag, c.last_modified) == c.applies);
  }
}

TEST_CASE("preconditions follow RFC 9110 13.2.2") {
  struct Case {
    std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since;
    Precondition expected;
  };
  using P = Precondition;
  const std::string_view later = "Wed, 02 Sep 2026 10:00:00 GMT", earlier = "Mon, 31 Aug 2026 10:00:00 GMT";
  const Case cases[] = {
      {"", "", "", "", P::kProceed},
      {"", "\"v1\", \"v2\"", "", "", P::kNotModified},
      {"", "W/\"v2\"", "", "", P::kNotModified},  // weak comparison
      {"", "*", "", "", P::kNotModified},
      {"", "\"v1\"", "", "", P::kProceed},
      {"", "\"a,b\", \"v2\"", "", "", P::kNotModified},  // a comma inside a quoted tag
      {"", "\"v2,x\"", "", "", P::kProceed},
      {"", "v2", "", "", P::kNotModified},     // the unquoted form, as Swift sends it
      {"", "\"v1\"", later, "", P::kProceed},  // If-None-Match wins over If-Modified-Since
      {"", "", later, "", P::kNotModified},
      {"", "", earlier, "", P::kProceed},
      {"", "", "garbage", "", P::kProceed},
      {"\"v2\"", "", "", "", P::kProceed},
      {"v2", "", "", "", P::kProceed},
      {"\"v0\", \"v2\"", "", "", "", P::kProceed},
      {"*", "", "", "", P::kProceed},
      {"\"v1\"", "", "", "", P::kFailed},
      {"W/\"v2\"", "", "", "", P::kFailed},  // strong comparison
      {"", "", "", earlier, P::kFailed},
      {"", "", "", later, P::kProceed},
      {"\"v2\"", "", "", earlier, P::kProceed},  // If-Match wins over If-Unmodified-Since
  };
  const Validators entry{"\"v2\"", "Tue, 01 Sep 2026 10:00:00 GMT", "Tue, 01 Sep 2026 11:00:00 GMT"};
  for (const Case& c : cases) {
    INFO(c.if_match, " | ", c.if_none_match, " | ", c.if_modified_since, " | ", c.if_unmodified_since);
    CHECK(EvaluatePreconditions({c.if_match, c.if_none_match, c.if_modified_since, c.if_unmodified_since},
                                entry) == c.expected);
  }
}

TEST_CASE("Swift's unquoted ETag matches a client's quoted copy in If-Match and If-None-Match") {
  const Validators swift{"d41d8cd98f00b204e9800998ecf8427e", "", ""};
  CHECK(EvaluatePreconditions({"", "\"d41d8cd98f00b204e9800998ecf8427e\"", "", ""}, swift) ==
        Precondition::kNotModified);
  CHECK(EvaluatePreconditions({"", "W/\"d41d8cd98f00b204e9800998ecf8427e\"", "", ""}, swift) ==
        Precondition::kNotModified);
  CHECK(EvaluatePreconditions({"\"d41d8cd98f00b204e9800998ecf8427e\"", "", "", ""}, swift) ==
        Precondition::kProceed);
  CHECK(EvaluatePreconditions({"\"00000000000000000000000000000000\"", "", "", ""}, swift) ==
        Precondition::kFailed);
}

TEST_CASE("If-Modified-Since without Last-Modified compares with the entry's Date (RFC 9111 4.3.2)") {
  const Validators dated{"", "", "Tue, 01 Sep 2026 10:00:00 GMT"};
  CHECK(EvaluatePreconditions({"", "", "Tue, 01 Sep 2026 10:00:00 GMT", ""}, dated) ==
        Precondition::kNotModified);
  CHECK(EvaluatePreconditions({"", "", "Wed, 02 Sep 2026 10:00:00 GMT", ""}, dated) ==
        Precondition::kNotModified);
  CHECK(EvaluatePreconditions({"", "", "Mon, 31 Aug 2026 10:00:00 GMT", ""}, dated) ==
        Precondition::kProceed);
  // Last-Modified, when there is one, is what counts.
  const Validators both{"", "Tue, 01 Sep 2026 10:00:00 GMT", "Tue, 01 Sep 2026 12:00:00 GMT"};
  CHECK(EvaluatePreconditions({"", "", "Tue, 01 Sep 2026 11:00:00 GMT", ""}, both) ==
        Precondition::kNotModified);
  CHECK(EvaluatePreconditions({"", "", "Tue, 01 Sep 2026 11:00:00 GMT", ""}, {"", "", ""}) ==
        Precondition::kProceed);
}

}  // namespace edge
