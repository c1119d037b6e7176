// bench_keys: what key custody costs, for scripts/bench.
//
//   bench_keys --config FILE --key FPR --message FILE [--runs N] [--unlock-runs M]
//              [--expect FILE]   (key passphrase on stdin)
//
// Times, through the real core: unlock (the Argon2id KDF + AES-GCM open), the first
// decrypt in the process (GPGME start-up included, as in a CGI request), then decrypt
// of the message with the unlocked key; and, beside it, a plain `gpg -d` of the same
// message in the same GnuPG home with the same key (its passphrase, the key secret,
// given to gpg through a pipe). Prints one "name median p95 min runs" line per measure,
// milliseconds.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/app/app.h"
#include "core/keys/keystore.h"
#include "core/keys/openpgp.h"
#include "core/util/fs.h"
#include "core/util/secret.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void report(const char* name, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  std::size_t n = samples.size();
  double median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  std::size_t p95_index = (n * 95 + 99) / 100;
  double p95 = samples[std::min(n, std::max<std::size_t>(p95_index, 1)) - 1];
  std::printf("%s %.2f %.2f %.2f %zu\n", name, median, p95, samples.front(), n);
}

// Runs gpg -d on the message with the passphrase on a pipe; returns its exit status.
int gpg_decrypt(const std::string& home, const std::string& message_path,
                const wmk::util::SecretBuffer& passphrase) {
  int in[2];
  if (pipe(in) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {
      "gpg",      "--homedir",       home, "--batch", "--no-tty",  "--pinentry-mode",
      "loopback", "--passphrase-fd", "0",  "-d",      message_path};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "gpg", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  if (rc != 0) {
    close(in[1]);
    return -1;
  }
  (void)!write(in[1], passphrase.data(), passphrase.size());
  (void)!write(in[1], "\n", 1);
  close(in[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wmk;
  std::string config, key_text, message_path, expect_path;
  int runs = 50, unlock_runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--config")
      config = argv[i + 1];
    else if (opt == "--key")
      key_text = argv[i + 1];
    else if (opt == "--message")
      message_path = argv[i + 1];
    else if (opt == "--expect")
      expect_path = argv[i + 1];
    else if (opt == "--runs")
      runs = std::max(1, std::atoi(argv[i + 1]));
    else if (opt == "--unlock-runs")
      unlock_runs = std::max(1, std::atoi(argv[i + 1]));
  }
  if (config.empty() || key_text.empty() || message_path.empty()) {
    std::cerr << "usage: bench_keys --config FILE --key FPR --message FILE [--runs N] "
                 "[--unlock-runs M] [--expect FILE] < passphrase\n";
    return 2;
  }
  auto passphrase = util::read_secret_line(STDIN_FILENO);
  auto app = app::open(config);
  if (!app) {
    std::cerr << "bench_keys: " << app.error().message << "\n";
    return 1;
  }
  keys::KeyStore store(app->db, app->config, *app->clock, keys::Actor{"bench", "", ""});
  auto key = store.find(key_text);
  auto message = util::read_file(message_path);
  if (!key || !message) {
    std::cerr << "bench_keys: " << (!key ? key.error().message : message.error().message) << "\n";
    return 1;
  }
  std::string expect;
  if (!expect_path.empty()) {
    auto e = util::read_file(expect_path);
    if (!e) {
      std::cerr << "bench_keys: " << e.error().message << "\n";
      return 1;
    }
    expect = std::move(e).value();
  }

  std::vector<double> unlock_ms;
  std::optional<keys::UnlockedKey> unlocked;
  for (int i = 0; i < unlock_runs; ++i) {
    auto t = Clock::now();
    auto u = store.unlock(*key, passphrase);
    unlock_ms.push_back(ms_since(t));
    if (!u) {
      std::cerr << "bench_keys: " << u.error().message << "\n";
      return 1;
    }
    unlocked.emplace(std::move(u).value());
  }

  // The first decrypt of a process pays GPGME's start-up (it runs gpgconf and each
  // engine's --version once), as every CGI request does; later ones reuse the context.
  auto first_start = Clock::now();
  auto warm = store.decrypt(*unlocked, *message);
  std::vector<double> first_ms = {ms_since(first_start)};
  if (!warm) {
    std::cerr << "bench_keys: " << warm.error().message << "\n";
    return 1;
  }
  if (!expect.empty() && warm->plaintext.view() != expect) {
    std::cerr << "bench_keys: the decrypted text differs from " << expect_path << "\n";
    return 1;
  }
  std::vector<double> decrypt_ms;
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    auto d = store.decrypt(*unlocked, *message);
    decrypt_ms.push_back(ms_since(t));
    if (!d) {
      std::cerr << "bench_keys: " << d.error().message << "\n";
      return 1;
    }
  }

  // The same decryption without the KeyStore around it (no audit row): the cost of
  // GPGME and gpg alone.
  std::vector<double> engine_ms;
  keys::detail::OpenPgp engine(app->config.gnupg_home(), app->config.data_dir + "/tmp");
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    auto d = engine.decrypt(key->fingerprint, unlocked->key_secret(), *message);
    engine_ms.push_back(ms_since(t));
    if (!d) {
      std::cerr << "bench_keys: " << d.error().message << "\n";
      return 1;
    }
  }

  std::vector<double> gpg_ms;
  auto hex = unlocked->key_secret().to_hex();
  const std::string home = app->config.gnupg_home();
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    int rc = gpg_decrypt(home, message_path, hex);
    gpg_ms.push_back(ms_since(t));
    if (rc != 0) {
      std::cerr << "bench_keys: gpg -d failed (" << rc << ")\n";
      return 1;
    }
  }
  report("unlock", unlock_ms);
  report("first_decrypt_in_process", first_ms);
  report("decrypt_after_unlock", decrypt_ms);
  report("decrypt_engine_only", engine_ms);
  report("gpg_d_same_key", gpg_ms);
  return 0;
}
