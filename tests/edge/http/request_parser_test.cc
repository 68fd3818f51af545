#include "edge/http/request_parser.h"

#include <doctest/doctest.h>

#include <string>

namespace edge::http {

namespace {

struct Parsed {
  ParseStatus status;
  Request request;
  ParseError error;
};

Parsed Parse(std::string_view text, Limits limits = {}) {
  Parsed p;
  p.status = ParseRequest(text, limits, &p.request, &p.error);
  return p;
}

// The status a head is refused with (0 if it is accepted).
int Refused(std::string_view text, Limits limits = {}) {
  Parsed p = Parse(text, limits);
  if (p.status == ParseStatus::kComplete) return 0;
  REQUIRE(p.status == ParseStatus::kError);
  return p.error.status;
}

}  // namespace

TEST_CASE("a simple GET with keep-alive") {
  const std::string text =
      "GET /images/a.jpg?x=1 HTTP/1.1\r\nHost: Demo.Example.test\r\nAccept: */*\r\n\r\nNEXT";
  Parsed p = Parse(text);
  REQUIRE(p.status == ParseStatus::kComplete);
  CHECK(p.request.method == "GET");
  CHECK(p.request.target == "/images/a.jpg?x=1");
  CHECK(p.request.host == "Demo.Example.test");
  CHECK(p.request.keep_alive);
  CHECK(p.request.body == BodyKind::kNone);
  CHECK(p.request.head_bytes == text.size() - 4);
  CHECK(p.request.Find("accept") == "*/*");
  CHECK(p.request.Find("missing").empty());
}

TEST_CASE("the head may arrive in pieces") {
  const std::string text = "PUT /v1/AUTH_test/c/o HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t cut = 0; cut < text.size() - 5; ++cut) {
    CHECK(Parse(text.substr(0, cut)).status == ParseStatus::kIncomplete);
  }
  Parsed p = Parse(text);
  REQUIRE(p.status == ParseStatus::kComplete);
  CHECK(p.request.body == BodyKind::kContentLength);
  CHECK(p.request.content_length == 5);
}

TEST_CASE("pipelined requests parse one after the other") {
  const std::string text = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  Parsed first = Parse(text);
  REQUIRE(first.status == ParseStatus::kComplete);
  Parsed second = Parse(std::string_view(text).substr(first.request.head_bytes));
  REQUIRE(second.status == ParseStatus::kComplete);
  CHECK(second.request.target == "/b");
}

TEST_CASE("connection handling by version and Connection header") {
  CHECK_FALSE(Parse("GET / HTTP/1.0\r\n\r\n").request.keep_alive);
  CHECK(Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").request.keep_alive);
  CHECK_FALSE(Parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").request.keep_alive);
  CHECK(Parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").request.expect_continue);
}

TEST_CASE("chunked bodies") {
  Parsed p = Parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
  REQUIRE(p.status == ParseStatus::kComplete);
  CHECK(p.request.body == BodyKind::kChunked);
}

TEST_CASE("smuggling vectors are refused with 400") {
  CHECK(Refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        400);
  CHECK(Refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") == 400);
  CHECK(Refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n") == 400);
  CHECK(Refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n") == 400);
  CHECK(
      Refused(
          "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
      400);
  CHECK(Refused("GET / HTTP/1.1\nHost: h\r\n\r\n") == 400);                  // bare LF
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\n\r\n") == 400);                  // bare LF
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n") == 400);     // bare CR
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n") == 400);  // obs-fold
  CHECK(Refused("GET / HTTP/1.1\r\nHost : h\r\n\r\n") == 400);               // space before colon
  CHECK(Refused(std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35)) == 400);  // NUL in a value
  CHECK(Refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  CHECK(Refused("GET / HTTP/1.1\r\n\r\n") == 400);  // no Host
  CHECK(Refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == 400);
  CHECK(Refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(Refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
}

TEST_CASE("malformed request lines") {
  CHECK(Refused("GET\r\n\r\n") == 400);
  CHECK(Refused("GET /\r\n\r\n") == 400);
  CHECK(Refused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("G(T / HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
  CHECK(Refused("GET / HTTQ/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET foo HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET * HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n") == 0);
  CHECK(Refused("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n") == 501);
  CHECK(Refused("GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n") == 0);
  CHECK(Refused("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") == 0);  // leading empty lines are ignored
}

TEST_CASE("limits: request line 414, headers 431, checked before the head is complete") {
  Limits limits;
  limits.max_request_line = 64;
  limits.max_head_bytes = 256;
  limits.max_headers = 3;
  const std::string long_target(100, 'a');
  CHECK(Refused("GET /" + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414);
  CHECK(Refused("GET /" + long_target, limits) == 414);  // no newline yet, already too long
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits) == 431);
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(300, 'x'), limits) == 431);
  CHECK(Refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits) == 0);
}

TEST_CASE("Host values: a name of non-empty labels, an IPv4 or IPv6 address, a numeric port") {
  auto host = [](std::string_view value) {
    return Refused("GET / HTTP/1.1\r\nHost: " + std::string(value) + "\r\n\r\n");
  };
  for (std::string_view good :
       {"demo.example.test", "Demo.Example.Test:8090", "a.b.", "127.0.0.1:80", "[::1]", "[::1]:8090",
        "[2001:db8::7]", "[::ffff:192.0.2.1]:443", "x_y.example.test", "h", "h:65535", "h:0"}) {
    CHECK_MESSAGE(host(good) == 0, good);
  }
  for (std::string_view bad :
       {"files.example.test:demo.example.test", ".cdn.example.test", "a..cdn.example.test", "a.b..",
        "h:", "h:123456", "h:65536", "h:99999", "h:8o", "[::1", "[::1]x", "[]", "a b", "h@evil",
        "%64emo.example.test", "demo.example.test,other",
        // found by the fuzzer: bracketed, but no IPv6 address
        "[::177777..777777BBBBBBBB]:6180", "[1:2:3:4:5:6:7:8:9]", "[fe80::1%25eth0]", "[v1.x]", "[:]"}) {
    CHECK_MESSAGE(host(bad) == 400, bad);
  }
  CHECK(Refused("GET / HTTP/1.1\r\nHost:\r\n\r\n") == 0);  // empty: names no site (421 later)
}

TEST_CASE("absolute form: the target's authority names the site, the scheme in any case") {
  Parsed p = Parse(
      "GET http://files.example.test/public/index.html?x=1 HTTP/1.1\r\nHost: demo.example.test\r\n\r\n");
  REQUIRE(p.status == ParseStatus::kComplete);
  CHECK(p.request.absolute_form);
  CHECK(p.request.host == "files.example.test");
  CHECK(p.request.target == "/public/index.html?x=1");

  p = Parse("GET HTTP://Files.Example.Test:8090 HTTP/1.1\r\nHost: demo.example.test\r\n\r\n");
  REQUIRE(p.status == ParseStatus::kComplete);
  CHECK(p.request.host == "Files.Example.Test:8090");
  CHECK(p.request.target == "/");
  CHECK(Parse("GET HtTpS://h/x HTTP/1.1\r\nHost: h\r\n\r\n").request.target == "/x");

  CHECK(Refused("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n") == 400);       // no authority
  CHECK(Refused("GET http://u:p@h/x HTTP/1.1\r\nHost: h\r\n\r\n") == 400);  // userinfo
  CHECK(Refused("GET http://a..b/x HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(Refused("GET http://h/x HTTP/1.1\r\nHost: a..b\r\n\r\n") == 400);  // Host is still checked
  CHECK(Refused("GET http://h/x HTTP/1.1\r\n\r\n") == 400);                // and still required
  // The next request parsed into the same Request starts over.
  REQUIRE(ParseRequest("GET /y HTTP/1.1\r\nHost: h2\r\n\r\n", {}, &p.request, &p.error) ==
          ParseStatus::kComplete);
  CHECK(!p.request.absolute_form);
  CHECK(p.request.host == "h2");
}

}  // namespace edge::http
