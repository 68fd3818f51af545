#include "purge-daemon/config.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace purge {

TEST_CASE("the purge daemon's settings: defaults, and every problem at once with its line") {
  testing_support::TempDir dir;
  std::ofstream(dir / "good.toml")
      << "node_id = \"purge-1\"\ntenants = \"vhosts.toml\"\nredis = \"127.0.0.1:6390\"\n";
  auto good = LoadDaemonConfig(dir / "good.toml");
  REQUIRE(good.ok());
  CHECK(good->tenants_file == dir / "vhosts.toml");
  CHECK(good->api_port == 9100);
  CHECK(good->consumer.name == "purge-1");
  CHECK(good->consumer.redis_port == 6390);
  CHECK(good->consumer.repeat_delay == absl::Seconds(2));
  CHECK(good->consumer.batch_window == absl::Milliseconds(50));
  std::ofstream(dir / "bad.toml")
      << "node_id = \"p\"\ntenants = \"t\"\nredis = \"localhost\"\n"
         "api.admin_key_hashes = [\"plain-key\"]\nlog.max_length = 10\nplanner.delay = \"2s\"\n";
  auto bad = LoadDaemonConfig(dir / "bad.toml");
  REQUIRE_FALSE(bad.ok());
  const std::string file = dir / "bad.toml";
  CHECK(std::string(bad.status().message()) ==
        file + ":3: redis: \"localhost\" is not host:port (e.g. \"127.0.0.1:6379\")\n" + file +
            ":4: api.admin_key_hashes: must be 64 lowercase hex digits (`vhost-config hash-key KEY`), never "
            "a key\n" +
            file + ":5: log.max_length: must be at least 1000\n" + file + ":6: planner.delay: unknown key");
}

TEST_CASE(
    "the purge daemon's security settings: the admin listener, the auth failure limit, trusted proxies") {
  testing_support::TempDir dir;
  std::ofstream(dir / "good.toml") << "node_id = \"p\"\ntenants = \"t\"\nredis = \"127.0.0.1:6390\"\n";
  auto defaults = LoadDaemonConfig(dir / "good.toml");
  REQUIRE(defaults.ok());
  CHECK(defaults->admin_address == "127.0.0.1");
  CHECK(defaults->admin_port == 9101);
  CHECK(defaults->api.auth_failures == 10);
  CHECK(defaults->api.auth_failure_window == absl::Minutes(1));
  CHECK(defaults->api.trusted_proxies.empty());
  std::ofstream(dir / "set.toml")
      << "node_id = \"p\"\ntenants = \"t\"\nredis = \"127.0.0.1:6390\"\n"
         "admin.port = 0\napi.auth_failures = 3\napi.auth_failure_window = \"10s\"\n"
         "api.trusted_proxies = [\"10.0.0.5\", \"2001:DB8::1\"]\n";
  auto set = LoadDaemonConfig(dir / "set.toml");
  REQUIRE(set.ok());
  CHECK(set->admin_port == 0);
  CHECK(set->api.auth_failures == 3);
  CHECK(set->api.auth_failure_window == absl::Seconds(10));
  CHECK(set->api.trusted_proxies == std::vector<std::string>{"10.0.0.5", "2001:db8::1"});
  std::ofstream(dir / "bad.toml")
      << "node_id = \"p\"\ntenants = \"t\"\nredis = \"127.0.0.1:6390\"\n"
         "admin.port = 9100\napi.auth_failures = 0\napi.auth_failure_window = \"0s\"\n"
         "api.trusted_proxies = [\"edge-1\"]\n";
  auto bad = LoadDaemonConfig(dir / "bad.toml");
  REQUIRE_FALSE(bad.ok());
  const std::string file = dir / "bad.toml";
  CHECK(std::string(bad.status().message()) ==
        file + ":4: admin.port: must differ from api.port: /metrics is not served on the public API port\n" +
            file + ":5: api.auth_failures: must be at least 1\n" + file +
            ":6: api.auth_failure_window: must be longer than 0s\n" + file +
            ":7: api.trusted_proxies: \"edge-1\" is not an IP address");
}

TEST_CASE("the purge API over TLS: api.certificate and api.key, checked at load") {
  testing_support::TempDir dir;
  REQUIRE(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
                       "-subj /CN=purge -keyout " +
                       (dir / "api.key") + " -out " + (dir / "api.pem") + " 2>/dev/null")
                          .c_str()) == 0);
  const std::string head = "node_id = \"p\"\ntenants = \"t\"\nredis = \"127.0.0.1:6390\"\n";
  std::ofstream(dir / "tls.toml") << head << "api.certificate = \"api.pem\"\napi.key = \"api.key\"\n";
  auto tls = LoadDaemonConfig(dir / "tls.toml");
  REQUIRE(tls.ok());
  CHECK(tls->api_certificate == dir / "api.pem");
  CHECK(tls->api_key == dir / "api.key");
  std::ofstream(dir / "half.toml") << head << "api.certificate = \"api.pem\"\n";
  auto half = LoadDaemonConfig(dir / "half.toml");
  REQUIRE_FALSE(half.ok());
  CHECK(std::string(half.status().message()) ==
        (dir / "half.toml") + ":1: api.key: api.certificate and api.key go together");
  std::ofstream(dir / "wrong.toml") << head << "api.certificate = \"api.key\"\napi.key = \"api.key\"\n";
  auto wrong = LoadDaemonConfig(dir / "wrong.toml");
  REQUIRE_FALSE(wrong.ok());
  CHECK(std::string(wrong.status().message()) ==
        (dir / "wrong.toml") + ":4: api.certificate: " + (dir / "api.key") + ": no PEM certificate");
}

TEST_CASE("docs/configuration.md holds the purge daemon's key reference") {
  std::ifstream in(std::string(EDGE_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- daemon-keys:begin -->\n", end = "<!-- daemon-keys:end -->";
  const size_t from = doc.find(begin), to = doc.find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  CHECK(doc.substr(from + begin.size(), to - from - begin.size()) == PurgeDaemonConfigMarkdown());
}

}  // namespace purge
