#include "purge-daemon/client_address.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace purge {

namespace {

// Parses `head` (without the blank line); the request keeps views into `buffer`.
edge::http::Request Parse(const std::string& head, std::string* buffer) {
  *buffer = head + "\r\n\r\n";
  edge::http::Request request;
  edge::http::ParseError error;
  REQUIRE(edge::http::ParseRequest(*buffer, edge::http::Limits{}, &request, &error) ==
          edge::http::ParseStatus::kComplete);
  return request;
}

}  // namespace

TEST_CASE("IP addresses in their canonical text, anything else is not one") {
  CHECK(NormalizeIp("192.0.2.1") == "192.0.2.1");
  CHECK(NormalizeIp(" 192.0.2.1 ") == "192.0.2.1");
  CHECK(NormalizeIp("2001:DB8:0:0::1") == "2001:db8::1");
  for (const char* bad : {"", "localhost", "192.0.2.1:80", "192.0.2", "1.2.3.4.5", "::1::2"}) {
    INFO(bad);
    CHECK_FALSE(NormalizeIp(bad).has_value());
  }
}

TEST_CASE("X-Forwarded-For names the client only when a trusted proxy sent it") {
  std::string buffer;
  const std::vector<std::string> trusted = {"10.0.0.5"};
  auto forwarded = Parse("POST /v1/purge HTTP/1.1\r\nHost: d\r\nX-Forwarded-For: 192.0.2.7", &buffer);
  CHECK(ClientAddress("10.0.0.5", forwarded, trusted) == "192.0.2.7");
  CHECK(ClientAddress("10.0.0.6", forwarded, trusted) == "10.0.0.6");  // anyone else: its own address
  CHECK(ClientAddress("10.0.0.5", forwarded, {}) == "10.0.0.5");       // nothing trusted by default
  std::string buffer2;
  // The proxy appends: what the client wrote before it is its own word, and the last line counts.
  auto chain = Parse(
      "POST /v1/purge HTTP/1.1\r\nHost: d\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 6.6.6.6, 192.0.2.8",
      &buffer2);
  CHECK(ClientAddress("10.0.0.5", chain, trusted) == "192.0.2.8");
  std::string buffer3;
  auto garbage = Parse("POST /v1/purge HTTP/1.1\r\nHost: d\r\nX-Forwarded-For: me", &buffer3);
  CHECK(ClientAddress("10.0.0.5", garbage, trusted) == "10.0.0.5");
  std::string buffer4;
  auto none = Parse("POST /v1/purge HTTP/1.1\r\nHost: d", &buffer4);
  CHECK(ClientAddress("10.0.0.5", none, trusted) == "10.0.0.5");
}

}  // namespace purge
