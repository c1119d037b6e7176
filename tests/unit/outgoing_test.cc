// Drafts, signing, encryption and sending with real keys (KeyStore on a real GnuPG home
// and OpenSSL), a real sendmail stand-in, and outside verifiers: gpg --verify,
// openssl cms -verify, gpg -d and openssl cms -decrypt with keys exported to them.

#include "core/mail/outgoing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "core/auth/users.h"
#include "core/contacts/contacts.h"
#include "core/util/encoding.h"
#include "core/util/json.h"
#include "tests/unit/keys_test_util.h"
#include "tests/unit/mail_backends.h"
#include "tests/unit/mail_test_tools.h"

namespace wmk::mail {
namespace {

using test::fixture_path;
using test::read_test_file;
using test::run_command;
using test::write_test_file;

constexpr const char* kPass = "correct horse battery";

struct SharedKeys {
  test::KeysEnv env;
  keys::KeyInfo alice_pgp, alice_smime, bob_pgp, bob_smime;
};

SharedKeys* shared = nullptr;

// Every case stores drafts or copies in Sent, or checks that none was stored, so each
// runs on both mail backends (tests/unit/mail_backends.h).
class OutgoingTest : public BackendTest {
 protected:
  static void SetUpTestSuite() {
    shared = new SharedKeys();
    auto store = shared->env.store();
    auto make = [&](const char* login, keys::KeyType type) {
      keys::GenerateOptions o;
      o.type = type;
      auto g = store.generate(login, o, test::secret(kPass));
      if (!g)
        throw std::runtime_error("generate failed: " + g.error().message);
      return g->key;
    };
    shared->alice_pgp = make("alice", keys::KeyType::openpgp);
    shared->alice_smime = make("alice", keys::KeyType::smime);
    shared->bob_pgp = make("bob", keys::KeyType::openpgp);
    shared->bob_smime = make("bob", keys::KeyType::smime);
  }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  OutgoingTest() : store_(shared->env.store()), transport_(stand_in("")) {}

  void SetUp() override {
    open_box(shared->env.clock());
    if (IsSkipped() || HasFatalFailure())
      return;
    outbox_ = std::make_unique<Outbox>(*box, store_, *transport_, shared->env.clock());
  }

  std::unique_ptr<SendmailTransport> stand_in(const std::string& settings) {
    std::string path = dir_.path() + "/sendmail";
    write_test_file(path, "#!/bin/sh\nSENDMAIL_CAPTURE_DIR=" + dir_.path() + " " + settings +
                              " exec " + fixture_path("sendmail-capture.sh") + " \"$@\"\n");
    chmod(path.c_str(), 0700);
    return std::make_unique<SendmailTransport>(path);
  }

  keys::UnlockedKey unlock(const keys::KeyInfo& key) {
    auto u = store_.unlock(key, test::secret(kPass));
    if (!u)
      throw std::runtime_error("unlock failed: " + u.error().message);
    return std::move(u).value();
  }

  Draft draft() {
    Draft d;
    d.from = {"Alice Exämple", "alice@example.org"};
    d.to = {{"Bob Ünlaut", "bob@example.org"}};
    d.subject = "Grüße — signed ✓";
    d.body = "Hello Bob,\nFrom the garden:   \nÄpfel und Birnen.\n\n-- \nAlice\n";
    std::string bytes;
    for (int i = 0; i < 1000; ++i)
      bytes += static_cast<char>((i * 37) % 256);
    d.attachments.push_back(make_attachment("Daten äöü.bin", bytes));
    return d;
  }

  // An outside GnuPG home of this case: the keys environment (and so its homes) is
  // shared by the suite's cases, which run once per backend.
  std::string outside_home(const std::string& name) {
    return shared->env.outside_home(name + (imap() ? "-imap" : "-maildir"));
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string captured(int n = 1) const {
    return read_test_file(path(std::to_string(n) + ".message"));
  }
  std::string captured_args(int n = 1) const {
    std::string a = read_test_file(path(std::to_string(n) + ".args"));
    std::replace(a.begin(), a.end(), '\0', ' ');
    return a;
  }
  std::size_t count(Folder f) { return stored_count(f); }

  // A GnuPG home outside the server holding key's secret key (exported with a
  // passphrase and imported by gpg).
  std::string outside_gpg_with_secret(const keys::KeyInfo& key, const std::string& name) {
    auto exported = store_.export_secret(key, test::secret(kPass), test::secret("export pass"));
    if (!exported)
      throw std::runtime_error("export failed: " + exported.error().message);
    std::string home = outside_home(name);
    write_test_file(path(name + ".asc"), *exported);
    auto r = test::KeysEnv::gpg(home, {"--pinentry-mode", "loopback", "--passphrase", "export pass",
                                       "--import", path(name + ".asc")});
    if (r.status != 0)
      throw std::runtime_error("gpg --import failed: " + r.err);
    return home;
  }

  // Key and certificate of an S/MIME key as PEM files for openssl.
  std::pair<std::string, std::string> outside_smime(const keys::KeyInfo& key,
                                                    const std::string& name) {
    auto p12 = store_.export_secret(key, test::secret(kPass), test::secret("export pass"));
    if (!p12)
      throw std::runtime_error("export failed: " + p12.error().message);
    write_test_file(path(name + ".p12"), *p12);
    std::string key_pem = path(name + "-key.pem"), cert_pem = path(name + "-cert.pem");
    auto a = run_command("openssl pkcs12 -in " + path(name + ".p12") +
                         " -passin pass:'export pass' -nocerts -nodes -out " + key_pem);
    auto b = run_command("openssl pkcs12 -in " + path(name + ".p12") +
                         " -passin pass:'export pass' -nokeys -clcerts -out " + cert_pem);
    if (a.status != 0 || b.status != 0)
      throw std::runtime_error("openssl pkcs12 failed: " + a.output + b.output);
    return {key_pem, cert_pem};
  }

  test::TempDir dir_;
  keys::KeyStore store_;
  std::unique_ptr<SendmailTransport> transport_;
  std::unique_ptr<Outbox> outbox_;
};

void expect_same_draft(const Draft& a, const Draft& b) {
  EXPECT_EQ(a.from.name, b.from.name);
  EXPECT_EQ(a.from.address, b.from.address);
  ASSERT_EQ(a.to.size(), b.to.size());
  for (std::size_t i = 0; i < a.to.size(); ++i) {
    EXPECT_EQ(a.to[i].name, b.to[i].name);
    EXPECT_EQ(a.to[i].address, b.to[i].address);
  }
  ASSERT_EQ(a.cc.size(), b.cc.size());
  for (std::size_t i = 0; i < a.cc.size(); ++i) {
    EXPECT_EQ(a.cc[i].name, b.cc[i].name);
    EXPECT_EQ(a.cc[i].address, b.cc[i].address);
  }
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.body, b.body);
  ASSERT_EQ(a.attachments.size(), b.attachments.size());
  for (std::size_t i = 0; i < a.attachments.size(); ++i) {
    EXPECT_EQ(a.attachments[i].filename, b.attachments[i].filename);
    EXPECT_EQ(a.attachments[i].content_type, b.attachments[i].content_type);
    EXPECT_TRUE(a.attachments[i].bytes == b.attachments[i].bytes) << "attachment " << i;
  }
  EXPECT_EQ(a.in_reply_to, b.in_reply_to);
  EXPECT_EQ(a.references, b.references);
  EXPECT_EQ(a.sign, b.sign);
  EXPECT_EQ(a.encrypt, b.encrypt);
  EXPECT_EQ(a.technology, b.technology);
  EXPECT_EQ(a.original_encrypted, b.original_encrypted);
  EXPECT_EQ(a.unencrypted_reply_ok, b.unencrypted_reply_ok);
}

// ---- drafts

TEST_P(OutgoingTest, DraftRoundTripsExactly) {
  Draft d = draft();
  d.cc = {{"Cäcilie, Dr.", "c@example.net"}, {"", "d@example.net"}};
  d.subject = "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?= literal";
  d.body += "no final newline";
  d.in_reply_to = "orig@example.net";
  d.references = {"root@example.net", "orig@example.net"};
  d.sign = true;
  d.technology = Technology::smime;
  d.attachments.push_back(make_attachment("empty", ""));
  d.attachments.push_back(make_attachment("text.txt", "a\r\nb\n\r\nFrom c\n"));
  auto id = outbox_->save_draft(d, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto back = outbox_->load_draft(*id, nullptr);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_draft(d, *back);
  auto meta = outbox_->draft_meta(*id);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->state, DraftState::editing);
  EXPECT_FALSE(meta->is_protected);
  // The stored file is an ordinary message with the Draft flag.
  auto flags = stored_flags(Folder::drafts, *id);
  ASSERT_TRUE(flags.ok());
  EXPECT_TRUE(flags->has(Flag::draft));
}

TEST_P(OutgoingTest, SavingAgainReplacesTheDraft) {
  auto first = outbox_->save_draft(draft(), std::nullopt);
  ASSERT_TRUE(first.ok());
  Draft d = draft();
  d.subject = "second";
  auto second = outbox_->save_draft(d, *first);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(count(Folder::drafts), 1u);
  EXPECT_EQ(outbox_->load_draft(*second, nullptr)->subject, "second");
  EXPECT_EQ(outbox_->load_draft(*first, nullptr).code(), Errc::not_found);
}

TEST_P(OutgoingTest, DraftOfAnEncryptedMessageIsStoredEncrypted) {
  Draft d = draft();
  d.encrypt = true;
  d.body = "Geheimnis: the launch code is 0000\n";
  auto id = outbox_->save_draft(d, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::string raw = *stored(Folder::drafts, *id);
  EXPECT_EQ(raw.find("launch code"), std::string::npos);
  EXPECT_EQ(raw.find("Geheimnis"), std::string::npos);
  EXPECT_EQ(parse_message(raw)->protection, Protection::pgp_mime);
  EXPECT_TRUE(outbox_->draft_meta(*id)->is_protected);
  EXPECT_EQ(outbox_->draft_sender(*id)->address, "alice@example.org");
  EXPECT_EQ(outbox_->load_draft(*id, nullptr).code(), Errc::invalid_argument);
  auto key = unlock(shared->alice_pgp);
  auto back = outbox_->load_draft(*id, &key);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_draft(d, *back);
  // Bob's key cannot open Alice's draft.
  auto bob = unlock(shared->bob_pgp);
  EXPECT_FALSE(outbox_->load_draft(*id, &bob).ok());
}

TEST_P(OutgoingTest, SmimeDraftOfAnEncryptedMessageIsStoredEncrypted) {
  Draft d = draft();
  d.encrypt = true;
  d.technology = Technology::smime;
  auto id = outbox_->save_draft(d, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::string raw = *stored(Folder::drafts, *id);
  EXPECT_EQ(raw.find("Birnen"), std::string::npos);
  EXPECT_EQ(parse_message(raw)->protection, Protection::smime_auth_enveloped);
  auto key = unlock(shared->alice_smime);
  auto back = outbox_->load_draft(*id, &key);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_draft(d, *back);
}

// ---- signing

TEST_P(OutgoingTest, PgpMimeSignedMessageVerifiesWithGpgAndIsSentExactly) {
  Draft d = draft();
  d.sign = true;
  auto id = outbox_->save_draft(d, std::nullopt);
  ASSERT_TRUE(id.ok());
  auto key = unlock(shared->alice_pgp);
  auto p = outbox_->prepare(d, &key, *id);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->is_signed);
  EXPECT_FALSE(p->is_encrypted);
  EXPECT_EQ(p->micalg, "pgp-sha256");
  EXPECT_EQ(p->signer_fingerprint, shared->alice_pgp.fingerprint);
  EXPECT_EQ(count(Folder::drafts), 1u);  // the prepared message replaced the draft

  // An outside gpg that knows only Alice's public key.
  std::string home = outside_home("verify-pgp");
  write_test_file(path("alice.asc"), *store_.export_public(shared->alice_pgp));
  ASSERT_EQ(test::KeysEnv::gpg(home, {"--import", path("alice.asc")}).status, 0);
  write_test_file(path("m.eml"), p->message);
  auto split = run_command("python3 " + fixture_path("split_signed.py") + " " + path("m.eml") +
                           " " + path("signed") + " " + path("sig"));
  ASSERT_EQ(split.status, 0) << split.output;
  EXPECT_NE(split.output.find("micalg=pgp-sha256"), std::string::npos);
  EXPECT_EQ(read_test_file(path("signed")), p->signed_content);
  auto v = test::KeysEnv::gpg(home, {"--verify", path("sig"), path("signed")});
  EXPECT_EQ(v.status, 0) << v.err;
  EXPECT_NE(v.err.find("Good signature"), std::string::npos) << v.err;

  auto sent = outbox_->send(p->draft_id, p->digest);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(captured(), p->message);
  EXPECT_EQ(captured_args(), "-i -f alice@example.org -- bob@example.org ");
  EXPECT_EQ(count(Folder::drafts), 0u);
  ASSERT_FALSE(sent->sent_id.empty());
  EXPECT_EQ(*stored(Folder::sent, sent->sent_id), p->message);
  EXPECT_FALSE(sent->sent_copy_error.has_value());
}

TEST_P(OutgoingTest, SmimeSignedMessageVerifiesWithOpensslCms) {
  Draft d = draft();
  d.sign = true;
  d.technology = Technology::smime;
  auto key = unlock(shared->alice_smime);
  auto p = outbox_->prepare(d, &key, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->micalg, "sha-256");
  write_test_file(path("m.eml"), p->message);
  write_test_file(path("alice.pem"), *store_.export_public(shared->alice_smime));
  auto v = run_command("openssl cms -verify -in " + path("m.eml") + " -inform SMIME -CAfile " +
                       path("alice.pem") + " -purpose any -out " + path("content"));
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_NE(v.output.find("Verification successful"), std::string::npos) << v.output;
  EXPECT_EQ(read_test_file(path("content")), p->signed_content);
  // Nothing was sent by preparing.
  EXPECT_FALSE(util::path_exists(path("1.args")));
}

TEST_P(OutgoingTest, SigningNeedsTheSendersOwnKeyOfTheChosenKind) {
  Draft d = draft();
  d.sign = true;
  EXPECT_EQ(outbox_->prepare(d, nullptr, std::nullopt).code(), Errc::invalid_argument);
  auto bob = unlock(shared->bob_pgp);
  EXPECT_EQ(outbox_->prepare(d, &bob, std::nullopt).code(), Errc::invalid_argument);
  auto alice_smime = unlock(shared->alice_smime);
  EXPECT_EQ(outbox_->prepare(d, &alice_smime, std::nullopt).code(), Errc::invalid_argument);
  EXPECT_EQ(count(Folder::drafts), 0u);
}

// ---- encryption

TEST_P(OutgoingTest, EncryptedMessageDecryptsForRecipientAndSender) {
  Draft d = draft();
  d.sign = true;
  d.encrypt = true;
  auto key = unlock(shared->alice_pgp);
  auto p = outbox_->prepare(d, &key, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->encrypted_to, (std::vector<std::string>{"bob@example.org", "alice@example.org"}));
  EXPECT_EQ(p->message.find("Birnen"), std::string::npos);
  // The prepared draft is encrypted at rest too.
  EXPECT_EQ(stored(Folder::drafts, p->draft_id)->find("Birnen"), std::string::npos);

  auto sent = outbox_->send(p->draft_id, p->digest);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  std::string message = captured();
  EXPECT_EQ(message, p->message);

  // Bob decrypts with real gpg and his exported key; inside is Alice's signed message.
  std::string bob_home = outside_gpg_with_secret(shared->bob_pgp, "bob-gpg");
  write_test_file(path("alice.asc"), *store_.export_public(shared->alice_pgp));
  ASSERT_EQ(test::KeysEnv::gpg(bob_home, {"--import", path("alice.asc")}).status, 0);
  write_test_file(path("m.eml"), message);
  auto part = run_command("python3 " + fixture_path("mime_part.py") + " " + path("m.eml") + " 2 " +
                          path("payload"));
  ASSERT_EQ(part.status, 0) << part.output;
  auto dec =
      test::KeysEnv::gpg(bob_home, {"--pinentry-mode", "loopback", "--passphrase", "export pass",
                                    "-o", path("inner"), "-d", path("payload")});
  ASSERT_EQ(dec.status, 0) << dec.err;
  std::string inner = read_test_file(path("inner"));
  // The decrypted entity is a multipart/signed whose signature gpg accepts.
  write_test_file(path("inner.eml"), "MIME-Version: 1.0\r\n" + inner);
  auto split = run_command("python3 " + fixture_path("split_signed.py") + " " + path("inner.eml") +
                           " " + path("signed") + " " + path("sig"));
  ASSERT_EQ(split.status, 0) << split.output;
  EXPECT_EQ(read_test_file(path("signed")), p->signed_content);
  auto v = test::KeysEnv::gpg(bob_home, {"--verify", path("sig"), path("signed")});
  EXPECT_EQ(v.status, 0) << v.err;

  // The Sent copy opens for Alice with her own key.
  std::string sent_copy = *stored(Folder::sent, sent->sent_id);
  auto payload = encrypted_payload(sent_copy);
  ASSERT_TRUE(payload.ok());
  auto mine = store_.decrypt(key, payload->bytes);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  EXPECT_EQ(std::string(mine->plaintext.view()), inner);
}

TEST_P(OutgoingTest, SmimeEncryptedMessageDecryptsWithOpensslForRecipient) {
  Draft d = draft();
  d.encrypt = true;
  d.technology = Technology::smime;
  auto p = outbox_->prepare(d, nullptr, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->is_signed);
  auto [key_pem, cert_pem] = outside_smime(shared->bob_smime, "bob");
  write_test_file(path("m.eml"), p->message);
  auto dec =
      run_command("openssl cms -decrypt -binary -in " + path("m.eml") + " -inform SMIME -recip " +
                  cert_pem + " -inkey " + key_pem + " -out " + path("plain"));
  ASSERT_EQ(dec.status, 0) << dec.output;
  std::string entity = read_test_file(path("plain"));
  write_test_file(path("plain.eml"), to_lf_line_ends("MIME-Version: 1.0\r\n" + entity));
  util::JsonWriter w;
  w.begin_object().field("body", d.body).end_object();
  write_test_file(path("expected.json"), w.str());
  EXPECT_EQ(run_command("python3 " + fixture_path("check_message.py") + " " + path("plain.eml") +
                        " " + path("expected.json"))
                .output,
            "");
}

TEST_P(OutgoingTest, MissingRecipientKeyIsAnErrorNamingTheAddressBeforeAnythingHappens) {
  Draft d = draft();
  d.encrypt = true;
  d.sign = true;
  d.cc = {{"Carol", "carol@elsewhere.example"}, {"", "dave@elsewhere.example"}};
  auto key = unlock(shared->alice_pgp);
  const std::string signs = "SELECT count(*) FROM audit WHERE event = 'key.sign'";
  int signs_before = shared->env.count(signs);
  auto p = outbox_->prepare(d, &key, std::nullopt);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), Errc::not_found);
  EXPECT_NE(p.error().message.find("carol@elsewhere.example"), std::string::npos);
  EXPECT_NE(p.error().message.find("dave@elsewhere.example"), std::string::npos);
  EXPECT_EQ(p.error().message.find("bob@example.org"), std::string::npos);
  EXPECT_EQ(count(Folder::drafts), 0u);
  EXPECT_FALSE(util::path_exists(path("1.args")));
  // No key.sign row: nothing was signed.
  EXPECT_EQ(shared->env.count(signs), signs_before);
}

// ---- correspondents' keys (core/contacts)

TEST_P(OutgoingTest, EncryptsToAnOutsideRecipientsBoundKeyWhichTheirOwnGpgDecrypts) {
  std::string carol_home = outside_home("carol-gpg");
  std::string carol = test::KeysEnv::gpg_make_key(carol_home, "Carol <carol@remote.example>", "");
  auto exported = test::KeysEnv::gpg(carol_home, {"--armor", "--export", carol});
  ASSERT_EQ(exported.status, 0);
  contacts::ContactStore contacts(shared->env.app(), store_, keys::Actor{"test", "", ""});
  auto alice = auth::UserStore(shared->env.app().db, shared->env.clock()).find("alice");
  Draft d = draft();
  d.to = {{"Carol", "carol@remote.example"}};
  d.encrypt = true;
  // Without the contact directory, or before the import, there is no key.
  EXPECT_EQ(outbox_->prepare(d, nullptr, std::nullopt).code(), Errc::not_found);
  outbox_->use_contacts(contacts.recipient_keys(alice->id));
  EXPECT_EQ(outbox_->prepare(d, nullptr, std::nullopt).code(), Errc::not_found);
  // Bob's directory does not count for Alice.
  auto bob = auth::UserStore(shared->env.app().db, shared->env.clock()).find("bob");
  ASSERT_TRUE(contacts.import("bob", exported.out, {}).ok());
  EXPECT_EQ(outbox_->prepare(d, nullptr, std::nullopt).code(), Errc::not_found);
  ASSERT_TRUE(contacts.import("alice", exported.out, {}).ok());
  auto p = outbox_->prepare(d, nullptr, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->message.find("Birnen"), std::string::npos);
  write_test_file(path("m.eml"), p->message);
  auto part = run_command("python3 " + fixture_path("mime_part.py") + " " + path("m.eml") + " 2 " +
                          path("payload"));
  ASSERT_EQ(part.status, 0) << part.output;
  auto dec = test::KeysEnv::gpg(carol_home, {"--pinentry-mode", "loopback", "--passphrase", "",
                                             "-o", path("inner"), "-d", path("payload")});
  ASSERT_EQ(dec.status, 0) << dec.err;
  EXPECT_NE(read_test_file(path("inner")).find("Birnen"), std::string::npos);
  (void)bob;
}

TEST_P(OutgoingTest, RevokedBoundKeyIsNeverUsedAndTheErrorSaysWhy) {
  std::string dan_home = outside_home("dan-gpg");
  std::string dan = test::KeysEnv::gpg_make_key(dan_home, "Dan <dan@remote.example>", "");
  std::string rev = read_test_file(dan_home + "/openpgp-revocs.d/" + dan + ".rev");
  rev.erase(rev.find(":-----BEGIN"), 1);
  ASSERT_EQ(test::KeysEnv::gpg(dan_home, {"--import"}, rev).status, 0);
  auto exported = test::KeysEnv::gpg(dan_home, {"--armor", "--export", dan});
  contacts::ContactStore contacts(shared->env.app(), store_, keys::Actor{"test", "", ""});
  auto alice = auth::UserStore(shared->env.app().db, shared->env.clock()).find("alice");
  contacts::ImportRequest r;
  r.emails = {"dan@remote.example"};
  ASSERT_TRUE(contacts.import("alice", exported.out, r).ok());
  outbox_->use_contacts(contacts.recipient_keys(alice->id));
  Draft d = draft();
  d.to = {{"Dan", "dan@remote.example"}};
  d.encrypt = true;
  auto p = outbox_->prepare(d, nullptr, std::nullopt);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), Errc::not_found);
  EXPECT_NE(p.error().message.find("revoked"), std::string::npos) << p.error().message;
}

TEST_P(OutgoingTest, SmimeEncryptsToABoundCertificateWhichOpensslDecrypts) {
  std::string key = path("erin.key"), crt = path("erin.pem");
  auto made = run_command("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " +
                          crt + " -days 30 -subj /CN=Erin/emailAddress=erin@remote.example 2>&1");
  ASSERT_EQ(made.status, 0) << made.output;
  contacts::ContactStore contacts(shared->env.app(), store_, keys::Actor{"test", "", ""});
  auto alice = auth::UserStore(shared->env.app().db, shared->env.clock()).find("alice");
  ASSERT_TRUE(contacts.import("alice", read_test_file(crt), {}).ok());
  outbox_->use_contacts(contacts.recipient_keys(alice->id));
  Draft d = draft();
  d.to = {{"Erin", "erin@remote.example"}};
  d.encrypt = true;
  d.technology = Technology::smime;
  auto p = outbox_->prepare(d, nullptr, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  write_test_file(path("m.eml"), p->message);
  auto dec =
      run_command("openssl cms -decrypt -binary -in " + path("m.eml") + " -inform SMIME -recip " +
                  crt + " -inkey " + key + " -out " + path("plain") + " 2>&1");
  ASSERT_EQ(dec.status, 0) << dec.output;
  EXPECT_NE(read_test_file(path("plain")).find("Birnen"), std::string::npos);
}

// ---- sending

TEST_P(OutgoingTest, PlainDraftIsSentAndFiledInSent) {
  auto id = outbox_->save_draft(draft(), std::nullopt);
  ASSERT_TRUE(id.ok());
  auto sent = outbox_->send(*id, std::nullopt);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  std::string message = captured();
  EXPECT_EQ(message.find(std::string(kDraftHeader)), std::string::npos);
  EXPECT_EQ(*stored(Folder::sent, sent->sent_id), message);
  EXPECT_EQ(count(Folder::drafts), 0u);
  auto back = parse_draft(message);
  ASSERT_TRUE(back.ok());
  expect_same_draft(draft(), *back);
}

TEST_P(OutgoingTest, FailedSendKeepsTheDraftAndSaysWhy) {
  transport_ =
      stand_in("SENDMAIL_CAPTURE_EXIT=75 SENDMAIL_CAPTURE_STDERR='queue file write error'");
  Outbox outbox(*box, store_, *transport_, shared->env.clock());
  Draft d = draft();
  d.sign = true;
  auto key = unlock(shared->alice_pgp);
  auto p = outbox.prepare(d, &key, std::nullopt);
  ASSERT_TRUE(p.ok());
  auto sent = outbox.send(p->draft_id, p->digest);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.code(), Errc::io);
  EXPECT_NE(sent.error().message.find("queue file write error"), std::string::npos);
  EXPECT_NE(sent.error().message.find("temporary failure"), std::string::npos);
  EXPECT_EQ(count(Folder::drafts), 1u);
  EXPECT_EQ(count(Folder::sent), 0u);
  // It can be sent again once the mail system works.
  auto good = stand_in("");
  Outbox retry(*box, store_, *good, shared->env.clock());
  ASSERT_TRUE(retry.send(p->draft_id, p->digest).ok());
  EXPECT_EQ(captured(2), p->message);
}

// Issue 12: sent at most once. The stand-in sendmail takes the message and then kills
// the process that handed it over (as a kill right after sendmail's exit would): the
// retry of the same Send is refused, nothing goes out twice, and the draft is kept.
TEST_P(OutgoingTest, ASendKilledAfterHandingOverIsNotRepeated) {
  Draft d = draft();
  d.sign = true;
  auto key = unlock(shared->alice_pgp);
  auto p = outbox_->prepare(d, &key, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::string killer = path("sendmail-then-kill");
  write_test_file(killer, "#!/bin/sh\nSENDMAIL_CAPTURE_DIR=" + dir_.path() + " " +
                              fixture_path("sendmail-capture.sh") +
                              " \"$@\"\nkill -9 $PPID\nexit 0\n");
  chmod(killer.c_str(), 0700);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SendmailTransport t(killer);
    // Its own connection on IMAP: one the parent shares would be left mid-command.
    auto child_box = same_user_box();
    Outbox outbox(*child_box, store_, t, shared->env.clock());
    (void)outbox.send(p->draft_id, p->digest);
    ::_exit(3);  // not reached when the kill came
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the stand-in did not kill the sender";
  EXPECT_EQ(captured(), p->message);  // it went out once
  auto again = outbox_->send(p->draft_id, p->digest);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Errc::conflict);
  EXPECT_NE(again.error().message.find("may have gone out"), std::string::npos);
  EXPECT_FALSE(util::path_exists(path("2.args")));
  EXPECT_EQ(count(Folder::drafts), 1u);  // kept
  // Opened and prepared again, it is a new review and may be sent on purpose.
  auto back = outbox_->load_draft(p->draft_id, nullptr);
  ASSERT_TRUE(back.ok()) << back.error().message;
  auto p2 = outbox_->prepare(*back, &key, p->draft_id);
  ASSERT_TRUE(p2.ok()) << p2.error().message;
  ASSERT_TRUE(outbox_->send(p2->draft_id, p2->digest).ok());
  EXPECT_TRUE(util::path_exists(path("2.args")));
  EXPECT_EQ(count(Folder::drafts), 0u);
}

TEST_P(OutgoingTest, PreparedMessageIsSentOnlyWithTheReviewedDigest) {
  Draft d = draft();
  d.sign = true;
  auto key = unlock(shared->alice_pgp);
  auto p = outbox_->prepare(d, &key, std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(outbox_->send(p->draft_id, std::nullopt).code(), Errc::conflict);
  EXPECT_EQ(outbox_->send(p->draft_id, util::sha256_hex("other")).code(), Errc::conflict);
  EXPECT_FALSE(util::path_exists(path("1.args")));
  // An editing draft that asks for signing is not sent unsigned.
  auto id = outbox_->save_draft(d, std::nullopt);
  EXPECT_EQ(outbox_->send(*id, std::nullopt).code(), Errc::invalid_argument);
  EXPECT_FALSE(util::path_exists(path("1.args")));
  // A prepared draft opens again for editing, signature dropped.
  auto back = outbox_->load_draft(p->draft_id, nullptr);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_draft(d, *back);
}

TEST_P(OutgoingTest, ReplyToEncryptedMessageLeavesUnencryptedOnlyWhenConfirmed) {
  Draft d = draft();
  d.original_encrypted = true;
  auto id = outbox_->save_draft(d, std::nullopt);
  ASSERT_TRUE(id.ok());
  auto refused = outbox_->send(*id, std::nullopt);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("encrypted"), std::string::npos);
  d.sign = true;
  auto key = unlock(shared->alice_pgp);
  EXPECT_EQ(outbox_->prepare(d, &key, std::nullopt).code(), Errc::invalid_argument);
  EXPECT_FALSE(util::path_exists(path("1.args")));

  d.sign = false;
  d.unencrypted_reply_ok = true;
  auto confirmed = outbox_->save_draft(d, *id);
  ASSERT_TRUE(confirmed.ok());
  EXPECT_TRUE(outbox_->send(*confirmed, std::nullopt).ok());
  d.unencrypted_reply_ok = false;
  d.encrypt = true;
  EXPECT_TRUE(outbox_->prepare(d, nullptr, std::nullopt).ok());
}

// ---- Autocrypt (Level 1) out

// The Autocrypt header of the message in file, as Python's email reads it: addr, and
// the keydata written to out. "" when the message has none.
std::string autocrypt_of(const std::string& file, const std::string& out) {
  auto r = run_command(
      "python3 -c 'import sys, re, base64, email, email.policy\n"
      "m = email.message_from_binary_file(open(sys.argv[1], \"rb\"), "
      "policy=email.policy.compat32)\n"
      "v = m[\"Autocrypt\"]\n"
      "if v is None: sys.exit(0)\n"
      "a = dict(x.strip().split(\"=\", 1) for x in re.sub(r\"\\s+\", \" \", v).split(\";\") if "
      "x.strip())\n"
      "open(sys.argv[2], \"wb\").write(base64.b64decode(a[\"keydata\"].replace(\" \", \"\")))\n"
      "print(a[\"addr\"], end=\"\")' " +
      file + " " + out);
  EXPECT_EQ(r.status, 0) << r.output;
  return r.output;
}

// The fingerprint of the one key in file as an outside gpg imports it.
std::string outside_fingerprint(const std::string& home, const std::string& file) {
  auto r = test::KeysEnv::gpg(home,
                              {"--with-colons", "--import-options", "show-only", "--import", file});
  EXPECT_EQ(r.status, 0) << r.err;
  auto pos = r.out.find("\nfpr:");
  if (pos == std::string::npos)
    return "";
  auto line = r.out.substr(pos + 1, r.out.find('\n', pos + 1) - pos - 1);
  auto end = line.rfind(':');
  auto start = line.rfind(':', end - 1);
  return line.substr(start + 1, end - start - 1);
}

TEST_P(OutgoingTest, AutocryptHeaderCarriesTheSendersKeyInPlainAndSignedMail) {
  outbox_->set_autocrypt(AutocryptHeader::on);
  std::string home = outside_home("autocrypt-reader");
  // Plain.
  auto id = outbox_->save_draft(draft(), std::nullopt);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(outbox_->send(*id, std::nullopt).ok());
  EXPECT_EQ(autocrypt_of(path("1.message"), path("k1")), "alice@example.org");
  EXPECT_EQ(outside_fingerprint(home, path("k1")), shared->alice_pgp.fingerprint);
  // Signed (S/MIME too: the header is about the sender's OpenPGP key): in the headers
  // of the message reviewed, which is exactly the one sent.
  for (auto tech : {Technology::openpgp, Technology::smime}) {
    Draft d = draft();
    d.sign = true;
    d.technology = tech;
    auto key = unlock(tech == Technology::openpgp ? shared->alice_pgp : shared->alice_smime);
    auto p = outbox_->prepare(d, &key, std::nullopt);
    ASSERT_TRUE(p.ok()) << p.error().message;
    auto header_end = p->message.find("\n\n");
    EXPECT_LT(p->message.find("\nAutocrypt: addr=alice@example.org;"), header_end);
    EXPECT_EQ(p->message.find("Autocrypt:", header_end), std::string::npos)
        << "not in the signed body";
    ASSERT_TRUE(outbox_->send(p->draft_id, p->digest).ok());
  }
  EXPECT_EQ(captured(3), read_test_file(path("3.message")));
  EXPECT_EQ(autocrypt_of(path("2.message"), path("k2")), "alice@example.org");
  EXPECT_EQ(outside_fingerprint(home, path("k2")), shared->alice_pgp.fingerprint);
  EXPECT_EQ(autocrypt_of(path("3.message"), path("k3")), "alice@example.org");

  // Off: no header.
  outbox_->set_autocrypt(AutocryptHeader::off);
  auto id2 = outbox_->save_draft(draft(), std::nullopt);
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(outbox_->send(*id2, std::nullopt).ok());
  EXPECT_EQ(autocrypt_of(path("4.message"), path("k4")), "");
  EXPECT_EQ(captured(4).find("Autocrypt"), std::string::npos);
}

TEST_P(OutgoingTest, MissingKeysNameEachRecipientAndWhy) {
  std::string dan_home = outside_home("dan2-gpg");
  std::string dan = test::KeysEnv::gpg_make_key(dan_home, "Dan <dan2@remote.example>", "");
  std::string rev = read_test_file(dan_home + "/openpgp-revocs.d/" + dan + ".rev");
  rev.erase(rev.find(":-----BEGIN"), 1);
  ASSERT_EQ(test::KeysEnv::gpg(dan_home, {"--import"}, rev).status, 0);
  auto exported = test::KeysEnv::gpg(dan_home, {"--armor", "--export", dan});
  contacts::ContactStore contacts(shared->env.app(), store_, keys::Actor{"test", "", ""});
  auto alice = auth::UserStore(shared->env.app().db, shared->env.clock()).find("alice");
  contacts::ImportRequest r;
  r.emails = {"dan2@remote.example"};
  ASSERT_TRUE(contacts.import("alice", exported.out, r).ok());
  // A key made "in 2020" that expired a day later.
  auto old = test::KeysEnv::gpg(
      dan_home,
      {"--faked-system-time", "20200101T000000", "--pinentry-mode", "loopback", "--passphrase", "",
       "--quick-gen-key", "Old <old2@remote.example>", "future-default", "default", "1d"});
  ASSERT_EQ(old.status, 0) << old.err;
  auto old_pub = test::KeysEnv::gpg(dan_home, {"--armor", "--export", "old2@remote.example"});
  ASSERT_TRUE(contacts.import("alice", old_pub.out, {}).ok());
  outbox_->use_contacts(contacts.recipient_keys(alice->id));
  Draft d = draft();
  d.encrypt = true;
  d.to.push_back({"Carol", "carol2@remote.example"});
  d.cc = {{"Dan", "dan2@remote.example"}, {"Old", "old2@remote.example"}};
  auto missing = outbox_->missing_keys(d);
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  ASSERT_EQ(missing->size(), 3u);
  EXPECT_EQ((*missing)[2].address, "old2@remote.example");
  EXPECT_EQ((*missing)[2].reason, MissingKeyReason::expired);
  EXPECT_NE((*missing)[2].words.find("expired"), std::string::npos) << (*missing)[2].words;
  EXPECT_EQ((*missing)[0].address, "carol2@remote.example");
  EXPECT_EQ((*missing)[0].reason, MissingKeyReason::none);
  EXPECT_FALSE((*missing)[0].is_sender);
  EXPECT_EQ((*missing)[1].address, "dan2@remote.example");
  EXPECT_EQ((*missing)[1].reason, MissingKeyReason::revoked);
  EXPECT_NE((*missing)[1].words.find("revoked"), std::string::npos) << (*missing)[1].words;
  // Bob (this server's user) and Alice have keys.
  d.to = {{"Bob", "bob@example.org"}};
  d.cc.clear();
  missing = outbox_->missing_keys(d);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
  // Checking writes no key.export audit row (no key is exported for it).
  const std::string exports = "SELECT count(*) FROM audit WHERE event = 'key.export'";
  int before = shared->env.count(exports);
  ASSERT_TRUE(outbox_->missing_keys(d).ok());
  EXPECT_EQ(shared->env.count(exports), before);
}

INSTANTIATE_TEST_SUITE_P(Backends, OutgoingTest, ::testing::Values(Backend::maildir, Backend::imap),
                         backend_test_name);

}  // namespace
}  // namespace wmk::mail
