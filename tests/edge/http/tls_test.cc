#include "edge/http/tls.h"

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace edge::http {

namespace {

void MakePair(const testing_support::TempDir& dir, const std::string& name) {
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=" +
      name + " -keyout " + (dir / (name + ".key")) + " -out " + (dir / (name + ".pem")) + " 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
}

}  // namespace

TEST_CASE("LoadCertificate: a chain and its key, a key of another certificate, or no file, is an error") {
  testing_support::TempDir dir;
  MakePair(dir, "a");
  MakePair(dir, "b");
  // A chain of two: the leaf first, then an "intermediate".
  {
    std::ofstream chain(dir / "chain.pem");
    chain << std::ifstream(dir / "a.pem").rdbuf() << std::ifstream(dir / "b.pem").rdbuf();
  }
  auto loaded = LoadCertificate(dir / "chain.pem", dir / "a.key");
  REQUIRE(loaded.ok());
  REQUIRE((*loaded)->chain != nullptr);
  CHECK(sk_X509_num((*loaded)->chain) == 1);
  CHECK((*loaded)->not_after > absl::Now() + absl::Hours(24));
  CHECK((*loaded)->not_after < absl::Now() + absl::Hours(49));
  auto single = LoadCertificate(dir / "a.pem", dir / "a.key");
  REQUIRE(single.ok());
  CHECK((*single)->chain == nullptr);
  auto mismatch = LoadCertificate(dir / "a.pem", dir / "b.key");
  CHECK(mismatch.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(mismatch.status().message()).find("does not match") != std::string::npos);
  CHECK(LoadCertificate(dir / "missing.pem", dir / "a.key").status().code() == absl::StatusCode::kNotFound);
  CHECK(LoadCertificate(dir / "a.key", dir / "a.key").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ERR_peek_error() == 0);  // nothing left on this thread's OpenSSL error queue
}

TEST_CASE("CheckTlsOptions names the setting that is wrong") {
  TlsOptions options;
  CHECK(CheckTlsOptions(options).ok());
  options.min_version = "1.1";
  CHECK(std::string(CheckTlsOptions(options).message()).starts_with("min_version: "));
  options = {};
  options.ciphers = "NOT-A-CIPHER";
  CHECK(std::string(CheckTlsOptions(options).message()).starts_with("ciphers: "));
  options = {};
  options.ciphersuites = "TLS_NOPE";
  CHECK(std::string(CheckTlsOptions(options).message()).starts_with("ciphersuites: "));
  options = {};
  options.ticket_key_file = "/nonexistent/ticket.key";
  CHECK(std::string(CheckTlsOptions(options).message()).starts_with("ticket_key_file: "));
}

TEST_CASE("ticket keys rotate when due, the previous key still decrypts, the one before not") {
  TlsOptions options;
  options.ticket_rotation = absl::Hours(1);
  auto made = TicketKeys::Make(options);
  REQUIRE(made.ok());
  TicketKeys& keys = **made;
  const absl::Time start = absl::Now();
  const TicketKeys::Key first = keys.Current(start);
  CHECK(keys.Current(start + absl::Minutes(59)).name == first.name);  // not due yet
  const TicketKeys::Key second = keys.Current(start + absl::Minutes(61));
  CHECK(second.name != first.name);
  TicketKeys::Key found;
  bool current = true;
  REQUIRE(keys.Find(first.name.data(), &found, &current));
  CHECK_FALSE(current);
  CHECK(found.aes == first.aes);
  REQUIRE(keys.Find(second.name.data(), &found, &current));
  CHECK(current);
  keys.Rotate();
  CHECK_FALSE(keys.Find(first.name.data(), &found, &current));
  CHECK(keys.Find(second.name.data(), &found, &current));
}

TEST_CASE("handshake errors are counted under the reason their alert names") {
  CHECK(ClassifyHandshakeError(0) == HandshakeFailure::kClosed);
  CHECK(ClassifyHandshakeError(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_NO_SHARED_CIPHER)) ==
        HandshakeFailure::kNoSharedCipher);
  CHECK(ClassifyHandshakeError(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL)) ==
        HandshakeFailure::kProtocolVersion);
  CHECK(ClassifyHandshakeError(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_HTTP_REQUEST)) == HandshakeFailure::kPlainHttp);
  CHECK(HandshakeFailureName(HandshakeFailure::kUnrecognizedName) == "unrecognized_name");
  CHECK(HandshakeFailureName(HandshakeFailure::kTimeout) == "timeout");
}

}  // namespace edge::http
