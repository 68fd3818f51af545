#include "edge/metrics.h"

#include <doctest/doctest.h>

#include <string>

namespace edge {

TEST_CASE("the TLS counters in the exposition: handshakes, failures by reason, body bytes by path") {
  http::TlsStats stats;
  stats.handshakes = 7;
  stats.resumed = 3;
  stats.Fail(http::HandshakeFailure::kUnrecognizedName);
  stats.Fail(http::HandshakeFailure::kUnrecognizedName);
  stats.Fail(http::HandshakeFailure::kTimeout);
  stats.write_body_bytes = 1000;
  stats.memory_body_bytes = 2000;
  std::string text;
  AppendTlsMetrics(&text, stats);
  CHECK(text.find("\nedge_tls_handshakes_total 7\n") != std::string::npos);
  CHECK(text.find("\nedge_tls_resumed_handshakes_total 3\n") != std::string::npos);
  CHECK(text.find("# TYPE edge_tls_handshake_failures_total counter\n") != std::string::npos);
  CHECK(text.find("\nedge_tls_handshake_failures_total{reason=\"unrecognized_name\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("\nedge_tls_handshake_failures_total{reason=\"timeout\"} 1\n") != std::string::npos);
  CHECK(text.find("\nedge_tls_handshake_failures_total{reason=\"no_shared_cipher\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("\nedge_tls_body_bytes_total{path=\"ktls\"} 0\n") != std::string::npos);
  CHECK(text.find("\nedge_tls_body_bytes_total{path=\"ssl_write\"} 1000\n") != std::string::npos);
  CHECK(text.find("\nedge_tls_body_bytes_total{path=\"memory\"} 2000\n") != std::string::npos);
}

}  // namespace edge
