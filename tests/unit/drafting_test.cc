// core/webflow/drafting and KeySession::read: replying to and forwarding encrypted
// mail cannot quote decrypted text to someone who did not write it unless the user
// says yes, and decrypted text is never stored in the clear. One reading per request:
// a /decrypt, a decrypted download, a reply and the signed message page parse the
// stored message once and each decrypted entity once. Keys and ciphertexts by
// real gpg in outside homes; the messages are real MIME (PGP/MIME, RFC 3156).
#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/mail/drafts.h"
#include "core/mail/maildir.h"
#include "core/mail/outgoing.h"
#include "core/session/session.h"
#include "core/webflow/correspondents.h"
#include "core/webflow/drafting.h"
#include "core/webflow/key_session.h"
#include "core/webflow/signed_view.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::webflow {

namespace {

using test::KeysEnv;
using test::secret;

constexpr const char* kKeyPass = "drafting key passphrase";
constexpr const char* kFilePass = "outside file passphrase";
constexpr const char* kCaptured = "MARKER-captured-4c1f";
constexpr const char* kSigned = "MARKER-signed-8a2e";

class Drafting : public ::testing::Test {
 protected:
  void SetUp() override {
    alice_home_ = env.outside_home("alice");
    bob_home_ = env.outside_home("bob");
    alice_fpr_ = KeysEnv::gpg_make_key(alice_home_, "Alice <alice@example.org>", kFilePass);
    bob_fpr_ = KeysEnv::gpg_make_key(bob_home_, "Bob <bob@example.org>", kFilePass);
    auto store = env.store();
    alice_key_ = import(store, "alice", alice_home_, alice_fpr_);
    (void)import(store, "bob", bob_home_, bob_fpr_);
    auto pub = KeysEnv::gpg(alice_home_, {"--armor", "--export", alice_fpr_});
    ASSERT_EQ(pub.status, 0) << pub.err;
    ASSERT_EQ(KeysEnv::gpg(bob_home_, {"--import"}, pub.out).status, 0);

    // Bob to Alice, encrypted only; Mallory wraps it beside clear text of his own.
    std::string captured = encrypt({}, std::string("Alice, the code is ") + kCaptured + ".\n");
    wrapped_ = deliver(
        "From: Mallory <mallory@example.net>\nTo: alice@example.org\nSubject: What's up "
        "Johnny?\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"outer\"\n\n"
        "--outer\nContent-Type: text/plain; charset=utf-8\n\nHi Alice, what's up?\n"
        "--outer\n" +
        pgp_mime_entity(captured) + "\n--outer--\n");
    // Bob to Alice, signed and encrypted, From Bob.
    std::string signed_ct = encrypt({"--sign", "-u", bob_fpr_},
                                    std::string("Alice, the other code is ") + kSigned + ".\n");
    signed_ = deliver(
        "From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: The other code\n"
        "Message-ID: <x1@example.org>\nMIME-Version: 1.0\n" +
        pgp_mime_entity(signed_ct));

    auth::UserStore users(env.app().db, env.clock());
    user_ = *users.find("alice");
    session::SessionStore sessions(env.app().db, env.clock(), env.app().config);
    auto s = sessions.create(user_.id, "192.0.2.1", "Browser");
    ASSERT_TRUE(s.ok());
    keys_.emplace(env.app(), s->session, std::nullopt, Client{"192.0.2.1", "Browser"});
    auto u = keys_->unlock(alice_key_, secret(kKeyPass), secret(kKeyPass), Confirmation::required);
    ASSERT_TRUE(u.ok()) << u.error().message;
    ASSERT_TRUE(std::holds_alternative<Unlocked>(*u));
  }

  keys::KeyInfo import(keys::KeyStore& store, const std::string& login, const std::string& home,
                       const std::string& fpr) {
    auto exported = KeysEnv::gpg(home,
                                 {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                                  "--export-secret-keys", fpr},
                                 std::string(kFilePass) + "\n");
    EXPECT_EQ(exported.status, 0) << exported.err;
    auto key = store.import_openpgp(login, exported.out, secret(kFilePass), secret(kKeyPass));
    EXPECT_TRUE(key.ok()) << key.error().message;
    return *key;
  }

  // text as a MIME entity, encrypted to Alice by Bob's outside gpg (extra: --sign ...).
  std::string encrypt(const std::vector<std::string>& extra, const std::string& text) {
    std::vector<std::string> args = {"--pinentry-mode", "loopback", "--passphrase", kFilePass,
                                     "--trust-model",   "always",   "--armor",      "-r",
                                     alice_fpr_};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("-e");
    auto r = KeysEnv::gpg(bob_home_, args, "Content-Type: text/plain; charset=utf-8\n\n" + text);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  static std::string pgp_mime_entity(const std::string& armored, const std::string& b = "enc") {
    return "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; "
           "boundary=\"" +
           b + "\"\n\n--" + b + "\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n--" +
           b + "\nContent-Type: application/octet-stream\n\n" + armored + "\n--" + b + "--\n";
  }

  // A MIME entity of a text and an attachment, encrypted to Alice by Bob's outside gpg.
  std::string encrypt_with_attachment(const std::string& text, const std::string& attachment) {
    std::string entity =
        "Content-Type: multipart/mixed; boundary=\"in\"\n\n--in\nContent-Type: text/plain; "
        "charset=utf-8\n\n" +
        text +
        "\n--in\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
        "filename=\"data.bin\"\n\n" +
        attachment + "\n--in--\n";
    std::vector<std::string> args = {"--trust-model", "always", "--armor", "-r", alice_fpr_, "-e"};
    auto r = KeysEnv::gpg(bob_home_, args, entity);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  std::string deliver(const std::string& message) {
    mail::Maildir md(maildir_root(), env.clock());
    EXPECT_TRUE(md.ensure().ok());
    auto uid = md.deliver(mail::Folder::inbox, message);
    EXPECT_TRUE(uid.ok());
    return *uid;
  }

  std::string maildir_root() {
    return config::maildir_for(env.app().config, "alice", "alice@example.org");
  }

  Reading read(const std::string& uid) {
    auto r = keys_->read(MessageRef{mail::Folder::inbox, uid});
    EXPECT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->decrypted.has_value()) << r->failure_detail;
    return std::move(r).value();
  }

  Derived derive(const std::string& uid, Derive how, QuoteAnswer answer) {
    return derive_draft(keys_->keys(), read(uid), user_, how, answer);
  }

  int decrypt_count() {
    return env.count("SELECT count(*) FROM audit WHERE event = 'key.decrypt'");
  }

  KeysEnv env;
  std::string alice_home_, bob_home_, alice_fpr_, bob_fpr_;
  keys::KeyInfo alice_key_;
  auth::User user_;
  std::optional<KeySession> keys_;
  std::string wrapped_, signed_;
};

TEST_F(Drafting, ReplyToWrappedCiphertextAsksAndQuotesNothing) {
  Derived d = derive(wrapped_, Derive::reply, QuoteAnswer::ask);
  EXPECT_EQ(d.state, QuoteState::ask);
  EXPECT_NE(d.pending.find(kCaptured), std::string::npos);  // what the question shows
  EXPECT_EQ(d.draft.body.find(kCaptured), std::string::npos);
  EXPECT_EQ(d.draft.decrypted_quote, mail::DecryptedQuote::none);
  ASSERT_EQ(d.draft.to.size(), 1u);
  EXPECT_EQ(d.draft.to[0].address, "mallory@example.net");
  EXPECT_TRUE(d.draft.encrypt);
  EXPECT_FALSE(d.reasons.empty());
}

TEST_F(Drafting, ForwardAlwaysAsksEvenForAProperlySignedMessage) {
  EXPECT_EQ(derive(wrapped_, Derive::forward, QuoteAnswer::ask).state, QuoteState::ask);
  Derived d = derive(signed_, Derive::forward, QuoteAnswer::ask);
  EXPECT_EQ(d.state, QuoteState::ask);
  EXPECT_EQ(d.draft.body.find(kSigned), std::string::npos);
}

TEST_F(Drafting, NoStartsWithoutTheTextAndSaysWhy) {
  Derived d = derive(wrapped_, Derive::reply, QuoteAnswer::no);
  EXPECT_EQ(d.state, QuoteState::not_quoted);
  EXPECT_EQ(d.draft.body.find(kCaptured), std::string::npos);
  ASSERT_FALSE(d.reasons.empty());
}

TEST_F(Drafting, YesQuotesWithTheClearPartMarked) {
  Derived d = derive(wrapped_, Derive::reply, QuoteAnswer::yes);
  EXPECT_EQ(d.state, QuoteState::quoted);
  EXPECT_EQ(d.draft.decrypted_quote, mail::DecryptedQuote::confirmed);
  EXPECT_NE(d.draft.body.find(kCaptured), std::string::npos);
  EXPECT_NE(d.draft.body.find("[part sent in the clear]"), std::string::npos);
}

TEST_F(Drafting, SignedReplyToItsSignerQuotesWithoutAsking) {
  Derived d = derive(signed_, Derive::reply, QuoteAnswer::ask);
  ASSERT_EQ(d.state, QuoteState::quoted);
  EXPECT_EQ(d.draft.decrypted_quote, mail::DecryptedQuote::to_signer);
  EXPECT_EQ(d.draft.quote_signer, "bob@example.org");
  EXPECT_NE(d.draft.body.find("> Alice, the other code is"), std::string::npos);
  EXPECT_TRUE(unapproved_recipients(d.draft, user_).empty());
  // An address added later counts as a recipient; the user's own do not.
  d.draft.cc.push_back({"", "mallory@example.net"});
  d.draft.cc.push_back({"", "alice@work.example"});
  EXPECT_EQ(unapproved_recipients(d.draft, user_), std::vector<std::string>{"mallory@example.net"});
  d.draft.decrypted_quote = mail::DecryptedQuote::confirmed;
  EXPECT_TRUE(unapproved_recipients(d.draft, user_).empty());
}

TEST_F(Drafting, EveryRecipientMustBeTheSignerOrTheUser) {
  Reading r = read(signed_);
  EXPECT_TRUE(
      check_quote(*r.decrypted, {{"", "bob@example.org"}}, user_, Derive::reply).without_asking);
  EXPECT_TRUE(check_quote(*r.decrypted, {{"", "BOB@example.org"}, {"", "alice@example.org"}}, user_,
                          Derive::reply)
                  .without_asking);
  QuoteCheck other = check_quote(*r.decrypted, {{"", "bob@example.org"}, {"", "eve@example.net"}},
                                 user_, Derive::reply);
  EXPECT_FALSE(other.without_asking);
  ASSERT_EQ(other.reasons.size(), 1u);
  EXPECT_NE(other.reasons[0].find("eve@example.net"), std::string::npos);
}

TEST_F(Drafting, TextWithoutIntegrityProtectionIsNeverQuotedEvenAfterYes) {
  Reading r = read(signed_);
  // As the reader marks S/MIME EnvelopedData (CBC, no integrity protection).
  r.decrypted->view.integrity_protected = false;
  for (auto& seg : r.decrypted->view.segments)
    seg.integrity = reader::Segment::Integrity::none;
  EXPECT_FALSE(
      check_quote(*r.decrypted, {{"", "bob@example.org"}}, user_, Derive::reply).without_asking);
  EXPECT_TRUE(quotable(*r.decrypted).text.empty());
  Derived d = derive_draft(keys_->keys(), r, user_, Derive::reply, QuoteAnswer::yes);
  EXPECT_EQ(d.state, QuoteState::not_quoted);
  EXPECT_EQ(d.draft.body.find(kSigned), std::string::npos);
  EXPECT_EQ(d.draft.decrypted_quote, mail::DecryptedQuote::none);
}

TEST_F(Drafting, OneReadingDecryptsOnce) {
  const int before = decrypt_count();
  Reading r = read(signed_);
  Derived d = derive_draft(keys_->keys(), r, user_, Derive::reply, QuoteAnswer::ask);
  EXPECT_EQ(d.state, QuoteState::quoted);
  EXPECT_EQ(decrypt_count(), before + 1);
}

TEST_F(Drafting, LockedKeyQuotesNothing) {
  auth::UserStore users(env.app().db, env.clock());
  session::SessionStore sessions(env.app().db, env.clock(), env.app().config);
  auto other = sessions.create(user_.id, "192.0.2.9", "Other");
  ASSERT_TRUE(other.ok());
  KeySession ks(env.app(), other->session, std::nullopt, Client{"192.0.2.9", "Other"});
  auto r = ks.read(MessageRef{mail::Folder::inbox, signed_});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->decrypted.has_value());
  Derived d = derive_draft(ks.keys(), *r, user_, Derive::reply, QuoteAnswer::yes);
  EXPECT_EQ(d.state, QuoteState::not_quoted);
  EXPECT_EQ(d.draft.body.find(kSigned), std::string::npos);
  // The form repeats only what is true: the key is unlocked in the first session,
  // nothing is damaged and nothing is "locked" here.
  ASSERT_EQ(r->failure, reader::Failure::key_elsewhere);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_NE(d.reasons[0].find("unlocked in another session"), std::string::npos) << d.reasons[0];
  EXPECT_EQ(d.reasons[0].find("locked:"), std::string::npos) << d.reasons[0];
  EXPECT_EQ(d.reasons[0].find("damaged"), std::string::npos) << d.reasons[0];
}

// ---- who a reply goes to (RFC 5322 §3.6.3) and its thread headers (§3.6.4); the
// messages are made by Python's email (tests/fixtures/provider_shapes.py).

mail::ParsedMessage shaped(const std::string& shape, const std::string& ciphertext_file,
                           std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "python3", std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/provider_shapes.py", shape,
      ciphertext_file};
  args.insert(args.end(), extra.begin(), extra.end());
  auto made = test::run_cmd(args);
  EXPECT_EQ(made.status, 0) << made.err;
  auto parsed = mail::parse_message(made.out);
  EXPECT_TRUE(parsed.ok());
  return parsed.ok() ? *parsed : mail::ParsedMessage{};
}

std::vector<std::string> addresses_of(const std::vector<mail::Address>& list) {
  std::vector<std::string> out;
  for (const auto& a : list)
    out.push_back(a.address);
  return out;
}

using Strings = std::vector<std::string>;

TEST(AnswerRecipients, ReplyReplyAllAndReplyToListFollowTheHeaders) {
  auth::User alice{
      1, "alice", "Alice", "alice@example.org", {"alice@example.org", "alice@work.example"}};
  mail::ParsedMessage m =
      shaped("thunderbird", "-",
             {"--from", "Sam <sam@example.net>", "--reply-to", "Sam at home <sam@home.example>",
              "--to", "Alice <alice@example.org>, carol@example.com", "--cc",
              "ALICE@work.example, Dave <dave@example.com>, carol@example.com", "--list",
              "team@lists.example.com"});
  Recipients reply = answer_recipients(m, Derive::reply, alice);
  EXPECT_EQ(addresses_of(reply.to), Strings{"sam@home.example"});  // Reply-To, not From
  EXPECT_TRUE(reply.cc.empty());
  EXPECT_TRUE(reply.note.empty());
  Recipients all = answer_recipients(m, Derive::reply_all, alice);
  EXPECT_EQ(addresses_of(all.to), Strings{"sam@home.example"});
  // Everyone else once, in header order; none of Alice's own addresses.
  EXPECT_EQ(addresses_of(all.cc), (Strings{"carol@example.com", "dave@example.com"}));
  Recipients list = answer_recipients(m, Derive::reply_list, alice);
  EXPECT_EQ(addresses_of(list.to), Strings{"team@lists.example.com"});
  EXPECT_TRUE(list.cc.empty());
  EXPECT_TRUE(answer_recipients(m, Derive::forward, alice).to.empty());

  // Without Reply-To: From. Without a list: no list address, and a note says so.
  mail::ParsedMessage plain = shaped("gmail", "-", {"--from", "Sam <sam@example.net>"});
  EXPECT_EQ(addresses_of(answer_recipients(plain, Derive::reply, alice).to),
            Strings{"sam@example.net"});
  Recipients no_list = answer_recipients(plain, Derive::reply_list, alice);
  EXPECT_TRUE(no_list.to.empty());
  EXPECT_NE(no_list.note.find("List-Post"), std::string::npos);
}

TEST(AnswerRecipients, ReplyWorksWithoutFrom) {
  auth::User alice{1, "alice", "Alice", "alice@example.org", {"alice@example.org"}};
  mail::ParsedMessage reply_to_only =
      shaped("gmail", "-", {"--from", "", "--reply-to", "sam@example.net"});
  EXPECT_EQ(addresses_of(answer_recipients(reply_to_only, Derive::reply, alice).to),
            Strings{"sam@example.net"});
  mail::ParsedMessage nobody = shaped("gmail", "-", {"--from", ""});
  Recipients r = answer_recipients(nobody, Derive::reply, alice);
  EXPECT_TRUE(r.to.empty());
  EXPECT_NE(r.note.find("fill in To yourself"), std::string::npos);
}

TEST(ReplyThread, InReplyToIsTheFirstMessageIdAndReferencesGrow) {
  // Two Message-ID headers (RFC 5322 allows one): the first is the message's.
  mail::ParsedMessage m = shaped(
      "gmail", "-",
      {"--message-id", "<first@example.net>", "--message-id", "<second@example.net>",
       "--references", "<r1@example.net> <r2@example.net>", "--in-reply-to", "<r2@example.net>"});
  EXPECT_EQ(m.message_id, "first@example.net");
  Thread t = reply_thread(m);
  EXPECT_EQ(t.in_reply_to, "first@example.net");
  EXPECT_EQ(t.references, (Strings{"r1@example.net", "r2@example.net", "first@example.net"}));
  // No References: the parent's single In-Reply-To, then its Message-ID.
  mail::ParsedMessage child =
      shaped("gmail", "-", {"--message-id", "<c@example.net>", "--in-reply-to", "<p@example.net>"});
  EXPECT_EQ(reply_thread(child).references, (Strings{"p@example.net", "c@example.net"}));
  // Neither: only the Message-ID.
  mail::ParsedMessage root = shaped("gmail", "-", {"--message-id", "<root@example.net>"});
  EXPECT_EQ(reply_thread(root).references, Strings{"root@example.net"});
}

TEST_F(Drafting, AReplyToPointingElsewhereAsksBeforeQuoting) {
  // Signed by Bob, From Bob, but Reply-To someone else: the reply would carry Bob's
  // decrypted text to eve, so the user is asked first and nothing is quoted yet.
  std::string ct = encrypt({"--sign", "-u", bob_fpr_},
                           std::string("Alice, the other code is ") + kSigned + ".\n");
  std::string path = env.path("signed-reply-to.asc");
  test::spit(path, ct);
  std::vector<std::string> args = {
      "python3",    std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/provider_shapes.py",
      "gmail",      path,
      "--from",     "Bob <bob@example.org>",
      "--to",       "alice@example.org",
      "--reply-to", "eve@example.net"};
  auto made = test::run_cmd(args);
  ASSERT_EQ(made.status, 0) << made.err;
  std::string uid = deliver(made.out);
  for (Derive how : {Derive::reply, Derive::reply_all}) {
    Derived d = derive(uid, how, QuoteAnswer::ask);
    EXPECT_EQ(d.state, QuoteState::ask);
    EXPECT_EQ(addresses_of(d.draft.to), Strings{"eve@example.net"});
    EXPECT_EQ(d.draft.body.find(kSigned), std::string::npos);
    EXPECT_NE(d.pending.find(kSigned), std::string::npos);
  }
  // The same message without Reply-To goes to its signer and quotes without asking.
  Derived to_bob = derive(signed_, Derive::reply_all, QuoteAnswer::ask);
  EXPECT_EQ(to_bob.state, QuoteState::quoted);
  EXPECT_EQ(addresses_of(to_bob.draft.to), Strings{"bob@example.org"});
  EXPECT_TRUE(to_bob.draft.cc.empty());  // alice@example.org, her own, is left out
  EXPECT_EQ(to_bob.draft.in_reply_to, "x1@example.org");
  EXPECT_EQ(to_bob.draft.references, Strings{"x1@example.org"});
}

// A transport that must never be reached by these tests.
class Refusing : public mail::Transport {
 public:
  Status send(const std::string&, const std::vector<std::string>&, std::string_view) override {
    ++calls;
    return make_error(Errc::io, "the mail system is down");
  }
  int calls = 0;
};

TEST_F(Drafting, DecryptedTextIsStoredOnlyEncryptedAtEveryStep) {
  Derived d = derive(wrapped_, Derive::reply, QuoteAnswer::yes);
  d.draft.encrypt = false;  // the user unticked Encrypt
  mail::Maildir md(maildir_root(), env.clock());
  Refusing transport;
  auto box = mail::maildir_mailbox(md);
  mail::Outbox outbox(*box, keys_->keys(), transport, env.clock());
  auto id = outbox.save_draft(d.draft, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto raw = md.read(mail::Folder::drafts, *id);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->find(kCaptured), std::string::npos);
  EXPECT_NE(raw->find("multipart/encrypted"), std::string::npos);
  // A clear send without the user's explicit choice is refused; the draft stays sealed.
  auto opened = keys_->open(alice_key_);
  ASSERT_TRUE(opened.ok());
  const auto& key = std::get<keys::UnlockedKey>(*opened);
  auto refused = outbox.send(*id, std::nullopt, &key);
  EXPECT_EQ(refused.code(), Errc::invalid_argument);
  EXPECT_EQ(transport.calls, 0);
  // With the choice, a failing transport keeps it sealed too.
  d.draft.unencrypted_reply_ok = true;
  auto id2 = outbox.save_draft(d.draft, *id);
  ASSERT_TRUE(id2.ok());
  auto failed = outbox.send(*id2, std::nullopt, &key);
  EXPECT_EQ(failed.code(), Errc::io);
  EXPECT_EQ(transport.calls, 1);
  // Without the key the sealed draft cannot be sent at all.
  EXPECT_EQ(outbox.send(*id2, std::nullopt, nullptr).code(), Errc::invalid_argument);
  // Signing alone would store the prepared message in the clear: refused.
  d.draft.sign = true;
  d.draft.to = {{"", "bob@example.org"}};
  EXPECT_EQ(outbox.prepare(d.draft, &key, *id2).code(), Errc::invalid_argument);
  for (auto folder : {mail::Folder::drafts, mail::Folder::sent}) {
    auto list = md.list(folder);
    if (!list)
      continue;
    for (const auto& entry : *list) {
      auto content = md.read(folder, entry.uid);
      ASSERT_TRUE(content.ok());
      EXPECT_EQ(content->find(kCaptured), std::string::npos);
    }
  }
  // The stored draft reads back with what it holds.
  auto loaded = outbox.load_draft(*id2, &key);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->decrypted_quote, mail::DecryptedQuote::confirmed);
  EXPECT_NE(loaded->body.find(kCaptured), std::string::npos);
}

TEST_F(Drafting, DraftHeaderCarriesTheQuoteState) {
  mail::Draft d;
  d.from = {"", "alice@example.org"};
  d.decrypted_quote = mail::DecryptedQuote::to_signer;
  d.quote_signer = "bob@example.org";
  auto meta = mail::read_draft_meta(
      mail::draft_header_line(mail::meta_of(d, mail::DraftState::editing)) + "From: a@b.c\r\n\r\n");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->decrypted_quote, mail::DecryptedQuote::to_signer);
  EXPECT_EQ(meta->quote_signer, "bob@example.org");
  // A signer that is not a plain address is never written into the header.
  d.quote_signer = "bob@example.org; protected=0";
  EXPECT_EQ(mail::meta_of(d, mail::DraftState::editing).quote_signer, "");
  // An unknown value reads as holding decrypted text (the safe side).
  auto odd = mail::read_draft_meta("X-Webmailkey-Draft: v=1; quote=maybe\r\nFrom: a@b.c\r\n\r\n");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->decrypted_quote, mail::DecryptedQuote::confirmed);
}

// Issue 9, "one reading per request": mail::parse_count() counts every GMime parse of
// the process, so each flow below must parse the stored message once and each of its
// two decrypted entities once — three parses, however many parts, attachments and
// segments the reading has.
TEST_F(Drafting, ARequestParsesTheMessageOnceAndEachDecryptedEntityOnce) {
  const std::string first = "MARKER-first-part-19d3";
  const std::string second = "MARKER-second-part-7b0e";
  const std::string raw =
      "From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Two encrypted parts\n"
      "Message-ID: <two@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
      "boundary=\"outer\"\n\n--outer\n" +
      pgp_mime_entity(encrypt_with_attachment(first, "first attachment"), "enc1") + "\n--outer\n" +
      pgp_mime_entity(encrypt_with_attachment(second, "second attachment"), "enc2") +
      "\n--outer--\n";
  const std::string uid = deliver(raw);
  const MessageRef ref{mail::Folder::inbox, uid};

  // The message page (no decryption): its one parse tells which key opens the message
  // and which keys it offers.
  std::uint64_t before = mail::parse_count();
  auto page = mail::Message::parse(raw);
  ASSERT_TRUE(page.ok()) << page.error().message;
  auto key = keys_->key_for_message(*page);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->user_id, user_.id);
  EXPECT_TRUE(key_offers(env.app(), keys_->session(), *page, raw).empty());
  EXPECT_EQ(mail::parse_count() - before, 1u) << "the message page parses the message once";

  // /decrypt
  before = mail::parse_count();
  auto outcome = keys_->decrypt(ref);
  std::uint64_t parses = mail::parse_count() - before;
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto* d = std::get_if<Decrypted>(&*outcome);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->view.segments.size(), 2u);
  for (const auto& seg : d->view.segments) {
    EXPECT_EQ(seg.kind, reader::Segment::Kind::decrypted);
    ASSERT_EQ(seg.attachments.size(), 1u);
  }
  EXPECT_NE(d->view.segments[0].text.find(first), std::string::npos);
  EXPECT_NE(d->view.segments[1].text.find(second), std::string::npos);
  EXPECT_EQ(d->view.segments[1].attachments[0].id, "2.2:2");
  EXPECT_EQ(parses, 3u) << "the stored message once, each decrypted entity once";

  // /decrypt with part: one attachment of the decrypted content
  before = mail::parse_count();
  auto part = keys_->decrypted_part(ref, "2.2:2");
  parses = mail::parse_count() - before;
  ASSERT_TRUE(part.ok()) << part.error().message;
  auto* content = std::get_if<DecryptedPart>(&*part);
  ASSERT_NE(content, nullptr);
  EXPECT_EQ(content->content.bytes.rfind("second attachment", 0), 0u);
  EXPECT_EQ(parses, 3u);

  // /compose?reply=: the reading and the quote
  before = mail::parse_count();
  Derived reply = derive_draft(keys_->keys(), read(uid), user_, Derive::reply, QuoteAnswer::yes);
  parses = mail::parse_count() - before;
  EXPECT_EQ(reply.state, QuoteState::quoted);
  EXPECT_NE(reply.draft.body.find(first), std::string::npos);
  EXPECT_NE(reply.draft.body.find(second), std::string::npos);
  EXPECT_EQ(parses, 3u);
}

// The signed message page: one parse gives the page its headers and text and the
// reader its signatures and segments.
TEST_F(Drafting, TheSignedMessagePageParsesTheMessageOnce) {
  auto clearsigned = KeysEnv::gpg(
      bob_home_,
      {"--pinentry-mode", "loopback", "--passphrase", kFilePass, "-u", bob_fpr_, "--clearsign"},
      "Signed words MARKER-signed-page\n");
  ASSERT_EQ(clearsigned.status, 0) << clearsigned.err;
  const std::string raw =
      "From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Signed\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"s\"\n\n--s\nContent-Type: text/plain\n\n" +
      clearsigned.out +
      "\n--s\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
      "filename=\"a.bin\"\n\nattached\n--s--\n";
  const std::uint64_t before = mail::parse_count();
  auto message = mail::Message::parse(raw);
  ASSERT_TRUE(message.ok()) << message.error().message;
  auto signed_view = verify_signed_message(env.app(), keys_->session(), *message);
  const std::uint64_t parses = mail::parse_count() - before;
  ASSERT_TRUE(signed_view.ok()) << signed_view.error().message;
  ASSERT_EQ(signed_view->view.signatures.size(), 1u);
  bool text_shown = false, attachment_listed = false;
  for (const auto& seg : signed_view->view.segments) {
    text_shown = text_shown || seg.text.find("MARKER-signed-page") != std::string::npos;
    attachment_listed = attachment_listed || !seg.attachments.empty();
  }
  EXPECT_TRUE(text_shown);
  EXPECT_TRUE(attachment_listed);
  EXPECT_EQ(parses, 1u);
}

}  // namespace

}  // namespace wmk::webflow
