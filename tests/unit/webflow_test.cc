// core/webflow: the browser's key flows against real SQLite, a real GnuPG home and
// messages encrypted by real gpg (a key made by gpg in an outside home and imported).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <latch>
#include <random>
#include <set>
#include <thread>

#include "core/audit/audit.h"
#include "core/auth/throttle.h"
#include "core/config/config.h"
#include "core/grant/cookie.h"
#include "core/mail/maildir.h"
#include "core/session/session.h"
#include "core/util/encoding.h"
#include "core/webflow/correspondents.h"
#include "core/webflow/flow.h"
#include "core/webflow/key_session.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::webflow {

namespace {

using test::KeysEnv;
using test::secret;

constexpr const char* kKeyPass = "alice key passphrase";
constexpr const char* kFilePass = "gpg file passphrase";
constexpr const char* kSecretText = "meet at the north gate at noon";

class WebflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = env.outside_home("gpg-outside");
    fpr_ = KeysEnv::gpg_make_key(home_, "Alice <alice@example.org>", kFilePass);
    auto exported = KeysEnv::gpg(home_,
                                 {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                                  "--export-secret-keys", fpr_},
                                 std::string(kFilePass) + "\n");
    ASSERT_EQ(exported.status, 0) << exported.err;
    auto store = env.store();
    auto key = store.import_openpgp("alice", exported.out, secret(kFilePass), secret(kKeyPass));
    ASSERT_TRUE(key.ok()) << key.error().message;
    key_ = *key;
    uid_ = deliver("alice", pgp_mime(kSecretText));
    alice1_ = new_session("alice", "192.0.2.1", "Browser-One");
    alice2_ = new_session("alice", "192.0.2.2", "Browser-Two");
  }

  std::string pgp_mime(const std::string& text) {
    std::string inner = "Content-Type: text/plain; charset=utf-8\n\n" + text + "\n";
    auto enc = KeysEnv::gpg(home_, {"--trust-model", "always", "--armor", "-r", fpr_, "-e"}, inner);
    EXPECT_EQ(enc.status, 0) << enc.err;
    return "From: Erin <erin@example.net>\nTo: alice@example.org\nSubject: Secret\n"
           "MIME-Version: 1.0\nContent-Type: multipart/encrypted; "
           "protocol=\"application/pgp-encrypted\"; boundary=\"b1\"\n\n"
           "--b1\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n"
           "--b1\nContent-Type: application/octet-stream\n\n" +
           enc.out + "\n--b1--\n";
  }

  std::string deliver(const std::string& login, const std::string& message) {
    std::string email = login + "@example.org";
    mail::Maildir md(config::maildir_for(env.app().config, login, email), env.clock());
    EXPECT_TRUE(md.ensure().ok());
    auto uid = md.deliver(mail::Folder::inbox, message);
    EXPECT_TRUE(uid.ok());
    return *uid;
  }

  session::Session new_session(const std::string& login, const std::string& addr,
                               const std::string& agent) {
    auth::UserStore users(env.app().db, env.clock());
    auto user = users.find(login);
    EXPECT_TRUE(user.has_value());
    session::SessionStore sessions(env.app().db, env.clock(), env.app().config);
    auto s = sessions.create(user->id, addr, agent);
    EXPECT_TRUE(s.ok());
    return s->session;
  }

  MessageRef ref() const { return MessageRef{mail::Folder::inbox, uid_}; }
  Client client1() const { return Client{"192.0.2.1", "Browser-One"}; }
  Client client2() const { return Client{"192.0.2.2", "Browser-Two"}; }

  // Unlocks key_ for s (which then names the session by its new id); returns the
  // grant secret.
  util::SecretBuffer unlock_ok(session::Session& s, const Client& c,
                               const std::optional<util::SecretBuffer>& cookie = std::nullopt) {
    auto r = unlock(env.app(), s, key_, secret(kKeyPass), secret(kKeyPass), Confirmation::required,
                    cookie, c);
    EXPECT_TRUE(r.ok()) << r.error().message;
    auto* u = std::get_if<Unlocked>(&*r);
    EXPECT_NE(u, nullptr);
    s = u->session;
    return util::SecretBuffer::copy_of(u->grant_secret.bytes());
  }

  std::uint32_t key_failures() {
    auth::Throttle t(env.app().db, env.clock(), auth::throttle_policy(env.app().config));
    return t.failures(auth::key_scope(key_.fingerprint));
  }

  int audit_count(const std::string& event, const std::string& outcome) {
    auto st = env.app().db.prepare("SELECT count(*) FROM audit WHERE event = ? AND outcome = ?");
    st.bind_all(event, outcome);
    st.step();
    return static_cast<int>(st.column_int(0));
  }

  KeysEnv env;
  std::string home_;
  std::string fpr_;
  keys::KeyInfo key_;
  std::string uid_;
  session::Session alice1_;
  session::Session alice2_;
};

TEST_F(WebflowTest, DecryptNeedsUnlockThenOpensWithTheGrant) {
  auto k = key_for_message(env.app(), alice1_, ref());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->fingerprint, fpr_);

  auto first = open_for_decrypt(env.app(), alice1_, std::nullopt, ref(), client1());
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto* need = std::get_if<NeedUnlock>(&*first);
  ASSERT_NE(need, nullptr);
  EXPECT_EQ(need->reason, "");

  auto wrong = unlock(env.app(), alice1_, key_, secret("wrong"), secret("wrong"),
                      Confirmation::required, std::nullopt, client1());
  EXPECT_EQ(wrong.code(), Errc::wrong_passphrase);
  EXPECT_EQ(key_failures(), 1u);

  auto r = unlock(env.app(), alice1_, key_, secret(kKeyPass), secret(kKeyPass),
                  Confirmation::required, std::nullopt, client1());
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto& u = std::get<Unlocked>(*r);
  // A new session token: the old id is gone, the grant moved to the new one.
  EXPECT_NE(u.session.id, alice1_.id);
  EXPECT_EQ(u.session.short_id, alice1_.short_id);
  EXPECT_EQ(u.session.csrf_token, alice1_.csrf_token);
  EXPECT_EQ(u.session.id, util::sha256_hex(u.session_token.view()));
  EXPECT_EQ(u.grant.session_id, u.session.id);
  const std::string old_id = alice1_.id;
  alice1_ = u.session;
  EXPECT_EQ(env.count("SELECT count(*) FROM sessions WHERE id = '" + old_id + "'"), 0);
  EXPECT_EQ(audit_count("session.rotate", "ok"), 1);
  EXPECT_TRUE(u.new_cookie);
  EXPECT_EQ(u.grant_secret.size(), grant::kGrantSecretSize);
  EXPECT_EQ(u.grant.client_addr, "192.0.2.1");
  EXPECT_EQ(key_failures(), 0u);  // a success clears the count

  // The cookie the browser gets opens the grant.
  auto cookie = grant::encode_grant_cookie(u.grant_secret);
  auto secret_back = grant_secret_from_cookie(std::move(cookie));
  ASSERT_TRUE(secret_back.has_value());
  auto opened = open_for_decrypt(env.app(), alice1_, secret_back, ref(), client1());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto* d = std::get_if<Decrypted>(&*opened);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->view.segments.size(), 1u);
  EXPECT_NE(d->view.segments[0].text.find(kSecretText), std::string::npos)
      << d->view.segments[0].text;
  EXPECT_TRUE(d->view.integrity_protected);
  EXPECT_EQ(d->envelope.subject, "Secret");
  EXPECT_EQ(d->grant.id, u.grant.id);
  EXPECT_GE(audit_count("key.decrypt", "ok"), 1);

  // Without the cookie the grant can never open again: it ends, and says why.
  auto no_cookie = open_for_decrypt(env.app(), alice1_, std::nullopt, ref(), client1());
  ASSERT_TRUE(no_cookie.ok());
  auto* again = std::get_if<NeedUnlock>(&*no_cookie);
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again->reason.find("cookie"), std::string::npos) << again->reason;
  EXPECT_TRUE(key_banner_state(env.app(), alice1_).empty());
}

TEST_F(WebflowTest, MalformedCookieCountsAsNone) {
  EXPECT_FALSE(grant_secret_from_cookie(std::nullopt).has_value());
  EXPECT_FALSE(grant_secret_from_cookie(secret("not base64url!")).has_value());
  EXPECT_FALSE(grant_secret_from_cookie(secret("c2hvcnQ")).has_value());
}

TEST_F(WebflowTest, ConfirmationMustMatchAndIsNotCountedAsAGuess) {
  auto missing = unlock(env.app(), alice1_, key_, secret(kKeyPass), std::nullopt,
                        Confirmation::required, std::nullopt, client1());
  EXPECT_EQ(missing.code(), Errc::invalid_argument);
  auto differ = unlock(env.app(), alice1_, key_, secret(kKeyPass), secret("other"),
                       Confirmation::required, std::nullopt, client1());
  EXPECT_EQ(differ.code(), Errc::invalid_argument);
  EXPECT_NE(differ.error().message.find("differ"), std::string::npos);
  auto empty = unlock(env.app(), alice1_, key_, secret(""), secret(""), Confirmation::required,
                      std::nullopt, client1());
  EXPECT_EQ(empty.code(), Errc::invalid_argument);
  EXPECT_EQ(key_failures(), 0u);
  EXPECT_EQ(audit_count("key.unlock", "fail"), 0);

  // With the confirmation switched off, a stray confirmation is ignored.
  auto ok = unlock(env.app(), alice1_, key_, secret(kKeyPass), secret("ignored"),
                   Confirmation::not_asked, std::nullopt, client1());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(std::holds_alternative<Unlocked>(*ok));
}

TEST_F(WebflowTest, WrongPassphrasesLockTheKeyOutAndAreAudited) {
  env.app().config.max_failures = 2;
  for (int i = 0; i < 2; ++i) {
    auto r = unlock(env.app(), alice1_, key_, secret("guess"), secret("guess"),
                    Confirmation::required, std::nullopt, client1());
    EXPECT_EQ(r.code(), Errc::wrong_passphrase);
  }
  auto locked = unlock(env.app(), alice1_, key_, secret(kKeyPass), secret(kKeyPass),
                       Confirmation::required, std::nullopt, client1());
  EXPECT_EQ(locked.code(), Errc::locked_out);
  EXPECT_EQ(audit_count("key.unlock", "locked_out"), 1);
  EXPECT_EQ(audit_count("key.unlock", "fail"), 2);
  env.clock().advance(std::chrono::seconds(61));
  unlock_ok(alice1_, client1());
}

TEST_F(WebflowTest, SecondSessionSeesTheKeyInUseAndStopsItOnlyAfterConfirming) {
  auto secret1 = unlock_ok(alice1_, client1());
  const auto g1 = key_state(env.app(), alice1_, key_)->mine;
  ASSERT_TRUE(g1.has_value());

  auto seen = open_for_decrypt(env.app(), alice2_, std::nullopt, ref(), client2());
  ASSERT_TRUE(seen.ok());
  auto* in_use = std::get_if<InUseElsewhere>(&*seen);
  ASSERT_NE(in_use, nullptr);
  EXPECT_EQ(in_use->other.id, g1->id);
  EXPECT_EQ(in_use->other.client_addr, "192.0.2.1");
  EXPECT_EQ(in_use->other.user_agent, "Browser-One");

  // Unlocking anyway neither steals the key nor counts a guess.
  auto steal = unlock(env.app(), alice2_, key_, secret(kKeyPass), secret(kKeyPass),
                      Confirmation::required, std::nullopt, client2());
  ASSERT_TRUE(steal.ok());
  EXPECT_TRUE(std::holds_alternative<InUseElsewhere>(*steal));
  EXPECT_EQ(key_failures(), 0u);
  auto still = key_state(env.app(), alice2_, key_);
  ASSERT_TRUE(still->other.has_value());

  // A grant id that is not the one holding the key stops nothing.
  auto changed = stop_other(env.app(), alice2_, key_, "0000000000", client2());
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->result, StopResult::changed);
  EXPECT_EQ(changed->current->id, g1->id);
  // The holder itself has nothing to stop.
  EXPECT_EQ(stop_other(env.app(), alice1_, key_, g1->id, client1())->result, StopResult::own);

  auto stopped = stop_other(env.app(), alice2_, key_, g1->id, client2());
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->result, StopResult::stopped);
  EXPECT_EQ(stop_other(env.app(), alice2_, key_, g1->id, client2())->result,
            StopResult::already_gone);

  session::SessionStore sessions(env.app().db, env.clock(), env.app().config);
  auto notice = sessions.take_notice(alice1_.id);
  ASSERT_TRUE(notice.has_value());
  EXPECT_NE(notice->find("192.0.2.2"), std::string::npos) << *notice;
  EXPECT_FALSE(sessions.take_notice(alice2_.id).has_value());

  std::optional<util::SecretBuffer> c1(std::move(secret1));
  auto after = open_for_decrypt(env.app(), alice1_, c1, ref(), client1());
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(std::holds_alternative<NeedUnlock>(*after));
  unlock_ok(alice2_, client2());
  auto other_now = open_for_decrypt(env.app(), alice1_, c1, ref(), client1());
  EXPECT_TRUE(std::holds_alternative<InUseElsewhere>(*other_now));
}

TEST_F(WebflowTest, OneGrantSecretPerSessionWhileItHoldsGrants) {
  keys::GenerateOptions o;
  o.type = keys::KeyType::smime;
  o.algorithm = "p256";
  auto store = env.store();
  auto smime = store.generate("alice", o, secret("smime passphrase"));
  ASSERT_TRUE(smime.ok()) << smime.error().message;

  auto first = unlock_ok(alice1_, client1());
  std::optional<util::SecretBuffer> cookie = util::SecretBuffer::copy_of(first.bytes());
  auto r = unlock(env.app(), alice1_, smime->key, secret("smime passphrase"),
                  secret("smime passphrase"), Confirmation::required, cookie, client1());
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto& u = std::get<Unlocked>(*r);
  EXPECT_FALSE(u.new_cookie);
  EXPECT_TRUE(u.grant_secret.equals(first));
  alice1_ = u.session;
  // The first key's grant moved with the session and still opens with the same cookie.
  auto moved = open_for_decrypt(env.app(), alice1_, cookie, ref(), client1());
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_TRUE(std::holds_alternative<Decrypted>(*moved));
  auto banner = key_banner_state(env.app(), alice1_);
  ASSERT_EQ(banner.size(), 2u);
  EXPECT_EQ(banner[0].seconds_left, 600);

  // After a lock, the next unlock makes a fresh secret even if the old cookie is sent.
  auto n = lock(env.app(), alice1_, client1());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(key_banner_state(env.app(), alice1_).empty());
  auto again = unlock(env.app(), alice1_, key_, secret(kKeyPass), secret(kKeyPass),
                      Confirmation::required, cookie, client1());
  ASSERT_TRUE(again.ok());
  alice1_ = std::get<Unlocked>(*again).session;
  EXPECT_TRUE(std::get<Unlocked>(*again).new_cookie);
  EXPECT_FALSE(std::get<Unlocked>(*again).grant_secret.equals(first));
}

TEST_F(WebflowTest, IdleAndAbsoluteLimitsEndTheGrant) {
  // Sessions here are never resumed: let their own idle limit stay out of the way.
  env.app().config.session_idle_timeout = std::chrono::hours(24);
  auto s = unlock_ok(alice1_, client1());
  std::optional<util::SecretBuffer> cookie(std::move(s));
  env.clock().advance(std::chrono::seconds(599));
  auto in_time = open_for_decrypt(env.app(), alice1_, cookie, ref(), client1());
  ASSERT_TRUE(in_time.ok());
  EXPECT_TRUE(std::holds_alternative<Decrypted>(*in_time));
  env.clock().advance(std::chrono::seconds(600));
  auto idle = open_for_decrypt(env.app(), alice1_, cookie, ref(), client1());
  ASSERT_TRUE(idle.ok());
  auto* need = std::get_if<NeedUnlock>(&*idle);
  ASSERT_NE(need, nullptr);
  EXPECT_NE(need->reason.find("ended"), std::string::npos) << need->reason;
  EXPECT_EQ(audit_count("grant.expire", "expired"), 1);

  // Used every 500 s, the grant still ends 7200 s after the unlock.
  auto again = unlock_ok(alice1_, client1());
  cookie = std::move(again);
  for (int used = 500; used < 7200; used += 500) {
    env.clock().advance(std::chrono::seconds(500));
    auto r = open_for_decrypt(env.app(), alice1_, cookie, ref(), client1());
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(std::holds_alternative<Decrypted>(*r)) << "after " << used << " s";
  }
  env.clock().advance(std::chrono::seconds(200));  // 7200 s since the unlock
  auto absolute = open_for_decrypt(env.app(), alice1_, cookie, ref(), client1());
  ASSERT_TRUE(absolute.ok());
  EXPECT_TRUE(std::holds_alternative<NeedUnlock>(*absolute));
  EXPECT_EQ(audit_count("grant.expire", "expired"), 2);
}

TEST_F(WebflowTest, SmimeWithoutIntegrityProtectionIsTextOnlyOrRefusedByConfig) {
  keys::GenerateOptions o;
  o.type = keys::KeyType::smime;
  o.algorithm = "p256";
  auto store = env.store();
  auto smime = store.generate("alice", o, secret("smime passphrase"));
  ASSERT_TRUE(smime.ok()) << smime.error().message;
  auto cert = store.export_public(smime->key);
  ASSERT_TRUE(cert.ok());
  test::spit(env.path("cert.pem"), *cert);
  test::spit(env.path("inner.eml"),
             "Content-Type: text/html\n\n<p>CBC secret text <a href=\"https://x.example/\">"
             "here</a><img src=\"https://x.example/i.png\"></p>\n");
  std::string uids[2];
  int i = 0;
  for (const char* cipher : {"-aes256", "-aes-256-gcm"}) {
    auto enc = test::run_cmd({"openssl", "cms", "-encrypt", cipher, "-in", env.path("inner.eml"),
                              "-recip", env.path("cert.pem"), "-subject", "S/MIME"});
    ASSERT_EQ(enc.status, 0) << enc.err;
    uids[i++] = deliver("alice", "From: carol@example.net\nTo: alice@example.org\n" + enc.out);
  }
  auto r = unlock(env.app(), alice1_, smime->key, secret("smime passphrase"),
                  secret("smime passphrase"), Confirmation::required, std::nullopt, client1());
  ASSERT_TRUE(r.ok()) << r.error().message;
  alice1_ = std::get<Unlocked>(*r).session;
  std::optional<util::SecretBuffer> cookie(std::move(std::get<Unlocked>(*r).grant_secret));

  // Default (smime_unprotected = text): plain text only, marked, nothing to frame.
  ASSERT_EQ(env.app().config.smime_unprotected, config::SmimeUnprotected::text);
  auto cbc = open_for_decrypt(env.app(), alice1_, cookie, MessageRef{mail::Folder::inbox, uids[0]},
                              client1());
  ASSERT_TRUE(cbc.ok()) << cbc.error().message;
  const auto& cbc_view = std::get<Decrypted>(*cbc).view;
  EXPECT_FALSE(cbc_view.integrity_protected);
  ASSERT_EQ(cbc_view.segments.size(), 1u);
  EXPECT_EQ(cbc_view.segments[0].integrity, reader::Segment::Integrity::none);
  EXPECT_EQ(cbc_view.segments[0].format, mail::BodyFormat::plain);
  EXPECT_NE(cbc_view.segments[0].text.find("CBC secret text"), std::string::npos);
  EXPECT_EQ(cbc_view.segments[0].text.find("<img"), std::string::npos);
  EXPECT_EQ(cbc_view.segments[0].text.find("<a "), std::string::npos);

  // smime_unprotected = refuse: as before, nothing of it is shown.
  env.app().config.smime_unprotected = config::SmimeUnprotected::refuse;
  auto refused = open_for_decrypt(env.app(), alice1_, cookie,
                                  MessageRef{mail::Folder::inbox, uids[0]}, client1());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::crypto);
  EXPECT_NE(refused.error().message.find("integrity"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("CBC secret"), std::string::npos);

  auto gcm = open_for_decrypt(env.app(), alice1_, cookie, MessageRef{mail::Folder::inbox, uids[1]},
                              client1());
  ASSERT_TRUE(gcm.ok()) << gcm.error().message;
  auto* d = std::get_if<Decrypted>(&*gcm);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->view.segments.size(), 1u);
  EXPECT_EQ(d->view.segments[0].integrity, reader::Segment::Integrity::checked);
  EXPECT_NE(d->view.segments[0].text.find("CBC secret text"), std::string::npos);
  EXPECT_EQ(d->key.type, keys::KeyType::smime);
}

TEST_F(WebflowTest, DecryptedAttachmentsOnlyThroughTheGrantAndOnlyOfferedOnes) {
  std::string inner =
      "Content-Type: multipart/mixed; boundary=\"in\"\n\n--in\nContent-Type: text/plain\n\n"
      "see the file\n--in\nContent-Type: application/octet-stream\n"
      "Content-Disposition: attachment; filename=\"plan.bin\"\n"
      "Content-Transfer-Encoding: base64\n\nAAECAwQFBgc=\n--in--\n";
  auto enc = KeysEnv::gpg(home_, {"--trust-model", "always", "--armor", "-r", fpr_, "-e"}, inner);
  ASSERT_EQ(enc.status, 0) << enc.err;
  std::string msg =
      "From: Erin <erin@example.net>\nTo: alice@example.org\nSubject: File\nMIME-Version: 1.0\n"
      "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; "
      "boundary=\"b1\"\n\n--b1\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n"
      "--b1\nContent-Type: application/octet-stream\n\n" +
      enc.out + "\n--b1--\n";
  MessageRef with_file{mail::Folder::inbox, deliver("alice", msg)};

  auto locked = open_decrypted_part(env.app(), alice1_, std::nullopt, with_file, "2", client1());
  ASSERT_TRUE(locked.ok()) << locked.error().message;
  EXPECT_TRUE(std::holds_alternative<NeedUnlock>(*locked));

  std::optional<util::SecretBuffer> cookie = unlock_ok(alice1_, client1());
  auto view = open_for_decrypt(env.app(), alice1_, cookie, with_file, client1());
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(std::get<Decrypted>(*view).view.segments.size(), 1u);
  const auto& seg = std::get<Decrypted>(*view).view.segments[0];
  ASSERT_EQ(seg.attachments.size(), 1u);
  EXPECT_EQ(seg.attachments[0].source, reader::PartSource::decrypted);
  EXPECT_EQ(seg.attachments[0].filename, "plan.bin");

  auto decryptions = [&] {
    return env.count("SELECT count(*) FROM audit WHERE event = 'key.decrypt' AND outcome = 'ok'");
  };
  int before = decryptions();
  auto part =
      open_decrypted_part(env.app(), alice1_, cookie, with_file, seg.attachments[0].id, client1());
  ASSERT_TRUE(part.ok()) << part.error().message;
  // One reading per request: the check that the part is offered and the part itself
  // come from one decryption.
  EXPECT_EQ(decryptions(), before + 1);
  auto* got = std::get_if<DecryptedPart>(&*part);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->content.bytes, std::string("\x00\x01\x02\x03\x04\x05\x06\x07", 8));
  EXPECT_EQ(got->content.filename, "plan.bin");
  // The text part is not an offered attachment; a malformed id is refused.
  EXPECT_EQ(open_decrypted_part(env.app(), alice1_, cookie, with_file, "1", client1()).code(),
            Errc::not_found);
  EXPECT_NE(open_decrypted_part(env.app(), alice1_, cookie, with_file, "../1", client1()).code(),
            Errc::internal);
}

// Issue 10: a key attached inside the encryption is offered on the decrypted page
// from that page's one decryption, and imported (for the From address only) from a
// decryption under the grant, never from bytes the form carries.
TEST_F(WebflowTest, KeyAttachedInsideEncryptionIsOfferedAndImportedThroughTheGrant) {
  const std::string erin = KeysEnv::gpg_make_key(home_, "Erin <erin@example.net>", "");
  auto exported = KeysEnv::gpg(home_, {"--armor", "--export", erin});
  ASSERT_EQ(exported.status, 0) << exported.err;
  std::string inner =
      "Content-Type: multipart/mixed; boundary=\"in\"\n\n--in\nContent-Type: text/plain\n\n"
      "my key is attached\n--in\nContent-Type: application/pgp-keys\n"
      "Content-Disposition: attachment; filename=\"erin.asc\"\n\n" +
      exported.out + "\n--in--\n";
  auto enc = KeysEnv::gpg(home_, {"--trust-model", "always", "--armor", "-r", fpr_, "-e"}, inner);
  ASSERT_EQ(enc.status, 0) << enc.err;
  std::string msg =
      "From: Erin <erin@example.net>\nTo: alice@example.org\nSubject: Key\nMIME-Version: 1.0\n"
      "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; "
      "boundary=\"b1\"\n\n--b1\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n"
      "--b1\nContent-Type: application/octet-stream\n\n" +
      enc.out + "\n--b1--\n";
  MessageRef with_key{mail::Folder::inbox, deliver("alice", msg)};
  auto decryptions = [&] {
    return env.count("SELECT count(*) FROM audit WHERE event = 'key.decrypt' AND outcome = 'ok'");
  };
  auto imports = [&] {
    return env.count("SELECT count(*) FROM audit WHERE event = 'contact.import'");
  };
  auto contact_rows = [&] { return env.count("SELECT count(*) FROM contact_keys"); };

  // The stored message's parts are ciphertext: the message page offers nothing.
  auto parsed = mail::Message::parse(msg);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(key_offers(env.app(), alice1_, *parsed, msg).empty());

  std::optional<util::SecretBuffer> cookie = unlock_ok(alice1_, client1());
  auto opened = open_for_decrypt(env.app(), alice1_, cookie, with_key, client1());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  const auto& decrypted = std::get<Decrypted>(*opened);
  const int after_page = decryptions();
  auto offers = decrypted_key_offers(env.app(), alice1_, decrypted);
  EXPECT_EQ(decryptions(), after_page);  // the offer comes from the page's decryption
  ASSERT_EQ(offers.size(), 1u);
  const KeyOffer& offer = offers[0];
  EXPECT_EQ(offer.kind, KeyOffer::Kind::attached);
  EXPECT_EQ(offer.fingerprint, erin);
  EXPECT_EQ(offer.from, "erin@example.net");
  EXPECT_TRUE(offer.names_from);
  EXPECT_FALSE(offer.bound);
  EXPECT_TRUE(offer.problem.empty()) << offer.problem;
  EXPECT_EQ(offer.part_id.substr(0, 2), "2:");
  EXPECT_EQ(contact_rows(), 0);

  KeySession mine(env.app(), alice1_, util::SecretBuffer::copy_of(cookie->bytes()), client1());
  // Another fingerprint than the page showed, or a part that is no key: nothing stored.
  EXPECT_EQ(accept_decrypted_key_offer(mine, with_key, offer.part_id, fpr_).code(), Errc::conflict);
  EXPECT_EQ(accept_decrypted_key_offer(mine, with_key, "2:1", erin).code(), Errc::not_found);
  EXPECT_EQ(contact_rows(), 0);

  // Another session without the grant: the key is in use there, nothing is imported.
  KeySession other(env.app(), alice2_, std::nullopt, client2());
  auto elsewhere = accept_decrypted_key_offer(other, with_key, offer.part_id, erin);
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.error().message;
  EXPECT_TRUE(std::holds_alternative<InUseElsewhere>(*elsewhere));
  EXPECT_EQ(contact_rows(), 0);

  const int before_accept = decryptions();
  const int imports_before = imports();
  auto accepted = accept_decrypted_key_offer(mine, with_key, offer.part_id, erin);
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(decryptions(), before_accept + 1);  // decrypted again, once, under the grant
  EXPECT_EQ(imports(), imports_before + 1);
  auto* key = std::get_if<contacts::ContactKey>(&*accepted);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->fingerprint, erin);
  ASSERT_EQ(key->bindings.size(), 1u);
  EXPECT_EQ(key->bindings[0].email, "erin@example.net");
  EXPECT_EQ(key->bindings[0].source, contacts::BindingSource::user);

  // Now it is bound: the page says so instead of offering it again.
  auto again = decrypted_key_offers(env.app(), alice1_, decrypted);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].bound);
}

TEST_F(WebflowTest, OnlyTheUsersOwnMailboxAndKeys) {
  auto bob = new_session("bob", "192.0.2.9", "Bob");
  EXPECT_EQ(key_for_message(env.app(), bob, ref()).code(), Errc::not_found);
  EXPECT_EQ(open_for_decrypt(env.app(), bob, std::nullopt, ref(), Client{}).code(),
            Errc::not_found);
  EXPECT_EQ(key_for_message(env.app(), alice1_, MessageRef{mail::Folder::inbox, "../x"}).code(),
            Errc::invalid_argument);
  // Another user's key: refused before anything is tried.
  EXPECT_EQ(unlock(env.app(), bob, key_, secret(kKeyPass), secret(kKeyPass), Confirmation::required,
                   std::nullopt, Client{})
                .code(),
            Errc::not_found);
  EXPECT_EQ(stop_other(env.app(), bob, key_, "x", Client{}).code(), Errc::not_found);
  EXPECT_EQ(key_failures(), 0u);

  auto plain = deliver("alice", "From: a@example.net\nSubject: hi\n\nplain\n");
  EXPECT_EQ(key_for_message(env.app(), alice1_, MessageRef{mail::Folder::inbox, plain}).code(),
            Errc::unsupported);
}

TEST_F(WebflowTest, HistoryListsTheUsersOwnKeyEvents) {
  (void)unlock(env.app(), alice1_, key_, secret("wrong"), secret("wrong"), Confirmation::required,
               std::nullopt, client1());
  auto s = unlock_ok(alice1_, client1());
  std::optional<util::SecretBuffer> cookie(std::move(s));
  ASSERT_TRUE(open_for_decrypt(env.app(), alice1_, cookie, ref(), client1()).ok());
  ASSERT_TRUE(lock(env.app(), alice1_, client1()).ok());
  auto h = key_history(env.app(), alice1_);
  std::set<std::string> events;
  for (const auto& e : h) {
    events.insert(e.event + "/" + e.outcome);
    EXPECT_EQ(e.fingerprint, fpr_);
  }
  for (const char* want : {"key.unlock/fail", "key.unlock/ok", "grant.create/ok", "key.decrypt/ok",
                           "grant.revoke/ok"}) {
    EXPECT_TRUE(events.count(want)) << want;
  }
  auto bob = new_session("bob", "192.0.2.9", "Bob");
  EXPECT_TRUE(key_history(env.app(), bob).empty());
  ASSERT_FALSE(h.empty());
  for (std::size_t i = 1; i < h.size(); ++i)
    EXPECT_GE(h[i - 1].at, h[i].at);
}

// Regression: KeyStore::unlock held a read transaction through the KDF, so its audit
// write failed with SQLITE_BUSY (an exception, a 500 page) whenever the other racer's
// grant was committed meanwhile.
TEST_F(WebflowTest, TwoSessionsRacingToUnlockNeverBothGetAGrantNorFail) {
  for (int round = 0; round < 20; ++round) {
    std::latch start(2);
    std::atomic<int> won{0}, in_use{0}, failed{0};
    auto contender = [&](session::Session* s, const Client* c) {
      try {
        auto app = app::open(env.config_path(), env.clock());
        ASSERT_TRUE(app.ok());
        start.arrive_and_wait();
        auto r = unlock(*app, *s, key_, secret(kKeyPass), secret(kKeyPass), Confirmation::required,
                        std::nullopt, *c);
        if (r.ok() && std::holds_alternative<Unlocked>(*r)) {
          *s = std::get<Unlocked>(*r).session;  // this thread's own session object
          ++won;
        } else if (r.ok())
          ++in_use;
        else
          ++failed;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "round " << round << ": " << e.what();
        ++failed;
      }
    };
    const Client c1 = client1(), c2 = client2();
    std::thread t1(contender, &alice1_, &c1);
    std::thread t2(contender, &alice2_, &c2);
    t1.join();
    t2.join();
    ASSERT_EQ(won.load(), 1) << "round " << round;
    ASSERT_EQ(in_use.load(), 1) << "round " << round;
    ASSERT_EQ(failed.load(), 0) << "round " << round;
    ASSERT_EQ(env.count("SELECT count(*) FROM grants"), 1);
    ASSERT_TRUE(lock(env.app(), alice1_, client1()).ok());
    ASSERT_TRUE(lock(env.app(), alice2_, client2()).ok());
  }
}

// Issue 12: of 50 simultaneous unlocks with the right passphrase, 45 were told "too
// many wrong passphrases" (every attempt was counted as a failure before the KDF).
// Now: exactly one grant; the others see the key in use or are told busy; none is
// answered wrong or locked out, and nothing is counted against the key.
TEST_F(WebflowTest, FiftySimultaneousRightUnlocksAreNeverWrongNorLockedOut) {
  constexpr int kRacers = 50;
  std::vector<session::Session> sessions;
  for (int i = 0; i < kRacers; ++i)
    sessions.push_back(new_session("alice", "192.0.2." + std::to_string(i + 10), "Racer"));
  std::latch start(kRacers);
  std::atomic<int> won{0}, in_use{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] {
      auto app = app::open(env.config_path(), env.clock());
      if (!app) {
        ++other;
        start.count_down();
        return;
      }
      start.arrive_and_wait();
      auto r = unlock(*app, sessions[i], key_, secret(kKeyPass), secret(kKeyPass),
                      Confirmation::required, std::nullopt, Client{"192.0.2.99", "Racer"});
      if (r.ok() && std::holds_alternative<Unlocked>(*r))
        ++won;
      else if (r.ok() && std::holds_alternative<InUseElsewhere>(*r))
        ++in_use;
      else if (!r.ok() && r.code() == Errc::busy)
        ++busy;
      else
        ++other;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(won.load() + in_use.load() + busy.load(), kRacers);
  EXPECT_EQ(key_failures(), 0u);
  EXPECT_EQ(audit_count("key.unlock", "locked_out"), 0);
  EXPECT_EQ(audit_count("key.unlock", "fail"), 0);
  EXPECT_EQ(env.count("SELECT count(*) FROM grants"), 1);
}

// Issue 12: each killed /unlock counted as a wrong guess, and after 5 kills the right
// passphrase got 429 "too many wrong passphrases". A killed attempt still counts (or
// killing would give free guesses), but it is audited as interrupted, and the answer
// says so. Unlocks in child processes are killed at random moments in the KDF.
TEST_F(WebflowTest, KilledUnlocksCountAsInterruptedAndTheAnswerSaysSo) {
  // A KDF slow enough to be killed in the middle.
  env.app().config.kdf_memory_kib = 32768;
  env.app().config.kdf_iterations = 2;
  {
    auto store = env.store();
    ASSERT_TRUE(store.change_passphrase(key_, secret(kKeyPass), secret(kKeyPass)).ok());
  }
  std::mt19937 rng(12345);
  int killed_in_flight = 0;
  for (int round = 0; round < 5; ++round) {
    session::Session s = new_session("alice", "192.0.2.1", "Browser-One");
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto app = app::open(env.config_path(), env.clock());
      if (!app)
        ::_exit(2);
      (void)unlock(*app, s, key_, secret(kKeyPass), secret(kKeyPass), Confirmation::required,
                   std::nullopt, client1());
      ::_exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
      ++killed_in_flight;
    // A child that finished anyway made a grant: end it.
    (void)grant::GrantStore(env.app().db, env.clock(), env.app().config)
        .revoke_for_key(key_.id, grant::Revoker::admin("test"));
  }
  auto r = unlock(env.app(), alice2_, key_, secret(kKeyPass), secret(kKeyPass),
                  Confirmation::required, std::nullopt, client2());
  const int interrupted = audit_count("key.unlock", "interrupted");
  EXPECT_LE(interrupted, killed_in_flight);
  EXPECT_EQ(audit_count("key.unlock", "fail"), 0);  // no kill is called a wrong passphrase
  if (r.ok()) {
    EXPECT_TRUE(std::holds_alternative<Unlocked>(*r) || std::holds_alternative<InUseElsewhere>(*r));
  } else {
    // Only a lock made of interrupted requests, and the message says so.
    ASSERT_EQ(r.code(), Errc::locked_out) << r.error().message;
    EXPECT_GE(interrupted, static_cast<int>(env.app().config.max_failures));
    EXPECT_NE(r.error().message.find("interrupted"), std::string::npos) << r.error().message;
  }
  auth::Throttle t(env.app().db, env.clock(), auth::throttle_policy(env.app().config));
  EXPECT_EQ(t.interrupted(auth::key_scope(key_.fingerprint)),
            r.ok() ? 0u : static_cast<std::uint32_t>(interrupted));
}

}  // namespace

}  // namespace wmk::webflow
