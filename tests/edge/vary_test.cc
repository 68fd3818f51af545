#include "edge/vary.h"

#include <doctest/doctest.h>

#include <map>

namespace edge {

TEST_CASE("Vary names: lowercase, sorted, once; '*' alone") {
  CHECK(VaryNames("Accept-Language, accept-encoding ,Accept-Language") ==
        std::vector<std::string>{"accept-encoding", "accept-language"});
  CHECK(VaryNames("Accept, *") == std::vector<std::string>{"*"});
  CHECK(VaryNames("").empty());
  CHECK(VaryNames(" , ").empty());
}

TEST_CASE("a request's variant: each varied header's value, trimmed; absent and empty alike") {
  const std::map<std::string, std::string> headers = {{"accept-language", " fr "}, {"accept-encoding", ""}};
  auto find = [&](std::string_view name) {
    auto it = headers.find(std::string(name));
    return it == headers.end() ? std::string_view() : std::string_view(it->second);
  };
  const std::string suffix = VariantSuffix({"accept-encoding", "accept-language", "user-agent"}, find);
  CHECK(suffix ==
        "\x1e"
        "accept-encoding=\x1e"
        "accept-language=fr\x1euser-agent=");
  CHECK(VariantSuffix({}, find).empty());
}

TEST_CASE("the vary index remembers what each object varies on") {
  VaryIndex index;
  CHECK(index.empty());
  CHECK(index.Find("k").empty());
  index.Learn("k", {"accept-language"});
  CHECK_FALSE(index.empty());
  CHECK(index.Find("k") == std::vector<std::string>{"accept-language"});
  CHECK(index.Find("other").empty());
}

}  // namespace edge
