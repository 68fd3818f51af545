#include "cache/key.h"

#include <doctest/doctest.h>

namespace cache {

TEST_CASE("an encoded key decodes to its parts") {
  const Key key{KeyKind::kListing, "AUTH_test", "public", "images/", "delimiter=/&format=json"};
  const std::string encoded = key.Encode();
  KeyParts parts;
  REQUIRE(DecodeKey(encoded, &parts));
  CHECK(parts.kind == KeyKind::kListing);
  CHECK(parts.account == "AUTH_test");
  CHECK(parts.container == "public");
  CHECK(parts.name == "images/");
  CHECK(parts.variant == "delimiter=/&format=json");
}

TEST_CASE("a key with empty parts decodes to the same parts") {
  // Found by entry_header_fuzz: an empty account merged with the container ("oc\0n\0").
  for (const Key& key : {Key{KeyKind::kObject, "", "c", "n", ""}, Key{KeyKind::kListing, "", "", "", ""},
                         Key{KeyKind::kListing, "AUTH_a", "", "", "format=json"}}) {
    const std::string encoded = key.Encode();  // the parts are views into it
    KeyParts parts;
    REQUIRE(DecodeKey(encoded, &parts));
    CHECK(parts.kind == key.kind);
    CHECK(parts.account == key.account);
    CHECK(parts.container == key.container);
    CHECK(parts.name == key.name);
    CHECK(parts.variant == key.variant);
  }
  // And the ranges of an empty account hold only its own keys.
  const std::string other = Key{KeyKind::kObject, "c", "n", "x", ""}.Encode();
  CHECK_FALSE(other.starts_with(ExactNameRange(KeyKind::kObject, "", "c", "n")));
}

TEST_CASE("malformed encoded keys are refused") {
  KeyParts parts;
  CHECK_FALSE(DecodeKey("", &parts));
  CHECK_FALSE(DecodeKey("xa", &parts));
  CHECK_FALSE(DecodeKey(std::string("oa\0b", 4), &parts));
}

TEST_CASE("ranges select exactly the entries they name") {
  const std::string a = Key{KeyKind::kObject, "acct", "c", "img/a.jpg", ""}.Encode();
  const std::string a_variant = Key{KeyKind::kObject, "acct", "c", "img/a.jpg", "gzip"}.Encode();
  const std::string ab = Key{KeyKind::kObject, "acct", "c", "img/a.jpg.bak", ""}.Encode();
  const std::string other_container = Key{KeyKind::kObject, "acct", "c2", "img/a.jpg", ""}.Encode();

  const std::string exact = ExactNameRange(KeyKind::kObject, "acct", "c", "img/a.jpg");
  CHECK(a.starts_with(exact));
  CHECK(a_variant.starts_with(exact));
  CHECK_FALSE(ab.starts_with(exact));
  CHECK_FALSE(other_container.starts_with(exact));

  const std::string prefix = NamePrefixRange(KeyKind::kObject, "acct", "c", "img/a");
  CHECK(a.starts_with(prefix));
  CHECK(ab.starts_with(prefix));
  CHECK_FALSE(other_container.starts_with(prefix));
  // "acct" must not match account "acct2": the separator ends the field.
  CHECK_FALSE(Key{KeyKind::kObject, "acct2", "c", "x", ""}.Encode().starts_with(
      ContainerRange(KeyKind::kObject, "acct", "c")));
}

TEST_CASE("hashes differ for different keys") {
  CHECK(HashEncodedKey(Key{KeyKind::kObject, "a", "c", "x", ""}.Encode()) !=
        HashEncodedKey(Key{KeyKind::kObject, "a", "c", "y", ""}.Encode()));
}

}  // namespace cache
