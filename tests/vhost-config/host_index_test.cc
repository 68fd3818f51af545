#include "vhost-config/host_index.h"

#include <doctest/doctest.h>

namespace vhost {

TEST_CASE("exact beats wildcard, and longer wildcards beat shorter ones") {
  HostIndex index;
  REQUIRE(index.Add("img.example.com", 0));
  REQUIRE(index.Add("*.example.com", 1));
  REQUIRE(index.Add("*.cdn.example.com", 2));
  CHECK_FALSE(index.Add("*.example.com", 3));
  CHECK(index.Find("img.example.com") == 0);
  CHECK(index.Find("IMG.Example.COM.") == 0);
  CHECK(index.Find("img.example.com:8080") == 0);
  CHECK(index.Find("www.example.com") == 1);
  CHECK(index.Find("a.b.example.com") == 1);
  CHECK(index.Find("x.cdn.example.com") == 2);
  CHECK(index.Find("y.x.cdn.example.com") == 2);
  CHECK(index.Find("cdn.example.com") == 1);
  CHECK(index.Find("example.com") == -1);
  CHECK(index.Find("example.org") == -1);
  CHECK(index.Find("") == -1);
  CHECK(index.Find("[::1]:80") == -1);
}

TEST_CASE("normalisation strips port and trailing dot and lowercases") {
  char buffer[256];
  CHECK(NormalizeHost("Demo.Example.Test.:443", buffer, sizeof(buffer)) == "demo.example.test");
  CHECK(NormalizeHost("[::1]:8080", buffer, sizeof(buffer)) == "[::1]");
  CHECK(NormalizeHost(std::string(300, 'a'), buffer, sizeof(buffer)).empty());
}

}  // namespace vhost
