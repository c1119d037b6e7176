// The GnuPG home as a cache of the store (docs/security.md, "Key material in the
// store"): the store holds each OpenPGP key's secret material, still protected under
// its key secret; a node whose home lacks a key, holds an old version of it or holds a
// key deleted elsewhere is brought in line at the key's next use. "Node B" is a second
// data directory (its own GnuPG home) on the same store, as nodes behind a load
// balancer share one PostgreSQL.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/keys/home_cache.h"
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

class HomeCacheTest : public ::testing::Test {
 protected:
  KeysEnv env;
  KeyStore store = env.store();
  // Node B: its own data directory and GnuPG home, the same database.
  std::string b_dir = env.path("node-b");
  std::optional<app::App> b_app;

  void SetUp() override {
    detail::HomeCache::forget_all();
    std::filesystem::create_directories(b_dir + "/tmp");
    config::Config cfg = env.app().config;
    cfg.data_dir = b_dir;
    auto db = store::Db::open(env.app().config.database_path(), store::OpenMode::must_exist);
    ASSERT_TRUE(db.ok()) << db.error().message;
    b_app.emplace(app::App{cfg, std::move(db).value(), &env.clock()});
  }
  void TearDown() override { (void)stop_agent(b_dir + "/gnupg"); }

  KeyStore b_store() {
    return KeyStore(b_app->db, b_app->config, *b_app->clock, Actor{"test-b", "", ""});
  }

  KeyInfo generate(KeyStore& on, const std::string& login = "alice") {
    GenerateOptions o;
    o.type = KeyType::openpgp;
    auto g = on.generate(login, o, secret(kPass));
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g->key;
  }

  // Real gpg, outside: encrypts text to the key's public key as the store exports it.
  std::string encrypt_to(const KeyInfo& key, const std::string& text) {
    auto pub = store.export_public(key);
    EXPECT_TRUE(pub.ok());
    std::string home = env.outside_home("sender-" + key.fingerprint.substr(0, 8));
    EXPECT_EQ(KeysEnv::gpg(home, {"--import"}, *pub).status, 0);
    auto enc = KeysEnv::gpg(
        home, {"--trust-model", "always", "--armor", "-e", "-r", key.fingerprint}, text);
    EXPECT_EQ(enc.status, 0) << enc.err;
    return enc.out;
  }

  bool home_has_secret(const std::string& home, const std::string& fpr) {
    auto r = KeysEnv::gpg(home, {"--with-colons", "--list-secret-keys", fpr});
    return r.status == 0 && r.out.find("sec:") != std::string::npos;
  }

  std::string stored_material(const KeyInfo& key) {
    auto st = env.app().db.prepare("SELECT openpgp_secret FROM keys WHERE id = ?");
    st.bind(1, key.id);
    if (!st.step() || st.column_is_null(0))
      return "";
    auto b = st.column_blob(0);
    return std::string(b.begin(), b.end());
  }
};

TEST_F(HomeCacheTest, GeneratedAndImportedKeysStoreProtectedMaterial) {
  KeyInfo made = generate(store);
  std::string outside = env.outside_home("maker");
  std::string fpr = KeysEnv::gpg_make_key(outside, "Bob Example <bob@example.org>", kFilePass);
  auto exp = KeysEnv::gpg(outside,
                          {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                           "--export-secret-keys", fpr},
                          std::string(kFilePass) + "\n");
  ASSERT_EQ(exp.status, 0) << exp.err;
  auto imported = store.import_openpgp("bob", exp.out, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(imported.ok()) << imported.error().message;
  for (const KeyInfo& k : {made, *imported}) {
    std::string m = stored_material(k);
    ASSERT_FALSE(m.empty()) << k.fingerprint;
    auto files = detail::decode_agent_keys(m);
    ASSERT_TRUE(files.ok()) << files.error().message;
    EXPECT_EQ(files->size(), 2u);  // primary key and encryption subkey
    for (const auto& f : *files) {
      // What the agent wrote, under the key secret: byte for byte the home's file.
      EXPECT_EQ(f.content,
                test::slurp(env.gnupg_home() + "/private-keys-v1.d/" + f.keygrip + ".key"));
      EXPECT_NE(f.content.find("protected-private-key"), std::string::npos);
    }
    // Neither the key passphrase nor the file's opens it: only the key secret would.
    EXPECT_EQ(m.find(kPass), std::string::npos);
    EXPECT_EQ(m.find(kFilePass), std::string::npos);
  }
}

TEST_F(HomeCacheTest, UnprotectedOrDamagedMaterialIsNeverWrittenIntoAHome) {
  const std::string grip(40, 'A');
  for (const std::string& content :
       {std::string("(11:private-key(3:ecc(5:curve7:Ed25519)(1:q1:x)(1:d1:y)))"),
        std::string("Key: (private-key (ecc (curve Ed25519) (q #00#) (d #00#)))\n"),
        std::string("(21:protected-private-key(3:rsa(9:protected14:openpgp-native)))"),
        std::string("(20:shadowed-private-key(3:rsa))")}) {
    auto d = detail::decode_agent_keys(detail::encode_agent_keys({{grip, content}}));
    EXPECT_EQ(d.code(), Errc::corrupt) << content;
  }
  std::string good = detail::encode_agent_keys(
      {{grip, "Key: (protected-private-key (ecc (protected openpgp-s2k3-ocb-aes)))\n"}});
  EXPECT_TRUE(detail::decode_agent_keys(good).ok());
  EXPECT_EQ(detail::decode_agent_keys(good.substr(0, good.size() - 3)).code(), Errc::corrupt);
  EXPECT_EQ(detail::decode_agent_keys("junk").code(), Errc::corrupt);
}

TEST_F(HomeCacheTest, DeletedGnupgHomeIsRebuiltAtTheNextDecryptAndSign) {
  KeyInfo key = generate(store);
  std::string ct = encrypt_to(key, "read me after the home is gone");
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  ASSERT_TRUE(store.decrypt(*unlocked, ct).ok());  // this process has seen the home
  ASSERT_TRUE(stop_agent(env.gnupg_home()).ok());
  std::filesystem::remove_all(env.gnupg_home());

  auto again = store.decrypt(*unlocked, ct);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(plaintext_of(*again), "read me after the home is gone");
  auto sig = store.sign(*unlocked, "signed after the rebuild");
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_TRUE(home_has_secret(env.gnupg_home(), key.fingerprint));
  // The rebuilt home has the settings init gives it: no caching agent.
  EXPECT_TRUE(check_gnupg_home(env.gnupg_home()).ok());
}

TEST_F(HomeCacheTest, KeyDeletedFromTheHomeByHandIsRestored) {
  KeyInfo key = generate(store);
  std::string ct = encrypt_to(key, "restored");
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  ASSERT_TRUE(store.decrypt(*unlocked, ct).ok());
  auto del =
      KeysEnv::gpg(env.gnupg_home(), {"--yes", "--delete-secret-and-public-key", key.fingerprint});
  ASSERT_EQ(del.status, 0) << del.err;
  ASSERT_FALSE(home_has_secret(env.gnupg_home(), key.fingerprint));
  auto again = store.decrypt(*unlocked, ct);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(plaintext_of(*again), "restored");
}

TEST_F(HomeCacheTest, KeyMadeOnNodeAIsUsedOnNodeB) {
  KeyInfo key = generate(store);
  std::string ct = encrypt_to(key, "unlocked on A, read on B");
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  // A grant carries the key secret from node A's request to node B's.
  KeyStore b = b_store();
  auto on_b = b.from_key_secret(key, util::SecretBuffer::copy_of(unlocked->key_secret().bytes()));
  ASSERT_TRUE(on_b.ok()) << on_b.error().message;
  ASSERT_FALSE(home_has_secret(b_dir + "/gnupg", key.fingerprint));
  auto out = b.decrypt(*on_b, ct);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(plaintext_of(*out), "unlocked on A, read on B");
  EXPECT_TRUE(home_has_secret(b_dir + "/gnupg", key.fingerprint));
  // A signature made on B verifies on A, and one made on A on B, whose home never had
  // the signer's public key before the key was used there.
  auto sig = b.sign(*on_b, "signed on B");
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  auto v = store.verify(KeyType::openpgp, "signed on B", sig->signature);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->signatures.at(0).status, SignatureStatus::good);
}

TEST_F(HomeCacheTest, SignerKnownOnlyToTheStoreVerifiesOnANodeThatNeverUsedIt) {
  KeyInfo key = generate(store);
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  auto sig = store.sign(*unlocked, "signed on A");
  ASSERT_TRUE(sig.ok());
  KeyStore b = b_store();
  auto v = b.verify(KeyType::openpgp, "signed on A", sig->signature);
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->signatures.size(), 1u);
  EXPECT_EQ(v->signatures[0].status, SignatureStatus::good) << v->signatures[0].detail;
  EXPECT_EQ(v->signatures[0].fingerprint, key.fingerprint);
}

TEST_F(HomeCacheTest, KeyDeletedOnNodeBFailsOnNodeAWithNotFoundAndLeavesItsHome) {
  KeyInfo key = generate(store);
  std::string ct = encrypt_to(key, "gone");
  auto unlocked = store.unlock(key, secret(kPass));
  ASSERT_TRUE(unlocked.ok());
  ASSERT_TRUE(store.decrypt(*unlocked, ct).ok());
  KeyStore b = b_store();
  ASSERT_TRUE(b.remove(key).ok());
  // Node A's next use: the row is gone, so is the key, and A's home lets it go.
  auto again =
      store.from_key_secret(key, util::SecretBuffer::copy_of(unlocked->key_secret().bytes()));
  EXPECT_EQ(again.code(), Errc::not_found);
  EXPECT_EQ(store.decrypt(*unlocked, ct).code(), Errc::not_found);
  EXPECT_FALSE(home_has_secret(env.gnupg_home(), key.fingerprint));
  EXPECT_EQ(store.unlock(key, secret(kPass)).code(), Errc::not_found);
}

TEST_F(HomeCacheTest, ReimportedKeyReplacesTheOldVersionInAnotherNodesHome) {
  std::string outside = env.outside_home("maker");
  std::string fpr = KeysEnv::gpg_make_key(outside, "Alice Example <alice@example.org>", kFilePass);
  auto exp = KeysEnv::gpg(outside,
                          {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                           "--export-secret-keys", fpr},
                          std::string(kFilePass) + "\n");
  ASSERT_EQ(exp.status, 0);
  auto first = store.import_openpgp("alice", exp.out, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::string ct = encrypt_to(*first, "after the re-import");
  KeyStore b = b_store();
  {
    auto u = b.unlock(*first, secret(kPass));
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE(b.decrypt(*u, ct).ok());  // node B's home holds the first version
  }
  // Node A deletes and imports it again: a new key secret protects new agent files.
  ASSERT_TRUE(store.remove(*first).ok());
  auto second = store.import_openpgp("alice", exp.out, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_NE(stored_material(*second), "");
  auto u = b.unlock(*second, secret(kPass));
  ASSERT_TRUE(u.ok()) << u.error().message;
  auto out = b.decrypt(*u, ct);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(plaintext_of(*out), "after the re-import");
  auto files = detail::decode_agent_keys(stored_material(*second));
  ASSERT_TRUE(files.ok());
  const std::vector<detail::AgentKeyFile> parts = std::move(files).value();
  for (const auto& f : parts)
    EXPECT_EQ(test::slurp(b_dir + "/gnupg/private-keys-v1.d/" + f.keygrip + ".key"), f.content);
}

TEST_F(HomeCacheTest, KeyOlderThanStoredMaterialIsFilledOnItsNodeAndRefusedElsewhere) {
  KeyInfo key = generate(store);
  std::string ct = encrypt_to(key, "old key");
  // As a key made before migration 7 looks.
  env.app().db.exec("UPDATE keys SET openpgp_secret = NULL, material_digest = NULL");
  detail::HomeCache::forget_all();
  KeyStore b = b_store();
  auto refused = b.unlock(key, secret(kPass));
  ASSERT_EQ(refused.code(), Errc::disabled);
  EXPECT_NE(refused.error().message.find("webmailkey fsck"), std::string::npos)
      << refused.error().message;

  auto dry = store.fill_key_material(store::PurgeMode::dry_run);
  ASSERT_TRUE(dry.ok()) << dry.error().message;
  EXPECT_EQ(dry->filled, std::vector<std::string>{key.fingerprint});
  EXPECT_EQ(stored_material(key), "");
  // Node B's home lacks it: B lists it as missing, and fills nothing.
  auto on_b = b.fill_key_material(store::PurgeMode::remove);
  ASSERT_TRUE(on_b.ok());
  EXPECT_EQ(on_b->missing, std::vector<std::string>{key.fingerprint});
  auto filled = store.fill_key_material(store::PurgeMode::remove);
  ASSERT_TRUE(filled.ok());
  EXPECT_EQ(filled->filled, std::vector<std::string>{key.fingerprint});
  EXPECT_NE(stored_material(key), "");

  auto u = b.unlock(key, secret(kPass));
  ASSERT_TRUE(u.ok()) << u.error().message;
  auto out = b.decrypt(*u, ct);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(plaintext_of(*out), "old key");
}

TEST_F(HomeCacheTest, KeyOlderThanStoredMaterialIsFilledAtItsNextUnlock) {
  KeyInfo key = generate(store);
  env.app().db.exec("UPDATE keys SET openpgp_secret = NULL, material_digest = NULL");
  detail::HomeCache::forget_all();
  ASSERT_TRUE(store.unlock(key, secret(kPass)).ok());
  EXPECT_NE(stored_material(key), "");
}

}  // namespace

}  // namespace wmk::keys
