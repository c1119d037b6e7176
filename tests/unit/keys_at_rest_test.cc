// Nothing usable at rest: a copy of the database and of the GnuPG home, taken after
// keys were generated, imported, unlocked and used, holds neither a passphrase nor a
// key secret nor a private key that opens without the passphrase.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/keys/keystore.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::keys {

namespace {

using test::KeysEnv;
using test::run_cmd;
using test::secret;

namespace fs = std::filesystem;

// Copies regular files and directories only (the agent's sockets are not data).
void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    auto rel = fs::relative(e.path(), from);
    if (e.is_directory())
      fs::create_directories(to / rel);
    else if (e.is_regular_file())
      fs::copy_file(e.path(), to / rel);
  }
}

std::vector<std::pair<std::string, std::string>> all_files(const fs::path& root) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file())
      out.emplace_back(e.path().string(), test::slurp(e.path().string()));
  }
  return out;
}

std::string upper_copy(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST(KeysAtRest, DatabaseAndGnupgHomeCopiesHoldNothingUsable) {
  KeysEnv env;
  KeyStore store = env.store();
  const std::string pass = "Passphrase-Marker-7f3a9c";
  const std::string file_pass = "File-Passphrase-Marker-41d2";
  const std::string p12_pass = "P12-Password-Marker-88e1";

  // An OpenPGP key generated here, one made by gpg and imported, an S/MIME key from
  // an openssl PKCS#12: each unlocked and used.
  GenerateOptions o;
  auto gen = store.generate("alice", o, secret(pass));
  ASSERT_TRUE(gen.ok()) << gen.error().message;
  std::string outside = env.outside_home("user");
  std::string fpr = KeysEnv::gpg_make_key(outside, "Alice <alice@work.example>", file_pass);
  auto armored = KeysEnv::gpg(outside,
                              {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                               "--export-secret-keys", fpr},
                              file_pass + "\n");
  auto imported = store.import_openpgp("alice", armored.out, secret(file_pass), secret(pass));
  ASSERT_TRUE(imported.ok()) << imported.error().message;

  ASSERT_EQ(run_cmd({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", env.path("s.key")})
                .status,
            0);
  ASSERT_EQ(
      run_cmd({"openssl", "req", "-x509", "-key", env.path("s.key"), "-out", env.path("s.crt"),
               "-days", "30", "-subj", "/CN=Alice/emailAddress=alice@example.org"})
          .status,
      0);
  ASSERT_EQ(run_cmd({"openssl", "pkcs12", "-export", "-inkey", env.path("s.key"), "-in",
                     env.path("s.crt"), "-out", env.path("s.p12"), "-passout", "pass:" + p12_pass})
                .status,
            0);
  auto smime =
      store.import_smime("alice", test::slurp(env.path("s.p12")), secret(p12_pass), secret(pass));
  ASSERT_TRUE(smime.ok()) << smime.error().message;

  std::vector<std::string> needles = {pass, file_pass, p12_pass};
  for (const KeyInfo* k : {&gen->key, &*imported, &*smime}) {
    auto u = store.unlock(*k, secret(pass));
    ASSERT_TRUE(u.ok()) << u.error().message;
    ASSERT_TRUE(store.sign(*u, "use the key").ok());
    needles.emplace_back(u->key_secret().view());
    std::string hex(u->key_secret().to_hex().view());
    needles.push_back(hex);
    needles.push_back(upper_copy(hex));
  }
  ASSERT_TRUE(store.export_secret(gen->key, secret(pass), secret("an export passphrase")).ok());
  // The S/MIME private key in its DER encodings: PKCS#8 and PKCS#1.
  auto pk8 = run_cmd({"openssl", "pkey", "-in", env.path("s.key"), "-outform", "DER"});
  auto pk1 =
      run_cmd({"openssl", "rsa", "-in", env.path("s.key"), "-outform", "DER", "-traditional"});
  ASSERT_GT(pk8.out.size(), 1000u);
  ASSERT_GT(pk1.out.size(), 1000u);
  needles.push_back(pk8.out);
  needles.push_back(pk1.out);
  for (const char* marker : {"BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY", "BEGIN EC PRIVATE KEY",
                             "BEGIN PGP PRIVATE KEY BLOCK", "(private-key", "openpgp-native"})
    needles.emplace_back(marker);

  // Copy while the instance is live, WAL included, as an attacker would.
  fs::path copy = env.path("stolen");
  fs::create_directories(copy / "db");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path db = env.app().config.database_path() + suffix;
    if (fs::exists(db))
      fs::copy_file(db, copy / "db" / db.filename());
  }
  copy_tree(env.gnupg_home(), copy / "gnupg");

  auto files = all_files(copy);
  ASSERT_GE(files.size(), 5u);
  int key_files = 0;
  for (const auto& [path, bytes] : files) {
    for (const auto& n : needles)
      EXPECT_EQ(bytes.find(n), std::string::npos) << path << " holds " << n.substr(0, 40);
    if (path.find("private-keys-v1.d") != std::string::npos) {
      ++key_files;
      EXPECT_NE(bytes.find("protected-private-key"), std::string::npos) << path;
      EXPECT_NE(bytes.find("openpgp-s2k3"), std::string::npos) << path;
    }
  }
  EXPECT_EQ(key_files, 4);  // two keys, primary and subkey each

  // gpg on the copied home cannot export or use a secret key without the key secret.
  std::string stolen_home = (copy / "gnupg").string();
  chmod(stolen_home.c_str(), 0700);
  for (const std::string& p : {std::string(), pass, file_pass}) {
    auto r = KeysEnv::gpg(
        stolen_home,
        {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor", "--export-secret-keys"},
        p + "\n");
    EXPECT_EQ(r.out.find("PRIVATE KEY"), std::string::npos) << "passphrase '" << p << "'";
  }
  (void)stop_agent(stolen_home);

  // The S/MIME blob does not parse as a private key without a password.
  store::Db stolen_db = std::move(store::Db::open((copy / "db" / "webmailkey.db").string(),
                                                  store::OpenMode::must_exist))
                            .value();
  auto st = stolen_db.prepare("SELECT private_blob FROM keys WHERE type = 'smime'");
  ASSERT_TRUE(st.step());
  auto blob = st.column_blob(0);
  test::spit(env.path("blob.der"), std::string(blob.begin(), blob.end()));
  EXPECT_NE(run_cmd({"openssl", "pkey", "-inform", "DER", "-in", env.path("blob.der"), "-passin",
                     "pass:"})
                .status,
            0);
  EXPECT_NE(run_cmd({"openssl", "pkcs8", "-inform", "DER", "-nocrypt", "-in", env.path("blob.der")})
                .status,
            0);
  // And the test can fail: the same check finds the original key file usable.
  EXPECT_EQ(run_cmd({"openssl", "pkey", "-in", env.path("s.key"), "-passin", "pass:"}).status, 0);
}

}  // namespace

}  // namespace wmk::keys
