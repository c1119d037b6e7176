#pragma once
// Shared set-up for the key custody tests: a real data directory with a real GnuPG
// home, a user, cheap KDF parameters, and helpers that run the outside tools (gpg,
// openssl) that make the fixtures and check our output.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/app/app.h"
#include "core/auth/users.h"
#include "core/keys/gnupg_home.h"
#include "core/keys/keystore.h"
#include "core/setup/init.h"
#include "core/util/clock.h"
#include "core/util/fs.h"
#include "tests/unit/test_util.h"

namespace wmk::test {

struct CmdResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Runs argv (PATH lookup, no shell) with input on stdin; collects stdout and stderr.
inline CmdResult run_cmd(const std::vector<std::string>& argv, const std::string& input = "") {
  char in_tmpl[] = "/tmp/wmk-cmd-in-XXXXXX";
  char out_tmpl[] = "/tmp/wmk-cmd-out-XXXXXX";
  char err_tmpl[] = "/tmp/wmk-cmd-err-XXXXXX";
  int in_fd = mkstemp(in_tmpl), out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  (void)!write(in_fd, input.data(), input.size());
  lseek(in_fd, 0, SEEK_SET);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(in_fd);
  close(out_fd);
  close(err_fd);
  CmdResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out_tmpl);
  r.err = slurp(err_tmpl);
  unlink(in_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

inline util::SecretBuffer secret(std::string_view s) {
  return util::SecretBuffer::copy_of(s);
}

// Creates a GnuPG home at path for "outside" gpg (mode 0700). Its agent uses a cheap
// S2K only to keep the tests fast; stop it with keys::stop_agent when done.
inline std::string make_outside_gnupg_home(const std::string& path) {
  std::filesystem::create_directories(path);
  chmod(path.c_str(), 0700);
  spit(path + "/gpg-agent.conf", "s2k-count 65536\n");
  return path;
}

// A data directory initialised by setup::init, with user alice (two addresses) and bob.
class KeysEnv {
 public:
  KeysEnv() : clock_(std::time(nullptr)) {
    data_dir_ = dir_.path() + "/d";
    config_path_ = dir_.path() + "/webmailkey.conf";
    spit(config_path_, "data_dir = " + data_dir_ +
                           "\nkdf_memory_kib = 64\nkdf_iterations = 1\nkdf_parallelism = 1\n");
    auto a = setup::init(config_path_, std::nullopt, clock_);
    if (!a)
      throw std::runtime_error("setup::init failed: " + a.error().message);
    app_.emplace(std::move(a).value());
    auth::UserStore users(app_->db, clock_);
    const crypto::KdfParams cheap{64, 1, 1};
    auto pw = util::SecretBuffer::copy_of(std::string_view("login password"));
    if (!users.add("alice", "alice@example.org", "Alice Example", pw, cheap).ok() ||
        !users.add_email("alice", "alice@work.example").ok() ||
        !users.add("bob", "bob@example.org", "Bob Example", pw, cheap).ok()) {
      throw std::runtime_error("cannot create the test users");
    }
  }
  ~KeysEnv() {
    for (const auto& h : homes_)
      (void)keys::stop_agent(h);
    (void)keys::stop_agent(gnupg_home());
  }
  KeysEnv(const KeysEnv&) = delete;
  KeysEnv& operator=(const KeysEnv&) = delete;

  app::App& app() { return *app_; }
  util::ManualClock& clock() { return clock_; }
  keys::KeyStore store() {
    return keys::KeyStore(app_->db, app_->config, *app_->clock, keys::Actor{"test", "", ""});
  }
  const std::string& root() const { return dir_.path(); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string gnupg_home() const { return data_dir_ + "/gnupg"; }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  // A separate GnuPG home for "outside" gpg, its agent killed at the end. Its agent
  // uses a cheap S2K only to keep the tests fast (gpg's calibrated one costs seconds
  // per key on a loaded machine); nothing here depends on the fixture's S2K cost.
  std::string outside_home(const std::string& name) {
    std::string h = make_outside_gnupg_home(path(name));
    homes_.push_back(h);
    return h;
  }

  // gpg --homedir home --batch ARGS, with input on stdin.
  static CmdResult gpg(const std::string& home, std::vector<std::string> args,
                       const std::string& input = "") {
    std::vector<std::string> argv = {"gpg", "--homedir", home, "--batch", "--no-tty"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_cmd(argv, input);
  }

  // Makes an ed25519/cv25519 key for uid in an outside home, protected by passphrase.
  // Returns its fingerprint.
  static std::string gpg_make_key(const std::string& home, const std::string& uid,
                                  const std::string& passphrase,
                                  const std::string& expire = "never") {
    auto r = gpg(home,
                 {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--quick-gen-key", uid,
                  "future-default", "default", expire},
                 passphrase + "\n");
    if (r.status != 0)
      throw std::runtime_error("gpg --quick-gen-key failed: " + r.err);
    auto l = gpg(home, {"--with-colons", "--list-keys", uid});
    auto pos = l.out.find("\nfpr:");
    if (pos == std::string::npos)
      throw std::runtime_error("no fingerprint listed: " + l.out);
    auto line = l.out.substr(pos + 1, l.out.find('\n', pos + 1) - pos - 1);
    // fpr:::::::::FPR:
    auto end = line.rfind(':');
    auto start = line.rfind(':', end - 1);
    return line.substr(start + 1, end - start - 1);
  }

  int count(const std::string& sql) {
    auto st = app_->db.prepare(sql);
    st.step();
    return static_cast<int>(st.column_int(0));
  }

 private:
  TempDir dir_;
  util::ManualClock clock_;
  std::string data_dir_;
  std::string config_path_;
  std::optional<app::App> app_;
  std::vector<std::string> homes_;
};

}  // namespace wmk::test
