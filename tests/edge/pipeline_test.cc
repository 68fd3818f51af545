// The edge's request path end to end in one process: a real server, store and pipeline in front
// of an origin of our own that injects what Swift cannot produce on demand (delays, resets, 5xx).
#include "tests/edge/pipeline_fixture.h"

namespace edge {

TEST_CASE("a Swift large object's entry goes when one of its segments is written") {
  FakeOrigin origin;
  // A DLO: every object under segs/movie/ (the header is URL-encoded).
  origin.Set("dlo", Object("dlo v1", {{"X-Object-Manifest", "segs/movie%2F"}}));
  // An SLO: the segments its manifest lists, learnt from multipart-manifest=get.
  origin.Set("slo", Object("slo v1", {{"X-Static-Large-Object", "True"}}));
  origin.Set("slo?multipart-manifest=get",
             Object(R"([{"name": "/segs/part/1", "bytes": 3}, {"name": "/c/part-2", "bytes": 3}])"));
  Edge edge(origin.port());
  for (const std::string name : {"dlo", "slo"}) {
    CHECK(edge.Get("/" + name).header("x-cache") == "MISS");
    // The entry is committed once its fill ends, which may come just after the client's last byte.
    const cache::Key key{cache::KeyKind::kObject, "AUTH_test", "c", name, ""};
    REQUIRE(Eventually([&] { return edge.store->Lookup(key).has_value(); }));
    const HttpResponse hit = edge.Get("/" + name);
    CHECK(hit.header("x-cache") == "HIT");
    CHECK(hit.body == name + " v1");
  }
  CHECK(origin.Count("slo?multipart-manifest=get") == 1);
  // Writes elsewhere leave them.
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "segs", "music/1", false));
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "segs", "part/2", false));
  CHECK(edge.Get("/dlo").header("x-cache") == "HIT");
  CHECK(edge.Get("/slo").header("x-cache") == "HIT");
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "segs", "movie/0001", false));
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "part-2", false));
  origin.Set("dlo", Object("dlo v2", {{"X-Object-Manifest", "segs/movie%2F"}}));
  origin.Set("slo", Object("slo v2", {{"X-Static-Large-Object", "True"}}));
  for (const std::string name : {"dlo", "slo"}) {
    const HttpResponse again = edge.Get("/" + name);
    CHECK(again.header("x-cache") == "MISS");
    CHECK(again.body == name + " v2");
  }
  CHECK(origin.Count("dlo") == 2);
  CHECK(origin.Count("slo") == 2);
}

TEST_CASE("an SLO whose manifest cannot be read is relayed whole and never stored") {
  FakeOrigin origin;
  origin.Set("slo", Object(std::string(200 << 10, 's'), {{"X-Static-Large-Object", "True"}}));
  Edge edge(origin.port());
  for (int i = 0; i < 2; ++i) {
    const HttpResponse response = edge.Get("/slo");  // the manifest's GET is a 404
    CHECK(response.status == 200);
    CHECK(response.body.size() == 200 << 10);
    CHECK(response.header("x-cache") == "BYPASS");
  }
  CHECK(origin.Count("slo") == 4);  // twice the object, twice its manifest (by base name)
}

TEST_CASE("a miss is fetched once and stored, the next request is a hit with Age") {
  FakeOrigin origin;
  origin.Set("a.txt", Object("hello", {{"Content-Type", "text/plain"}}));
  Edge edge(origin.port());
  HttpResponse first = edge.Get("/a.txt");
  INFO(first.curl_error);
  CHECK(first.status == 200);
  CHECK(first.body == "hello");
  CHECK(first.header("x-cache") == "MISS");
  CHECK(first.header("content-type") == "text/plain");
  edge.Advance(3);
  HttpResponse second = edge.Get("/a.txt");
  CHECK(second.body == "hello");
  CHECK(second.header("x-cache") == "HIT");
  CHECK(second.header("age") == "3");
  CHECK(origin.Count("a.txt") == 1);
}

TEST_CASE("simultaneous misses on any worker share one origin fetch and all get the whole body") {
  FakeOrigin origin;
  Script big = Object(std::string(1 << 20, 'x'));
  auto held = Hold(big);
  origin.Set("big", big);
  Edge edge(origin.port());
  std::vector<HttpResponse> responses(32);
  std::vector<std::thread> clients;
  for (auto& response : responses) {
    clients.emplace_back([&] { response = edge.Get("/big"); });
  }
  // The origin answers once all 32 are at the edge, however slowly the threads start.
  CHECK(Eventually([&] { return edge.server->connections() == 32 && origin.Count("big") == 1; }));
  *held = false;
  for (auto& c : clients) c.join();
  for (const HttpResponse& r : responses) {
    CHECK(r.status == 200);
    CHECK(r.body.size() == size_t{1} << 20);
    CHECK(r.header("x-cache") == "MISS");
  }
  CHECK(origin.Count("big") == 1);
  CHECK(edge.Get("/big").header("x-cache") == "HIT");
}

TEST_CASE("a client that reads nothing does not stall the fetch for another client") {
  FakeOrigin origin;
  Script big = Object(std::string(8 << 20, 'y'));
  auto held = Hold(big);
  origin.Set("big", big);
  Edge edge(origin.port());
  // A raw client that sends its request and then does not read.
  const int stuck = ::socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;
  setsockopt(stuck, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(edge.server->port());
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  REQUIRE(::connect(stuck, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  const std::string request = "GET /big HTTP/1.1\r\nHost: t.test\r\n\r\n";
  REQUIRE(::write(stuck, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  REQUIRE(Eventually([&] { return origin.Count("big") == 1; }));  // the stuck client's fetch
  HttpResponse other;
  std::thread reader([&] { other = edge.Get("/big"); });
  CHECK(Eventually([&] { return edge.server->connections() == 2; }));
  *held = false;
  reader.join();
  CHECK(other.status == 200);
  CHECK(other.body.size() == size_t{8} << 20);
  CHECK(origin.Count("big") == 1);
  // The stuck client still gets all of it once it reads.
  size_t received = 0;
  char buffer[65536];
  timeval timeout{5, 0};
  setsockopt(stuck, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  while (received < (size_t{8} << 20)) {
    const ssize_t n = ::read(stuck, buffer, sizeof(buffer));
    if (n <= 0) break;
    received += static_cast<size_t>(n);
  }
  ::close(stuck);
  CHECK(received > (size_t{8} << 20));  // head + body
}

TEST_CASE("a response that may not be stored is relayed, and each client fetches it") {
  FakeOrigin origin;
  Script page = Object("for you only", {{"Cache-Control", "private"}});
  page.delay_ms = 100;
  origin.Set("page", page);
  Edge edge(origin.port());
  std::vector<HttpResponse> responses(4);
  std::vector<std::thread> clients;
  for (auto& response : responses) clients.emplace_back([&] { response = edge.Get("/page"); });
  for (auto& c : clients) c.join();
  for (const HttpResponse& r : responses) {
    CHECK(r.status == 200);
    CHECK(r.body == "for you only");
    CHECK(r.header("x-cache") == "BYPASS");
  }
  CHECK(origin.Count("page") >= 4);
  CHECK(edge.Get("/page").header("x-cache") == "BYPASS");
}

TEST_CASE("a request with credentials is never answered from the cache nor stored for others") {
  FakeOrigin origin;
  origin.Set("doc", Object("v1"));
  Edge edge(origin.port());
  HttpResponse with_token = edge.Get("/doc", {"X-Auth-Token: secret"});
  CHECK(with_token.header("x-cache") == "BYPASS");
  CHECK(origin.LastHeader("doc", "x-auth-token") == "secret");
  CHECK(edge.Get("/doc").header("x-cache") == "MISS");
  CHECK(edge.Get("/doc", {"X-Auth-Token: secret"}).header("x-cache") == "BYPASS");
  CHECK(edge.Get("/doc?temp_url_sig=abc&temp_url_expires=1").header("x-cache") == "BYPASS");
  // A signature is a signature however its name is spelled: Swift decodes the name.
  CHECK(edge.Get("/doc?temp%5Furl%5Fsig=abc&temp%5furl%5fexpires=1").header("x-cache") == "BYPASS");
  CHECK(edge.Get("/doc?temp_url_expires=1").header("x-cache") == "BYPASS");
  CHECK(origin.Count("doc") == 6);
}

TEST_CASE("path rules match the normalised path: no spelling of a bypassed path is cached") {
  FakeOrigin origin;
  origin.Set("private/x", Object("secret"));
  Edge edge(origin.port(), "[[tenant.cache.rule]]\npath = \"/private/*\"\nbypass = true\n");
  int fetches = 0;
  for (const char* spelling : {"/private/x", "//private/x", "/%70rivate/x", "/./private/x", "/private/x"}) {
    INFO(spelling);
    const HttpResponse r = edge.Get(spelling);
    CHECK(r.body == "secret");
    CHECK(r.header("x-cache") == "BYPASS");
    CHECK(origin.Count("private/x") == ++fetches);
  }
}

TEST_CASE("an absolute-form target's authority picks the tenant, whatever Host says") {
  FakeOrigin origin;
  origin.Set("x", Object("swift tenant"));
  origin.Set("/x", Object("http site"));
  Edge edge(origin.port());
  const std::string site = RawExchange(
      edge.server->port(), "GET HTTP://site.test/x HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n");
  CHECK(site.starts_with("HTTP/1.1 200 "));
  CHECK(site.ends_with("\r\n\r\nhttp site"));
  const std::string swift = RawExchange(
      edge.server->port(), "GET http://t.test/x HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n");
  CHECK(swift.ends_with("\r\n\r\nswift tenant"));
  // A Host or an authority that is not a plain host name is refused, not guessed at.
  CHECK(RawExchange(edge.server->port(),
                    "GET /x HTTP/1.1\r\nHost: t.test:site.test\r\nConnection: close\r\n\r\n")
            .starts_with("HTTP/1.1 400 "));
  CHECK(RawExchange(edge.server->port(), "GET /x HTTP/1.1\r\nHost: .t.test\r\nConnection: close\r\n\r\n")
            .starts_with("HTTP/1.1 400 "));
  CHECK(RawExchange(edge.server->port(),
                    "GET http://a..t.test/x HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n")
            .starts_with("HTTP/1.1 400 "));
}

TEST_CASE("fields named in Connection go neither to the origin nor to the client nor into the cache") {
  FakeOrigin origin;
  origin.Set("hop",
             Object("body", {{"Connection", "X-Origin-Hop"}, {"X-Origin-Hop", "secret"}, {"X-Kept", "1"}}));
  Edge edge(origin.port());
  const HttpResponse relayed =
      edge.Get("/hop", {"X-Auth-Token: t", "Connection: X-Client-Hop", "X-Client-Hop: 1"});
  CHECK(relayed.header("x-cache") == "BYPASS");
  CHECK(origin.LastHeader("hop", "x-client-hop").empty());
  CHECK(relayed.header("x-origin-hop").empty());
  CHECK(relayed.header("x-kept") == "1");
  const HttpResponse miss = edge.Get("/hop");
  CHECK(miss.header("x-cache") == "MISS");
  CHECK(miss.header("x-origin-hop").empty());
  const HttpResponse hit = edge.Get("/hop");
  CHECK(hit.header("x-cache") == "HIT");
  CHECK(hit.header("x-origin-hop").empty());
  CHECK(hit.header("x-kept") == "1");
  // An http site's shared fetch sends the client's negotiation fields, but not the hop-by-hop ones.
  origin.Set("/hop", Object("site body"));
  const HttpResponse site =
      HttpGet(edge.Url("/hop"), {"Host: site.test", "Connection: X-Client-Hop", "X-Client-Hop: 1"});
  CHECK(site.body == "site body");
  CHECK(origin.Count("/hop") == 1);
  CHECK(origin.LastHeader("/hop", "x-client-hop").empty());
}

TEST_CASE("an expired entry is revalidated with its ETag, a 304 refreshes it") {
  FakeOrigin origin;
  Script doc = Object("body v1", {{"Cache-Control", "max-age=10"}});
  doc.etag = "\"v1\"";
  origin.Set("doc", doc);
  Edge edge(origin.port());
  CHECK(edge.Get("/doc").header("x-cache") == "MISS");
  edge.Advance(20);
  HttpResponse revalidated = edge.Get("/doc");
  CHECK(revalidated.status == 200);
  CHECK(revalidated.body == "body v1");
  CHECK(revalidated.header("x-cache") == "REVALIDATED");
  CHECK(origin.LastHeader("doc", "if-none-match") == "\"v1\"");
  CHECK(edge.Get("/doc").header("x-cache") == "HIT");
  CHECK(origin.Count("doc") == 2);
}

TEST_CASE("without an ETag, revalidation uses If-Modified-Since, a changed object comes back EXPIRED") {
  FakeOrigin origin;
  origin.Set("doc", Object("old", {{"Cache-Control", "max-age=10"},
                                   {"Last-Modified", "Tue, 01 Sep 2026 10:00:00 GMT"}}));
  Edge edge(origin.port());
  CHECK(edge.Get("/doc").body == "old");
  origin.Set("doc", Object("new", {{"Cache-Control", "max-age=10"}}));
  edge.Advance(20);
  HttpResponse changed = edge.Get("/doc");
  CHECK(origin.LastHeader("doc", "if-modified-since") == "Tue, 01 Sep 2026 10:00:00 GMT");
  CHECK(origin.LastHeader("doc", "if-none-match").empty());
  CHECK(changed.body == "new");
  CHECK(changed.header("x-cache") == "EXPIRED");
}

TEST_CASE("a soft purge makes a fresh hit revalidate first: no stale window, and a 304 keeps the body") {
  FakeOrigin origin;
  Script doc = Object("body v1", {{"Cache-Control", "max-age=600"}});
  doc.etag = "\"v1\"";
  origin.Set("doc", doc);
  // Both stale windows are open (stale-if-error is 1h in these tenants): a soft purge closes them.
  Edge edge(origin.port(), "cache.stale_while_revalidate = \"60s\"\n");
  CHECK(edge.Get("/doc").header("x-cache") == "MISS");
  CHECK(edge.Get("/doc").header("x-cache") == "HIT");
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "doc", true));
  HttpResponse revalidated = edge.Get("/doc");
  CHECK(revalidated.status == 200);
  CHECK(revalidated.header("x-cache") == "REVALIDATED");  // not STALE: asked before it was served
  CHECK(revalidated.body == "body v1");                   // the 304 kept the stored body
  CHECK(origin.LastHeader("doc", "if-none-match") == "\"v1\"");
  CHECK(origin.Count("doc") == 2);
  CHECK(edge.Get("/doc").header("x-cache") == "HIT");  // the 304 made it fresh again
  CHECK(origin.Count("doc") == 2);

  // Soft-purged, then the origin fails: the purged version is not served within stale-if-error.
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "doc", true));
  Script failing;
  failing.status = 503;
  failing.body = "busy";
  origin.Set("doc", failing);
  HttpResponse failed = edge.Get("/doc");
  CHECK(failed.status == 503);
  CHECK(failed.body == "busy");
}

TEST_CASE("Surrogate-Key and Cache-Tag tags are stored per tenant, a tag purge reaches only its tenant") {
  FakeOrigin origin;
  // The same object name for both tenants ("/doc" for the http site, "doc" for the Swift one).
  const std::vector<std::pair<std::string, std::string>> tagged = {
      {"Cache-Control", "max-age=600"}, {"Surrogate-Key", "news  front"}, {"Cache-Tag", "red, blue"}};
  origin.Set("doc", Object("swift", tagged));
  origin.Set("/doc", Object("site", tagged));
  origin.Set("other", Object("untagged", {{"Cache-Control", "max-age=600"}}));
  Edge edge(origin.port());
  auto site = [&] { return HttpGet(edge.Url("/doc"), {"Host: site.test"}); };
  CHECK(edge.Get("/doc").header("x-cache") == "MISS");
  CHECK(edge.Get("/other").header("x-cache") == "MISS");
  CHECK(site().header("x-cache") == "MISS");
  CHECK(edge.Get("/doc").header("x-cache") == "HIT");
  CHECK(site().header("x-cache") == "HIT");

  // Another tenant's tag of the same name, and a bare tag, reach nothing of "t".
  edge.store->Apply(cache::Invalidation::Tag(purge::ScopedTag("site", "front"), false));
  edge.store->Apply(cache::Invalidation::Tag("front", false));
  CHECK(edge.Get("/doc").header("x-cache") == "HIT");
  CHECK(site().header("x-cache") == "MISS");  // the site's own entry went
  CHECK(site().header("x-cache") == "HIT");

  // Each tag of either header reaches the entry; untagged entries stay.
  for (const char* name : {"news", "front", "red", "blue"}) {
    const std::string tag = name;
    CAPTURE(tag);
    edge.store->Apply(cache::Invalidation::Tag(purge::ScopedTag("t", tag), false));
    CHECK(edge.Get("/doc").header("x-cache") == "MISS");
    CHECK(edge.Get("/doc").header("x-cache") == "HIT");
  }
  CHECK(edge.Get("/other").header("x-cache") == "HIT");
  CHECK(site().header("x-cache") == "HIT");
}

TEST_CASE("stale-while-revalidate answers at once and refreshes in the background") {
  FakeOrigin origin;
  Script doc = Object("v1", {{"Cache-Control", "max-age=10"}});
  doc.etag = "\"v1\"";
  origin.Set("doc", doc);
  Edge edge(origin.port(), "cache.stale_while_revalidate = \"60s\"\n");
  edge.Get("/doc");
  edge.Advance(15);
  HttpResponse stale = edge.Get("/doc");
  CHECK(stale.header("x-cache") == "STALE");
  CHECK(stale.body == "v1");
  CHECK(Eventually([&] { return origin.Count("doc") == 2; }));
  CHECK(Eventually([&] { return edge.Get("/doc").header("x-cache") == "HIT"; }));
}

TEST_CASE("an origin that fails serves the stale entry within stale-if-error, else a clear 5xx") {
  FakeOrigin origin;
  origin.Set("doc", Object("kept", {{"Cache-Control", "max-age=10"}}));
  Edge edge(origin.port());
  edge.Get("/doc");
  edge.Advance(20);
  Script failing;
  failing.status = 503;
  failing.body = "busy";
  origin.Set("doc", failing);
  HttpResponse stale = edge.Get("/doc");
  CHECK(stale.status == 200);
  CHECK(stale.body == "kept");
  CHECK(stale.header("x-cache") == "STALE");
  origin.Set("fresh-fail", failing);
  HttpResponse relayed = edge.Get("/fresh-fail");
  CHECK(relayed.status == 503);
  CHECK(relayed.body == "busy");

  // An origin that is not there at all: 502 with a reason in the client's terms, no address.
  Edge orphan(1);
  HttpResponse down = orphan.Get("/x");
  CHECK(down.status == 502);
  CHECK(down.body == "the origin server could not be reached\n");
  CHECK(down.body.find("127.0.0.1") == std::string::npos);
}

TEST_CASE("an origin that stalls is a 504, and stale-if-error running out is the origin's 5xx") {
  FakeOrigin origin;
  Script stalled = Object("never");
  auto held = Hold(stalled);  // never answered: the edge's stall timeout (1 s here) ends the fetch
  origin.Set("stalled", stalled);
  Edge edge(origin.port());
  HttpResponse timed_out = edge.Get("/stalled");
  CHECK(timed_out.status == 504);
  CHECK(timed_out.body.find("127.0.0.1") == std::string::npos);

  // cache.stale_if_error is 1h in these tenants: the entry serves an origin error until it ends.
  origin.Set("doc", Object("kept", {{"Cache-Control", "max-age=10"}}));
  edge.Get("/doc");
  Script failing;
  failing.status = 503;
  failing.body = "busy";
  origin.Set("doc", failing);
  edge.Advance(10 + 3600 - 1);
  CHECK(edge.Get("/doc").header("x-cache") == "STALE");
  edge.Advance(2);
  HttpResponse late = edge.Get("/doc");
  CHECK(late.status == 503);
  CHECK(late.body == "busy");
  *held = false;
}

TEST_CASE("PURGE goes to the purge daemon with the caller's credentials, without purge.api it is refused") {
  FakeOrigin origin;  // the purge daemon too: it answers POST /v1/purge
  Script accepted = Object("{\"job\": \"j1\"}");
  accepted.status = 202;
  origin.Set("/v1/purge", accepted);
  Edge edge(origin.port(), "", {}, {}, 16, "http://127.0.0.1:" + std::to_string(origin.port()));
  HttpResponse purged = HttpRequest("PURGE", edge.Url("/a.txt"), {"Host: t.test", "X-Auth-Token: tk"});
  CHECK(purged.status == 202);
  CHECK(purged.body == "{\"job\": \"j1\"}");
  CHECK(origin.Count("/v1/purge") == 1);
  CHECK(origin.LastHeader("/v1/purge", "x-auth-token") == "tk");
  CHECK(origin.Count("a.txt") == 0);  // the origin itself is not asked

  Edge refusing(origin.port());
  HttpResponse refused = HttpRequest("PURGE", refusing.Url("/a.txt"), {"Host: t.test", "X-Auth-Token: tk"});
  CHECK(refused.status == 501);
  CHECK(refused.body == "PURGE is not configured on this edge (purge.api)\n");
  CHECK(origin.Count("/v1/purge") == 1);
}

TEST_CASE("a response that sets a cookie is relayed to its client and never stored") {
  FakeOrigin origin;
  const std::vector<std::pair<std::string, std::string>> headers = {{"Cache-Control", "public, max-age=60"},
                                                                    {"Set-Cookie", "session=1"}};
  origin.Set("cookie", Object("yours", headers));
  origin.Set("/cookie", Object("yours", headers));
  Edge edge(origin.port());
  for (int i = 0; i < 2; ++i) {
    HttpResponse swift = edge.Get("/cookie");
    CHECK(swift.body == "yours");
    CHECK(swift.header("set-cookie") == "session=1");
    CHECK(swift.header("x-cache") == "BYPASS");
    HttpResponse site = HttpGet(edge.Url("/cookie"), {"Host: site.test"});
    CHECK(site.header("set-cookie") == "session=1");
    CHECK(site.header("x-cache") == "BYPASS");
  }
  CHECK(origin.Count("cookie") == 2);
  CHECK(origin.Count("/cookie") == 2);
  CHECK(edge.store->GetStats().entries == 0);
}

TEST_CASE("an origin reset mid-body truncates the response and stores nothing") {
  FakeOrigin origin;
  Script broken = Object(std::string(100000, 'z'));
  broken.reset_after = 1000;
  origin.Set("broken", broken);
  Edge edge(origin.port());
  HttpResponse first = edge.Get("/broken");
  CHECK(first.status == 0);  // curl saw a short body
  CHECK(Eventually([&] {
    return edge.metrics.Render(edge.store->GetStats(), 0, 0)
               .find("edge_responses_cut_total{cause=\"origin\"} 1") != std::string::npos;
  }));
  origin.Set("broken", Object("whole"));
  HttpResponse second = edge.Get("/broken");
  CHECK(second.body == "whole");
  CHECK(second.header("x-cache") == "MISS");
}

TEST_CASE("an invalidation during a fill fences it: the waiting client gets the body, the cache does not") {
  FakeOrigin origin;
  Script slow = Object("old version");
  auto held = Hold(slow);
  origin.Set("obj", slow);
  Edge edge(origin.port());
  HttpResponse during;
  std::thread client([&] { during = edge.Get("/obj"); });
  REQUIRE(Eventually([&] { return origin.Count("obj") == 1; }));  // the fill is under way
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "obj", false));
  *held = false;
  client.join();
  CHECK(during.body == "old version");
  CHECK(edge.Get("/obj").header("x-cache") == "MISS");
}

TEST_CASE("a client arriving after a purge does not join the fetch of the old version") {
  FakeOrigin origin;
  Script old_version = Object("old version");
  auto held = Hold(old_version);
  origin.Set("obj", old_version);
  Edge edge(origin.port());
  HttpResponse before;
  std::thread first([&] { before = edge.Get("/obj"); });
  REQUIRE(Eventually([&] { return origin.Count("obj") == 1; }));  // the old version's fetch is under way
  edge.store->Apply(cache::Invalidation::Object("AUTH_test", "c", "obj", false));
  origin.Set("obj", Object("new version"));
  HttpResponse after = edge.Get("/obj");  // answered while the old version is still held
  *held = false;
  first.join();
  CHECK(before.body == "old version");
  CHECK(after.body == "new version");
  CHECK(origin.Count("obj") == 2);
}

TEST_CASE("a long download to a slow reader is not cut by the send or idle timeouts") {
  FakeOrigin origin;
  origin.Set("big", Object(std::string(3 << 20, 'b')));
  http::ServerOptions options;
  options.send_timeout = absl::Seconds(1);
  options.idle_timeout = absl::Seconds(1);
  Edge edge(origin.port(), "", {}, options);
  CHECK(edge.Get("/big").status == 200);  // now a hit
  const int fd = Connect(edge.server->port(), 64 * 1024);
  const std::string request = "GET /big HTTP/1.1\r\nHost: t.test\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  // About 1.5 MiB a second: the download takes twice the timeouts.
  size_t received = 0;
  char buffer[16384];
  const auto start = std::chrono::steady_clock::now();
  const size_t expected = (size_t{3} << 20) + 60;  // the body and (more than) 60 bytes of head
  while (received < expected) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    received += static_cast<size_t>(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::close(fd);
  CHECK(received >= expected);
  CHECK(std::chrono::steady_clock::now() - start > std::chrono::seconds(1));
}

TEST_CASE("ranges, HEAD and conditionals on misses and hits") {
  FakeOrigin origin;
  Script doc = Object("0123456789abcdef");
  doc.etag = "\"e1\"";
  origin.Set("doc", doc);
  Edge edge(origin.port());
  HttpResponse head = HttpRequest("HEAD", edge.Url("/doc"), {"Host: t.test"});
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == "16");
  CHECK(head.body.empty());
  HttpResponse range = edge.Get("/doc", {"Range: bytes=2-5"});
  CHECK(range.status == 206);
  CHECK(range.body == "2345");
  CHECK(range.header("content-range") == "bytes 2-5/16");
  CHECK(edge.Get("/doc", {"Range: bytes=-3"}).body == "def");
  CHECK(edge.Get("/doc", {"Range: bytes=99-"}).status == 416);
  CHECK(edge.Get("/doc", {"Range: bytes=2-5", "If-Range: \"other\""}).status == 200);
  CHECK(edge.Get("/doc", {"If-None-Match: \"e1\""}).status == 304);
  CHECK(edge.Get("/doc", {"If-Match: \"nope\""}).status == 412);
  CHECK(origin.Count("doc") == 1);

  origin.Set("fresh", doc);
  HttpResponse range_miss = edge.Get("/fresh", {"Range: bytes=10-"});
  CHECK(range_miss.status == 206);
  CHECK(range_miss.body == "abcdef");
  CHECK(range_miss.header("x-cache") == "MISS");
}

TEST_CASE("404s are cached for the negative TTL, unknown hosts and bad paths get a 4xx") {
  FakeOrigin origin;
  Edge edge(origin.port(), "cache.negative_ttl = \"10s\"\n");
  CHECK(edge.Get("/missing").status == 404);
  CHECK(edge.Get("/missing").header("x-cache") == "HIT");
  edge.Advance(15);
  CHECK(edge.Get("/missing").header("x-cache") == "EXPIRED");
  CHECK(origin.Count("missing") == 2);
  CHECK(HttpGet(edge.Url("/x"), {"Host: other.test"}).status == 421);
  CHECK(edge.Get("/a/%2e%2e/%2e%2e/etc/passwd").status == 400);
  CHECK(HttpRequest("DELETE", edge.Url("/x"), {"Host: t.test"}).status == 405);
}

TEST_CASE("a failing zone costs no client request: fills fall back to relaying, and the zone is taken out") {
  FakeOrigin origin;
  origin.Set("a", Object("fine"));
  std::atomic<bool> broken{true};
  Edge edge(origin.port(), "",
            [&](std::string_view operation, int) { return broken && operation == "open" ? EIO : 0; });
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = edge.Get("/a");
    CHECK(r.status == 200);
    CHECK(r.body == "fine");
  }
  CHECK_FALSE(edge.store->GetStats().zones[0].healthy);
  broken = false;
  edge.store->Maintain();
  CHECK(edge.store->GetStats().zones[0].healthy);
  edge.Get("/a");
  CHECK(edge.Get("/a").header("x-cache") == "HIT");
}

TEST_CASE("a fill whose zone fails mid-body still gives every client the whole body, uncached") {
  for (const int error : {ENOSPC, EIO}) {
    CAPTURE(error);
    FakeOrigin origin;
    // 24 MiB, more than the spill may run ahead of its slowest client (8 MiB).
    std::string body(24 << 20, '\0');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i / 4099) % 26);
    Script big = Object(body);
    big.delay_ms = 200;  // every client joins the one fetch
    origin.Set("big", big);
    std::atomic<int> writes{0};
    Edge edge(origin.port(), "", [&](std::string_view operation, int) {
      return operation == "write" && ++writes > 20 ? error : 0;  // a few hundred KiB in
    });
    // A client that reads nothing at first: the origin waits for it rather than memory growing.
    const int slow = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(edge.server->port());
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    REQUIRE(::connect(slow, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    const std::string request = "GET /big HTTP/1.1\r\nHost: t.test\r\n\r\n";
    REQUIRE(::write(slow, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    std::vector<HttpResponse> responses(4);
    std::vector<std::thread> clients;
    for (auto& response : responses) clients.emplace_back([&] { response = edge.Get("/big"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(
        1500));  // past the origin stall timeout (1 s): a paused origin is not stalled
    std::string slow_received;
    char buffer[65536];
    timeval timeout{10, 0};
    setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    while (slow_received.size() < body.size() || slow_received.find("\r\n\r\n") == std::string::npos ||
           slow_received.size() - slow_received.find("\r\n\r\n") - 4 < body.size()) {
      const ssize_t n = ::read(slow, buffer, sizeof(buffer));
      if (n <= 0) break;
      slow_received.append(buffer, static_cast<size_t>(n));
    }
    ::close(slow);
    for (auto& c : clients) c.join();
    for (const HttpResponse& r : responses) {
      CHECK(r.status == 200);
      CHECK(r.body.size() == body.size());
      CHECK(r.body == body);
    }
    const size_t head_end = slow_received.find("\r\n\r\n");
    REQUIRE(head_end != std::string::npos);
    CHECK(slow_received.substr(head_end + 4) == body);
    CHECK(origin.Count("big") == 1);
    const std::string text = edge.metrics.Render(edge.store->GetStats(), 0, 0);
    CHECK(text.find("edge_fills_spilled_total 1\n") != std::string::npos);
    CHECK(text.find("edge_responses_cut_total{cause=\"zone\"} 0") != std::string::npos);
    CHECK(text.find("edge_responses_cut_total{cause=\"origin\"} 0") != std::string::npos);
    // Not stored: the next request fetches again.
    writes = -1000000;
    CHECK(edge.Get("/big").header("x-cache") == "MISS");
  }
}

TEST_CASE("an http site that varies gets one entry per variant, and nobody another's") {
  FakeOrigin origin;
  Script page = Object("page");
  page.vary_on = "Accept-Language";
  auto held = Hold(page);
  origin.Set("/page", page);
  Edge edge(origin.port());
  auto get = [&](std::string language) {
    std::vector<std::string> headers = {"Host: site.test"};
    if (!language.empty()) headers.push_back("Accept-Language: " + language);
    return HttpGet(edge.Url("/page"), headers);
  };
  // Simultaneous requests in two languages: each gets its own, though they met on one fetch.
  HttpResponse fr, de;
  std::thread a([&] { fr = get("fr"); });
  REQUIRE(Eventually([&] { return origin.Count("/page") == 1; }));
  std::thread b([&] { de = get("de"); });
  CHECK(Eventually([&] { return edge.server->connections() == 2; }));
  *held = false;
  a.join();
  b.join();
  CHECK(fr.body == "page-fr");
  CHECK(de.body == "page-de");
  // They met: the second asked the origin for itself only once the first had its answer.
  CHECK(origin.AnsweredBefore("/page") == std::vector<int>{0, 1});
  CHECK(get("fr").header("x-cache") == "HIT");
  CHECK(get("fr").body == "page-fr");
  HttpResponse de_again = get("de");
  CHECK(de_again.body == "page-de");
  CHECK(get("de").header("x-cache") == "HIT");
  CHECK(get("").body == "page-");
  // Vary: * is never shared; nor is an answer to a request with cookies.
  Script star = Object("star", {{"Vary", "*"}});
  origin.Set("/star", star);
  CHECK(HttpGet(edge.Url("/star"), {"Host: site.test"}).header("x-cache") == "BYPASS");
  CHECK(HttpGet(edge.Url("/star"), {"Host: site.test"}).header("x-cache") == "BYPASS");
  origin.Set("/private", Object("mine"));
  CHECK(HttpGet(edge.Url("/private"), {"Host: site.test", "Cookie: session=1"}).header("x-cache") ==
        "BYPASS");
  CHECK(HttpGet(edge.Url("/private"), {"Host: site.test"}).header("x-cache") == "MISS");
}

TEST_CASE("an http site's answer to Authorization is shared only when it allows (RFC 9111 3.5)") {
  FakeOrigin origin;
  Edge edge(origin.port());
  auto get = [&](const std::string& path, const std::string& authorization) {
    std::vector<std::string> headers = {"Host: site.test"};
    if (!authorization.empty()) headers.push_back("Authorization: " + authorization);
    return HttpGet(edge.Url(path), headers);
  };
  Script shared = Object("shared", {{"Cache-Control", "public, max-age=60"}});
  shared.echo = "Authorization";
  origin.Set("/shared", shared);
  HttpResponse first = get("/shared", "Bearer a");
  CHECK(first.header("x-cache") == "MISS");
  CHECK(first.body == "shared-Bearer a");
  CHECK(origin.LastHeader("/shared", "authorization") == "Bearer a");  // the leader's, sent on
  CHECK(get("/shared", "").header("x-cache") == "HIT");
  CHECK(get("/shared", "Bearer b").body == "shared-Bearer a");
  CHECK(origin.Count("/shared") == 1);

  // Not shareable: the leader alone gets it; a client waiting on the same fetch asks for itself.
  Script mine = Object("mine", {{"Cache-Control", "max-age=60"}});
  mine.echo = "Authorization";
  auto held = Hold(mine);
  origin.Set("/mine", mine);
  HttpResponse leader, other;
  std::thread a([&] { leader = get("/mine", "Bearer a"); });
  REQUIRE(Eventually([&] { return origin.Count("/mine") == 1; }));
  std::thread b([&] { other = get("/mine", ""); });
  CHECK(Eventually([&] { return edge.server->connections() == 2; }));
  *held = false;
  a.join();
  b.join();
  CHECK(origin.AnsweredBefore("/mine") == std::vector<int>{0, 1});  // the other waited on the leader's
  CHECK(leader.body == "mine-Bearer a");
  CHECK(leader.header("x-cache") == "BYPASS");
  CHECK(other.body == "mine-");
  CHECK(origin.Count("/mine") == 2);
  CHECK(get("/mine", "").body == "mine-");  // the anonymous answer was stored, never the other
  CHECK(get("/mine", "").header("x-cache") == "HIT");

  // Swift tenants: Authorization is a credential, relayed every time.
  origin.Set("doc", Object("v1", {{"Cache-Control", "public, max-age=60"}}));
  CHECK(edge.Get("/doc", {"Authorization: Bearer a"}).header("x-cache") == "BYPASS");
  CHECK(edge.Get("/doc", {"Authorization: Bearer a"}).header("x-cache") == "BYPASS");
  CHECK(origin.Count("doc") == 2);
}

TEST_CASE("an http site's Vary lines are combined, 401 and 403 are never stored") {
  FakeOrigin origin;
  Edge edge(origin.port());
  auto get = [&](const std::string& path) { return HttpGet(edge.Url(path), {"Host: site.test"}); };
  origin.Set("/split", Object("split", {{"Vary", ","}, {"Vary", "*"}, {"Cache-Control", "max-age=60"}}));
  CHECK(get("/split").header("x-cache") == "BYPASS");
  CHECK(get("/split").header("x-cache") == "BYPASS");
  Script denied = Object("no", {{"Cache-Control", "public, max-age=60"}});
  denied.status = 401;
  origin.Set("/denied", denied);
  CHECK(get("/denied").header("x-cache") == "BYPASS");
  CHECK(get("/denied").header("x-cache") == "BYPASS");
  CHECK(origin.Count("/denied") == 2);
  Script error = Object("down", {{"Cache-Control", "max-age=60"}});
  error.status = 503;
  origin.Set("/error", error);
  CHECK(get("/error").header("x-cache") == "MISS");  // explicit freshness: stored for it
  CHECK(get("/error").header("x-cache") == "HIT");
  // ... but it does not replace an entry that stale-if-error may still serve.
  origin.Set("/good", Object("good", {{"Cache-Control", "max-age=1"}}));
  CHECK(get("/good").header("x-cache") == "MISS");
  edge.Advance(5);
  error.body = "down";
  origin.Set("/good", error);
  HttpResponse stale = get("/good");
  CHECK(stale.body == "good");
  CHECK(stale.header("x-cache") == "STALE");
}

TEST_CASE("metrics count requests per tenant and cache outcome") {
  FakeOrigin origin;
  origin.Set("a", Object("x"));
  Edge edge(origin.port());
  edge.Get("/a");
  edge.Get("/a");
  const std::string text = edge.metrics.Render(edge.store->GetStats(), 0, 0);
  CHECK(text.find("edge_requests_total{tenant=\"t\"} 2") != std::string::npos);
  CHECK(text.find("edge_cache_responses_total{tenant=\"t\",cache=\"HIT\"} 1") != std::string::npos);
  CHECK(text.find("edge_cache_responses_total{tenant=\"t\",cache=\"MISS\"} 1") != std::string::npos);
  CHECK(text.find("edge_origin_latency_seconds_count 1") != std::string::npos);
}

TEST_CASE("equal account and container names on two Swift clusters never share entries") {
  FakeOrigin east, west;
  east.Set("x", Object("from east"));
  west.Set("x", Object("from west"));
  Edge edge(east.port(),
            "origin.cluster = \"east\"\n[[tenant]]\nname = \"u\"\ndomains = [\"u.test\"]\n"
            "origin.url = \"http://127.0.0.1:" +
                std::to_string(west.port()) +
                "\"\norigin.account = \"AUTH_test\"\norigin.container = \"c\"\n"
                "origin.cluster = \"west\"\n");
  for (int round = 0; round < 2; ++round) {
    CHECK(edge.Get("/x").body == "from east");
    CHECK(HttpGet(edge.Url("/x"), {"Host: u.test"}).body == "from west");
  }
  CHECK(HttpGet(edge.Url("/x"), {"Host: u.test"}).header("x-cache") == "HIT");
  CHECK(east.Count("x") == 1);
  CHECK(west.Count("x") == 1);
}

TEST_CASE("logging in through the Swift API host hands out the edge's address, never Swift's") {
  FakeOrigin origin;
  const std::string swift = "http://127.0.0.1:" + std::to_string(origin.port());
  origin.Set("/auth/v1.0",
             Object("", {{"X-Storage-Url", swift + "/v1/AUTH_test"}, {"X-Auth-Token", "AUTH_tk1"}}));
  Edge edge(origin.port(),
            "[[tenant]]\nname = \"api\"\ndomains = [\"api.test\"]\norigin.kind = \"swift-api\"\n"
            "origin.url = \"" +
                swift + "\"\n");
  const HttpResponse auth =
      HttpGet(edge.Url("/auth/v1.0"), {"Host: api.test:8091", "X-Auth-User: test:tester"});
  CHECK(auth.status == 200);
  CHECK(auth.header("x-storage-url") == "http://api.test:8091/v1/AUTH_test");
  CHECK(auth.header("x-auth-token") == "AUTH_tk1");
  CHECK(auth.header("x-cache") == "BYPASS");
}

// Issue 9: ranges and conditionals answered as Swift does and RFC 9110 says.

TEST_CASE("Swift's unquoted ETag matches a client's quoted copy in If-None-Match, If-Match and If-Range") {
  FakeOrigin origin;
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  Script doc = Object("0123456789abcdef", {{"Etag", md5}});  // as Swift sends it
  origin.Set("doc", doc);
  Edge edge(origin.port());
  for (const char* state : {"MISS", "HIT"}) {
    INFO(state);
    HttpResponse first = edge.Get("/doc");
    CHECK(first.header("etag") == md5);  // sent on exactly as the origin sent it
    for (const std::string& tag : {"\"" + md5 + "\"", md5}) {
      INFO(tag);
      CHECK(edge.Get("/doc", {"If-None-Match: " + tag}).status == 304);
      CHECK(edge.Get("/doc", {"If-Match: " + tag}).status == 200);
      HttpResponse resumed = edge.Get("/doc", {"Range: bytes=10-", "If-Range: " + tag});
      CHECK(resumed.status == 206);
      CHECK(resumed.body == "abcdef");
    }
    CHECK(edge.Get("/doc", {"If-Match: \"00000000000000000000000000000000\""}).status == 412);
    CHECK(edge.Get("/doc", {"Range: bytes=10-", "If-Range: \"0000\""}).status == 200);
  }
  // A large object's ETag comes quoted: both forms match it too.
  origin.Set("slo", Object("large", {{"Etag", "\"" + md5 + "-2\""}}));
  CHECK(edge.Get("/slo").status == 200);
  CHECK(edge.Get("/slo", {"If-None-Match: \"" + md5 + "-2\""}).status == 304);
  CHECK(edge.Get("/slo", {"If-None-Match: " + md5 + "-2"}).status == 304);
  CHECK(origin.Count("doc") == 1);
}

TEST_CASE("several ranges get one 206 multipart/byteranges from either tier, past the cap the whole body") {
  FakeOrigin origin;
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  origin.Set("big", Object(big, {{"Content-Type", "application/octet-stream"}}));
  origin.Set("small", Object("0123456789abcdef", {{"Content-Type", "text/plain"}}));
  Edge edge(origin.port(), "", {}, {}, 3);
  REQUIRE(edge.Get("/big").status == 200);
  REQUIRE(edge.Get("/small").status == 200);
  struct Case {
    std::string path, range;
    std::vector<std::pair<std::string, std::string>> parts;  // none: not multipart
  };
  const Case cases[] = {
      {"/big", "bytes=0-1,5-6", {{"bytes 0-1/1048576", "ab"}, {"bytes 5-6/1048576", "fg"}}},
      {"/big",
       "bytes=1048000-1048575,0-99999",
       {{"bytes 1048000-1048575/1048576", big.substr(1048000)},
        {"bytes 0-99999/1048576", big.substr(0, 100000)}}},
      {"/small",
       "bytes=0-1,5-6,-2",
       {{"bytes 0-1/16", "01"}, {"bytes 5-6/16", "56"}, {"bytes 14-15/16", "ef"}}},
  };
  for (const Case& c : cases) {
    INFO(c.path, " ", c.range);
    HttpResponse r = edge.Get(c.path, {"Range: " + c.range});
    CHECK(r.status == 206);
    CHECK(r.header("x-cache") == "HIT");
    CHECK(r.header("content-range").empty());
    CHECK(r.header("content-length") == std::to_string(r.body.size()));
    CHECK(Parts(r) == c.parts);
  }
  HttpResponse small = edge.Get("/small", {"Range: bytes=0-1"});
  CHECK(small.body.find("Content-Type: text/plain") == std::string::npos);
  CHECK(Parts(edge.Get("/small", {"Range: bytes=0-1,5-6"})).size() == 2);
  CHECK(edge.Get("/small", {"Range: bytes=0-1,5-6"}).body.find("Content-Type: text/plain\r\n") !=
        std::string::npos);  // each part says its type
  // Overlapping and adjacent ranges are coalesced: one range left is a plain 206.
  HttpResponse coalesced = edge.Get("/big", {"Range: bytes=0-9,5-14,15-19"});
  CHECK(coalesced.status == 206);
  CHECK(coalesced.header("content-range") == "bytes 0-19/1048576");
  CHECK(coalesced.body == big.substr(0, 20));
  // Past the cap (3 here): the whole body, as nginx's max_ranges.
  HttpResponse capped = edge.Get("/big", {"Range: bytes=0-0,2-2,4-4,6-6"});
  CHECK(capped.status == 200);
  CHECK(capped.body.size() == big.size());
  CHECK(edge.Get("/small", {"Range: bytes=0-1,5-6", "If-Range: \"other\""}).status == 200);
  CHECK(edge.Get("/small", {"Range: bytes=0-1,50-60"}).header("content-range") == "bytes 0-1/16");
  CHECK(edge.Get("/small", {"Range: bytes=50-60,70-"}).status == 416);
  CHECK(origin.Count("big") == 1);
}

TEST_CASE("HEAD with a Range is answered 200 with the whole length, as Swift does") {
  FakeOrigin origin;
  origin.Set("doc", Object("0123456789abcdef"));
  Edge edge(origin.port());
  for (const char* state : {"MISS", "HIT"}) {
    INFO(state);
    HttpResponse head = HttpRequest("HEAD", edge.Url("/doc"), {"Host: t.test", "Range: bytes=2-5"});
    CHECK(head.status == 200);
    CHECK(head.header("x-cache") == state);
    CHECK(head.header("content-length") == "16");
    CHECK(head.header("content-range").empty());
  }
  CHECK(HttpRequest("HEAD", edge.Url("/doc"), {"Host: t.test", "Range: bytes=0-1,5-6"}).status == 200);
  CHECK(HttpRequest("HEAD", edge.Url("/doc"), {"Host: t.test", "Range: bytes=99-"}).status == 200);
}

TEST_CASE("a 304 carries the Content-Location, Date, ETag, Vary, Cache-Control and Expires a 200 has") {
  FakeOrigin origin;
  Script doc = Object("body", {{"Content-Type", "text/plain"},
                               {"Content-Location", "/doc.en"},
                               {"Cache-Control", "max-age=600"},
                               {"Expires", "Thu, 01 Jan 2099 00:00:00 GMT"},
                               {"Vary", "Accept-Encoding"}});
  doc.etag = "\"e1\"";
  origin.Set("doc", doc);
  Edge edge(origin.port());
  const HttpResponse whole = edge.Get("/doc");
  REQUIRE(whole.status == 200);
  CHECK_FALSE(whole.header("date").empty());  // the origin sent none: the edge adds the entry's
  edge.Advance(2);
  for (const HttpResponse& not_modified :
       {edge.Get("/doc", {"If-None-Match: \"e1\""}), edge.Get("/doc", {"If-None-Match: \"e1\""})}) {
    REQUIRE(not_modified.status == 304);
    for (const char* name : {"content-location", "date", "etag", "vary", "cache-control", "expires"}) {
      INFO(name);
      CHECK(not_modified.header(name) == whole.header(name));
    }
    CHECK(not_modified.header("content-type").empty());
    CHECK(not_modified.header("age") == "2");
  }
}

TEST_CASE("If-Modified-Since on a fresh entry without Last-Modified is answered from its Date") {
  FakeOrigin origin;
  const std::string date = vhost::FormatHttpDate(absl::Now());
  const std::string day_before = vhost::FormatHttpDate(absl::Now() - absl::Hours(24));
  origin.Set("doc", Object("body", {{"Date", date}, {"Cache-Control", "max-age=600"}}));
  origin.Set("undated", Object("body", {{"Cache-Control", "max-age=600"}}));
  Edge edge(origin.port());
  for (const char* state : {"MISS", "HIT"}) {
    INFO(state);
    CHECK(edge.Get("/doc", {"If-Modified-Since: " + date}).status == 304);
    CHECK(edge.Get("/doc", {"If-Modified-Since: " + day_before}).status == 200);
  }
  // No Date from the origin either: the edge's own for the entry (when it was made) counts.
  const std::string later = vhost::FormatHttpDate(absl::Now() + absl::Hours(1));
  const std::string earlier = vhost::FormatHttpDate(absl::Now() - absl::Hours(1));
  CHECK(edge.Get("/undated", {"If-Modified-Since: " + later}).status == 304);
  CHECK(edge.Get("/undated", {"If-Modified-Since: " + earlier}).status == 200);
  CHECK(origin.Count("doc") == 1);
}

TEST_CASE("an http site that answers 206 has it relayed to the client and never stored as the object") {
  FakeOrigin origin;
  Script part = Object("01234", {{"Content-Range", "bytes 0-4/10"}});
  part.status = 206;
  auto held = Hold(part);
  origin.Set("/part", part);
  Edge edge(origin.port());
  auto get = [&](std::vector<std::string> headers) {
    headers.push_back("Host: site.test");
    return HttpGet(edge.Url("/part"), headers);
  };
  // Two clients meet on one fetch: neither gets the part as the whole object.
  HttpResponse ranged, plain;
  std::thread a([&] { ranged = get({"Range: bytes=0-4"}); });
  REQUIRE(Eventually([&] { return origin.Count("/part") == 1; }));
  std::thread b([&] { plain = get({}); });
  CHECK(Eventually([&] { return edge.server->connections() == 2; }));
  *held = false;
  a.join();
  b.join();
  for (const HttpResponse& r : {ranged, plain}) {
    CHECK(r.status == 206);
    CHECK(r.body == "01234");
    CHECK(r.header("content-range") == "bytes 0-4/10");
    CHECK(r.header("x-cache") == "BYPASS");
  }
  CHECK(get({"Range: bytes=0-4"}).header("x-cache") == "BYPASS");  // nothing was stored
  // The edge's first request (for the range it probes an object with) was answered with another
  // range: each client then asked for its own, after it. Twice for the last one.
  CHECK(origin.Count("/part") == 5);
  const std::vector<int> before = origin.AnsweredBefore("/part");
  REQUIRE(before.size() == 5);
  CHECK(before[0] == 0);
  CHECK(before[1] >= 1);
  CHECK(before[2] >= 1);
  const std::string text = edge.metrics.Render(edge.store->GetStats(), 0, 0);
  CHECK(text.find("edge_requests_total{tenant=\"site\"} 3") != std::string::npos);  // all logged
}

TEST_CASE("interim 1xx responses from the origin reach HTTP/1.1 clients and are never stored") {
  FakeOrigin origin;
  for (int status : {100, 102, 103}) {
    Script hinted = Object("page", {{"Cache-Control", "max-age=60"}});
    hinted.interim = status;
    origin.Set("/hinted" + std::to_string(status), hinted);
  }
  Edge edge(origin.port());
  for (int status : {100, 102, 103}) {
    INFO(status);
    const std::string path = "/hinted" + std::to_string(status);
    // A miss: the interim response, its hop-by-hop fields left out, then the final one.
    const std::string miss = RawExchange(
        edge.server->port(), "GET " + path + " HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n");
    const std::string interim = "HTTP/1.1 " + std::to_string(status) + " " +
                                std::string(http::ReasonPhrase(status)) +
                                "\r\nLink: </style.css>; rel=preload\r\n\r\n";
    CHECK(miss.rfind(interim + "HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(miss.find("x-hop") == std::string::npos);
    CHECK(miss.find("Link:", interim.size()) == std::string::npos);  // not in the final head
    CHECK(miss.find("X-Cache: MISS") != std::string::npos);
    // The stored entry holds neither the interim response nor its fields.
    const std::string hit = RawExchange(
        edge.server->port(), "GET " + path + " HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n");
    CHECK(hit.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(hit.find("Link:") == std::string::npos);
    CHECK(hit.find("X-Cache: HIT") != std::string::npos);
  }
  // Relayed (not shared), and to an HTTP/1.0 client, which cannot take one (RFC 9110 15.2).
  Script relayed = Object("mine", {{"Cache-Control", "private"}});
  relayed.interim = 103;
  origin.Set("/relayed", relayed);
  const std::string relayed_answer = RawExchange(
      edge.server->port(), "GET /relayed HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n");
  CHECK(relayed_answer.rfind("HTTP/1.1 103 Early Hints\r\n", 0) == 0);
  CHECK(relayed_answer.find("X-Cache: BYPASS") != std::string::npos);
  const std::string old_client =
      RawExchange(edge.server->port(), "GET /relayed HTTP/1.0\r\nHost: site.test\r\n\r\n");
  CHECK(old_client.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

// Issue 10: read-your-writes, in process, against a real Redis: the edge that proxies a write
// puts its plan in the purge log and holds the 2xx until the other edges applied it.
namespace {

struct Bus {
  explicit Bus(Edge& edge) {
    bus::ConfirmerOptions confirming;
    confirming.redis_host = "127.0.0.1";
    confirming.redis_port = redis.port();
    confirming.margin = absl::Milliseconds(100);
    confirmer = std::make_unique<bus::Confirmer>(confirming);
    PublisherOptions publishing;
    publishing.node_id = "test-edge";
    publishing.redis_host = "127.0.0.1";
    publishing.redis_port = redis.port();
    publishing.spool_path = edge.dir / "spool";
    publisher = std::move(*WriteEventPublisher::Start(publishing));
    edge.pipeline->SetBus(confirmer.get(), publisher.get());
    // This edge's own subscriber, and another edge's (its own store).
    cache::StoreOptions other_options;
    other_options.zones = {{edge.dir / "other-zone", 16 << 20}};
    other_store = std::move(*cache::Store::Open(other_options, [] { return absl::Now(); }));
    subscribers.push_back(Subscribe("test-edge", *edge.store, edge.pipeline->lease(), edge.dir / "cursor"));
    subscribers.push_back(Subscribe("other-edge", *other_store, other_lease, edge.dir / "other-cursor"));
  }
  std::unique_ptr<PurgeSubscriber> Subscribe(const std::string& node, cache::Store& store, BusLease& lease,
                                             const std::string& cursor) {
    SubscriberOptions options;
    options.node_id = node;
    options.redis_host = "127.0.0.1";
    options.redis_port = redis.port();
    options.cursor_path = cursor;
    options.lease = absl::Milliseconds(400);
    options.settle = absl::Milliseconds(100);
    auto subscriber = std::make_unique<PurgeSubscriber>(options, store, lease, [](bool) {});
    subscriber->Start();
    return subscriber;
  }

  testing_support::RedisServer redis;
  std::unique_ptr<bus::Confirmer> confirmer;
  std::unique_ptr<WriteEventPublisher> publisher;
  std::unique_ptr<cache::Store> other_store;
  BusLease other_lease;
  std::vector<std::unique_ptr<PurgeSubscriber>> subscribers;
};

const std::string kApiTenant =
    "[[tenant]]\nname = \"api\"\ndomains = [\"api.test\"]\norigin.kind = \"swift-api\"\norigin.url = \"";

}  // namespace

TEST_CASE("a write's 2xx waits until the other edges applied its purge, and says how many did") {
  FakeOrigin origin;
  origin.Set("o", Object("v1"));
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  Bus bus(edge);
  REQUIRE(Eventually([&] { return edge.pipeline->trusted() && bus.other_lease.trusted(); }));
  CHECK(edge.Get("/o").header("x-cache") == "MISS");
  CHECK(edge.Get("/o").header("x-cache") == "HIT");
  // The other edge holds the old version too.
  cache::EntryMetadata meta;
  meta.fresh_until = absl::ToUnixSeconds(absl::Now()) + 600;
  const cache::Key key{cache::KeyKind::kObject, "AUTH_test", "c", "o", ""};
  auto fill = bus.other_store->BeginFill(key, meta, 2, bus.other_store->FenceToken());
  REQUIRE(fill.ok());
  REQUIRE((*fill)->Append("v1").ok());
  REQUIRE((*fill)->Commit().ok());
  // An edge that stopped a moment ago: its last report says it may trust its cache for 400 ms.
  {
    auto redis = bus.redis.Connect();
    bus::EdgeProgress stopped{"stopped-edge", {1, 0}, 0, true, 400, 0};
    REQUIRE(bus::ReportProgress(redis, stopped, true).ok());
  }
  Script created;
  created.status = 201;
  origin.Set("o", created);
  const std::string body = "v2";
  const absl::Time start = absl::Now();
  const HttpResponse put =
      HttpRequest("PUT", edge.Url("/v1/AUTH_test/c/o"),
                  {"Host: api.test", "X-Auth-Token: t", "X-Edge-Node: spoofed"}, 10000, &body);
  const absl::Duration waited = absl::Now() - start;
  CHECK(put.status == 201);
  CHECK(put.header("x-purge-confirmed") == "2");  // this edge and the other; not the stopped one
  CHECK(put.header("x-purge-pending").empty());
  CHECK(waited >= absl::Milliseconds(300));  // held until the stopped edge's lease had run out
  CHECK(waited < absl::Seconds(3));
  CHECK_FALSE(bus.other_store->Lookup(key).has_value());  // applied before the 2xx came
  // Swift's middleware hears that this edge waits: from the edge, never from the client.
  CHECK(origin.LastHeader("o", "x-edge-node") == "test-edge");
}

TEST_CASE("a write whose plan the log cannot take goes to the spool, and reaches the daemons later") {
  FakeOrigin origin;
  origin.Set("o", Object("v1"));
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  Bus bus(edge);
  REQUIRE(Eventually([&] { return edge.pipeline->trusted(); }));
  REQUIRE(edge.Get("/o").header("x-cache") == "MISS");
  Script created;
  created.status = 201;
  created.headers = {{"X-Trans-Id", "tx-spooled"}};
  auto held = Hold(created);
  origin.Set("o", created);
  // The write is relayed while the bus is there; Redis goes before Swift answers it.
  HttpResponse put;
  std::thread writer([&] {
    const std::string body = "v2";
    put = HttpRequest("PUT", edge.Url("/v1/AUTH_test/c/o"), {"Host: api.test", "X-Auth-Token: t"}, 10000,
                      &body);
  });
  REQUIRE(Eventually([&] { return origin.Count("o") == 2; }));
  bus.redis.Stop();
  *held = false;
  writer.join();
  CHECK(put.status == 201);
  CHECK(put.header("x-purge-pending") == "spooled");
  CHECK(put.header("x-purge-confirmed").empty());
  CHECK(bus.publisher->spool_bytes() > 0);
  origin.Set("o", Object("v2"));
  CHECK(edge.Get("/o").body == "v2");  // this edge's own entry went at once
  // Redis back (empty: it kept nothing): the spooled event is in the daemons' stream.
  bus.redis.Start();
  auto redis = bus.redis.Connect();
  std::vector<bus::StreamEntry> events;
  REQUIRE(Eventually(
      [&] {
        auto reply = redis.Command({"XRANGE", std::string(bus::kEventStream), "-", "+"});
        if (reply.ok()) events = bus::StreamEntries(*reply);
        return !events.empty();
      },
      std::chrono::seconds(10)));
  REQUIRE(events.size() == 1);
  absl::StatusOr<bus::WriteEvent> event = bus::ParseEvent(events[0].fields);
  REQUIRE(event.ok());
  CHECK(event->node == "test-edge");
  CHECK(event->method == "PUT");
  CHECK(event->account == "AUTH_test");
  CHECK(event->container == "c");
  CHECK(event->object == "o");
  CHECK(event->status == 201);
  CHECK(event->transaction == "tx-spooled");
  CHECK(Eventually([&] { return bus.publisher->spool_bytes() == 0; }));  // emptied once all is sent
}

TEST_CASE("with the purge bus unreachable a write is refused before it is relayed") {
  FakeOrigin origin;
  Script created;
  created.status = 201;
  origin.Set("o", created);
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  Bus bus(edge);
  REQUIRE(Eventually([&] { return edge.pipeline->lease().reachable(); }));
  bus.redis.Stop();
  REQUIRE(Eventually([&] { return !edge.pipeline->lease().reachable(); }));
  const std::string body = "v2";
  const HttpResponse put =
      HttpRequest("PUT", edge.Url("/v1/AUTH_test/c/o"), {"Host: api.test", "X-Auth-Token: t"}, 10000, &body);
  CHECK(put.status == 503);
  CHECK(put.header("retry-after") == "1");
  CHECK(origin.Count("o") == 0);          // Swift never saw it
  CHECK_FALSE(edge.pipeline->trusted());  // and reads are revalidated meanwhile
}

TEST_CASE("without a bus a write still invalidates this edge's own entries, COPY its destination") {
  FakeOrigin origin;
  origin.Set("o", Object("v1"));
  origin.Set("src", Object("source"));
  origin.Set("dst", Object("old copy"));
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  for (const char* name : {"/o", "/src", "/dst"}) REQUIRE(edge.Get(name).header("x-cache") == "MISS");
  CHECK(edge.Get("/o").header("x-cache") == "HIT");
  Script created;
  created.status = 201;
  origin.Set("o", created);
  const std::string body = "v2";
  const HttpResponse put =
      HttpRequest("PUT", edge.Url("/v1/AUTH_test/c/o"), {"Host: api.test", "X-Auth-Token: t"}, 10000, &body);
  CHECK(put.status == 201);
  CHECK(put.header("x-purge-confirmed").empty());  // nobody else to wait for
  origin.Set("o", Object("v2"));
  HttpResponse after = edge.Get("/o");
  CHECK(after.header("x-cache") == "MISS");
  CHECK(after.body == "v2");

  // A COPY changes its destination (a Destination header, "container/object"), not its source.
  origin.Set("src", created);
  const HttpResponse copy = HttpRequest("COPY", edge.Url("/v1/AUTH_test/c/src"),
                                        {"Host: api.test", "X-Auth-Token: t", "Destination: c/dst"});
  CHECK(copy.status == 201);
  CHECK(edge.Get("/dst").header("x-cache") == "MISS");
  CHECK(edge.Get("/src").header("x-cache") == "HIT");
}

TEST_CASE("a write whose client left after sending its body invalidates when the origin answers") {
  FakeOrigin origin;
  origin.Set("o", Object("v1"));
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  REQUIRE(edge.Get("/o").header("x-cache") == "MISS");
  const cache::Key key{cache::KeyKind::kObject, "AUTH_test", "c", "o", ""};
  REQUIRE(edge.store->Lookup(key).has_value());
  Script created;
  created.status = 201;
  auto held = Hold(created);
  origin.Set("o", created);
  {
    // The whole request, then the connection closed before any answer.
    const int fd = Connect(edge.server->port());
    const std::string request =
        "PUT /v1/AUTH_test/c/o HTTP/1.1\r\nHost: api.test\r\nX-Auth-Token: t\r\nContent-Length: 2\r\n\r\nv2";
    REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    REQUIRE(Eventually([&] { return origin.Count("o") == 2; }));  // the write reached the origin
    ::close(fd);
  }
  // The edge saw the hang-up (the connection is gone) before the origin answers.
  REQUIRE(Eventually([&] { return edge.server->connections() == 0; }));
  *held = false;
  CHECK(Eventually([&] { return !edge.store->Lookup(key).has_value(); }));
}

TEST_CASE("a full write-event spool refuses writes with a 503 before they are relayed") {
  FakeOrigin origin;
  Script created;
  created.status = 201;
  origin.Set("o", created);
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n");
  PublisherOptions publishing;
  publishing.node_id = "test-edge";
  publishing.redis_host = "127.0.0.1";
  publishing.redis_port = 1;  // nothing there: events could only wait in the spool
  publishing.spool_path = edge.dir / "spool";
  publishing.max_spool_bytes = 1024;  // less than room for one more event
  auto publisher = WriteEventPublisher::Start(publishing);
  REQUIRE(publisher.ok());
  edge.pipeline->SetBus(nullptr, publisher->get());
  const std::string body = "v2";
  const HttpResponse put =
      HttpRequest("PUT", edge.Url("/v1/AUTH_test/c/o"), {"Host: api.test", "X-Auth-Token: t"}, 10000, &body);
  CHECK(put.status == 503);
  CHECK(put.body == "writes are paused: the purge bus has been unreachable too long\n");
  CHECK(origin.Count("o") == 0);        // Swift never saw it
  CHECK(edge.Get("/o").status == 201);  // reads go on
  edge.pipeline->SetBus(nullptr, nullptr);
}

TEST_CASE("a request body that stops coming is cut after timeouts.body") {
  FakeOrigin origin;
  Script created;
  created.status = 201;
  auto held = Hold(created);  // the origin waits for the whole body
  origin.Set("o", created);
  http::ServerOptions options;
  options.body_timeout = absl::Milliseconds(300);
  Edge edge(origin.port(), kApiTenant + "http://127.0.0.1:" + std::to_string(origin.port()) + "\"\n", {},
            options);
  const int fd = Connect(edge.server->port());
  const std::string request =
      "PUT /v1/AUTH_test/c/o HTTP/1.1\r\nHost: api.test\r\nX-Auth-Token: t\r\nContent-Length: 10\r\n\r\nv2";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  timeval wait{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  std::string received;
  char buffer[1024];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) received.append(buffer, n);
  CHECK(n == 0);  // closed by the edge, not the 5 s read timeout
  // Closed without an answer: not the origin's stall timeout (1 s here) with its 504.
  CHECK(received.empty());
  ::close(fd);
  CHECK(Eventually([&] { return edge.server->connections() == 0; }));
  *held = false;
}

TEST_CASE("a client that reads nothing of its response is dropped after timeouts.send") {
  FakeOrigin origin;
  // More than the socket buffers on both sides hold, so the edge's output waits on the client.
  origin.Set("big", Object(std::string(24 << 20, 'b')));
  http::ServerOptions options;
  options.send_timeout = absl::Milliseconds(300);
  Edge edge(origin.port(), "", {}, options);
  REQUIRE(edge.Get("/big").status == 200);  // now a hit
  const int fd = Connect(edge.server->port(), 64 * 1024);
  const std::string request = "GET /big HTTP/1.1\r\nHost: t.test\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  REQUIRE(Eventually([&] { return edge.server->connections() == 1; }));
  CHECK(Eventually([&] { return edge.server->connections() == 0; }));  // nothing read: dropped
  ::close(fd);
}

}  // namespace edge

namespace edge {

TEST_CASE("plain HTTP to an https_redirect tenant is a 308 to https://, path and query kept, without HSTS") {
  FakeOrigin origin;
  origin.Set("a/b.jpg", Object("jpeg"));
  Edge edge(origin.port(), "https_redirect = true\nhsts = \"max-age=600\"\n");
  const HttpResponse redirected = HttpGet(edge.Url("/a/b.jpg?x=1&y=%2F"), {"Host: T.test:8090"});
  CHECK(redirected.status == 308);
  CHECK(redirected.header("location") == "https://T.test/a/b.jpg?x=1&y=%2F");
  // HSTS is for HTTPS responses only (RFC 6797 7.2): plain HTTP never carries it.
  CHECK(redirected.header("strict-transport-security").empty());
  CHECK(origin.Count("a/b.jpg") == 0);
  // Another tenant's plain HTTP is served as before.
  origin.Set("/page", Object("hello"));
  const HttpResponse site = HttpGet(edge.Url("/page"), {"Host: site.test"});
  CHECK(site.status == 200);
  CHECK(site.body == "hello");
  // A tenant with HSTS and no redirect: its plain HTTP answers, from the origin and from the cache,
  // carry no HSTS either.
  Edge plain(origin.port(), "hsts = \"max-age=600\"\n");
  for (const char* label : {"MISS", "HIT"}) {
    const HttpResponse answer = plain.Get("/a/b.jpg");
    CHECK(answer.status == 200);
    CHECK(answer.header("x-cache") == label);
    CHECK(answer.header("strict-transport-security").empty());
  }
}

}  // namespace edge
