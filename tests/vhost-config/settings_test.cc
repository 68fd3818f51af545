#include "vhost-config/settings.h"

#include <doctest/doctest.h>

#include <array>

namespace vhost {

namespace {
constexpr std::array kKeys = {
    KeySpec{"name", KeyType::kString, "", false, "required"},
    KeySpec{"size", KeyType::kBytes, "\"1M\"", false, "a size"},
    KeySpec{"wait", KeyType::kDuration, "\"2s\"", false, "a duration"},
    KeySpec{"group.flag", KeyType::kBool, "false", false, "nested"},
    KeySpec{"hosts", KeyType::kStringList, "[]", false, "list"},
    KeySpec{"item", KeyType::kRuleList, "-", false, "tables"},
};
constexpr std::array kItemKeys = {KeySpec{"id", KeyType::kInteger, "", false, "id"}};
}  // namespace

TEST_CASE("settings: values, schema defaults and sizes") {
  Settings s = Settings::FromText("name = \"n\"\nsize = \"1.5G\"\n[group]\nflag = true\n", "s.toml", kKeys);
  CHECK(s.String("name") == "n");
  CHECK(s.Bytes("size") == uint64_t{3} << 29);
  CHECK(s.Duration("wait") == absl::Seconds(2));
  CHECK(s.Bool("group.flag"));
  CHECK(s.Strings("hosts").empty());
  CHECK(s.Finish().ok());
  Settings sizes = Settings::FromText("size = 4096\n", "s.toml", kKeys);
  CHECK(sizes.Bytes("size") == 4096);
  for (const char* text : {"size = \"10MiB\"", "size = \"10MB\"", "size = \"10M\""}) {
    CHECK(Settings::FromText(text, "s.toml", kKeys).Bytes("size") == 10u << 20);
  }
}

TEST_CASE("settings: every problem at once, in line order, with file and line") {
  Settings s = Settings::FromText(
      "name = 3\nsize = \"big\"\nwat = 1\n[[item]]\nid = \"x\"\n[[item]]\nnope = 1\n", "s.toml", kKeys);
  (void)s.String("name");
  (void)s.Bytes("size");
  for (Settings& item : s.Tables("item", kItemKeys)) (void)item.Integer("id");
  CHECK(std::string(s.Finish().message()) ==
        "s.toml:1: name: must be a string\n"
        "s.toml:2: size: \"big\" is not a size (bytes, or a number with K, M, G or T, e.g. \"10G\")\n"
        "s.toml:3: wat: unknown key\n"
        "s.toml:5: item[0].id: must be an integer\n"
        "s.toml:6: item[1].id: is required\n"
        "s.toml:7: item[1].nope: unknown key");
}

TEST_CASE("settings: a syntax error names its line") {
  Settings s = Settings::FromText("name = \"n\"\nsize = [\n", "s.toml", kKeys);
  const std::string message(s.Finish().message());
  CHECK(message.find("s.toml:") == 0);
  CHECK(message.find(": syntax: ") != std::string::npos);
}

}  // namespace vhost
