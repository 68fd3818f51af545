#include "edge/config.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace edge {

namespace {

absl::StatusOr<EdgeConfig> Load(const testing_support::TempDir& dir, const std::string& text) {
  std::ofstream(dir / "edge.toml") << text;
  return LoadEdgeConfig(dir / "edge.toml");
}

}  // namespace

TEST_CASE("a minimal edge file gets the documented defaults, paths are relative to the file") {
  testing_support::TempDir dir;
  auto config = Load(dir, R"(node_id = "e1"
tenants = "vhosts.toml"
[[cache.zone]]
path = "zone-a"
size = "2G"
)");
  REQUIRE(config.ok());
  CHECK(config->node_id == "e1");
  CHECK(config->tenants_file == dir / "vhosts.toml");
  REQUIRE(config->server.listen.size() == 1);
  CHECK(config->server.listen[0].port == 8090);
  CHECK(config->server.listen[0].address == "127.0.0.1");
  CHECK_FALSE(config->server.listen[0].tls);
  CHECK(config->server.workers == 2);
  CHECK(config->server.header_timeout == absl::Seconds(10));
  CHECK(config->admin_port == 9090);
  CHECK(config->origin.connect_timeout == absl::Seconds(2));
  REQUIRE(config->cache.zones.size() == 1);
  CHECK(config->cache.zones[0].path == dir / "zone-a");
  CHECK(config->cache.zones[0].max_bytes == uint64_t{2} << 30);
  CHECK(config->access_log.empty());
  CHECK(config->max_ranges == 16);
}

TEST_CASE("limits.ranges sets the most byte ranges answered in parts") {
  testing_support::TempDir dir;
  auto config = Load(dir,
                     "node_id = \"e1\"\ntenants = \"v.toml\"\nlimits.ranges = 4\n"
                     "[[cache.zone]]\npath = \"z\"\nsize = \"2G\"\n");
  REQUIRE(config.ok());
  CHECK(config->max_ranges == 4);
  auto negative = Load(dir,
                       "node_id = \"e1\"\ntenants = \"v.toml\"\nlimits.ranges = -1\n"
                       "[[cache.zone]]\npath = \"z\"\nsize = \"2G\"\n");
  REQUIRE_FALSE(negative.ok());
  CHECK(std::string(negative.status().message()).find("limits.ranges: -1 is out of range") !=
        std::string::npos);
}

TEST_CASE("every problem is reported at once as file:line: key: message") {
  testing_support::TempDir dir;
  auto config = Load(dir, R"(node_id = "e1"
tenants = "vhosts.toml"
listen.port = 70000
listen.wokers = 4
timeouts.idle = "soon"
[[cache.zone]]
path = "a"
size = "lots"
[[cache.zone]]
path = "a"
size = 1024
)");
  REQUIRE_FALSE(config.ok());
  const std::string file = dir / "edge.toml";
  CHECK(std::string(config.status().message()) ==
        file + ":3: listen.port: 70000 is out of range [1, 65535]\n" + file +
            ":4: listen.wokers: unknown key\n" + file +
            ":5: timeouts.idle: \"soon\" is not a duration (use ms, s, m, h or d, e.g. \"7d\")\n" + file +
            ":8: cache.zone[0].size: \"lots\" is not a size (bytes, or a number with K, M, G or T, e.g. "
            "\"10G\")\n" +
            file + ":10: cache.zone[1].path: is already another zone's path\n" + file +
            ":11: cache.zone[1].size: must be at least 1M");
}

TEST_CASE("required keys and zones, syntax errors and unreadable files are reported with their place") {
  testing_support::TempDir dir;
  auto empty = Load(dir, "");
  REQUIRE_FALSE(empty.ok());
  const std::string file = dir / "edge.toml";
  CHECK(std::string(empty.status().message()) ==
        file + ":1: node_id: is required\n" + file + ":1: tenants: is required\n" + file +
            ":1: cache.zone: at least one [[cache.zone]] is required");
  auto syntax = Load(dir, "node_id = \"e1\"\nlisten = [\n");
  REQUIRE_FALSE(syntax.ok());
  CHECK(std::string(syntax.status().message()).find(file + ":") == 0);
  auto missing = LoadEdgeConfig(dir / "nope.toml");
  REQUIRE_FALSE(missing.ok());
  CHECK(std::string(missing.status().message()) ==
        dir / "nope.toml" + ": cannot be read: No such file or directory");
}

TEST_CASE("a connection limit the descriptor limit cannot serve is warned about, with what fits") {
  EdgeConfig config;
  config.cache.zones.resize(1);  // defaults: 10000 connections, 2 workers, 64 origin connections each
  // 10000 connections x 4 descriptors, and 194 for zones, origin pools and the rest.
  CHECK(DescriptorLimitWarning(config, 40194).empty());
  const std::string warning = DescriptorLimitWarning(config, 20000);
  CHECK(warning.find("server.max_connections = 10000 may need 40194 descriptors") == 0);
  CHECK(warning.find("the limit of 20000") != std::string::npos);
  CHECK(warning.find("lower server.max_connections to 4951") != std::string::npos);
  CHECK(DescriptorLimitWarning(config, 100).find("to 0;") != std::string::npos);
}

TEST_CASE("[tls] and origin.ca_file: files relative to the settings file, lines kept for messages") {
  testing_support::TempDir dir;
  const std::string base =
      "node_id = \"e1\"\ntenants = \"v.toml\"\n[[cache.zone]]\npath = \"z\"\nsize = \"2G\"\n";
  auto config = Load(dir, base);
  REQUIRE(config.ok());
  CHECK(config->certificates.default_certificate.empty());
  CHECK_FALSE(config->certificates.refuse_without_sni);
  CHECK(config->redirect_port == 443);
  CHECK(config->origin.ca_file.empty());
  config = Load(dir, base +
                         "[origin]\nca_file = \"ca.pem\"\n[tls]\ndefault_certificate = \"certs/d.pem\"\n"
                         "default_key = \"/keys/d.key\"\nwithout_sni = \"refuse\"\nredirect_port = 8443\n");
  REQUIRE(config.ok());
  CHECK(config->origin.ca_file == dir / "ca.pem");
  CHECK(config->certificates.default_certificate == dir / "certs/d.pem");
  CHECK(config->certificates.default_key == "/keys/d.key");
  CHECK(config->certificates.settings_file == dir / "edge.toml");
  CHECK(config->certificates.certificate_line == 9);
  CHECK(config->certificates.key_line == 10);
  CHECK(config->certificates.refuse_without_sni);
  CHECK(config->redirect_port == 8443);
  auto bad = Load(dir, base + "[tls]\ndefault_certificate = \"d.pem\"\nwithout_sni = \"maybe\"\n");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()) ==
        dir / "edge.toml:7: tls.default_certificate: tls.default_certificate and tls.default_key go "
              "together\n" +
            dir / "edge.toml:8: tls.without_sni: must be \"default\" or \"refuse\"");
}

TEST_CASE("[[listen]] tables: several listeners, IPv6, TLS, and the [tls] settings") {
  testing_support::TempDir dir;
  auto config = Load(dir, R"(node_id = "e1"
tenants = "v.toml"
server.workers = 3
server.max_connections = 50
tls.min_version = "1.3"
tls.ticket_rotation = "1h"

[[listen]]
port = 8080

[[listen]]
address = "::1"
port = 8443
tls = true

[[cache.zone]]
path = "z"
size = "2G"
)");
  REQUIRE(config.ok());
  REQUIRE(config->server.listen.size() == 2);
  CHECK(config->server.listen[0].address == "127.0.0.1");
  CHECK(config->server.listen[0].port == 8080);
  CHECK_FALSE(config->server.listen[0].tls);
  CHECK(config->server.listen[1].address == "::1");
  CHECK(config->server.listen[1].port == 8443);
  CHECK(config->server.listen[1].tls);
  CHECK(config->server.workers == 3);
  CHECK(config->server.max_connections == 50);
  CHECK(config->server.tls.min_version == "1.3");
  CHECK(config->server.tls.ticket_rotation == absl::Hours(1));
  CHECK(config->server.tls.ticket_key_file.empty());
}

TEST_CASE("the old [listen] table still loads as one plain listener") {
  testing_support::TempDir dir;
  auto config = Load(dir,
                     "node_id = \"e1\"\ntenants = \"v.toml\"\n[listen]\naddress = \"127.0.0.2\"\nport = 81\n"
                     "workers = 4\nmax_connections = 7\n[[cache.zone]]\npath = \"z\"\nsize = \"2G\"\n");
  REQUIRE(config.ok());
  REQUIRE(config->server.listen.size() == 1);
  CHECK(config->server.listen[0].address == "127.0.0.2");
  CHECK(config->server.listen[0].port == 81);
  CHECK(config->server.workers == 4);
  CHECK(config->server.max_connections == 7);
}

TEST_CASE("listener and TLS mistakes are reported as file:line: key: message") {
  testing_support::TempDir dir;
  auto config = Load(dir, R"(node_id = "e1"
tenants = "v.toml"
tls.min_version = "1.1"
tls.ticket_key_file = "missing.key"

[[listen]]
port = 8080

[[listen]]
port = 8080
tsl = true

[[listen]]
address = "::1"

[[cache.zone]]
path = "z"
size = "2G"
)");
  REQUIRE_FALSE(config.ok());
  const std::string file = dir / "edge.toml";
  const std::string message(config.status().message());
  CAPTURE(message);
  CHECK(message.find(file + ":3: tls.min_version: \"1.1\" is not \"1.2\" or \"1.3\"") != std::string::npos);
  CHECK(message.find(file + ":10: listen[1].port: is already another listener's address and port") !=
        std::string::npos);
  CHECK(message.find(file + ":11: listen[1].tsl: unknown key") != std::string::npos);
  CHECK(message.find("listen[2].port: is required") != std::string::npos);
}

TEST_CASE("docs/configuration.md holds the edge's key reference") {
  std::ifstream in(std::string(EDGE_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- edge-keys:begin -->\n", end = "<!-- edge-keys:end -->";
  const size_t from = doc.find(begin), to = doc.find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  CHECK(doc.substr(from + begin.size(), to - from - begin.size()) == EdgeConfigMarkdown());
}

}  // namespace edge
