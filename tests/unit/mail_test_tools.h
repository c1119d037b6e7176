#pragma once
// Outside tools for the outgoing-mail tests: a shell command runner, a throwaway
// GnuPG home with a key made by gpg, a self-signed S/MIME certificate made by openssl,
// and the Python checkers in tests/fixtures. Fixtures come from these tools, never
// from the code under test.

#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "core/util/fs.h"
#include "tests/unit/test_util.h"

namespace wmk::test {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs a /bin/sh command line (tests only: every argument here is a path we made).
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr)
    throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string fixture_path(const std::string& name) {
  return std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/" + name;
}

inline void write_test_file(const std::string& path, std::string_view data) {
  auto st = util::write_file_atomic(path, data);
  if (!st)
    throw std::runtime_error("cannot write " + path + ": " + st.error().message);
}

inline std::string read_test_file(const std::string& path) {
  auto r = util::read_file(path);
  if (!r)
    throw std::runtime_error("cannot read " + path + ": " + r.error().message);
  return std::move(r).value();
}

// A GnuPG home with one unprotected ed25519/cv25519 key for email, made by gpg.
class GpgFixture {
 public:
  explicit GpgFixture(const std::string& email) : home_(dir_.path() + "/gnupg") {
    auto r = run_command("mkdir -m 700 " + home_ + " && " + gpg() +
                         " --passphrase '' --quick-gen-key 'Test <" + email +
                         ">' future-default default never");
    if (r.status != 0)
      throw std::runtime_error("gpg --quick-gen-key failed: " + r.output);
  }
  GpgFixture(const GpgFixture&) = delete;
  GpgFixture& operator=(const GpgFixture&) = delete;
  ~GpgFixture() { run_command("gpgconf --homedir " + home_ + " --kill gpg-agent"); }
  // "gpg --batch --homedir HOME ..." ready for more arguments.
  std::string gpg() const {
    return "gpg --batch --no-tty --homedir " + home_ +
           " --pinentry-mode loopback --trust-model always";
  }
  const std::string& home() const { return home_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::string home_;
};

// A self-signed S/MIME certificate and its unprotected key for email, made by openssl.
class SmimeFixture {
 public:
  explicit SmimeFixture(const std::string& email)
      : cert_(dir_.path() + "/cert.pem"), key_(dir_.path() + "/key.pem") {
    auto r = run_command("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key_ + " -out " +
                         cert_ + " -days 2 -subj '/CN=Test/emailAddress=" + email +
                         "' -addext 'subjectAltName=email:" + email +
                         "' -addext 'keyUsage=digitalSignature,keyEncipherment'"
                         " -addext 'extendedKeyUsage=emailProtection'");
    if (r.status != 0)
      throw std::runtime_error("openssl req failed: " + r.output);
  }
  const std::string& cert() const { return cert_; }
  const std::string& key() const { return key_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::string cert_;
  std::string key_;
};

}  // namespace wmk::test
