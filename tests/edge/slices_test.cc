// Large objects in slices (edge/slices.h): the pure parts, then the request path in one process
// in front of an origin that answers ranges as Swift does.
#include "edge/slices.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/edge/pipeline_fixture.h"

namespace edge {

namespace {

constexpr uint64_t kSlice = 64 << 10;
// 64 KiB slices, objects above 128 KiB sliced.
const std::string kSmallSlices = "cache.slice_size = \"64K\"\ncache.slice_threshold = \"128K\"\n";

std::string Bytes(size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

Script RangedObject(std::string body, std::string etag) {
  Script s = Object(std::move(body));
  s.ranges = true;
  s.etag = std::move(etag);
  return s;
}

// The value of one series of the edge's /metrics, e.g. `edge_slices_total{event="seek"}`.
uint64_t MetricValue(const Edge& edge, const std::string& series) {
  const std::string text = edge.metrics.Render(edge.store->GetStats(), 0, 0);
  const size_t at = text.find(series + " ");
  return at == std::string::npos ? 0 : std::stoull(text.substr(at + series.size() + 1));
}

uint64_t SliceCounter(const Edge& edge, std::string_view event) {
  return MetricValue(edge, "edge_slices_total{event=\"" + std::string(event) + "\"}");
}

// What an origin in error answers.
Script Busy() {
  Script s;
  s.status = 503;
  s.body = "busy";
  return s;
}

// /movie fetched whole into its 4 slices, then stale past stale-while-revalidate, within
// stale-if-error.
void StoreThenAge(Edge& edge, const std::string& body) {
  CHECK(edge.Get("/movie").body == body);
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 4; }));
  edge.Advance(120);
}

// `answer` was cut short, and what came of it is the start of `version` (never another's bytes).
void CheckCutShort(const HttpResponse& answer, const std::string& version) {
  CHECK(answer.body.size() < version.size());
  CHECK(version.compare(0, answer.body.size(), answer.body) == 0);
}

}  // namespace

TEST_CASE("Content-Range, the first byte a request wants, the probe's range and slice keys") {
  CHECK(ParseContentRange("bytes 0-99/1000")->total == 1000);
  CHECK(ParseContentRange("bytes 10-19/20")->first == 10);
  for (std::string_view bad : {"bytes 0-99/*", "bytes */1000", "bytes 5-4/10", "bytes 0-10/10", "items 0-1/2",
                               "bytes 0-1/2x", "bytes -1/2", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseContentRange(bad));
  }
  CHECK(FirstWantedByte("") == 0);
  CHECK(FirstWantedByte("bytes=500-") == 500);
  CHECK(FirstWantedByte("bytes= 70-80, 10-20") == 70);
  CHECK(FirstWantedByte("bytes=-500") == 0);  // a suffix: the length decides
  CHECK(FirstWantedByte("bytes=-500", 2000) == 1500);
  CHECK(FirstWantedByte("bytes=-5000", 2000) == 0);
  CHECK(FirstWantedByte("bytes=500-", 2000) == 500);
  CHECK(FirstWantedByte("bytes=-x", 2000) == 0);
  CHECK(FirstWantedByte("lines=5-") == 0);
  const Slicing slicing{kSlice, 2 * kSlice};
  CHECK(ProbeRange(slicing, false, 0).last == 2 * kSlice - 1);  // a whole object: up to the threshold
  CHECK(ProbeRange(slicing, true, 0).last == kSlice - 1);       // a range: its slice
  CHECK(ProbeRange(slicing, true, kSlice + 7).first == kSlice);
  CHECK(ProbeRange(slicing, true, 5 * kSlice + 7).first == 5 * kSlice);
  CHECK(ProbeRange(slicing, true, 5 * kSlice + 7).last == 6 * kSlice - 1);
  CHECK(SliceBytes(slicing, 3, 3 * kSlice + 10).last == 3 * kSlice + 9);  // the last is short
  cache::Key object{cache::KeyKind::kObject, "AUTH_a", "c", "movie.mp4", "?v=1"};
  cache::Key slice;
  SliceKey(object, kSlice, 3, &slice);
  CHECK(slice.name == object.name);
  CHECK(slice.variant.starts_with("?v=1"));
  cache::Key other;
  SliceKey(object, kSlice, 4, &other);
  CHECK(other.Encode() != slice.Encode());
  // One object invalidation covers its slices: the same name, another variant.
  cache::KeyParts parts;
  const std::string encoded = slice.Encode();
  REQUIRE(cache::DecodeKey(encoded, &parts));
  CHECK(cache::Covers(cache::Invalidation::Object("AUTH_a", "c", "movie.mp4", false), parts, "t", {}));
}

TEST_CASE(
    "a large object is stored in slices: whole, ranges, suffixes, several ranges and HEAD, byte for byte") {
  FakeOrigin origin;
  const std::string body = Bytes(10 * kSlice + 123, 1);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse whole = edge.Get("/movie");
  CHECK(whole.status == 200);
  CHECK(whole.header("x-cache") == "MISS");
  CHECK(whole.header("content-range").empty());
  CHECK(whole.header("etag") == "\"v1\"");
  CHECK(whole.body == body);
  // One request per slice: the probe's answer held the first.
  CHECK(origin.Count("movie") == 11);
  CHECK(SliceCounter(edge, "fetched") == 11);
  CHECK(edge.Get("/movie").header("x-cache") == "HIT");
  std::mt19937 random(7);
  for (int i = 0; i < 30; ++i) {
    const uint64_t first = random() % body.size();
    const uint64_t last = std::min<uint64_t>(body.size() - 1, first + random() % (3 * kSlice));
    const std::string range = std::to_string(first) + "-" + std::to_string(last);
    CAPTURE(range);
    const HttpResponse r = edge.Get("/movie", {"Range: bytes=" + range});
    CHECK(r.status == 206);
    CHECK(r.header("content-range") == "bytes " + range + "/" + std::to_string(body.size()));
    CHECK(r.body == body.substr(first, last - first + 1));
  }
  CHECK(edge.Get("/movie", {"Range: bytes=-1000"}).body == body.substr(body.size() - 1000));
  CHECK(edge.Get("/movie", {"Range: bytes=" + std::to_string(body.size()) + "-"}).status == 416);
  const HttpResponse multi = edge.Get("/movie", {"Range: bytes=10-20,300000-400000"});
  CHECK(multi.status == 206);
  const auto parts = Parts(multi);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].second == body.substr(10, 11));
  CHECK(parts[1].second == body.substr(300000, 100001));
  CHECK(edge.Get("/movie", {"Range: bytes=10-20", "If-Range: \"v1\""}).status == 206);
  CHECK(edge.Get("/movie", {"Range: bytes=10-20", "If-Range: \"v0\""}).body == body);
  CHECK(edge.Get("/movie", {"If-None-Match: \"v1\""}).status == 304);
  const HttpResponse head = HttpRequest("HEAD", edge.Url("/movie"), {"Host: t.test"});
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == std::to_string(body.size()));
  CHECK(origin.Count("movie") == 11);  // all of it from the slices
}

TEST_CASE("a seek into a cold large object is answered from one round trip and fetches only its slice") {
  FakeOrigin origin;
  const std::string body = Bytes(64 * kSlice, 2);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  const uint64_t at = body.size() * 9 / 10;
  const uint64_t slice = at / kSlice * kSlice;
  const std::string slice_end = std::to_string(slice + kSlice - 1);
  SUBCASE("near its slice's first byte: the slice in one answer") {
    const uint64_t near = slice + kSlice / 16;
    const HttpResponse r = edge.Get("/movie", {"Range: bytes=" + std::to_string(near) + "-"});
    CHECK(r.status == 206);
    CHECK(r.body == body.substr(near));
    CHECK(origin.Headers("movie", "range").front() == "bytes=" + std::to_string(slice) + "-" + slice_end);
    CHECK(SliceCounter(edge, "seek") == 0);
  }
  SUBCASE("further in: the client's bytes first, then those before them, into the one slice") {
    const HttpResponse r =
        edge.Get("/movie", {"Range: bytes=" + std::to_string(at) + "-" + std::to_string(at + 999)});
    CHECK(r.status == 206);
    CHECK(r.body == body.substr(at, 1000));
    REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 1; }));
    CHECK(origin.Headers("movie", "range") ==
          std::vector<std::string>{"bytes=" + std::to_string(at) + "-" + slice_end,
                                   "bytes=" + std::to_string(slice) + "-" + std::to_string(at - 1)});
    CHECK(origin.BodyBytes("movie") == kSlice);  // the slice, once
    CHECK(SliceCounter(edge, "seek") == 1);
    CHECK(SliceCounter(edge, "fetched") == 1);
    // The slice is stored whole: any range in it is a hit, from no origin request.
    const HttpResponse again =
        edge.Get("/movie", {"Range: bytes=" + std::to_string(slice) + "-" + slice_end});
    CHECK(again.header("x-cache") == "HIT");
    CHECK(again.body == body.substr(slice, kSlice));
    CHECK(origin.Count("movie") == 2);
  }
  SUBCASE("into another slice of an object of which one is stored") {
    REQUIRE(edge.Get("/movie", {"Range: bytes=0-9"}).status == 206);  // slice 0, and the length
    const HttpResponse r = edge.Get("/movie", {"Range: bytes=" + std::to_string(at) + "-"});
    CHECK(r.body == body.substr(at));
    CHECK(origin.Headers("movie", "range")[1] == "bytes=" + std::to_string(at) + "-" + slice_end);
    REQUIRE(Eventually([&] { return SliceCounter(edge, "fetched") == 1 + (64 - at / kSlice); }));
    CHECK(SliceCounter(edge, "seek") == 1);
    CHECK(edge.Get("/movie", {"Range: bytes=" + std::to_string(slice) + "-" + slice_end}).body ==
          body.substr(slice, kSlice));
  }
}

TEST_CASE("a seek's slice whose bytes before the seek come from another version is not stored") {
  FakeOrigin origin;
  const std::string v1 = Bytes(8 * kSlice, 30), v2 = Bytes(8 * kSlice, 31);
  origin.Set("movie", RangedObject(v1, "\"v1\""));
  origin.SetAfter("movie", 1, RangedObject(v2, "\"v2\""));  // overwritten after the first answer
  Edge edge(origin.port(), kSmallSlices);
  const uint64_t at = 5 * kSlice + kSlice / 2;
  const std::string range = "Range: bytes=" + std::to_string(at) + "-" + std::to_string(at + 999);
  const HttpResponse r = edge.Get("/movie", {range});
  CHECK(r.status == 206);
  CHECK(r.body == v1.substr(at, 1000));  // all from the first answer: one version
  REQUIRE(Eventually([&] { return SliceCounter(edge, "version_changed") == 1; }));
  CHECK(SliceCounter(edge, "bad_answer") == 1);
  CHECK(edge.store->GetStats().entries == 0);  // neither version's bytes under the other's name
  CHECK(edge.Get("/movie", {range}).body == v2.substr(at, 1000));
}

TEST_CASE("a client that joins a seek's slice for the bytes before the seek gets them once they come") {
  constexpr uint64_t kLarge = 256 << 10;  // many wake-ups' worth of bytes from the seek on
  FakeOrigin origin;
  const std::string body = Bytes(8 * kLarge, 32);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Script held = RangedObject(body, "\"v1\"");
  auto hold = Hold(held);
  origin.SetAfter("movie", 1, held);  // the bytes before the seek wait
  Edge edge(origin.port(), "cache.slice_size = \"256K\"\ncache.slice_threshold = \"512K\"\n");
  const uint64_t slice = 5 * kLarge, at = slice + 100000, slice_end = slice + kLarge - 1;
  const auto from = [](uint64_t first, uint64_t last) {
    return "bytes=" + std::to_string(first) + "-" + std::to_string(last);
  };
  // Answered to the slice's last byte while the bytes before the seek are held.
  const HttpResponse first = edge.Get("/movie", {"Range: " + from(at, slice_end)});
  CHECK(first.body == body.substr(at, slice_end - at + 1));
  HttpResponse second;
  std::thread b([&] { second = edge.Get("/movie", {"Range: bytes=" + std::to_string(slice) + "-"}); });
  // The seek's two answers and the read-ahead of the next two slices (the joiner's, once the
  // seek's bytes came), and no request of the joiner's own.
  const bool asked = Eventually([&] { return origin.Count("movie") == 4; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<std::string> asked_meanwhile = origin.Headers("movie", "range");
  *hold = false;
  b.join();
  REQUIRE(asked);
  std::sort(asked_meanwhile.begin() + 2, asked_meanwhile.end());
  CHECK(asked_meanwhile == std::vector<std::string>{from(at, slice_end), from(slice, at - 1),
                                                    from(slice + kLarge, slice + 2 * kLarge - 1),
                                                    from(slice + 2 * kLarge, slice + 3 * kLarge - 1)});
  CHECK(second.status == 206);
  CHECK(second.body == body.substr(slice));
}

TEST_CASE("bytes before a seek that never come cut the clients that wanted them, and store nothing") {
  FakeOrigin origin;
  const std::string body = Bytes(8 * kSlice, 34);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Script gone;
  gone.status = 404;
  gone.body = "gone\n";
  auto hold = Hold(gone);
  origin.SetAfter("movie", 1, gone);  // deleted after the seek's answer
  Edge edge(origin.port(), kSmallSlices);
  const uint64_t slice = 5 * kSlice, at = slice + kSlice / 2;
  const HttpResponse first =
      edge.Get("/movie", {"Range: bytes=" + std::to_string(at) + "-" + std::to_string(at + 999)});
  CHECK(first.body == body.substr(at, 1000));
  HttpResponse second;
  std::thread b([&] { second = edge.Get("/movie", {"Range: bytes=" + std::to_string(slice) + "-"}); });
  const bool joined = Eventually([&] { return origin.Count("movie") >= 3; });  // its read-ahead
  *hold = false;
  b.join();
  REQUIRE(joined);
  CheckCutShort(second, body.substr(slice));                                    // never completed otherwise
  CHECK(MetricValue(edge, "edge_responses_cut_total{cause=\"origin\"}") == 1);  // by the edge, at once
  CHECK(Eventually([&] { return SliceCounter(edge, "version_changed") >= 1; }));
  CHECK(edge.store->GetStats().entries == 0);
}

TEST_CASE("a small object comes whole in the probe's one answer and is stored as the object") {
  FakeOrigin origin;
  const std::string body = Bytes(1000, 3);
  origin.Set("photo", RangedObject(body, "\"p\""));
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse first = edge.Get("/photo");
  CHECK(first.status == 200);
  CHECK(first.body == body);
  CHECK(first.header("content-range").empty());
  CHECK(origin.LastHeader("photo", "range") == "bytes=0-" + std::to_string(2 * kSlice - 1));
  CHECK(edge.Get("/photo").header("x-cache") == "HIT");
  const HttpResponse part = edge.Get("/photo", {"Range: bytes=5-9"});
  CHECK(part.body == body.substr(5, 5));
  CHECK(part.header("x-cache") == "HIT");
  CHECK(origin.Count("photo") == 1);
  CHECK(SliceCounter(edge, "fetched") == 0);
}

TEST_CASE("an object no larger than the threshold, first asked for by a range, is stored whole") {
  FakeOrigin origin;
  const std::string body = Bytes(kSlice + 1000, 21);
  origin.Set("clip", RangedObject(body, "\"c\""));
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse part =
      edge.Get("/clip", {"Range: bytes=" + std::to_string(kSlice) + "-" + std::to_string(kSlice + 99)});
  CHECK(part.status == 206);
  CHECK(part.body == body.substr(kSlice, 100));
  CHECK(origin.LastHeader("clip", "range") == "bytes=0-" + std::to_string(2 * kSlice - 1));
  CHECK(SliceCounter(edge, "fetched") == 0);
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 1; }));
  const HttpResponse whole = edge.Get("/clip");
  CHECK(whole.header("x-cache") == "HIT");
  CHECK(whole.body == body);
  CHECK(edge.Get("/clip", {"Range: bytes=-10"}).header("x-cache") == "HIT");
  CHECK(origin.Count("clip") == 2);
  // An origin that answers less of a range than asked is asked from byte 0 once, not forever.
  Script capped = RangedObject(body, "\"c\"");
  capped.range_cap = 1000;
  origin.Set("capped", capped);
  const HttpResponse short_answer =
      edge.Get("/capped", {"Range: bytes=" + std::to_string(kSlice) + "-" + std::to_string(kSlice + 99)});
  CHECK(short_answer.body == body.substr(kSlice, 100));
  CHECK(origin.Count("capped") == 3);  // the probe, once from byte 0, then the client's own range
  // A seek into the first slice: the object may be small, so it is asked for from its first
  // byte and comes whole in one answer.
  const std::string photo = Bytes(kSlice - 1000, 33);
  origin.Set("photo", RangedObject(photo, "\"p\""));
  CHECK(edge.Get("/photo", {"Range: bytes=30000-"}).body == photo.substr(30000));
  CHECK(origin.Count("photo") == 1);
  CHECK(SliceCounter(edge, "seek") == 0);
  // Past the first slice the seek's answer tells a small object's length, and it is asked for
  // from byte 0 again, as an aligned probe's would be.
  const std::string clip2 = Bytes(kSlice + 40000, 36);
  origin.Set("clip2", RangedObject(clip2, "\"c2\""));
  const uint64_t far = kSlice + 20000;
  CHECK(edge.Get("/clip2", {"Range: bytes=" + std::to_string(far) + "-"}).body == clip2.substr(far));
  CHECK(origin.Headers("clip2", "range") ==
        std::vector<std::string>{"bytes=" + std::to_string(far) + "-" + std::to_string(2 * kSlice - 1),
                                 "bytes=0-" + std::to_string(2 * kSlice - 1)});
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 3; }));  // stored whole
}

TEST_CASE("an empty object, whose range cannot be satisfied, is asked for again without Range and stored") {
  FakeOrigin origin;
  origin.Set("empty", RangedObject("", "\"e\""));
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse first = edge.Get("/empty");
  CHECK(first.status == 200);
  CHECK(first.body.empty());
  CHECK(origin.Count("empty") == 2);
  CHECK(origin.LastHeader("empty", "range").empty());
  CHECK(edge.Get("/empty").header("x-cache") == "HIT");
  CHECK(edge.Get("/empty", {"Range: bytes=0-9"}).status == 416);  // as Swift answers it
  CHECK(origin.Count("empty") == 2);
}

TEST_CASE("a range past the end of a cold object costs a bounded probe, never the whole object") {
  FakeOrigin origin;
  const std::string body = Bytes(10 * kSlice, 13);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse past = edge.Get("/movie", {"Range: bytes=" + std::to_string(body.size() + 5) + "-"});
  CHECK(past.status == 416);
  CHECK(past.header("content-range") == "bytes */" + std::to_string(body.size()));
  CHECK(origin.Count("movie") == 2);  // the client's slice (416), then the probe from byte 0
  CHECK(origin.BodyBytes("movie") <= 2 * kSlice);
  CHECK(ProbeRange({kSlice, 2 * kSlice}, true, UINT64_MAX).last == UINT64_MAX);  // no wrap-around
}

TEST_CASE("a stale slice is revalidated with its ETag, and a 304 keeps it") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 12);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie").body == body);
  const int fetched = origin.Count("movie");
  edge.Advance(120);  // past the tenant's 60 s
  const HttpResponse again = edge.Get("/movie");
  CHECK(again.body == body);
  CHECK(origin.LastHeader("movie", "if-none-match") == "\"v1\"");
  CHECK(origin.Count("movie") > fetched);
  const int revalidated = origin.Count("movie");
  CHECK(edge.Get("/movie").body == body);
  CHECK(origin.Count("movie") == revalidated);  // refreshed: fresh again
}

TEST_CASE(
    "an object that changes between two slices: the answer is cut, never spliced, and the next is whole") {
  FakeOrigin origin;
  const std::string v1 = Bytes(8 * kSlice, 4), v2 = Bytes(8 * kSlice, 5);
  origin.Set("movie", RangedObject(v1, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie", {"Range: bytes=0-99"}).body == v1.substr(0, 100));  // slice 0 of v1 stored
  origin.Set("movie", RangedObject(v2, "\"v2\""));                             // written, and no purge came
  const HttpResponse cut = edge.Get("/movie");
  CheckCutShort(cut, v1);
  CHECK(SliceCounter(edge, "version_changed") >= 1);
  const HttpResponse next = edge.Get("/movie");
  CHECK(next.status == 200);
  CHECK(next.header("etag") == "\"v2\"");
  CHECK(next.body == v2);
}

TEST_CASE("one object invalidation removes every slice, and a fetch in flight is fenced") {
  FakeOrigin origin;
  const std::string body = Bytes(6 * kSlice, 6);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie").body == body);
  CHECK(edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "movie", false)) == 6);
  CHECK(edge.Get("/movie", {"Range: bytes=0-9"}).header("x-cache") == "MISS");
  // A slice being fetched when its object is invalidated is not stored.
  Script held = RangedObject(body, "\"v1\"");
  auto hold = Hold(held);
  origin.Set("movie", held);
  const int before = origin.Count("movie");
  HttpResponse seek;
  std::thread reader(
      [&] { seek = edge.Get("/movie", {"Range: bytes=" + std::to_string(3 * kSlice) + "-"}); });
  const bool asked = Eventually([&] { return origin.Count("movie") > before; });
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "movie", false));
  *hold = false;
  reader.join();
  REQUIRE(asked);
  CHECK(seek.body == body.substr(3 * kSlice));
  const int after = origin.Count("movie");
  CHECK(edge.Get("/movie",
                 {"Range: bytes=" + std::to_string(3 * kSlice) + "-" + std::to_string(3 * kSlice + 9)})
            .header("x-cache") == "MISS");
  CHECK(origin.Count("movie") > after);
}

TEST_CASE(
    "an origin that ignores Range: its whole answer is stored as one, and a slice answered 200 cuts the "
    "answer") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 8);
  origin.Set("plain", Object(body));  // no ranges: every answer is the whole object
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/plain", {"Range: bytes=100-199"}).body == body.substr(100, 100));
  // The client had its bytes before the whole answer was in: the entry comes once it is.
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 1; }));
  CHECK(edge.Get("/plain").header("x-cache") == "HIT");
  CHECK(SliceCounter(edge, "range_ignored") == 1);
  // An origin that stops answering ranges between two slices.
  origin.Set("movie", RangedObject(body, "\"v1\""));
  CHECK(edge.Get("/movie", {"Range: bytes=0-9"}).status == 206);
  Script whole = Object(body);
  whole.etag = "\"v1\"";
  origin.Set("movie", whole);
  const HttpResponse cut = edge.Get("/movie");
  CheckCutShort(cut, body);
  CHECK(SliceCounter(edge, "bad_answer") >= 1);
}

TEST_CASE("an origin that closes mid-slice: the answer is cut and nothing of it is stored") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 9);
  Script broken = RangedObject(body, "\"v1\"");
  broken.reset_after = 1000;
  origin.Set("movie", broken);
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse cut = edge.Get("/movie");
  CheckCutShort(cut, body);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  const HttpResponse again = edge.Get("/movie");
  CHECK(again.header("x-cache") == "MISS");
  CHECK(again.body == body);
}

TEST_CASE("what is not stored keeps the client's Range: a private object's range is relayed as asked") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 10);
  Script mine = RangedObject(body, "\"v1\"");
  mine.headers = {{"Cache-Control", "private"}};
  origin.Set("mine", mine);
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse r = edge.Get("/mine", {"Range: bytes=5-14"});
  CHECK(r.status == 206);
  CHECK(r.body == body.substr(5, 10));
  CHECK(r.header("x-cache") == "BYPASS");
  CHECK(origin.LastHeader("mine", "range") == "bytes=5-14");
  const HttpResponse full = edge.Get("/mine");
  CHECK(full.status == 200);
  CHECK(full.body == body);
}

TEST_CASE("clients downloading one cold large object at once share each slice's fetch") {
  FakeOrigin origin;
  const std::string body = Bytes(16 * kSlice, 11);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  std::vector<HttpResponse> answers(4);
  std::vector<std::thread> clients;
  for (HttpResponse& answer : answers) clients.emplace_back([&] { answer = edge.Get("/movie"); });
  for (std::thread& t : clients) t.join();
  for (const HttpResponse& answer : answers) CHECK(answer.body == body);
  CHECK(origin.Count("movie") == 16);
}

TEST_CASE("a client that reads nothing does not hold back another downloading the same cold object") {
  // Slices are fetched into the zone, not paced by whoever asked first: the fast client fetches
  // the slices the slow one has not reached, and the slow one later reads them from the zone.
  FakeOrigin origin;
  const std::string body = Bytes(128 * kSlice, 12);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  const int slow = Connect(edge.server->port(), 4096);
  const std::string request = "GET /movie HTTP/1.1\r\nHost: t.test\r\n\r\n";
  REQUIRE(::write(slow, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  REQUIRE(testing_support::Eventually([&] { return origin.Count("movie") >= 1; }));
  const HttpResponse fast = edge.Get("/movie");
  CHECK(fast.status == 200);
  CHECK((fast.body == body));
  std::string received;
  timeval timeout{5, 0};
  setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char buffer[65536];
  for (ssize_t n; received.find("\r\n\r\n") == std::string::npos ||
                  received.size() < received.find("\r\n\r\n") + 4 + body.size();) {
    if ((n = ::read(slow, buffer, sizeof(buffer))) <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  ::close(slow);
  const size_t head_end = received.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  CHECK((received.substr(head_end + 4) == body));
  CHECK(origin.Count("movie") == 128);  // each slice once, for both
}

TEST_CASE("an object without a strong ETag is stored whole, never in slices two versions could mix") {
  FakeOrigin origin;
  const std::string v1 = Bytes(4 * kSlice, 14), v2 = Bytes(4 * kSlice, 15);
  for (const char* etag : {"", "W/\"w1\""}) {
    INFO(etag);
    origin.Set("movie", RangedObject(v1, etag));
    Edge edge(origin.port(), kSmallSlices);
    const HttpResponse part =
        edge.Get("/movie", {"Range: bytes=" + std::to_string(kSlice) + "-" + std::to_string(kSlice + 99)});
    CHECK(part.status == 206);
    CHECK(part.body == v1.substr(kSlice, 100));
    CHECK(origin.LastHeader("movie", "range").empty());  // asked again without Range
    CHECK(SliceCounter(edge, "no_validator") == 1);
    CHECK(SliceCounter(edge, "fetched") == 0);
    REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 1; }));  // once all of it is in
    // Written with the same length and no purge: what is served is all of one version.
    origin.Set("movie", RangedObject(v2, etag));
    const HttpResponse whole = edge.Get("/movie");
    CHECK(whole.header("x-cache") == "HIT");
    CHECK((whole.body == v1));
  }
}

TEST_CASE("an object without a strong ETag too large to store is relayed with the client's Range") {
  FakeOrigin origin;
  const std::string body = Bytes(65 << 20, 35);  // larger than the test edge's one 64 MiB zone
  Script no_etag = Object(body);
  no_etag.ranges = true;
  origin.Set("huge", no_etag);
  Edge edge(origin.port(), kSmallSlices);
  const HttpResponse r = edge.Get("/huge", {"Range: bytes=1000-1009"});
  CHECK(r.status == 206);
  CHECK(r.body == body.substr(1000, 10));
  CHECK(r.header("content-range") == "bytes 1000-1009/" + std::to_string(body.size()));
  CHECK(SliceCounter(edge, "no_validator") == 1);
  CHECK(origin.LastHeader("huge", "range") == "bytes=1000-1009");  // its own request
}

TEST_CASE("a slice the origin no longer has cuts that answer, and its object's slices go with it") {
  FakeOrigin origin;
  const std::string v1 = Bytes(8 * kSlice, 16), v2 = Bytes(1000, 17);
  origin.Set("movie", RangedObject(v1, "\"v1\""));
  origin.Set("gone", RangedObject(v1, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie", {"Range: bytes=0-99"}).status == 206);  // slice 0 stored
  CHECK(edge.Get("/gone", {"Range: bytes=0-99"}).status == 206);
  origin.Set("movie", RangedObject(v2, "\"v2\""));  // shrunk: slice 1 is answered 416
  Script deleted;
  deleted.status = 404;
  deleted.body = "gone\n";
  origin.Set("gone", deleted);
  CheckCutShort(edge.Get("/movie"), v1);
  CheckCutShort(edge.Get("/gone"), v1);
  // Once: the next answers are the origin's, not cut again from the stored slice 0.
  const HttpResponse next = edge.Get("/movie");
  CHECK(next.status == 200);
  CHECK(next.header("etag") == "\"v2\"");
  CHECK(next.body == v2);
  CHECK(edge.Get("/gone").status == 404);
}

TEST_CASE("a sliced answer is a hit only when the slice it begins with is stored: a suffix range") {
  FakeOrigin origin;
  const std::string body = Bytes(10 * kSlice, 18);  // the last 1000 bytes in slice 9
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie", {"Range: bytes=0-9"}).header("x-cache") == "MISS");  // slice 0 stored
  const int before = origin.Count("movie");
  const HttpResponse tail = edge.Get("/movie", {"Range: bytes=-1000"});
  CHECK(tail.status == 206);
  CHECK(tail.body == body.substr(body.size() - 1000));
  CHECK(tail.header("x-cache") == "MISS");
  // Its bytes, then those of its slice before them (a seek into it).
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 2; }));
  CHECK(origin.Count("movie") == before + 2);
  const uint64_t seek = body.size() - 1000, slice = 9 * kSlice;
  CHECK(origin.Headers("movie", "range")[before] ==
        "bytes=" + std::to_string(seek) + "-" + std::to_string(body.size() - 1));
  CHECK(origin.Headers("movie", "range")[before + 1] ==
        "bytes=" + std::to_string(slice) + "-" + std::to_string(seek - 1));
  CHECK(SliceCounter(edge, "seek") == 1);
  const HttpResponse again = edge.Get("/movie", {"Range: bytes=-1000"});
  CHECK(again.header("x-cache") == "HIT");
  CHECK(again.body == tail.body);
  CHECK(origin.Count("movie") == before + 2);
}

TEST_CASE("many ranges of a sliced object are answered with the whole object, not a slice per range") {
  FakeOrigin origin;
  const std::string body = Bytes(32 * kSlice, 19);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  const auto ranges = [](int count) {
    std::string range = "Range: bytes=";
    for (int i = 0; i < count; ++i)
      absl::StrAppend(&range, i ? "," : "", 2 * i * kSlice, "-", 2 * i * kSlice);
    return range;
  };
  const HttpResponse four = edge.Get("/movie", {ranges(4)});
  CHECK(four.status == 206);
  CHECK(Parts(four).size() == 4);
  CHECK(SliceCounter(edge, "fetched") == 4);
  CHECK(edge.Get("/movie", {ranges(5)}).status == 200);
  // Sixteen one-byte parts would have pulled sixteen slices for 16 bytes: the whole object instead,
  // paced by the client's reading.
  const HttpResponse sixteen = edge.Get("/movie", {ranges(16)});
  CHECK(sixteen.status == 200);
  CHECK((sixteen.body == body));
}

TEST_CASE("a client that joins another's revalidation of a slice it could not read is answered") {
  // Slices above the memory tier's size, so that every lookup opens the slice's file.
  constexpr uint64_t kLarge = 128 << 10;
  FakeOrigin origin;
  const std::string body = Bytes(4 * kLarge, 20);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), "cache.slice_size = \"128K\"\ncache.slice_threshold = \"256K\"\n");
  const std::string slice_1 = "Range: bytes=" + std::to_string(kLarge) + "-" + std::to_string(kLarge + 9);
  CHECK(edge.Get("/movie", {slice_1}).status == 206);             // slice 1 stored
  edge.Advance(120);                                              // and stale
  CHECK(edge.Get("/movie", {"Range: bytes=0-9"}).status == 206);  // slice 0 stored, fresh
  Script held = RangedObject(body, "\"v1\"");
  auto hold = Hold(held);
  origin.Set("movie", held);
  const int before = origin.Count("movie");
  const std::string both = "Range: bytes=0-" + std::to_string(kLarge + 9);
  HttpResponse first, second;
  std::thread a([&] { first = edge.Get("/movie", {both}); });  // revalidates slice 1
  const bool asked = Eventually([&] { return origin.Count("movie") > before; });
  // Slice 1's file goes (as a drive loses it): the next client finds no copy of it and joins the
  // revalidation in flight, whose 304 has no bytes for it.
  const std::string marker = body.substr(kLarge, 64);
  std::error_code error;
  for (const auto& file : std::filesystem::recursive_directory_iterator(edge.dir / "zone", error)) {
    if (!file.is_regular_file(error)) continue;
    std::ifstream in(file.path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.find(marker) != std::string::npos) std::filesystem::remove(file.path(), error);
  }
  const uint64_t entries = edge.store->GetStats().entries;
  std::thread b([&] { second = edge.Get("/movie", {both}); });
  const bool looked = Eventually([&] { return edge.store->GetStats().entries < entries; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // and joined: no request of its own
  const int asked_meanwhile = origin.Count("movie");
  *hold = false;
  a.join();
  b.join();
  REQUIRE(asked);
  REQUIRE(looked);
  CHECK(asked_meanwhile == before + 1);
  CHECK(first.status == 206);
  CHECK(first.body == body.substr(0, kLarge + 10));
  CHECK(second.status == 206);
  CHECK(second.body == body.substr(0, kLarge + 10));
}

TEST_CASE("stale slices within stale-while-revalidate are sent at once and refreshed meanwhile") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 22);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices + "cache.stale_while_revalidate = \"30s\"\n");
  CHECK(edge.Get("/movie").body == body);
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 4; }));
  edge.Advance(70);  // past the tenant's 60 s, within its 30 s of stale-while-revalidate
  Script held = RangedObject(body, "\"v1\"");
  auto hold = Hold(held);
  origin.Set("movie", held);
  const int before = origin.Count("movie");
  const HttpResponse stale = edge.Get("/movie");  // answered while the origin holds every answer
  CHECK(stale.status == 200);
  CHECK(stale.header("x-cache") == "STALE");
  CHECK((stale.body == body));
  *hold = false;
  CHECK(Eventually([&] { return origin.Count("movie") == before + 4; }));  // each slice revalidated
  CHECK(origin.LastHeader("movie", "if-none-match") == "\"v1\"");
  // Refreshed: fresh again (a request before a refresh lands revalidates once more).
  CHECK(Eventually([&] { return edge.Get("/movie").header("x-cache") == "HIT"; }));
}

TEST_CASE("a revalidation in the background that finds another version drops the object's slices") {
  FakeOrigin origin;
  const std::string v1 = Bytes(4 * kSlice, 24), v2 = Bytes(4 * kSlice, 25);
  origin.Set("movie", RangedObject(v1, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices + "cache.stale_while_revalidate = \"30s\"\n");
  CHECK(edge.Get("/movie").body == v1);
  REQUIRE(Eventually([&] { return edge.store->GetStats().entries == 4; }));
  edge.Advance(70);
  origin.Set("movie", RangedObject(v2, "\"v2\""));  // written, and no purge came
  // The revalidations started by this answer meet v2: not stored among v1's slices (it would
  // carry v1's segment tags, for a large object), and v1's slices go.
  const HttpResponse stale = edge.Get("/movie");
  CHECK(stale.header("x-cache") == "STALE");
  CHECK((stale.body == v1));
  // Each answer is all of one version; once the revalidations met v2, it is v2 whole.
  bool spliced = false;
  CHECK(Eventually([&] {
    const HttpResponse r = edge.Get("/movie");
    spliced = spliced || !(r.body == v1 || r.body == v2 || v1.starts_with(r.body) || v2.starts_with(r.body));
    return r.body == v2 && r.header("etag") == "\"v2\"";
  }));
  CHECK_FALSE(spliced);
  CHECK(SliceCounter(edge, "version_changed") >= 1);
}

TEST_CASE("an origin that fails while an answer goes slice by slice: stale slices within stale-if-error") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 23);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  CHECK(edge.Get("/movie").body == body);
  edge.Advance(120);  // stale past stale-while-revalidate, within stale-if-error
  CHECK(edge.Get("/movie", {"Range: bytes=0-9"}).status == 206);  // slice 0 fresh again
  origin.Set("movie", Busy());
  const HttpResponse whole = edge.Get("/movie");
  CHECK(whole.status == 200);
  CHECK((whole.body == body));  // slices 1-3 from their stale copies, not cut
}

TEST_CASE("an origin in error when an object's first slice is stale: answered from its stale slices") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 24);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  StoreThenAge(edge, body);
  Script failing = Busy();
  failing.headers = {{"Cache-Control", "max-age=60"}};  // storable: it must not replace them
  origin.Set("movie", failing);
  for (int i = 0; i < 2; ++i) {
    const HttpResponse whole = edge.Get("/movie");
    CHECK(whole.status == 200);
    CHECK(whole.header("x-cache") == "STALE");
    CHECK((whole.body == body));
  }
  const uint64_t at = 2 * kSlice + 5;
  const HttpResponse part = edge.Get("/movie", {"Range: bytes=" + std::to_string(at) + "-"});
  CHECK(part.status == 206);
  CHECK((part.body == body.substr(at)));
  // Past stale-if-error, the origin's error is the answer.
  edge.Advance(2 * 86400);
  CHECK(edge.Get("/movie").status == 503);  // and stored, with nothing else to answer for
  edge.Advance(120);
  // The origin back with another version: the stale slices are not sent among its bytes.
  const std::string v2 = Bytes(4 * kSlice, 25);
  origin.Set("movie", RangedObject(v2, "\"v2\""));
  const HttpResponse fresh = edge.Get("/movie");
  CHECK(fresh.header("x-cache") == "EXPIRED");
  CHECK((fresh.body == v2));
}

TEST_CASE("a stale first slice answers for a client whose own request meets an origin in error") {
  FakeOrigin origin;
  const std::string body = Bytes(4 * kSlice, 26);
  origin.Set("movie", RangedObject(body, "\"v1\""));
  Edge edge(origin.port(), kSmallSlices);
  StoreThenAge(edge, body);
  // The probe's answer may not be stored (private): the client asks for its own, which fails.
  Script private_answer = RangedObject(body, "\"v1\"");
  private_answer.headers = {{"Cache-Control", "private"}};
  origin.Set("movie", private_answer);
  origin.SetAfter("movie", origin.Count("movie") + 1, Busy());
  const HttpResponse whole = edge.Get("/movie");
  CHECK(whole.status == 200);
  CHECK(whole.header("x-cache") == "STALE");
  CHECK((whole.body == body));  // the error's body nowhere among the object's bytes
}

}  // namespace edge
