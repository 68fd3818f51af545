// Certificates for tests, made with the openssl CLI in a temp dir: a root CA ("ca"), an
// intermediate it signed ("int"), and leaves for given DNS names, so tests of validation, of the
// certificate source and of HTTPS origins use real files as an operator would write them.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace testing_support {

class TestPki {
 public:
  // Makes the root and the intermediate; ok() says whether openssl did.
  TestPki() {
    ok_ = Run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key") &&
          Run("openssl req -x509 -key ca.key -out ca.pem -days 3650 -subj '/CN=Test Root CA' "
              "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign") &&
          Run("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > "
              "ca.ext") &&
          Issue("int", {}, "ca", 3650, "ca.ext");
  }
  bool ok() const { return ok_; }

  // <name>.key, <name>.pem (the certificate alone) and <name>-chain.pem (with the intermediate
  // when `issuer` is "int"), for the DNS names `dns`, valid for `days` from now; `issuer` "" makes
  // it self-signed.
  bool Issue(const std::string& name, const std::vector<std::string>& dns, const std::string& issuer = "int",
             int days = 30, const std::string& extensions_file = "") {
    std::string san;
    for (const std::string& d : dns) san += (san.empty() ? "subjectAltName=DNS:" : ",DNS:") + d;
    const std::string cn = dns.empty() ? name : dns.front();
    const std::string ext = extensions_file.empty() ? name + ".ext" : extensions_file;
    if (!Run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + name + ".key"))
      return false;
    if (issuer.empty()) {
      if (!Run("openssl req -x509 -key " + name + ".key -out " + name + ".pem -days " + std::to_string(days) +
               " -subj '/CN=" + cn + "'" + (san.empty() ? "" : " -addext '" + san + "'"))) {
        return false;
      }
      return Run("cp " + name + ".pem " + name + "-chain.pem");
    }
    if (extensions_file.empty() &&
        !Run("printf '" + san + "\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > " + ext)) {
      return false;
    }
    return Run("openssl req -new -key " + name + ".key -subj '/CN=" + cn + "' -out " + name + ".csr") &&
           Run("openssl x509 -req -in " + name + ".csr -CA " + issuer + ".pem -CAkey " + issuer +
               ".key -set_serial " + std::to_string(++serial_) + " -days " + std::to_string(days) + " -out " +
               name + ".pem -extfile " + ext) &&
           Run("cat " + name + ".pem" + (issuer == "int" ? " int.pem" : "") + " > " + name + "-chain.pem");
  }

  std::string operator/(const std::string& file) const { return dir_ / file; }
  const std::string& dir() const { return dir_.path(); }
  // Runs `command` in the directory, quietly.
  bool Run(const std::string& command) const {
    return std::system(("cd '" + dir_.path() + "' && (" + command + ") >/dev/null 2>&1").c_str()) == 0;
  }

 private:
  TempDir dir_;
  bool ok_ = false;
  int serial_ = 1000;
};

}  // namespace testing_support
