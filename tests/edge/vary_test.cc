#include "edge/vary.h"

#include <doctest/doctest.h>

#include <map>

namespace edge {

TEST_CASE("Vary names: lowercase, sorted, once, '*' alone") {
  CHECK(VaryNames("Accept-Language, accept-encoding ,Accept-Language") ==
        std::vector<std::string>{"accept-encoding", "accept-language"});
  CHECK(VaryNames("Accept, *") == std::vector<std::string>{"*"});
  CHECK(VaryNames("").empty());
  CHECK(VaryNames(" , ").empty());
}

TEST_CASE("a request's variant: each varied header's value, trimmed, absent and empty alike") {
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

TEST_CASE("Accept-Language and Accept-Encoding variants ignore order, case and whitespace") {
  auto variant = [](std::string_view name, std::string_view value) {
    return VariantSuffix({std::string(name)}, [&](std::string_view) { return value; });
  };
  struct Same {
    const char* name;
    const char* a;
    const char* b;
  };
  for (const Same& same : std::initializer_list<Same>{
           {"accept-language", "en-US, fr;q=0.5", "fr; q=0.5,en-us"},
           {"accept-language", "de,EN", " en , de "},
           {"accept-encoding", "gzip, br", "BR,gzip"},
           {"accept-encoding", "gzip;q=1.0, identity; q=0.5", "identity;q=0.5,gzip; q=1.0"},
       }) {
    CAPTURE(same.a);
    CHECK(variant(same.name, same.a) == variant(same.name, same.b));
  }
  CHECK(variant("accept-language", "en") != variant("accept-language", "fr"));
  CHECK(variant("accept-encoding", "gzip") != variant("accept-encoding", "gzip, br"));
  CHECK(variant("user-agent", "A B") != variant("user-agent", "b a"));  // other headers as sent
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
