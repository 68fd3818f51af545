#include "edge/writes.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/golden_events.h"

namespace edge {
namespace {

// Where MapRequest sends a swift-api write: "/v1/account[/container[/object]]".
vhost::OriginTarget TargetOf(std::string_view path, std::string_view query) {
  vhost::OriginTarget target;
  path.remove_prefix(std::string_view("/v1/").size());
  const size_t account_end = std::min(path.find('/'), path.size());
  target.account = std::string(path.substr(0, account_end));
  path.remove_prefix(std::min(account_end + 1, path.size()));
  const size_t container_end = std::min(path.find('/'), path.size());
  target.container = std::string(path.substr(0, container_end));
  target.name = std::string(path.substr(std::min(container_end + 1, path.size())));
  target.listing = target.name.empty();
  target.query = std::string(query);
  return target;
}

}  // namespace

TEST_CASE("the edge makes the golden file's write events from their requests (as the middleware does)") {
  const auto golden = testing_support::GoldenEvents();
  REQUIRE(golden.size() >= 8);
  for (const testing_support::GoldenEvent& g : golden) {
    CAPTURE(g.name);
    http::Request request;
    request.method = g.request["method"].get_ref<const std::string&>();
    for (const auto& [name, value] : g.request["headers"].items()) {
      request.headers[request.header_count++] = {name, value.get_ref<const std::string&>()};
    }
    std::vector<std::pair<std::string_view, std::string_view>> response_headers;
    for (const auto& [name, value] : g.response["headers"].items()) {
      response_headers.emplace_back(name, value.get_ref<const std::string&>());
    }
    const auto time_ms =
        std::find_if(g.fields.begin(), g.fields.end(), [](const auto& f) { return f.first == "time_ms"; });
    REQUIRE(time_ms != g.fields.end());
    std::optional<bus::WriteEvent> event = MakeWriteEvent(
        g.fields[0].second, "", WriteIntent::Of(request, g.request["query"].get<std::string>()),
        TargetOf(g.request["path"].get<std::string>(), g.request["query"].get<std::string>()),
        g.response["status"].get<int>(), response_headers, std::stoll(time_ms->second));
    REQUIRE(event.has_value());
    CHECK(bus::EventFields(*event) == g.fields);
  }
}

TEST_CASE("a write that failed, or a COPY without a destination, makes no event") {
  http::Request request;
  request.method = "PUT";
  const vhost::OriginTarget target = TargetOf("/v1/AUTH_test/c/o", "");
  CHECK(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), target, 201, {}, 1).has_value());
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), target, 404, {}, 1).has_value());
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), target, 503, {}, 1).has_value());
  request.method = "COPY";
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), target, 201, {}, 1).has_value());
}

TEST_CASE("a write's event names where it went, Swift's transaction, and only a container's settings") {
  http::Request request;
  request.method = "POST";
  request.headers[request.header_count++] = {"X-Container-Meta-Color", "blue"};
  request.headers[request.header_count++] = {"X_Remove_Versions_Location", "1"};
  request.headers[request.header_count++] = {"X-Object-Meta-Size", "big"};
  const std::pair<std::string_view, std::string_view> answer[] = {{"Content-Length", "0"},
                                                                  {"x-TRANS-id", "tx123"}};
  // A container's write carries the settings it touched, on the cluster it went to.
  const vhost::OriginTarget container = TargetOf("/v1/AUTH_test/c", "");
  std::optional<bus::WriteEvent> event =
      MakeWriteEvent("edge-7", "eu", WriteIntent::Of(request, ""), container, 204, answer, 42);
  REQUIRE(event.has_value());
  CHECK(event->node == "edge-7");
  CHECK(event->cluster == "eu");
  CHECK(event->method == "POST");
  CHECK(event->account == "AUTH_test");
  CHECK(event->container == "c");
  CHECK(event->object.empty());
  CHECK(event->status == 204);
  CHECK(event->time_ms == 42);
  CHECK(event->transaction == "tx123");  // the header found whatever its case
  CHECK(event->settings == "x-container-meta-color,x-remove-versions-location");
  // An object's metadata is the object itself: no settings.
  event = MakeWriteEvent("edge-7", "", WriteIntent::Of(request, ""), TargetOf("/v1/AUTH_test/c/o", "q=1"),
                         202, {}, 42);
  REQUIRE(event.has_value());
  CHECK(event->object == "o");
  CHECK(event->query == "q=1");
  CHECK(event->settings.empty());
  CHECK(event->transaction.empty());
  // No answer from the origin (status 0): the write may have happened, so it is an event.
  CHECK(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), container, 0, {}, 1).has_value());
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), container, 199, {}, 1).has_value());
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), container, 300, {}, 1).has_value());
  // Nothing cached can change: a path the tenant never caches, or no account (Swift's auth).
  vhost::OriginTarget passed = container;
  passed.pass = true;
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), passed, 204, {}, 1).has_value());
  vhost::OriginTarget no_account = container;
  no_account.account.clear();
  CHECK_FALSE(MakeWriteEvent("e", "", WriteIntent::Of(request, ""), no_account, 204, {}, 1).has_value());
}

TEST_CASE("a COPY's event names its decoded destination and the destination's account") {
  http::Request request;
  request.method = "COPY";
  request.headers[request.header_count++] = {"Destination", "/other%20c/new%2Fname.txt"};
  request.headers[request.header_count++] = {"Destination-Account", "AUTH_b"};
  std::optional<bus::WriteEvent> event =
      MakeWriteEvent("e", "", WriteIntent::Of(request, ""), TargetOf("/v1/AUTH_test/c/src", ""), 201, {}, 1);
  REQUIRE(event.has_value());
  CHECK(event->object == "src");
  CHECK(event->destination == "/other c/new/name.txt");
  CHECK(event->destination_account == "AUTH_b");
}

TEST_CASE("a bulk delete's event names the paths of its body, unless the body was too long to keep") {
  http::Request request;
  request.method = "POST";
  const vhost::OriginTarget target = TargetOf("/v1/AUTH_test", "bulk-delete");
  WriteIntent intent = WriteIntent::Of(request, target.query);
  CHECK(intent.result_streams);  // planned when Swift's streamed answer ends
  intent.Read("/c/a.txt\n/c/");
  intent.Read("b.txt\n");
  std::optional<bus::WriteEvent> event = MakeWriteEvent("e", "", intent, target, 200, {}, 1);
  REQUIRE(event.has_value());
  CHECK(event->paths == "/c/a.txt\n/c/b.txt\n");
  intent.Read(std::string(WriteIntent::kMaxPaths, 'x'));
  CHECK(MakeWriteEvent("e", "", intent, target, 200, {}, 1)->paths.empty());  // the planner purges softly
  // Any other write keeps no body.
  request.method = "PUT";
  WriteIntent put = WriteIntent::Of(request, "");
  put.Read("data");
  CHECK_FALSE(put.result_streams);
  CHECK(MakeWriteEvent("e", "", put, TargetOf("/v1/AUTH_test/c/o", ""), 201, {}, 1)->paths.empty());
}

TEST_CASE("the storage URL of a Swift auth answer points at the edge the client used") {
  CHECK(PublicStorageUrl("http://127.0.0.1:8080/v1/AUTH_test", "swift.example.test:8091", false) ==
        "http://swift.example.test:8091/v1/AUTH_test");
  CHECK(PublicStorageUrl("https://proxy.internal/v1/AUTH_a%20b", "swift.example.test", false) ==
        "http://swift.example.test/v1/AUTH_a%20b");
  // Logged in over HTTPS, the client keeps to HTTPS (a plain URL would reach the TLS port plain).
  CHECK(PublicStorageUrl("http://127.0.0.1:8080/v1/AUTH_test", "swift.example.test:8443", true) ==
        "https://swift.example.test:8443/v1/AUTH_test");
  CHECK(PublicStorageUrl("http://127.0.0.1:8080", "s.test", false) == "http://s.test");
  CHECK(PublicStorageUrl("/v1/AUTH_test", "s.test", true) == "/v1/AUTH_test");  // not absolute: kept
}

TEST_CASE("write methods") {
  for (const char* method : {"PUT", "POST", "DELETE", "COPY"}) CHECK(IsWriteMethod(method));
  for (const char* method : {"GET", "HEAD", "OPTIONS", "PURGE", "put"}) CHECK_FALSE(IsWriteMethod(method));
}

}  // namespace edge
