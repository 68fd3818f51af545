#include "edge/writes.h"

#include <doctest/doctest.h>

namespace edge {

TEST_CASE("the storage URL of a Swift auth answer points at the edge the client used") {
  CHECK(PublicStorageUrl("http://127.0.0.1:8080/v1/AUTH_test", "swift.example.test:8091") ==
        "http://swift.example.test:8091/v1/AUTH_test");
  CHECK(PublicStorageUrl("https://proxy.internal/v1/AUTH_a%20b", "swift.example.test") ==
        "http://swift.example.test/v1/AUTH_a%20b");
  CHECK(PublicStorageUrl("http://127.0.0.1:8080", "s.test") == "http://s.test");
  CHECK(PublicStorageUrl("/v1/AUTH_test", "s.test") == "/v1/AUTH_test");  // not absolute: kept
}

TEST_CASE("write methods") {
  for (const char* method : {"PUT", "POST", "DELETE", "COPY"}) CHECK(IsWriteMethod(method));
  for (const char* method : {"GET", "HEAD", "OPTIONS", "PURGE", "put"}) CHECK_FALSE(IsWriteMethod(method));
}

}  // namespace edge
