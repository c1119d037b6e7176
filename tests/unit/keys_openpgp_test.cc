// OpenPGP custody against real gpg: keys made here work for gpg and keys made by gpg
// work here; gpg-agent never holds a usable passphrase; failures change nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/keys/keystore.h"
#include "core/keys/openpgp.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::keys {

namespace {

using test::KeysEnv;
using test::secret;

constexpr const char* kPass = "correct horse battery";
constexpr const char* kFilePass = "the file's own passphrase";

std::string plaintext_of(const DecryptResult& r) {
  return std::string(r.plaintext.view());
}

class OpenPgpKeys : public ::testing::Test {
 protected:
  KeysEnv env;
  KeyStore store = env.store();

  KeyInfo generate(const std::string& login = "alice") {
    GenerateOptions o;
    o.type = KeyType::openpgp;
    auto g = store.generate(login, o, secret(kPass));
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g->key;
  }

  // A key made by real gpg in an outside home; returns {fingerprint, armored secret}.
  std::pair<std::string, std::string> gpg_made_key(const std::string& home,
                                                   const std::string& expire = "never") {
    auto fpr = KeysEnv::gpg_make_key(home, "Alice Example <alice@example.org>", kFilePass, expire);
    auto exp = KeysEnv::gpg(home,
                            {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                             "--export-secret-keys", fpr},
                            std::string(kFilePass) + "\n");
    EXPECT_EQ(exp.status, 0) << exp.err;
    return {fpr, exp.out};
  }

  // Encrypts text with real gpg in home to the armored public key pub.
  std::string gpg_encrypt_to(const std::string& home, const std::string& pub,
                             const std::string& fpr, const std::string& text,
                             std::vector<std::string> extra = {}) {
    auto imp = KeysEnv::gpg(home, {"--import"}, pub);
    EXPECT_EQ(imp.status, 0) << imp.err;
    std::vector<std::string> args = {"--trust-model", "always", "--armor", "-e", "-r", fpr};
    args.insert(args.end(), extra.begin(), extra.end());
    auto enc = KeysEnv::gpg(home, args, text);
    EXPECT_EQ(enc.status, 0) << enc.err;
    return enc.out;
  }

  int keys_in_home(bool secret_keys) {
    auto r = KeysEnv::gpg(env.gnupg_home(),
                          {"--with-colons", secret_keys ? "--list-secret-keys" : "--list-keys"});
    int n = 0;
    for (std::size_t pos = 0;
         (pos = r.out.find(secret_keys ? "\nsec:" : "\npub:", pos)) != std::string::npos; ++pos)
      ++n;
    if (r.out.rfind(secret_keys ? "sec:" : "pub:", 0) == 0)
      ++n;
    return n;
  }
};

TEST_F(OpenPgpKeys, InitWritesNoCacheAgentConfig) {
  auto conf = test::slurp(env.gnupg_home() + "/gpg-agent.conf");
  for (const char* line :
       {"default-cache-ttl 0\n", "max-cache-ttl 0\n", "allow-loopback-pinentry\n",
        "ignore-cache-for-signing\n", "no-allow-external-cache\n", "s2k-count 65536\n"}) {
    EXPECT_NE(conf.find(line), std::string::npos) << line;
  }
  EXPECT_NE(test::slurp(env.gnupg_home() + "/gpg.conf").find("pinentry-mode loopback"),
            std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(env.gnupg_home().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A home whose agent may cache is refused.
  test::spit(env.gnupg_home() + "/gpg-agent.conf", "allow-loopback-pinentry\n");
  KeyStore fresh = env.store();
  GenerateOptions o;
  EXPECT_EQ(fresh.generate("alice", o, secret(kPass)).code(), Errc::config);
}

TEST_F(OpenPgpKeys, GeneratedKeyExportsPublicKeyGpgEncryptsToAndCoreDecrypts) {
  KeyInfo key = generate();
  EXPECT_EQ(key.fingerprint.size(), 40u);
  EXPECT_EQ(key.algorithm, "ed25519/cv25519");
  EXPECT_EQ(key.emails, std::vector<std::string>{"alice@example.org"});
  EXPECT_EQ(key.default_for, std::vector<std::string>{"alice@example.org"});
  EXPECT_FALSE(key.expires);

  auto pub = store.export_public(key);
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_NE(pub->find("BEGIN PGP PUBLIC KEY BLOCK"), std::string::npos);
  EXPECT_EQ(pub->find("PRIVATE"), std::string::npos);

  std::string outside = env.outside_home("sender");
  std::string msg = "Subject: hi\r\n\r\nmeet at noon\r\n";
  std::string ct = gpg_encrypt_to(outside, *pub, key.fingerprint, msg);

  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  auto dec = store.decrypt(*unlocked, ct);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(plaintext_of(*dec), msg);
  EXPECT_TRUE(dec->integrity_protected);
  EXPECT_FALSE(dec->cipher.empty());
}

TEST_F(OpenPgpKeys, RsaKeyCanBeGenerated) {
  GenerateOptions o;
  o.algorithm = "rsa3072";
  o.valid_days = 30;
  o.email = "alice@work.example";
  auto g = store.generate("alice", o, secret(kPass));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->key.algorithm, "rsa3072/rsa3072");
  ASSERT_TRUE(g->key.expires);
  EXPECT_NEAR(static_cast<double>(*g->key.expires - g->key.created), 30.0 * 86400, 86400);
  EXPECT_EQ(g->key.emails, std::vector<std::string>{"alice@work.example"});
  o.algorithm = "dsa1024";
  EXPECT_EQ(store.generate("alice", o, secret(kPass)).code(), Errc::invalid_argument);
}

TEST_F(OpenPgpKeys, KeyMadeByGpgImportsAndDecryptsGpgMail) {
  std::string outside = env.outside_home("user");
  auto [fpr, armored] = gpg_made_key(outside);
  auto ct = KeysEnv::gpg(outside, {"--trust-model", "always", "-e", "-r", fpr}, "secret plans");
  ASSERT_EQ(ct.status, 0) << ct.err;

  auto key = store.import_openpgp("alice", armored, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->fingerprint, fpr);
  EXPECT_EQ(key->emails, std::vector<std::string>{"alice@example.org"});

  // The file's passphrase no longer opens the key in our home; the key secret does.
  detail::OpenPgp pgp(env.gnupg_home(), env.data_dir() + "/tmp");
  auto states = pgp.agent_state(fpr);
  ASSERT_TRUE(states.ok()) << states.error().message;
  ASSERT_EQ(states->size(), 2u);
  for (const auto& s : *states) {
    EXPECT_EQ(s.protection, 'P');
    EXPECT_FALSE(s.cached);
  }
  for (const auto& entry :
       std::filesystem::directory_iterator(env.gnupg_home() + "/private-keys-v1.d")) {
    auto text = test::slurp(entry.path().string());
    EXPECT_EQ(text.find("openpgp-native"), std::string::npos) << "still under the file passphrase";
  }

  auto unlocked = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  auto dec = store.decrypt(*unlocked, ct.out);  // binary, not armored
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(plaintext_of(*dec), "secret plans");

  // A second import of the same key is refused, without touching the first.
  EXPECT_EQ(store.import_openpgp("alice", armored, secret(kFilePass), secret(kPass)).code(),
            Errc::already_exists);
  EXPECT_TRUE(store.decrypt(*unlocked, ct.out).ok());
}

TEST_F(OpenPgpKeys, MessageSignedHereVerifiesWithGpg) {
  KeyInfo key = generate();
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  std::string data = "Content-Type: text/plain\r\n\r\nI agree.\r\n";
  auto sig = store.sign(*unlocked, data);
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_NE(sig->signature.find("BEGIN PGP SIGNATURE"), std::string::npos);
  EXPECT_EQ(sig->micalg.rfind("pgp-sha", 0), 0u) << sig->micalg;

  std::string outside = env.outside_home("verifier");
  auto pub = store.export_public(key);
  ASSERT_EQ(KeysEnv::gpg(outside, {"--import"}, *pub).status, 0);
  test::spit(env.path("data.txt"), data);
  test::spit(env.path("data.sig"), sig->signature);
  auto v = KeysEnv::gpg(
      outside, {"--status-fd", "1", "--verify", env.path("data.sig"), env.path("data.txt")});
  EXPECT_EQ(v.status, 0) << v.err;
  EXPECT_NE(v.out.find("[GNUPG:] GOODSIG"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("VALIDSIG " + key.fingerprint), std::string::npos) << v.out;

  // The same check through the core, and a forged body fails.
  auto ours = store.verify(KeyType::openpgp, data, sig->signature);
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  ASSERT_EQ(ours->signatures.size(), 1u);
  EXPECT_EQ(ours->signatures[0].status, SignatureStatus::good);
  EXPECT_EQ(ours->signatures[0].fingerprint, key.fingerprint);
  EXPECT_EQ(ours->signatures[0].emails, std::vector<std::string>{"alice@example.org"});
  auto forged = store.verify(KeyType::openpgp, "I disagree.", sig->signature);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->signatures[0].status, SignatureStatus::bad);
}

TEST_F(OpenPgpKeys, SignedAndEncryptedByGpgReportsTheSignature) {
  std::string outside = env.outside_home("user");
  auto [fpr, armored] = gpg_made_key(outside);
  auto key = store.import_openpgp("alice", armored, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto ct = KeysEnv::gpg(outside,
                         {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--trust-model",
                          "always", "-s", "-e", "-r", fpr, "-u", fpr, "--armor"},
                         std::string(kFilePass) + "\nsigned secret");
  ASSERT_EQ(ct.status, 0) << ct.err;
  auto unlocked = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  auto dec = store.decrypt(*unlocked, ct.out);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(plaintext_of(*dec), "signed secret");
  ASSERT_EQ(dec->signatures.size(), 1u);
  EXPECT_EQ(dec->signatures[0].status, SignatureStatus::good);
  EXPECT_EQ(dec->signatures[0].fingerprint, fpr);
}

TEST_F(OpenPgpKeys, EncryptProducesMailGpgDecrypts) {
  std::string outside = env.outside_home("recipient");
  std::string fpr = KeysEnv::gpg_make_key(outside, "Carol <carol@example.net>", "carol pass");
  auto pub = KeysEnv::gpg(outside, {"--armor", "--export", fpr});
  KeyInfo own = generate();
  auto own_pub = store.export_public(own);
  auto ct = store.encrypt(KeyType::openpgp, {pub.out, *own_pub}, "to carol and me");
  ASSERT_TRUE(ct.ok()) << ct.error().message;
  test::spit(env.path("ct.asc"), *ct);
  auto d = KeysEnv::gpg(
      outside, {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", env.path("ct.asc")},
      "carol pass\n");
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "to carol and me");
  // The sender's copy opens here too.
  auto unlocked = store.unlock(own, secret(kPass));
  auto mine = store.decrypt(*unlocked, *ct);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  EXPECT_EQ(plaintext_of(*mine), "to carol and me");
  // Something that is not a key is not a recipient.
  EXPECT_EQ(store.encrypt(KeyType::openpgp, {"not a key"}, "x").code(), Errc::invalid_argument);
}

// gpg-agent must never let anyone decrypt without the passphrase, even right after a
// decryption through the core.
TEST_F(OpenPgpKeys, GpgAgentCannotBypassTheServer) {
  KeyInfo key = generate();
  auto pub = store.export_public(key);
  std::string outside = env.outside_home("sender");
  std::string ct = gpg_encrypt_to(outside, *pub, key.fingerprint, "for alice only");
  test::spit(env.path("msg.asc"), ct);

  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  ASSERT_TRUE(store.decrypt(*unlocked, ct).ok());
  ASSERT_TRUE(store.sign(*unlocked, "x").ok());

  // Pinentry disabled: only a cached passphrase could decrypt.
  auto no_pinentry =
      KeysEnv::gpg(env.gnupg_home(), {"--pinentry-mode", "error", "-d", env.path("msg.asc")});
  EXPECT_NE(no_pinentry.status, 0);
  EXPECT_EQ(no_pinentry.out.find("for alice only"), std::string::npos);
  // An empty loopback passphrase, and the user's passphrase itself, do not work either.
  for (const char* p : {"", kPass}) {
    auto r = KeysEnv::gpg(
        env.gnupg_home(),
        {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", env.path("msg.asc")},
        std::string(p) + "\n");
    EXPECT_NE(r.status, 0) << p;
    EXPECT_EQ(r.out.find("for alice only"), std::string::npos);
  }
  detail::OpenPgp pgp(env.gnupg_home(), env.data_dir() + "/tmp");
  auto states = pgp.agent_state(key.fingerprint);
  ASSERT_TRUE(states.ok());
  for (const auto& s : *states)
    EXPECT_FALSE(s.cached) << s.keygrip;

  // The same gpg command with the key secret works: the checks above can fail.
  auto hex = unlocked->key_secret().to_hex();
  auto with_secret = KeysEnv::gpg(
      env.gnupg_home(),
      {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", env.path("msg.asc")},
      std::string(hex.view()) + "\n");
  EXPECT_EQ(with_secret.status, 0) << with_secret.err;
  EXPECT_EQ(with_secret.out, "for alice only");
}

TEST_F(OpenPgpKeys, WrongPassphraseIsTypedAndAudited) {
  KeyInfo key = generate();
  EXPECT_EQ(store.unlock(key, secret("not the passphrase")).code(), Errc::wrong_passphrase);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.unlock' AND outcome = "
                      "'fail' AND key_fpr = '" +
                      key.fingerprint + "' AND login = 'alice'"),
            1);
  EXPECT_TRUE(store.unlock(key, secret(kPass)).ok());
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.unlock' AND outcome = 'ok'"),
            1);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.generate' AND outcome = "
                      "'ok' AND detail LIKE 'by test%'"),
            1);
}

TEST_F(OpenPgpKeys, ImportWithWrongFilePassphraseLeavesNothing) {
  std::string outside = env.outside_home("user");
  auto [fpr, armored] = gpg_made_key(outside);
  auto r = store.import_openpgp("alice", armored, secret("wrong file pass"), secret(kPass));
  EXPECT_EQ(r.code(), Errc::wrong_passphrase) << r.error().message;
  EXPECT_EQ(env.count("SELECT count(*) FROM keys"), 0);
  EXPECT_EQ(keys_in_home(true), 0);
  EXPECT_EQ(keys_in_home(false), 0);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.import' AND outcome = "
                      "'fail'"),
            1);
  // Missing passphrase for a protected key: same.
  EXPECT_EQ(store.import_openpgp("alice", armored, secret(""), secret(kPass)).code(),
            Errc::wrong_passphrase);
  EXPECT_EQ(keys_in_home(true), 0);
  // And then the right one works.
  EXPECT_TRUE(store.import_openpgp("alice", armored, secret(kFilePass), secret(kPass)).ok());
}

TEST_F(OpenPgpKeys, DamagedPublicOnlyAndNonKeyFilesAreRefused) {
  std::string outside = env.outside_home("user");
  auto [fpr, armored] = gpg_made_key(outside);
  auto pub = KeysEnv::gpg(outside, {"--armor", "--export", fpr});

  std::string truncated = armored.substr(0, armored.size() / 2);
  std::string damaged = armored;
  damaged[damaged.size() / 2] = damaged[damaged.size() / 2] == 'A' ? 'B' : 'A';
  struct Case {
    const char* name;
    std::string data;
  };
  for (const auto& c :
       {Case{"truncated", truncated}, Case{"damaged", damaged}, Case{"public only", pub.out},
        Case{"not a key", "hello, world\n"}, Case{"empty", ""}}) {
    auto r = store.import_openpgp("alice", c.data, secret(kFilePass), secret(kPass));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_TRUE(r.code() == Errc::invalid_argument || r.code() == Errc::corrupt)
        << c.name << ": " << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_EQ(env.count("SELECT count(*) FROM keys"), 0) << c.name;
    EXPECT_EQ(keys_in_home(true), 0) << c.name;
    EXPECT_EQ(keys_in_home(false), 0) << c.name;
  }
}

TEST_F(OpenPgpKeys, ImportNeedsAnAddressOfTheUser) {
  std::string outside = env.outside_home("user");
  std::string fpr = KeysEnv::gpg_make_key(outside, "Mallory <mallory@evil.example>", kFilePass);
  auto armored = KeysEnv::gpg(outside,
                              {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                               "--export-secret-keys", fpr},
                              std::string(kFilePass) + "\n");
  auto r = store.import_openpgp("alice", armored.out, secret(kFilePass), secret(kPass));
  EXPECT_EQ(r.code(), Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("mallory@evil.example"), std::string::npos);
  EXPECT_EQ(keys_in_home(false), 0);
  EXPECT_EQ(store
                .import_openpgp("alice", armored.out, secret(kFilePass), secret(kPass),
                                std::string("bob@example.org"))
                .code(),
            Errc::invalid_argument);
  auto ok = store.import_openpgp("alice", armored.out, secret(kFilePass), secret(kPass),
                                 std::string("Alice@Work.Example"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->emails, std::vector<std::string>{"alice@work.example"});
}

TEST_F(OpenPgpKeys, UnprotectedKeyFileImportsAndGetsProtected) {
  std::string outside = env.outside_home("user");
  auto r =
      KeysEnv::gpg(outside, {"--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                             "Alice <alice@example.org>", "future-default", "default", "never"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto armored = KeysEnv::gpg(outside, {"--armor", "--export-secret-keys", "alice@example.org"});
  ASSERT_EQ(armored.status, 0) << armored.err;
  auto key = store.import_openpgp("alice", armored.out, secret(""), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  detail::OpenPgp pgp(env.gnupg_home(), env.data_dir() + "/tmp");
  auto states = pgp.agent_state(key->fingerprint);
  ASSERT_TRUE(states.ok());
  for (const auto& s : *states)
    EXPECT_EQ(s.protection, 'P');
  auto bad = KeysEnv::gpg(env.gnupg_home(), {"--pinentry-mode", "loopback", "--passphrase", "",
                                             "--armor", "--export-secret-keys"});
  EXPECT_EQ(bad.out.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(OpenPgpKeys, PassphraseChangeRewrapsOnlyAndKeepsTheKeyWorking) {
  KeyInfo key = generate();
  auto pub = store.export_public(key);
  std::string outside = env.outside_home("sender");
  std::string ct = gpg_encrypt_to(outside, *pub, key.fingerprint, "still readable");
  auto before = test::slurp(env.gnupg_home() + "/pubring.kbx");
  std::vector<std::string> key_files;
  for (const auto& e : std::filesystem::directory_iterator(env.gnupg_home() + "/private-keys-v1.d"))
    key_files.push_back(test::slurp(e.path().string()));

  EXPECT_EQ(store.change_passphrase(key, secret("wrong old one"), secret("new passphrase!")).code(),
            Errc::wrong_passphrase);
  EXPECT_EQ(store.change_passphrase(key, secret(kPass), secret("short")).code(),
            Errc::invalid_argument);
  ASSERT_TRUE(store.change_passphrase(key, secret(kPass), secret("new passphrase!")).ok());
  EXPECT_EQ(store.unlock(key, secret(kPass)).code(), Errc::wrong_passphrase);
  auto unlocked = store.unlock(key, secret("new passphrase!"));
  ASSERT_TRUE(unlocked.ok());
  auto dec = store.decrypt(*unlocked, ct);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(plaintext_of(*dec), "still readable");
  // The GnuPG home was not touched.
  std::vector<std::string> after_files;
  for (const auto& e : std::filesystem::directory_iterator(env.gnupg_home() + "/private-keys-v1.d"))
    after_files.push_back(test::slurp(e.path().string()));
  std::sort(key_files.begin(), key_files.end());
  std::sort(after_files.begin(), after_files.end());
  EXPECT_EQ(key_files, after_files);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.passwd' AND outcome = 'ok'"),
            1);
}

TEST_F(OpenPgpKeys, SecretExportIsProtectedByTheExportPassphrase) {
  KeyInfo key = generate();
  auto pub = store.export_public(key);
  std::string sender = env.outside_home("sender");
  std::string ct = gpg_encrypt_to(sender, *pub, key.fingerprint, "read me elsewhere");

  EXPECT_EQ(store.export_secret(key, secret("wrong passphrase"), secret("export pass 1")).code(),
            Errc::wrong_passphrase);
  auto exported = store.export_secret(key, secret(kPass), secret("export pass 1"));
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_NE(exported->find("BEGIN PGP PRIVATE KEY BLOCK"), std::string::npos);
  // No temporary home is left behind.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(env.data_dir() + "/tmp", ec))
    ADD_FAILURE() << "left behind: " << e.path();

  std::string elsewhere = env.outside_home("elsewhere");
  test::spit(env.path("exported.asc"), *exported);
  auto imp = KeysEnv::gpg(
      elsewhere,
      {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", env.path("exported.asc")},
      "export pass 1\n");
  ASSERT_EQ(imp.status, 0) << imp.err;
  test::spit(env.path("ct.asc"), ct);
  auto wrong = KeysEnv::gpg(
      elsewhere, {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", env.path("ct.asc")},
      std::string(kPass) + "\n");
  EXPECT_NE(wrong.status, 0);
  auto right = KeysEnv::gpg(
      elsewhere, {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", env.path("ct.asc")},
      "export pass 1\n");
  EXPECT_EQ(right.status, 0) << right.err;
  EXPECT_EQ(right.out, "read me elsewhere");
}

TEST_F(OpenPgpKeys, DeleteRemovesSecretAndPublicKeyAndPassesOnTheDefault) {
  KeyInfo first = generate();
  KeyInfo second = generate();
  EXPECT_EQ(first.default_for, std::vector<std::string>{"alice@example.org"});
  EXPECT_TRUE(second.default_for.empty());
  EXPECT_EQ(keys_in_home(true), 2);
  ASSERT_TRUE(store.remove(first).ok());
  EXPECT_EQ(keys_in_home(true), 1);
  EXPECT_EQ(keys_in_home(false), 1);
  auto d = store.find_default("ALICE@example.org", KeyType::openpgp);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->fingerprint, second.fingerprint);
  EXPECT_EQ(store.find(first.fingerprint).code(), Errc::not_found);
  EXPECT_EQ(store.unlock(first, secret(kPass)).code(), Errc::not_found);
  EXPECT_EQ(store.remove(first).code(), Errc::not_found);
  ASSERT_TRUE(store.remove(second).ok());
  EXPECT_EQ(keys_in_home(false), 0);
  EXPECT_EQ(store.find_default("alice@example.org", KeyType::openpgp).code(), Errc::not_found);
}

TEST_F(OpenPgpKeys, ExpiredKeysUnlockButDoNotSignAndRevokedKeysDoNotUnlock) {
  std::string outside = env.outside_home("user");
  auto [fpr, armored] = gpg_made_key(outside, "2d");
  auto key = store.import_openpgp("alice", armored, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  ASSERT_TRUE(key->expires);
  auto unlocked = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  env.clock().advance(std::chrono::hours(24 * 3));
  // Past its expiry: it still unlocks and decrypts (old mail stays readable), but
  // never signs, and says so in words.
  auto expired = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  EXPECT_NE(store.decrypt(*expired, "x").code(), Errc::expired);  // "x" is no message
  auto sig = store.sign(*expired, "data");
  EXPECT_EQ(sig.code(), Errc::expired);
  EXPECT_NE(sig.error().message.find("can no longer sign"), std::string::npos);
  env.clock().advance(-std::chrono::hours(24 * 3));

  std::string outside2 = env.outside_home("user2");
  std::string fpr2 = KeysEnv::gpg_make_key(outside2, "Alice <alice@work.example>", kFilePass);
  // The stored revocation certificate is commented out with a colon.
  auto text = test::slurp(outside2 + "/openpgp-revocs.d/" + fpr2 + ".rev");
  auto at = text.find(":-----BEGIN");
  ASSERT_NE(at, std::string::npos);
  text.erase(at, 1);
  test::spit(env.path("rev.asc"), text);
  auto rev = KeysEnv::gpg(outside2, {"--import", env.path("rev.asc")});
  ASSERT_EQ(rev.status, 0) << rev.err;
  auto armored2 = KeysEnv::gpg(outside2,
                               {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                                "--export-secret-keys", fpr2},
                               std::string(kFilePass) + "\n");
  auto revoked = store.import_openpgp("alice", armored2.out, secret(kFilePass), secret(kPass),
                                      std::string("alice@work.example"));
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(revoked->revoked);
  EXPECT_EQ(store.unlock(*revoked, secret(kPass)).code(), Errc::revoked);
}

TEST_F(OpenPgpKeys, MessageWithoutIntegrityProtectionIsRefused) {
  KeyInfo key = generate();
  auto pub = store.export_public(key);
  std::string outside = env.outside_home("sender");
  std::string ct = gpg_encrypt_to(outside, *pub, key.fingerprint, "tamperable",
                                  {"--rfc2440", "--cipher-algo", "CAST5"});
  auto unlocked = store.unlock(key, secret(kPass));
  auto dec = store.decrypt(*unlocked, ct);
  ASSERT_FALSE(dec.ok());
  EXPECT_EQ(dec.code(), Errc::crypto);
  EXPECT_NE(dec.error().message.find("integrity"), std::string::npos) << dec.error().message;
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.decrypt' AND outcome = "
                      "'fail'"),
            1);
}

TEST_F(OpenPgpKeys, TamperedMessageReleasesNothing) {
  KeyInfo key = generate();
  auto pub = store.export_public(key);
  std::string outside = env.outside_home("sender");
  ASSERT_EQ(KeysEnv::gpg(outside, {"--import"}, *pub).status, 0);
  // Uncompressed, so that a flipped byte lands in the literal data, not in a
  // compression stream that would fail on its own.
  auto ct =
      KeysEnv::gpg(outside, {"--trust-model", "always", "-z", "0", "-e", "-r", key.fingerprint},
                   std::string(4000, 'x'));
  ASSERT_EQ(ct.status, 0) << ct.err;
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  ASSERT_TRUE(store.decrypt(*unlocked, ct.out).ok());
  std::string tampered = ct.out;
  tampered[tampered.size() - 1000] ^= 0x20;
  auto dec = store.decrypt(*unlocked, tampered);
  ASSERT_FALSE(dec.ok());
  EXPECT_EQ(dec.code(), Errc::crypto) << dec.error().message;
  EXPECT_EQ(store.find_by_id(key.id)->fingerprint, key.fingerprint);
  EXPECT_EQ(store.find_by_id(key.id + 100).code(), Errc::not_found);
}

TEST_F(OpenPgpKeys, DecryptUsesOnlyTheUnlockedKey) {
  KeyInfo alice = generate("alice");
  KeyInfo bob = generate("bob");
  auto alice_pub = store.export_public(alice);
  auto bob_pub = store.export_public(bob);
  std::string outside = env.outside_home("sender");
  std::string to_bob = gpg_encrypt_to(outside, *bob_pub, bob.fingerprint, "for bob");
  auto imp = KeysEnv::gpg(outside, {"--import"}, *alice_pub);
  auto both = KeysEnv::gpg(
      outside,
      {"--trust-model", "always", "--armor", "-e", "-r", bob.fingerprint, "-r", alice.fingerprint},
      "for both");
  ASSERT_EQ(both.status, 0);

  auto unlocked = store.unlock(alice, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  auto wrong = store.decrypt(*unlocked, to_bob);
  EXPECT_EQ(wrong.code(), Errc::crypto);
  EXPECT_NE(wrong.error().message.find("not encrypted to"), std::string::npos)
      << wrong.error().message;
  auto ok = store.decrypt(*unlocked, both.out);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(plaintext_of(*ok), "for both");
  // Garbage and a signed-only message are not decryptable mail.
  EXPECT_FALSE(store.decrypt(*unlocked, "-----BEGIN PGP MESSAGE-----\n\nAAAA\n").ok());
  auto sig = store.sign(*unlocked, "x");
  EXPECT_FALSE(store.decrypt(*unlocked, sig->signature).ok());
}

TEST_F(OpenPgpKeys, GrantCanRebuildAnUnlockedKeyFromItsKeySecret) {
  KeyInfo key = generate();
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  auto copy = util::SecretBuffer::copy_of(unlocked->key_secret().bytes());
  auto again = store.from_key_secret(key, std::move(copy));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(store.sign(*again, "data").ok());
  EXPECT_EQ(store.from_key_secret(key, util::SecretBuffer::random(5)).code(), Errc::crypto);
  // A wrong key secret of the right size cannot sign: the agent refuses it.
  auto bogus = store.from_key_secret(key, util::SecretBuffer::random(32));
  ASSERT_TRUE(bogus.ok());
  EXPECT_FALSE(store.sign(*bogus, "data").ok());
}

// Autocrypt Level 1 wants the key small: the primary key, the encryption subkey and
// the user id for the address, with the owner's self-signatures only.
TEST_F(OpenPgpKeys, AutocryptKeydataIsMinimalAndGpgReadsItAsTheSameKey) {
  std::string outside = env.outside_home("ac");
  auto fpr = KeysEnv::gpg_make_key(outside, "Alice Example <alice@example.org>", kFilePass);
  auto pass = std::string(kFilePass) + "\n";
  ASSERT_EQ(KeysEnv::gpg(outside,
                         {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--quick-add-uid",
                          fpr, "Other <other@elsewhere.example>"},
                         pass)
                .status,
            0);
  ASSERT_EQ(KeysEnv::gpg(outside,
                         {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--quick-add-key",
                          fpr, "ed25519", "sign"},
                         pass)
                .status,
            0);
  // A third-party certification on the address's user id: not for Autocrypt.
  std::string certifier = env.outside_home("certifier");
  auto cfpr = KeysEnv::gpg_make_key(certifier, "Cert <cert@elsewhere.example>", "");
  auto pub = KeysEnv::gpg(outside, {"--armor", "--export", fpr});
  ASSERT_EQ(KeysEnv::gpg(certifier, {"--import"}, pub.out).status, 0);
  ASSERT_EQ(KeysEnv::gpg(certifier, {"--pinentry-mode", "loopback", "--passphrase", "",
                                     "--quick-sign-key", fpr, "alice@example.org"})
                .status,
            0);
  auto certified = KeysEnv::gpg(certifier, {"--armor", "--export", fpr});
  ASSERT_EQ(KeysEnv::gpg(outside, {"--import"}, certified.out).status, 0);
  auto exported = KeysEnv::gpg(outside,
                               {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                                "--export-secret-keys", fpr},
                               pass);
  ASSERT_EQ(exported.status, 0) << exported.err;
  auto key = store.import_openpgp("alice", exported.out, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;

  auto keydata = store.export_autocrypt(*key, "Alice@Example.org");
  ASSERT_TRUE(keydata.ok()) << keydata.error().message;
  EXPECT_NE(keydata->front(), '-') << "binary, not armored";
  // What an outside gpg reads from it.
  std::string reader = env.outside_home("reader");
  auto shown = KeysEnv::gpg(reader, {"--with-colons", "--import-options", "show-only", "--import"},
                            *keydata);
  ASSERT_EQ(shown.status, 0) << shown.err;
  int uids = 0, subkeys = 0;
  std::string fprs;
  for (std::size_t pos = 0; pos < shown.out.size();) {
    auto nl = shown.out.find('\n', pos);
    std::string line =
        shown.out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? shown.out.size() : nl + 1;
    if (line.starts_with("uid:")) {
      ++uids;
      EXPECT_NE(line.find("alice@example.org"), std::string::npos) << line;
    }
    if (line.starts_with("sub:")) {
      ++subkeys;
      // Field 12: the key's capabilities; an encryption subkey only.
      EXPECT_NE(line.find(":e:"), std::string::npos) << line;
    }
    if (line.starts_with("fpr:") && fprs.empty())
      fprs = line;
  }
  EXPECT_EQ(uids, 1) << shown.out;
  EXPECT_EQ(subkeys, 1) << shown.out;
  EXPECT_NE(fprs.find(fpr), std::string::npos) << shown.out;
  auto packets = KeysEnv::gpg(reader, {"--list-packets"}, *keydata);
  EXPECT_EQ(packets.out.find(cfpr.substr(24)), std::string::npos)
      << "the third-party certification is dropped";
  // Sanity of the check above: the full export does hold the certification.
  auto full = KeysEnv::gpg(reader, {"--list-packets"}, certified.out);
  EXPECT_NE(full.out.find(cfpr.substr(24)), std::string::npos) << full.out;

  // Not for an address the key does not serve, nor for an S/MIME key.
  EXPECT_EQ(store.export_autocrypt(*key, "other@elsewhere.example").code(), Errc::invalid_argument);
}

}  // namespace

}  // namespace wmk::keys
