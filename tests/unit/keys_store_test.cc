// KeyStore bookkeeping: lookup by fingerprint prefix and address, defaults, audit,
// input checks, and the atomicity of passphrase changes under SIGKILL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include "core/keys/keystore.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::keys {

namespace {

using test::KeysEnv;
using test::secret;

constexpr const char* kPass = "correct horse battery";

std::string lower_copy(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class KeyStoreTest : public ::testing::Test {
 protected:
  KeysEnv env;
  KeyStore store = env.store();

  KeyInfo smime_key(const std::string& login = "alice",
                    std::optional<std::string> email = std::nullopt) {
    GenerateOptions o;
    o.type = KeyType::smime;
    o.algorithm = "p256";
    o.email = std::move(email);
    auto g = store.generate(login, o, secret(kPass));
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g->key;
  }
};

TEST_F(KeyStoreTest, FindsByFingerprintOrUniquePrefix) {
  KeyInfo k = smime_key();
  for (const std::string& spelling :
       {k.fingerprint, "0x" + k.fingerprint, lower_copy(k.fingerprint),
        k.fingerprint.substr(0, 4) + " " + k.fingerprint.substr(4, 4) + ":" +
            k.fingerprint.substr(8)}) {
    auto f = store.find(spelling);
    ASSERT_TRUE(f.ok()) << spelling << ": " << f.error().message;
    EXPECT_EQ(f->id, k.id);
  }
  auto unique = store.find(k.fingerprint.substr(0, 8));
  ASSERT_TRUE(unique.ok());
  EXPECT_EQ(unique->fingerprint, k.fingerprint);
  EXPECT_EQ(store.find(k.fingerprint.substr(0, 7)).code(), Errc::invalid_argument);
  EXPECT_EQ(store.find("zz-not-hex").code(), Errc::invalid_argument);
  EXPECT_EQ(store.find("").code(), Errc::invalid_argument);

  // Two rows whose fingerprints share 12 digits (planted: random keys almost never do).
  env.app().db.exec(
      "INSERT INTO keys (fingerprint, user_id, type, algorithm, created, kdf, kdf_params, "
      "kdf_salt, wrapped_secret) VALUES "
      "('ABCDEF0123451111111111111111111111111111', 1, 'openpgp', 'x', 0, 'argon2id', "
      "'m=64,t=1,p=1', x'00', x'00'),"
      "('ABCDEF0123452222222222222222222222222222', 2, 'openpgp', 'x', 0, 'argon2id', "
      "'m=64,t=1,p=1', x'00', x'00')");
  auto ambiguous = store.find("abcdef012345");
  EXPECT_EQ(ambiguous.code(), Errc::invalid_argument);
  EXPECT_NE(ambiguous.error().message.find("ABCDEF0123451111111111111111111111111111 (openpgp, "
                                           "alice)"),
            std::string::npos)
      << ambiguous.error().message;
  EXPECT_NE(ambiguous.error().message.find("ABCDEF0123452222222222222222222222222222"),
            std::string::npos);
  EXPECT_EQ(store.find("ABCDEF01234522")->login, "bob");
  EXPECT_EQ(store.find("ABCDEF0199").code(), Errc::not_found);
}

TEST_F(KeyStoreTest, DefaultsArePerAddressAndType) {
  KeyInfo a1 = smime_key("alice");
  KeyInfo a2 = smime_key("alice");
  KeyInfo a3 = smime_key("alice");
  KeyInfo w1 = smime_key("alice", "alice@work.example");
  EXPECT_EQ(a1.default_for, std::vector<std::string>{"alice@example.org"});
  EXPECT_TRUE(a2.default_for.empty());
  EXPECT_EQ(w1.default_for, std::vector<std::string>{"alice@work.example"});
  EXPECT_EQ(store.find_default("alice@example.org", KeyType::smime)->id, a1.id);
  EXPECT_EQ(store.find_default("Alice@Work.Example", KeyType::smime)->id, w1.id);
  EXPECT_EQ(store.find_default("alice@example.org", KeyType::openpgp).code(), Errc::not_found);
  EXPECT_EQ(store.find_default("nobody@example.org", KeyType::smime).code(), Errc::not_found);
  // Removing the default passes the role to the newest other key for the address.
  ASSERT_TRUE(store.remove(a1).ok());
  EXPECT_EQ(store.find_default("alice@example.org", KeyType::smime)->id, a3.id);
  ASSERT_TRUE(store.remove(a3).ok());
  EXPECT_EQ(store.find_default("alice@example.org", KeyType::smime)->id, a2.id);
  smime_key("alice");
  // The index allows one default per address and type.
  EXPECT_THROW(env.app().db.exec("UPDATE key_emails SET is_default = 1"), store::StoreError);
}

TEST_F(KeyStoreTest, ListsAllOrOneUsersKeys) {
  smime_key("alice");
  smime_key("bob");
  smime_key("alice", "alice@work.example");
  auto all = store.list();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(all->front().login, "alice");
  auto bobs = store.list(std::string("bob"));
  ASSERT_TRUE(bobs.ok());
  ASSERT_EQ(bobs->size(), 1u);
  EXPECT_EQ(bobs->front().emails, std::vector<std::string>{"bob@example.org"});
  EXPECT_EQ(store.list(std::string("carol")).code(), Errc::not_found);
}

TEST_F(KeyStoreTest, NewPassphrasesHaveTheConfiguredMinimumInCharacters) {
  GenerateOptions o;
  o.type = KeyType::smime;
  o.algorithm = "p256";
  // Seven umlauts are 14 bytes but seven characters: too short for the default 8.
  const std::string seven = "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4";
  auto short_gen = store.generate("alice", o, secret(seven));
  ASSERT_EQ(short_gen.code(), Errc::invalid_argument);
  const std::string& msg = short_gen.error().message;
  EXPECT_NE(msg.find("key passphrase is too short: it has 7 characters, the minimum is 8"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("key_passphrase_min_length"), std::string::npos) << msg;
  auto eight = store.generate("alice", o, secret(seven + "\xc3\xa4"));
  ASSERT_TRUE(eight.ok()) << eight.error().message;

  // A raised minimum applies to new passphrases only: the key made before it still
  // opens, but passwd, generate and a secret export need the longer one.
  KeyInfo k = smime_key("bob");  // kPass: 21 characters
  env.app().config.key_passphrase_min_length = 30;
  auto raised = store.generate("bob", o, secret(kPass));
  ASSERT_EQ(raised.code(), Errc::invalid_argument);
  EXPECT_NE(raised.error().message.find("it has 21 characters, the minimum is 30"),
            std::string::npos)
      << raised.error().message;
  EXPECT_TRUE(store.unlock(k, secret(kPass)).ok());
  auto passwd = store.change_passphrase(k, secret(kPass), secret("twenty-nine characters long!!"));
  ASSERT_EQ(passwd.code(), Errc::invalid_argument);
  EXPECT_NE(passwd.error().message.find("minimum is 30"), std::string::npos);
  auto exported = store.export_secret(k, secret(kPass), secret("a short export pass"));
  ASSERT_EQ(exported.code(), Errc::invalid_argument);
  EXPECT_NE(exported.error().message.find("export passphrase is too short"), std::string::npos)
      << exported.error().message;
  EXPECT_TRUE(
      store.change_passphrase(k, secret(kPass), secret("thirty characters, long enough")).ok());
  EXPECT_TRUE(store.unlock(k, secret("thirty characters, long enough")).ok());
}

TEST_F(KeyStoreTest, GenerateChecksItsInputAndAuditsFailures) {
  GenerateOptions o;
  o.type = KeyType::smime;
  EXPECT_EQ(store.generate("nobody", o, secret(kPass)).code(), Errc::not_found);
  o.email = "bob@example.org";
  EXPECT_EQ(store.generate("alice", o, secret(kPass)).code(), Errc::invalid_argument);
  o.email.reset();
  EXPECT_EQ(store.generate("alice", o, secret("short")).code(), Errc::invalid_argument);
  o.algorithm = "rsa512";
  EXPECT_EQ(store.generate("alice", o, secret(kPass)).code(), Errc::invalid_argument);
  EXPECT_EQ(env.count("SELECT count(*) FROM keys"), 0);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.generate' AND outcome = "
                      "'fail'"),
            4);
}

TEST_F(KeyStoreTest, AuditRowsSayWhoWhichWhatWhenAndOutcome) {
  KeyInfo k = smime_key();
  env.clock().advance(std::chrono::seconds(5));
  auto u = store.unlock(k, secret(kPass));
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(store.sign(*u, "data").ok());
  EXPECT_EQ(store.unlock(k, secret("wrong passphrase")).code(), Errc::wrong_passphrase);
  auto st = env.app().db.prepare(
      "SELECT at, login, event, outcome, key_fpr, detail FROM audit ORDER BY id");
  std::vector<std::string> events;
  while (st.step()) {
    events.push_back(st.column_text(2) + "/" + st.column_text(3));
    EXPECT_EQ(st.column_text(1), "alice");
    EXPECT_EQ(st.column_text(4), k.fingerprint);
    EXPECT_EQ(st.column_text(5).rfind("by test", 0), 0u) << st.column_text(5);
    EXPECT_GE(st.column_int(0), env.clock().now() - 5);
  }
  EXPECT_EQ(events, (std::vector<std::string>{"key.generate/ok", "key.unlock/ok", "key.sign/ok",
                                              "key.unlock/fail"}));
  EXPECT_EQ(
      KeyStore(env.app().db, env.app().config, *env.app().clock).unlock(k, secret(kPass)).ok(),
      true);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE detail LIKE 'by cli:%'"), 1);
}

TEST_F(KeyStoreTest, KeySecretFromElsewhereMustOpenTheKey) {
  KeyInfo k = smime_key();
  auto u = store.unlock(k, secret(kPass));
  ASSERT_TRUE(u.ok());
  auto copy = util::SecretBuffer::copy_of(u->key_secret().bytes());
  auto again = store.from_key_secret(k, std::move(copy));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(store.sign(*again, "x").ok());
  EXPECT_EQ(store.from_key_secret(k, util::SecretBuffer::random(32)).code(), Errc::crypto);
  ASSERT_TRUE(store.remove(k).ok());
  EXPECT_EQ(store.from_key_secret(k, util::SecretBuffer::random(32)).code(), Errc::not_found);
  EXPECT_EQ(store.sign(*again, "x").code(), Errc::not_found);
}

TEST_F(KeyStoreTest, WrappedSecretIsBoundToItsRow) {
  KeyInfo a = smime_key();
  KeyInfo b = smime_key();
  // Moving b's protection onto a's row (same passphrase) must not open a.
  env.app().db.exec(
      "UPDATE keys SET kdf_salt = (SELECT kdf_salt FROM keys WHERE id = " + std::to_string(b.id) +
      "), wrapped_secret = (SELECT wrapped_secret FROM keys WHERE id = " + std::to_string(b.id) +
      ") WHERE id = " + std::to_string(a.id));
  EXPECT_EQ(store.unlock(a, secret(kPass)).code(), Errc::wrong_passphrase);
  env.app().db.exec("UPDATE keys SET wrapped_secret = x'00' WHERE id = " + std::to_string(b.id));
  EXPECT_EQ(store.unlock(b, secret(kPass)).code(), Errc::corrupt);
}

// A passphrase change killed at any moment leaves the old or the new passphrase
// working, never neither.
TEST_F(KeyStoreTest, PassphraseChangeKilledAtAnyMomentLeavesOldOrNew) {
  KeyInfo k = smime_key();
  const std::string pass_a = kPass;
  const std::string pass_b = "the other passphrase";
  std::mt19937 rng(12345);
  // Each kill lands within a few changes after the child's first one (it says when over a
  // pipe), timed here: a sanitizer build on a loaded machine takes longer to start and
  // to change than any fixed delay allows, and kills before the first change would all
  // see the old passphrase.
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(store.change_passphrase(k, secret(pass_a), secret(pass_b)).ok());
  ASSERT_TRUE(store.change_passphrase(k, secret(pass_b), secret(pass_a)).ok());
  auto per_change =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count() /
      2;
  int latest = static_cast<int>(std::max<long long>(2000, 4 * per_change));
  int saw_a = 0, saw_b = 0;
  for (int round = 0; round < 25; ++round) {
    int started[2];
    ASSERT_EQ(pipe(started), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(started[0]);
      // The child: its own connection, changing back and forth until killed.
      auto a = app::open(env.config_path(), env.clock());
      if (!a)
        _exit(3);
      KeyStore child(a->db, a->config, *a->clock, Actor{"child", "", ""});
      auto info = child.find(k.fingerprint);
      if (!info)
        _exit(4);
      // Start from whichever passphrase works now.
      bool on_a = child.unlock(*info, secret(pass_a)).ok();
      for (;;) {
        const std::string& from = on_a ? pass_a : pass_b;
        const std::string& to = on_a ? pass_b : pass_a;
        if (!child.change_passphrase(*info, secret(from), secret(to)).ok())
          _exit(5);
        on_a = !on_a;
        if (started[1] >= 0) {
          (void)!::write(started[1], "1", 1);
          ::close(started[1]);
          started[1] = -1;
        }
      }
    }
    ::close(started[1]);
    char one = 0;
    ASSERT_EQ(::read(started[0], &one, 1), 1) << "the child made no change";
    ::close(started[0]);
    std::uniform_int_distribution<int> delay(0, latest);
    usleep(static_cast<useconds_t>(delay(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child stopped by itself: " << WEXITSTATUS(status);
    bool a_ok = store.unlock(k, secret(pass_a)).ok();
    bool b_ok = store.unlock(k, secret(pass_b)).ok();
    EXPECT_NE(a_ok, b_ok) << "round " << round;
    saw_a += a_ok;
    saw_b += b_ok;
  }
  // Both outcomes happened, so the kills landed at different points.
  EXPECT_GT(saw_a, 0);
  EXPECT_GT(saw_b, 0);
}

}  // namespace

}  // namespace wmk::keys

namespace wmk::keys {

TEST(FingerprintPrefix, AnyCaseSeparatorsAndPrefixesNormalize) {
  EXPECT_EQ(*normalize_fingerprint_prefix("7449e678cd55"), "7449E678CD55");
  EXPECT_EQ(*normalize_fingerprint_prefix("0x7449 E678:CD55"), "7449E678CD55");
  auto too_short = normalize_fingerprint_prefix("7449e6");
  ASSERT_FALSE(too_short.ok());
  EXPECT_EQ(too_short.code(), Errc::invalid_argument);
  EXPECT_NE(too_short.error().message.find("at least 8"), std::string::npos);
  auto not_hex = normalize_fingerprint_prefix("alice@example.org");
  ASSERT_FALSE(not_hex.ok());
  EXPECT_NE(not_hex.error().message.find("not a key fingerprint"), std::string::npos);
}

}  // namespace wmk::keys
