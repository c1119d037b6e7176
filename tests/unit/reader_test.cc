// Reading protected mail against real outside tools: keys and ciphertexts made by
// gpg and openssl, wrapped as MIME by Python's email package
// (tests/fixtures/wrap_mime.py), opened through the KeyStore.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "core/contacts/contacts.h"
#include "core/reader/reader.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::reader {

namespace {

using keys::KeyInfo;
using keys::KeyStore;
using keys::KeyType;
using test::CmdResult;
using test::KeysEnv;
using test::secret;

constexpr const char* kPass = "reader test passphrase";
constexpr const char* kFilePass = "outside file passphrase";
constexpr const char* kAliceUid = "Alice Example <alice@example.org>";
constexpr const char* kSamUid = "Sam Sender <sam@example.net>";
constexpr const char* kMalloryUid = "Mallory <mallory@example.net>";
constexpr const char* kSecretText = "The vault code is 4711. Grüße!";

// A 1x1 PNG, so that libmagic has real bytes to sniff behind a lying content type.
const std::string kPng = std::string(
    "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    "\x1f\x15\xc4\x89\x00\x00\x00\x0aIDATx\x9c\x63\x00\x01\x00\x00\x05\x00\x01\x0d\x0a\x2d\xb4"
    "\x00\x00\x00\x00IEND\xae\x42\x60\x82",
    67);

// The reader reads a parsed message (mail::Message), as KeySession gives it: these
// parse raw once and pass it on, with the parser's errors.
Result<ProtectedMessage> inspect(std::string_view raw) {
  auto message = mail::Message::parse(raw);
  if (!message)
    return message.error();
  return reader::inspect(*message);
}
Result<mail::PartContent> decrypted_part(KeyStore& store, const keys::UnlockedKey& key,
                                         std::string_view raw, std::string_view part_id) {
  auto message = mail::Message::parse(raw);
  if (!message)
    return message.error();
  return reader::decrypted_part(store, key, *message, part_id);
}
Result<mail::PartContent> signed_part(KeyStore& store, std::string_view raw,
                                      std::string_view part_id) {
  auto message = mail::Message::parse(raw);
  if (!message)
    return message.error();
  return reader::signed_part(store, *message, part_id);
}

CmdResult must(const CmdResult& r, const std::string& what) {
  if (r.status != 0)
    throw std::runtime_error(what + " failed: " + r.err);
  return r;
}

// Keys by real gpg and certificates by real openssl, made once for the suite.
struct Outside {
  test::TempDir dir;
  std::string alice_home, sam_home, mallory_home;
  std::string alice_fpr, sam_fpr, mallory_fpr;
  std::string alice_secret;  // armored, protected by kFilePass
  std::string sam_pub;
  std::string alice_p12;     // alice's S/MIME key and certificate from the test CA
  std::string sam_cert_fpr;  // SHA-256 of sam's CA-issued certificate, uppercase hex

  std::string path(const std::string& name) const { return dir.path() + "/" + name; }

  std::string home(const std::string& name) { return test::make_outside_gnupg_home(path(name)); }

  static std::string openssl(const std::vector<std::string>& args, const std::string& input = "") {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return must(test::run_cmd(argv, input), "openssl " + args.front()).out;
  }

  // A P-256 key and certificate for email signed by the test CA, in NAME.key / NAME.pem.
  void ca_issue(const std::string& name, const std::string& cn, const std::string& email) {
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", path(name + ".key"), "-out", path(name + ".csr"), "-subj",
             "/CN=" + cn + "/emailAddress=" + email});
    test::spit(path(name + ".ext"),
               "subjectAltName=email:" + email +
                   "\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\n"
                   "extendedKeyUsage=emailProtection\n");
    openssl({"x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.pem"), "-CAkey",
             path("ca.key"), "-CAcreateserial", "-days", "30", "-out", path(name + ".pem"),
             "-extfile", path(name + ".ext")});
  }

  Outside() {
    alice_home = home("alice");
    sam_home = home("sam");
    mallory_home = home("mallory");
    alice_fpr = KeysEnv::gpg_make_key(alice_home, kAliceUid, kFilePass);
    sam_fpr = KeysEnv::gpg_make_key(sam_home, kSamUid, "");
    mallory_fpr = KeysEnv::gpg_make_key(mallory_home, kMalloryUid, "");
    alice_secret = must(KeysEnv::gpg(alice_home,
                                     {"--pinentry-mode", "loopback", "--passphrase-fd", "0",
                                      "--armor", "--export-secret-keys", alice_fpr},
                                     std::string(kFilePass) + "\n"),
                        "gpg --export-secret-keys")
                       .out;
    std::string alice_pub =
        must(KeysEnv::gpg(alice_home, {"--armor", "--export", alice_fpr}), "gpg --export").out;
    sam_pub = must(KeysEnv::gpg(sam_home, {"--armor", "--export", sam_fpr}), "gpg --export").out;
    // Both senders can encrypt to alice.
    must(KeysEnv::gpg(sam_home, {"--import"}, alice_pub), "gpg --import");
    must(KeysEnv::gpg(mallory_home, {"--import"}, alice_pub), "gpg --import");

    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=Reader Test CA",
             "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"});
    ca_issue("sam", "Sam Sender", "sam@example.net");
    ca_issue("alice", "Alice Example", "alice@example.org");
    openssl({"pkcs12", "-export", "-inkey", path("alice.key"), "-in", path("alice.pem"),
             "-certfile", path("ca.pem"), "-passout", std::string("pass:") + kFilePass, "-out",
             path("alice.p12")});
    alice_p12 = test::slurp(path("alice.p12"));
    std::string line = openssl({"x509", "-in", path("sam.pem"), "-noout", "-fingerprint",
                                "-sha256"});  // "sha256 Fingerprint=AB:CD:..."
    for (char c : line.substr(line.find('=') + 1)) {
      if (std::isxdigit(static_cast<unsigned char>(c)))
        sam_cert_fpr += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }

  ~Outside() {
    for (const auto& h : {alice_home, sam_home, mallory_home})
      (void)keys::stop_agent(h);
  }
};

// Stands in for a binding source that issue 10 adds (the user's contacts): sam's
// OpenPGP key and certificate are verified for sam@example.net. Asked after the real
// ServerUsers source, which the tests of users' own keys exercise.
class SamVerified final : public bindings::Lookup {
 public:
  SamVerified(std::string pgp_fpr, std::string cert_fpr)
      : pgp_fpr_(std::move(pgp_fpr)), cert_fpr_(std::move(cert_fpr)) {}
  std::optional<bindings::Binding> find(KeyType type, std::string_view fpr,
                                        std::string_view address) const override {
    const std::string& known = type == KeyType::openpgp ? pgp_fpr_ : cert_fpr_;
    if (fpr != known || address != "sam@example.net")
      return std::nullopt;
    return bindings::Binding{bindings::Source::server, std::string(address), "sam"};
  }

 private:
  std::string pgp_fpr_, cert_fpr_;
};

const Segment& decrypted_of(const DecryptedView& view) {
  const Segment* found = nullptr;
  for (const auto& s : view.segments) {
    if (s.kind == Segment::Kind::decrypted) {
      if (found != nullptr)
        throw std::runtime_error("more than one decrypted segment");
      found = &s;
    }
  }
  if (found == nullptr)
    throw std::runtime_error("no decrypted segment");
  return *found;
}

class Reader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { outside_ = new Outside(); }
  static void TearDownTestSuite() {
    delete outside_;
    outside_ = nullptr;
  }

  static Outside& out() { return *outside_; }

  KeysEnv env;
  KeyStore store = env.store();
  int files_ = 0;
  bindings::Chain bindings_ = [this] {
    bindings::Chain c = bindings::standard(env.app());
    c.add(std::make_unique<SamVerified>(out().sam_fpr, out().sam_cert_fpr));
    return c;
  }();

  // reader::decrypt and reader::verify_signed with this server's binding sources.
  Result<DecryptedView> decrypt(KeyStore& s, const keys::UnlockedKey& key, std::string_view raw,
                                const ReadOptions& options = {}) {
    auto message = mail::Message::parse(raw);
    if (!message)
      return message.error();
    return reader::decrypt(s, key, *message, bindings_, options);
  }
  Result<MessageView> verify_signed(KeyStore& s, std::string_view raw) {
    auto message = mail::Message::parse(raw);
    if (!message)
      return message.error();
    return reader::verify_signed(s, *message, bindings_);
  }

  // Writes data to a fresh file of this test; returns its path.
  std::string file(const std::string& data) {
    std::string p = env.path("f" + std::to_string(++files_));
    test::spit(p, data);
    return p;
  }

  static std::string wrap(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"python3", std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/wrap_mime.py"});
    return must(test::run_cmd(args), "wrap_mime.py " + args[2]).out;
  }

  // A MIME entity: the secret text and a PNG attachment that claims to be
  // application/octet-stream under a hostile file name.
  std::string entity_with_attachment(const std::string& text = kSecretText) {
    return wrap({"entity", file(text), "--attach",
                 "../../holiday\xe2\x80\xae"
                 "gnp.exe",
                 "application/octet-stream", file(kPng)});
  }

  // gpg in home encrypts data to alice's key (armored), with extra options.
  std::string gpg_encrypt(const std::string& home, const std::string& data,
                          std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--trust-model", "always", "--armor", "--output", "-", "-e", "-r", out().alice_fpr};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(file(data));
    return must(KeysEnv::gpg(home, args), "gpg -e").out;
  }

  std::string message(const std::string& entity, const std::string& from,
                      const std::string& to = "Alice <alice@example.org>") {
    return wrap({"message", "--from", from, "--to", to, file(entity)});
  }

  std::string pgp_mime(const std::string& ciphertext, const std::string& from = kSamUid,
                       const std::string& to = "Alice <alice@example.org>") {
    return message(wrap({"pgp-mime", file(ciphertext)}), from, to);
  }

  // ciphertext in the message shape a provider or client gives it
  // (tests/fixtures/provider_shapes.py).
  std::string shape(const std::string& name, const std::string& ciphertext,
                    std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "python3", std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/provider_shapes.py", name,
        file(ciphertext)};
    args.insert(args.end(), extra.begin(), extra.end());
    return must(test::run_cmd(args), "provider_shapes.py " + name).out;
  }

  // The sender's key as the server knows it: imported into the server's GnuPG home.
  void server_knows_sam() {
    must(KeysEnv::gpg(env.gnupg_home(), {"--import"}, out().sam_pub), "gpg --import");
  }

  KeyInfo import_alice_openpgp() {
    auto key = store.import_openpgp("alice", out().alice_secret, secret(kFilePass), secret(kPass));
    EXPECT_TRUE(key.ok()) << key.error().message;
    return *key;
  }

  KeyInfo import_alice_smime() {
    auto key = store.import_smime("alice", out().alice_p12, secret(kFilePass), secret(kPass));
    EXPECT_TRUE(key.ok()) << key.error().message;
    return *key;
  }

  keys::UnlockedKey unlock(const KeyInfo& key) {
    auto u = store.unlock(key, secret(kPass));
    if (!u)
      throw std::runtime_error("unlock failed: " + u.error().message);
    return std::move(u).value();
  }

  // openssl cms -encrypt of entity to alice's certificate; S/MIME output.
  std::string smime_encrypt(const std::string& entity, const std::string& cipher) {
    return Outside::openssl(
        {"cms", "-encrypt", "-binary", "-" + cipher, "-in", file(entity), out().path("alice.pem")});
  }

  // openssl cms -sign of entity by sam's CA-issued certificate (or a given pair).
  std::string smime_sign(const std::string& entity, const std::vector<std::string>& extra = {},
                         const std::string& cert = "sam.pem", const std::string& key = "sam.key") {
    std::vector<std::string> args = {"cms",          "-sign",   "-binary",        "-in",
                                     file(entity),   "-signer", out().path(cert), "-inkey",
                                     out().path(key)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Outside::openssl(args);
  }

  int audit_rows(const std::string& event, const std::string& outcome) {
    return env.count("SELECT count(*) FROM audit WHERE event = '" + event + "' AND outcome = '" +
                     outcome + "'");
  }

  // Lets CMS trust the test CA for this test only (OpenSSL reads SSL_CERT_FILE on
  // every X509_STORE_set_default_paths).
  struct TrustTestCa {
    TrustTestCa() { setenv("SSL_CERT_FILE", out().path("ca.pem").c_str(), 1); }
    ~TrustTestCa() { unsetenv("SSL_CERT_FILE"); }
  };

 private:
  static Outside* outside_;
};

Outside* Reader::outside_ = nullptr;

std::string without_cr(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\r'), s.end());
  return s;
}

// ---- inspect and choose_key

TEST_F(Reader, InspectNamesEachEncryptionAndTheKeyTypeItNeeds) {
  std::string ct = gpg_encrypt(out().sam_home, entity_with_attachment());
  auto pgp = inspect(pgp_mime(ct));
  ASSERT_TRUE(pgp.ok()) << pgp.error().message;
  EXPECT_EQ(pgp->protection, mail::Protection::pgp_mime);
  EXPECT_EQ(pgp->key_type, KeyType::openpgp);
  ASSERT_EQ(pgp->parts.size(), 1u);
  EXPECT_EQ(pgp->parts[0].part_id, "2");
  EXPECT_EQ(without_cr(pgp->parts[0].payload), ct);  // the wrapper wrote CRLF line ends

  auto inline_pgp = inspect(message(wrap({"inline", file("Hi\n" + ct)}), kSamUid));
  ASSERT_TRUE(inline_pgp.ok());
  EXPECT_EQ(inline_pgp->protection, mail::Protection::pgp_inline);
  ASSERT_EQ(inline_pgp->parts.size(), 1u);
  EXPECT_EQ(inline_pgp->parts[0].payload.rfind("-----BEGIN PGP MESSAGE-----", 0), 0u);

  auto cbc = inspect(message(smime_encrypt("Content-Type: text/plain\r\n\r\nx\r\n", "aes-256-cbc"),
                             "sam@example.net"));
  ASSERT_TRUE(cbc.ok());
  EXPECT_EQ(cbc->protection, mail::Protection::smime_enveloped);
  EXPECT_EQ(cbc->key_type, KeyType::smime);
  EXPECT_EQ(static_cast<unsigned char>(cbc->parts.at(0).payload[0]), 0x30);  // DER, base64 undone
  auto gcm = inspect(message(smime_encrypt("Content-Type: text/plain\r\n\r\nx\r\n", "aes-256-gcm"),
                             "sam@example.net"));
  ASSERT_TRUE(gcm.ok());
  EXPECT_EQ(gcm->protection, mail::Protection::smime_auth_enveloped);

  // Signed only, or plain: nothing to decrypt.
  std::string signed_only =
      message(smime_sign("Content-Type: text/plain\r\n\r\nx\r\n"), "sam@example.net");
  EXPECT_EQ(inspect(signed_only).code(), Errc::not_found);
  EXPECT_EQ(inspect(message(wrap({"inline", file("plain")}), kSamUid)).code(), Errc::not_found);
  EXPECT_EQ(inspect("").code(), Errc::corrupt);
}

TEST_F(Reader, ChooseKeyTakesTheUsersKeyForTheAddressTheMailWentTo) {
  KeyInfo primary = import_alice_openpgp();  // alice@example.org
  keys::GenerateOptions work_opts;
  work_opts.email = "alice@work.example";
  auto work = store.generate("alice", work_opts, secret(kPass));
  ASSERT_TRUE(work.ok()) << work.error().message;
  keys::GenerateOptions bob_opts;
  auto bob_key = store.generate("bob", bob_opts, secret(kPass));
  ASSERT_TRUE(bob_key.ok());

  auth::User alice{1,
                   "alice",
                   "Alice Example",
                   "alice@example.org",
                   {"alice@example.org", "alice@work.example"}};
  auth::User bob{2, "bob", "Bob Example", "bob@example.org", {"bob@example.org"}};
  ProtectedMessage pm;
  pm.protection = mail::Protection::pgp_mime;
  pm.key_type = KeyType::openpgp;

  auto parsed_to = [&](const std::string& to, const std::string& cc = "") {
    std::string raw = "From: sam@example.net\r\nTo: " + to + "\r\n" +
                      (cc.empty() ? "" : "Cc: " + cc + "\r\n") + "\r\nx\r\n";
    auto p = mail::parse_message(raw);
    EXPECT_TRUE(p.ok());
    return *p;
  };
  auto k = choose_key(store, alice, pm, parsed_to("Alice <ALICE@work.example>"));
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->fingerprint, work->key.fingerprint);
  k = choose_key(store, alice, pm, parsed_to("list@example.net", "alice@work.example"));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->fingerprint, work->key.fingerprint);
  // Not addressed to any of hers (Bcc, a list): her primary address's key.
  k = choose_key(store, alice, pm, parsed_to("list@example.net"));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->fingerprint, primary.fingerprint);
  // Addressed to alice, read by bob: bob's own key, never alice's.
  k = choose_key(store, bob, pm, parsed_to("alice@example.org"));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->fingerprint, bob_key->key.fingerprint);
  EXPECT_EQ(k->login, "bob");

  pm.key_type = KeyType::smime;
  auto none = choose_key(store, alice, pm, parsed_to("alice@example.org"));
  EXPECT_EQ(none.code(), Errc::not_found);
  EXPECT_NE(none.error().message.find("you have no S/MIME key"), std::string::npos);
  pm.key_type = KeyType::openpgp;
  auth::User carol{3, "carol", "", "carol@example.org", {"carol@example.org"}};
  env.app().db.exec(
      "INSERT INTO users (id, login, name, password_hash, created) VALUES (3, 'carol', '', 'x', 0);"
      "INSERT INTO user_emails (user_id, email, is_primary) VALUES (3, 'carol@example.org', 1);");
  none = choose_key(store, carol, pm, parsed_to("alice@example.org"));
  EXPECT_EQ(none.code(), Errc::not_found);
  EXPECT_NE(none.error().message.find("you have no OpenPGP key"), std::string::npos);
}

// ---- OpenPGP

TEST_F(Reader, PgpMimeEncryptedOnlyShowsTextAndSniffedAttachmentAndNoSignature) {
  KeyInfo key = import_alice_openpgp();
  std::string raw = pgp_mime(gpg_encrypt(out().sam_home, entity_with_attachment()));
  auto unlocked = unlock(key);
  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->protection, mail::Protection::pgp_mime);
  EXPECT_EQ(view->key_fingerprint, key.fingerprint);
  EXPECT_TRUE(view->integrity_protected);
  ASSERT_EQ(view->segments.size(), 1u);
  const Segment& d = decrypted_of(*view);
  EXPECT_EQ(d.kind, Segment::Kind::decrypted);
  EXPECT_EQ(d.part_id, "2");
  EXPECT_EQ(d.text, kSecretText);
  EXPECT_EQ(d.format, mail::BodyFormat::plain);
  ASSERT_EQ(d.attachments.size(), 1u);
  const Attachment& a = d.attachments[0];
  EXPECT_EQ(a.source, PartSource::decrypted);
  EXPECT_EQ(a.id, "2:2");                   // part 2 inside the encrypted part 2
  EXPECT_EQ(a.filename, "holidaygnp.exe");  // no path, no right-to-left override
  EXPECT_EQ(a.sniffed_type, "image/png");
  EXPECT_EQ(a.size, kPng.size());
  EXPECT_TRUE(view->signatures.empty());
  EXPECT_EQ(view->signature_state, SignatureState::none);

  auto bytes = decrypted_part(store, unlocked, raw, a.id);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(bytes->bytes, kPng);
  EXPECT_EQ(bytes->sniffed_type, "image/png");
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "2:7").code(), Errc::not_found);
  // Every decryption is audited once, by the key code; a malformed id decrypts nothing.
  EXPECT_EQ(audit_rows("key.decrypt", "ok"), 3);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "../1").code(), Errc::invalid_argument);
  EXPECT_EQ(audit_rows("key.decrypt", "ok"), 3);
}

TEST_F(Reader, SignedAndEncryptedBySenderTheServerKnowsIsValid) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  std::string raw = pgp_mime(
      gpg_encrypt(out().sam_home, entity_with_attachment(), {"--sign", "-u", out().sam_fpr}));
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  const SignatureVerdict& v = view->signatures[0];
  EXPECT_EQ(v.status, VerdictStatus::good);
  EXPECT_EQ(v.type, KeyType::openpgp);
  EXPECT_EQ(v.signer_fingerprint, out().sam_fpr);
  EXPECT_EQ(v.signer, kSamUid);
  EXPECT_TRUE(v.matches_from);
  EXPECT_TRUE(v.covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::valid);
  EXPECT_EQ(decrypted_of(*view).text, kSecretText);
}

TEST_F(Reader, SignatureByAKeyTheServerDoesNotKnowIsNotValid) {
  KeyInfo key = import_alice_openpgp();
  std::string raw =
      pgp_mime(gpg_encrypt(out().mallory_home, kSecretText, {"--sign", "-u", out().mallory_fpr}),
               kMalloryUid);
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::unknown_key);
  EXPECT_FALSE(view->signatures[0].matches_from);  // nothing known about the signer
  EXPECT_EQ(view->signature_state, SignatureState::unknown_key);
  // Not MIME inside: the plaintext is shown as text.
  EXPECT_EQ(decrypted_of(*view).text, kSecretText);
}

TEST_F(Reader, SignerOtherThanFromIsAMismatch) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  std::string raw = pgp_mime(
      gpg_encrypt(out().sam_home, entity_with_attachment(), {"--sign", "-u", out().sam_fpr}),
      "The Boss <boss@example.net>");
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::good);
  EXPECT_FALSE(view->signatures[0].matches_from);
  EXPECT_EQ(view->signature_state, SignatureState::signer_mismatch);
}

TEST_F(Reader, InnerMultipartSignedIsCheckedOverItsExactBytes) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string content = entity_with_attachment();
  std::string sig =
      must(KeysEnv::gpg(out().sam_home, {"--armor", "--detach-sign", "-u", out().sam_fpr,
                                         "--output", "-", file(content)}),
           "gpg --detach-sign")
          .out;
  std::string signed_entity = wrap({"signed", "--protocol", "pgp", file(content), file(sig)});
  auto view = decrypt(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, signed_entity)));
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::good);
  EXPECT_TRUE(view->signatures[0].covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::valid);
  EXPECT_EQ(decrypted_of(*view).text, kSecretText);
  ASSERT_EQ(decrypted_of(*view).attachments.size(), 1u);  // the signature part is not one
  EXPECT_EQ(decrypted_of(*view).attachments[0].id, "2:1.2");
  EXPECT_EQ(
      decrypted_part(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, signed_entity)), "2:1.2")
          ->bytes,
      kPng);
  // Signed over CRLF, stored with LF line ends inside the encryption: still good.
  auto lf =
      decrypt(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, without_cr(signed_entity))));
  ASSERT_TRUE(lf.ok()) << lf.error().message;
  EXPECT_EQ(lf->signature_state, SignatureState::valid);

  // Content other than what was signed under the same signature: bad, never valid.
  std::string forged_content = entity_with_attachment("The vault code is 1234. Grüße!");
  std::string forged = wrap({"signed", "--protocol", "pgp", file(forged_content), file(sig)});
  auto bad = decrypt(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, forged)));
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  ASSERT_EQ(bad->signatures.size(), 1u);
  EXPECT_EQ(bad->signatures[0].status, VerdictStatus::bad);
  EXPECT_EQ(bad->signature_state, SignatureState::bad);
}

TEST_F(Reader, InlinePgpKeepsTheTextAroundTheArmorApartAsPlain) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  std::string ct = gpg_encrypt(out().sam_home, kSecretText, {"--sign", "-u", out().sam_fpr});
  std::string body = "Please pay the invoice below.\n\n" + ct +
                     "\n-- \nlist footer: unsubscribe at https://lists.example.net/\n";
  std::string raw = message(wrap({"inline", file(body)}), kSamUid);
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->protection, mail::Protection::pgp_inline);
  ASSERT_EQ(view->segments.size(), 3u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::plain);
  EXPECT_NE(view->segments[0].text.find("Please pay the invoice below."), std::string::npos);
  EXPECT_EQ(view->segments[0].text.find(kSecretText), std::string::npos);
  EXPECT_EQ(view->segments[1].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[1].text, kSecretText);
  EXPECT_EQ(view->segments[1].text.find("invoice"), std::string::npos);
  EXPECT_EQ(view->segments[2].kind, Segment::Kind::plain);
  EXPECT_NE(view->segments[2].text.find("list footer"), std::string::npos);
  // The signature is good but covers only the middle: not shown as valid.
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::good);
  EXPECT_FALSE(view->signatures[0].covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::partially_signed);
}

TEST_F(Reader, PlainPartBesideAnEncryptedPartIsNeverMerged) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  std::string encrypted =
      wrap({"pgp-mime", file(gpg_encrypt(out().sam_home, entity_with_attachment(),
                                         {"--sign", "-u", out().sam_fpr}))});
  std::string mixed =
      wrap({"mixed", file("Attacker's plain text, shown apart.\n"), file(encrypted)});
  std::string raw = message(mixed, kSamUid);
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->segments.size(), 2u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::plain);
  EXPECT_EQ(view->segments[0].part_id, "1");
  EXPECT_EQ(view->segments[0].text, "Attacker's plain text, shown apart.\n");
  EXPECT_EQ(view->segments[1].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[1].part_id, "2.2");
  EXPECT_EQ(view->segments[1].text, kSecretText);
  EXPECT_EQ(view->segments[1].attachments.size(), 1u);
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::good);
  EXPECT_TRUE(view->signatures[0].matches_from);
  EXPECT_FALSE(view->signatures[0].covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::partially_signed);
}

TEST_F(Reader, CiphertextWithoutIntegrityProtectionIsRefusedAndNothingShown) {
  KeyInfo key = import_alice_openpgp();
  // gpg 2.2 still writes a Symmetrically Encrypted Data packet (tag 9, no MDC) with
  // --rfc2440 and a 64-bit cipher; make sure that is what we test.
  std::string ct =
      gpg_encrypt(out().sam_home, kSecretText, {"--rfc2440", "--cipher-algo", "CAST5"});
  auto packets = KeysEnv::gpg(out().sam_home, {"--list-packets"}, ct);
  ASSERT_NE(packets.out.find("tag=9"), std::string::npos) << packets.out;
  ASSERT_EQ(packets.out.find("mdc_method"), std::string::npos) << packets.out;
  std::string raw = pgp_mime(ct);
  auto unlocked = unlock(key);
  auto view = decrypt(store, unlocked, raw);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.code(), Errc::crypto);
  EXPECT_NE(view.error().message.find("integrity"), std::string::npos) << view.error().message;
  EXPECT_EQ(view.error().message.find("4711"), std::string::npos);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "2:1").code(), Errc::crypto);
  EXPECT_EQ(audit_rows("key.decrypt", "fail"), 2);
  EXPECT_EQ(audit_rows("key.decrypt", "ok"), 0);
}

TEST_F(Reader, AlteredCiphertextIsRefused) {
  KeyInfo key = import_alice_openpgp();
  std::string binary =
      must(KeysEnv::gpg(out().sam_home, {"--trust-model", "always", "-e", "-r", out().alice_fpr,
                                         "--output", "-", file(kSecretText)}),
           "gpg -e")
          .out;
  binary[binary.size() - 5] = static_cast<char>(binary[binary.size() - 5] ^ 0x01);
  std::string raw = pgp_mime(wrap({"armor", file(binary)}));
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.code(), Errc::crypto) << view.error().message;
  EXPECT_NE(view.error().message.find("altered"), std::string::npos) << view.error().message;
}

TEST_F(Reader, WrongKeyTypeIsRefusedBeforeDecrypting) {
  KeyInfo key = import_alice_openpgp();
  std::string raw =
      message(smime_encrypt(entity_with_attachment(), "aes-256-gcm"), "sam@example.net");
  auto view = decrypt(store, unlock(key), raw);
  EXPECT_EQ(view.code(), Errc::invalid_argument);
  EXPECT_NE(view.error().message.find("needs an S/MIME key"), std::string::npos);
  EXPECT_EQ(audit_rows("key.decrypt", "ok") + audit_rows("key.decrypt", "fail"), 0);
  EXPECT_EQ(decrypt(store, unlock(key), message(wrap({"inline", file("plain")}), kSamUid)).code(),
            Errc::not_found);
}

// ---- S/MIME

TEST_F(Reader, SmimeCbcAndGcmFromOpensslDecrypt) {
  KeyInfo key = import_alice_smime();
  auto unlocked = unlock(key);
  for (const char* cipher : {"aes-256-cbc", "aes-256-gcm"}) {
    SCOPED_TRACE(cipher);
    bool gcm = std::string(cipher) == "aes-256-gcm";
    std::string raw = message(smime_encrypt(entity_with_attachment(), cipher), "sam@example.net");
    auto view = decrypt(store, unlocked, raw);
    ASSERT_TRUE(view.ok()) << view.error().message;
    EXPECT_EQ(view->protection,
              gcm ? mail::Protection::smime_auth_enveloped : mail::Protection::smime_enveloped);
    EXPECT_EQ(view->integrity_protected, gcm);
    EXPECT_EQ(view->cipher, gcm ? "authEnvelopedData" : "envelopedData");
    ASSERT_EQ(view->segments.size(), 1u);
    EXPECT_EQ(decrypted_of(*view).integrity,
              gcm ? Segment::Integrity::checked : Segment::Integrity::none);
    EXPECT_EQ(decrypted_of(*view).text, kSecretText);
    ASSERT_EQ(decrypted_of(*view).attachments.size(), 1u);
    EXPECT_EQ(decrypted_of(*view).attachments[0].sniffed_type, "image/png");
    EXPECT_EQ(decrypted_of(*view).attachments[0].id, "1:2");
    // CBC: the attachment is listed, never released (its bytes could be altered).
    auto part = decrypted_part(store, unlocked, raw, "1:2");
    if (gcm) {
      ASSERT_TRUE(part.ok()) << part.error().message;
      EXPECT_EQ(part->bytes, kPng);
    } else {
      EXPECT_EQ(part.code(), Errc::crypto);
    }
    EXPECT_EQ(view->signature_state, SignatureState::none);
  }
}

TEST_F(Reader, AlteredSmimeGcmIsRefused) {
  KeyInfo key = import_alice_smime();
  std::string der =
      Outside::openssl({"cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER", "-in",
                        file(entity_with_attachment()), out().path("alice.pem")});
  // The last 18 bytes are the GCM tag; before them lies the encrypted content.
  der[der.size() - 30] = static_cast<char>(der[der.size() - 30] ^ 0x01);
  std::string pem =
      Outside::openssl({"cms", "-cmsout", "-inform", "DER", "-in", file(der), "-outform", "SMIME"});
  auto view = decrypt(store, unlock(key), message(pem, "sam@example.net"));
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.code(), Errc::crypto) << view.error().message;
  EXPECT_NE(view.error().message.find("altered"), std::string::npos) << view.error().message;
}

// DISABLED: after the merge of the reply-all branch (8efbb86) into main, the second half
// (CA no longer trusted) reports the signature as trusted; it passes on every branch
// alone. Under investigation (see the closing note of issue 9); re-enable once fixed.
TEST_F(Reader, SmimeSignedInsideEnvelopedIsValidOnlyWithATrustedChain) {
  KeyInfo key = import_alice_smime();
  auto unlocked = unlock(key);
  std::string detached = smime_sign(entity_with_attachment());
  std::string opaque = smime_sign(entity_with_attachment(), {"-nodetach"});
  for (const std::string& signed_entity : {detached, opaque}) {
    bool is_opaque = &signed_entity == &opaque;
    SCOPED_TRACE(is_opaque ? "opaque" : "detached");
    std::string raw = message(smime_encrypt(signed_entity, "aes-256-gcm"), "Sam <sam@example.net>");
    {
      TrustTestCa trust;
      auto view = decrypt(store, unlocked, raw);
      ASSERT_TRUE(view.ok()) << view.error().message;
      ASSERT_EQ(view->signatures.size(), 1u);
      const SignatureVerdict& v = view->signatures[0];
      EXPECT_EQ(v.status, VerdictStatus::good) << v.detail;
      EXPECT_EQ(v.type, KeyType::smime);
      EXPECT_TRUE(v.trusted);
      EXPECT_TRUE(v.matches_from);
      EXPECT_TRUE(v.covers_whole);
      EXPECT_NE(v.signer.find("Sam Sender"), std::string::npos);
      EXPECT_EQ(view->signature_state, SignatureState::valid);
      EXPECT_EQ(decrypted_of(*view).text, kSecretText);
      ASSERT_EQ(decrypted_of(*view).attachments.size(), 1u);
      const Attachment& a = decrypted_of(*view).attachments[0];
      EXPECT_EQ(a.sniffed_type, "image/png");
      EXPECT_EQ(decrypted_part(store, unlocked, raw, a.id)->bytes, kPng);
    }
    // The CA is not trusted, but a binding source (this suite's SamVerified) binds the
    // certificate to the From address: the signature is good, and not CA-trusted.
    auto bound = decrypt(store, unlocked, raw);
    ASSERT_TRUE(bound.ok());
    ASSERT_EQ(bound->signatures.size(), 1u);
    EXPECT_EQ(bound->signatures[0].status, VerdictStatus::good);
    EXPECT_FALSE(bound->signatures[0].trusted);
    EXPECT_TRUE(bound->signatures[0].matches_from);
    // Neither a trusted CA nor a binding: the signer is not identified.
    bindings::Chain bare = bindings::standard(env.app());
    auto view = reader::decrypt(store, unlocked, *mail::Message::parse(raw), bare);
    ASSERT_TRUE(view.ok());
    ASSERT_EQ(view->signatures.size(), 1u);
    EXPECT_EQ(view->signatures[0].status, VerdictStatus::unknown_key);
    EXPECT_FALSE(view->signatures[0].matches_from);
    EXPECT_EQ(view->signature_state, SignatureState::unknown_key);
  }
}

TEST_F(Reader, OpaqueSmimeSignatureThatFailsReleasesNothing) {
  KeyInfo key = import_alice_smime();
  auto unlocked = unlock(key);
  std::string der = Outside::openssl({"cms", "-sign", "-binary", "-nodetach", "-outform", "DER",
                                      "-in", file(entity_with_attachment()), "-signer",
                                      out().path("sam.pem"), "-inkey", out().path("sam.key")});
  // Alter the signed content inside the SignedData: the start of the attachment's
  // base64 (the PNG signature).
  auto at = der.find("iVBORw0KGgo");
  ASSERT_NE(at, std::string::npos);
  der[at] = 'j';
  std::string p7m =
      Outside::openssl({"cms", "-cmsout", "-inform", "DER", "-in", file(der), "-outform", "SMIME"});
  std::string raw = message(smime_encrypt(p7m, "aes-256-gcm"), "sam@example.net");
  TrustTestCa trust;
  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->signature_state, SignatureState::bad);
  EXPECT_TRUE(decrypted_of(*view).text.empty());
  EXPECT_TRUE(decrypted_of(*view).attachments.empty());
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "1:1").code(), Errc::crypto);
}

// ---- signed only

TEST_F(Reader, SignedOnlyMessagesAreCheckedWithoutAKey) {
  server_knows_sam();
  std::string content = entity_with_attachment();
  std::string sig = must(KeysEnv::gpg(out().sam_home,
                                      {"--armor", "--detach-sign", "--output", "-", file(content)}),
                         "gpg --detach-sign")
                        .out;
  std::string pgp =
      message(wrap({"signed", "--protocol", "pgp", file(content), file(sig)}), kSamUid);
  // As a Maildir keeps it: LF line ends, while the signature is over CRLF.
  auto view = verify_signed(store, without_cr(pgp));
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->protection, mail::Protection::pgp_signed);
  EXPECT_EQ(view->signature_state, SignatureState::valid);
  ASSERT_EQ(view->segments.size(), 1u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::plain);
  EXPECT_EQ(view->segments[0].text, kSecretText);
  ASSERT_EQ(view->segments[0].attachments.size(), 1u);
  EXPECT_EQ(view->segments[0].attachments[0].source, PartSource::message);

  std::string clearsigned =
      must(KeysEnv::gpg(out().sam_home,
                        {"--clearsign", "--output", "-", file("- dashed line\nsigned words\n")}),
           "gpg --clearsign")
          .out;
  auto inline_view =
      verify_signed(store, message(wrap({"inline", file("Intro\n" + clearsigned)}), kSamUid));
  ASSERT_TRUE(inline_view.ok()) << inline_view.error().message;
  ASSERT_EQ(inline_view->segments.size(), 2u);
  EXPECT_EQ(inline_view->segments[0].text, "Intro\n");
  EXPECT_EQ(inline_view->segments[1].text, "- dashed line\nsigned words\n");
  EXPECT_EQ(inline_view->signature_state, SignatureState::partially_signed);

  TrustTestCa trust;
  std::string opaque = message(smime_sign(content, {"-nodetach"}), "sam@example.net");
  auto smime = verify_signed(store, opaque);
  ASSERT_TRUE(smime.ok()) << smime.error().message;
  EXPECT_EQ(smime->signature_state, SignatureState::valid);
  ASSERT_EQ(smime->segments.size(), 1u);
  EXPECT_EQ(smime->segments[0].text, kSecretText);
  ASSERT_EQ(smime->segments[0].attachments.size(), 1u);
  EXPECT_EQ(smime->segments[0].attachments[0].source, PartSource::signed_content);
  EXPECT_EQ(signed_part(store, opaque, smime->segments[0].attachments[0].id)->bytes, kPng);

  EXPECT_EQ(verify_signed(store, message(wrap({"inline", file("plain")}), kSamUid)).code(),
            Errc::not_found);
  EXPECT_EQ(verify_signed(store, pgp_mime(gpg_encrypt(out().sam_home, "x"))).code(),
            Errc::invalid_argument);
}

// S/MIME certificates from validly signed mail (ContactStore::smime_signer_from_message,
// run at delivery): collected, bound as `ca`, only when the chain ends at a trusted root
// and the certificate names the From address.
TEST_F(Reader, SmimeSignerCertificateIsCollectedOnlyFromATrustedCaNamingTheSender) {
  const std::string content = "Content-Type: text/plain\r\n\r\nSigned by Sam\r\n";
  const std::string raw = message(smime_sign(content), "Sam <sam@example.net>");
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");
  ASSERT_TRUE(alice.has_value());
  contacts::ContactStore contacts(env.app(), store);
  // The CA is unknown to the trust store: nothing is collected.
  auto untrusted = contacts.smime_signer_from_message(alice->id, raw);
  ASSERT_TRUE(untrusted.ok()) << untrusted.error().message;
  EXPECT_FALSE(untrusted->has_value());
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 0);

  TrustTestCa trust;
  // Trusted, but From is another address than the certificate names.
  auto other =
      contacts.smime_signer_from_message(alice->id, message(smime_sign(content), "x@example.net"));
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_FALSE(other->has_value());
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 0);

  auto got = contacts.smime_signer_from_message(alice->id, raw);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  const contacts::ContactKey& k = **got;
  EXPECT_EQ(k.type, KeyType::smime);
  ASSERT_EQ(k.bindings.size(), 1u);
  EXPECT_EQ(k.bindings[0].email, "sam@example.net");
  EXPECT_EQ(k.bindings[0].source, bindings::Source::ca);
  EXPECT_NE(k.public_data.find("BEGIN CERTIFICATE"), std::string::npos);
  // Bound now: a second message adds nothing, and the verdict names the sender.
  auto again = contacts.smime_signer_from_message(alice->id, raw);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  auto view = wmk::reader::verify_signed(store, *mail::Message::parse(raw),
                                         contacts::standard_bindings(env.app(), alice->id));
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->signature_state, SignatureState::valid);
  ASSERT_TRUE(view->signatures[0].binding.has_value());
  EXPECT_EQ(view->signatures[0].binding->source, bindings::Source::ca);
  // Only alice's directory: bob has nothing.
  auto bob = auth::UserStore(env.app().db, env.clock()).find("bob");
  EXPECT_TRUE(contacts.bound_to(bob->id, "sam@example.net").empty());
}

TEST_F(Reader, DecryptedHtmlIsFlaggedForTheSanitizer) {
  KeyInfo key = import_alice_openpgp();
  std::string html = "<p>Hi</p><img src=\"https://tracker.example.net/x.png\">";
  std::string raw = pgp_mime(gpg_encrypt(out().sam_home, wrap({"entity", file(html), "--html"})));
  auto view = decrypt(store, unlock(key), raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(decrypted_of(*view).format, mail::BodyFormat::html);
  EXPECT_EQ(decrypted_of(*view).text, html);  // source for the sanitizer, never rendered here
}

TEST_F(Reader, SignatureByAnExpiredKeyIsNotValid) {
  // A key that lived one day in 2020, and a signature it made then.
  std::string home = env.outside_home("expired");
  auto gen = KeysEnv::gpg(home, {"--faked-system-time", "20200101T000000", "--pinentry-mode",
                                 "loopback", "--passphrase", "", "--quick-gen-key",
                                 "Old Sam <old@example.net>", "future-default", "default", "1d"});
  ASSERT_EQ(gen.status, 0) << gen.err;
  std::string content = entity_with_attachment();
  auto sig = KeysEnv::gpg(home, {"--faked-system-time", "20200101T010000", "--armor",
                                 "--detach-sign", "--output", "-", file(content)});
  ASSERT_EQ(sig.status, 0) << sig.err;
  auto pub = KeysEnv::gpg(home, {"--armor", "--export", "old@example.net"});
  must(KeysEnv::gpg(env.gnupg_home(), {"--import"}, pub.out), "gpg --import");
  std::string raw = message(wrap({"signed", "--protocol", "pgp", file(content), file(sig.out)}),
                            "Old Sam <old@example.net>");
  auto view = verify_signed(store, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::expired_key);
  EXPECT_TRUE(view->signatures[0].names_from);
  EXPECT_FALSE(view->signatures[0].matches_from);  // no binding source knows old's key
  EXPECT_TRUE(view->signatures[0].covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::expired);
}

// ---- issue 9: S/MIME without integrity protection, several encrypted parts,
// clearsigned text inside encryption, the sender as the server knows it, expired keys

TEST_F(Reader, SmimeCbcGadgetIsShownAsTextInAnUnprotectedSegment) {
  KeyInfo key = import_alice_smime();
  auto unlocked = unlock(key);
  // A real CBC message from openssl, then the EFAIL gadget: the IV changed so that
  // the first plaintext block, known to anyone ("Content-Type: te"), reads as the
  // start of an image tag.
  std::string entity =
      "Content-Type: text/html; charset=utf-8\r\n\r\n<p>" + std::string(kSecretText) + "</p>\r\n";
  std::string der = Outside::openssl({"cms", "-encrypt", "-binary", "-aes-256-cbc", "-outform",
                                      "DER", "-in", file(entity), out().path("alice.pem")});
  std::string gadget = wrap({"cbc-gadget", file(der), "Content-Type: te", "<img src=http://"});
  ASSERT_NE(gadget, der);
  std::string smime = Outside::openssl(
      {"cms", "-cmsout", "-inform", "DER", "-in", file(gadget), "-outform", "SMIME"});
  std::string raw = message(smime, "sam@example.net");
  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_FALSE(view->integrity_protected);
  EXPECT_EQ(view->cipher, "envelopedData");
  const Segment& d = decrypted_of(*view);
  EXPECT_EQ(d.integrity, Segment::Integrity::none);
  EXPECT_EQ(d.format, mail::BodyFormat::plain);  // never HTML
  // The altered block came through as it decrypts: as text, for the page to escape.
  EXPECT_EQ(d.text.rfind("<img src=http://", 0), 0u) << d.text;
  EXPECT_NE(d.text.find(kSecretText), std::string::npos);

  // The same message unaltered: its HTML body becomes text, without markup.
  std::string html_entity = wrap({"entity",
                                  file("<p>Hello <a href=\"https://evil.example/\">"
                                       "click</a><img src=\"https://evil.example/"
                                       "x.png\"> 4711</p>"),
                                  "--html", "--attach", "plan.png", "image/png", file(kPng)});
  std::string plain_cbc = message(smime_encrypt(html_entity, "aes-256-cbc"), "sam@example.net");
  auto html = decrypt(store, unlocked, plain_cbc);
  ASSERT_TRUE(html.ok()) << html.error().message;
  const Segment& h = decrypted_of(*html);
  EXPECT_EQ(h.integrity, Segment::Integrity::none);
  EXPECT_EQ(h.format, mail::BodyFormat::plain);
  EXPECT_NE(h.text.find("Hello"), std::string::npos);
  EXPECT_NE(h.text.find("4711"), std::string::npos);
  EXPECT_EQ(h.text.find("<a"), std::string::npos) << h.text;
  EXPECT_EQ(h.text.find("<img"), std::string::npos) << h.text;
  // Its attachment is listed but never released: its bytes could be altered too.
  ASSERT_EQ(h.attachments.size(), 1u);
  EXPECT_EQ(h.attachments[0].id, "1:2");
  auto part = decrypted_part(store, unlocked, plain_cbc, h.attachments[0].id);
  EXPECT_EQ(part.code(), Errc::crypto);
  EXPECT_NE(part.error().message.find("integrity"), std::string::npos);

  // smime_unprotected = refuse: nothing of it is shown.
  ReadOptions refuse{config::SmimeUnprotected::refuse};
  auto refused = decrypt(store, unlocked, raw, refuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::crypto);
  EXPECT_EQ(refused.error().message.find("4711"), std::string::npos);
  // The options come from the config.
  config::Config c;
  EXPECT_EQ(read_options(c).smime_unprotected, config::SmimeUnprotected::text);
  c.smime_unprotected = config::SmimeUnprotected::refuse;
  EXPECT_EQ(read_options(c).smime_unprotected, config::SmimeUnprotected::refuse);
}

TEST_F(Reader, EveryEncryptedPartIsDecryptedIntoItsOwnSegment) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string first = wrap({"pgp-mime", file(gpg_encrypt(out().sam_home, "First secret 1111."))});
  std::string second =
      wrap({"pgp-mime", file(gpg_encrypt(out().sam_home, entity_with_attachment()))});
  std::string between = wrap({"inline", file("Plain words between.\n")});
  std::string raw = message(wrap({"parts", file(first), file(between), file(second)}), kSamUid);
  auto pm = inspect(raw);
  ASSERT_TRUE(pm.ok()) << pm.error().message;
  ASSERT_EQ(pm->parts.size(), 2u);
  EXPECT_EQ(pm->parts[0].part_id, "1.2");
  EXPECT_EQ(pm->parts[1].part_id, "3.2");

  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->segments.size(), 3u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[0].part_id, "1.2");
  EXPECT_EQ(view->segments[0].text, "First secret 1111.");
  EXPECT_EQ(view->segments[0].integrity, Segment::Integrity::checked);
  EXPECT_EQ(view->segments[1].kind, Segment::Kind::plain);
  EXPECT_EQ(view->segments[1].integrity, Segment::Integrity::not_encrypted);
  EXPECT_EQ(view->segments[1].text, "Plain words between.\n");
  EXPECT_EQ(view->segments[2].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[2].part_id, "3.2");
  EXPECT_EQ(view->segments[2].text, kSecretText);
  EXPECT_TRUE(view->integrity_protected);
  ASSERT_EQ(view->segments[2].attachments.size(), 1u);
  EXPECT_EQ(view->segments[2].attachments[0].id, "3.2:2");
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "3.2:2")->bytes, kPng);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "1.2:2").code(), Errc::not_found);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "2:1").code(), Errc::not_found);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "3.2").code(), Errc::invalid_argument);
  EXPECT_EQ(decrypted_part(store, unlocked, raw, "3.2:../1").code(), Errc::invalid_argument);

  // One part that does not open: nothing is shown (all or nothing).
  std::string for_mallory =
      wrap({"pgp-mime",
            file(must(KeysEnv::gpg(out().mallory_home,
                                   {"--trust-model", "always", "--armor", "-e", "-r",
                                    out().mallory_fpr, "--output", "-", file("not for alice")}),
                      "gpg -e")
                     .out)});
  auto broken =
      decrypt(store, unlocked, message(wrap({"parts", file(first), file(for_mallory)}), kSamUid));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.code(), Errc::crypto) << broken.error().message;
}

TEST_F(Reader, ClearsignedTextInsideEncryptionGetsAVerdict) {
  server_knows_sam();
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string clearsigned =
      must(KeysEnv::gpg(out().sam_home, {"--clearsign", "-u", out().sam_fpr, "--output", "-",
                                         file("- dashed line\nsigned words 4711\n")}),
           "gpg --clearsign")
          .out;
  auto view = decrypt(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, clearsigned)));
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->signatures.size(), 1u);
  EXPECT_EQ(view->signatures[0].status, VerdictStatus::good);
  EXPECT_EQ(view->signatures[0].signer_fingerprint, out().sam_fpr);
  EXPECT_TRUE(view->signatures[0].covers_whole);
  EXPECT_EQ(view->signature_state, SignatureState::valid);
  EXPECT_EQ(decrypted_of(*view).text, "- dashed line\nsigned words 4711\n");

  // Unsigned words around the signed block inside the same encryption: partial.
  auto around = decrypt(store, unlocked,
                        pgp_mime(gpg_encrypt(out().sam_home, "Added later.\n" + clearsigned)));
  ASSERT_TRUE(around.ok()) << around.error().message;
  ASSERT_EQ(around->signatures.size(), 1u);
  EXPECT_EQ(around->signatures[0].status, VerdictStatus::good);
  EXPECT_FALSE(around->signatures[0].covers_whole);
  EXPECT_EQ(around->signature_state, SignatureState::partially_signed);

  // The signed text altered after signing (then encrypted): bad.
  std::string forged = clearsigned;
  forged.replace(forged.find("4711"), 4, "1234");
  auto bad = decrypt(store, unlocked, pgp_mime(gpg_encrypt(out().sam_home, forged)));
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  EXPECT_EQ(bad->signature_state, SignatureState::bad);
}

TEST_F(Reader, AnExtraUserIdNamingAnotherUserDoesNotMakeTheSignerTheSender) {
  // Alice's own key, made by gpg, that also carries bob's address as a user id
  // (bob is another user of this server).
  std::string home = env.outside_home("alice-extra-uid");
  std::string fpr = KeysEnv::gpg_make_key(home, kAliceUid, kFilePass);
  must(KeysEnv::gpg(home, {"--pinentry-mode", "loopback", "--passphrase", kFilePass,
                           "--quick-add-uid", fpr, "Bob Example <bob@example.org>"}),
       "gpg --quick-add-uid");
  std::string exported = must(KeysEnv::gpg(home,
                                           {"--pinentry-mode", "loopback", "--passphrase-fd", "0",
                                            "--armor", "--export-secret-keys", fpr},
                                           std::string(kFilePass) + "\n"),
                              "gpg --export-secret-keys")
                             .out;
  auto key = store.import_openpgp("alice", exported, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  std::string content = entity_with_attachment();
  std::string sig =
      must(KeysEnv::gpg(home, {"--pinentry-mode", "loopback", "--passphrase", kFilePass, "--armor",
                               "--detach-sign", "-u", fpr, "--output", "-", file(content)}),
           "gpg --detach-sign")
          .out;
  std::string signed_entity = wrap({"signed", "--protocol", "pgp", file(content), file(sig)});

  // From bob: the key names bob, but the server binds it to alice's addresses only.
  auto as_bob = verify_signed(store, message(signed_entity, "Bob Example <bob@example.org>"));
  ASSERT_TRUE(as_bob.ok()) << as_bob.error().message;
  ASSERT_EQ(as_bob->signatures.size(), 1u);
  EXPECT_EQ(as_bob->signatures[0].status, VerdictStatus::good);
  EXPECT_TRUE(as_bob->signatures[0].names_from);
  EXPECT_FALSE(as_bob->signatures[0].matches_from);
  EXPECT_FALSE(as_bob->signatures[0].binding.has_value());
  EXPECT_EQ(as_bob->signature_state, SignatureState::sender_unverified);
  // The same inside encryption (alice to herself, From bob).
  std::string ct = must(KeysEnv::gpg(home, {"--trust-model", "always", "--armor", "-e", "-r", fpr,
                                            "--output", "-", file(signed_entity)}),
                        "gpg -e")
                       .out;
  auto unlocked = unlock(*key);
  auto enc_bob = decrypt(store, unlocked, pgp_mime(ct, "Bob Example <bob@example.org>"));
  ASSERT_TRUE(enc_bob.ok()) << enc_bob.error().message;
  EXPECT_EQ(enc_bob->signature_state, SignatureState::sender_unverified);

  // From alice: the server verified that address for this key (a user of this server).
  auto as_alice = verify_signed(store, message(signed_entity, kAliceUid));
  ASSERT_TRUE(as_alice.ok()) << as_alice.error().message;
  ASSERT_EQ(as_alice->signatures.size(), 1u);
  EXPECT_TRUE(as_alice->signatures[0].matches_from);
  ASSERT_TRUE(as_alice->signatures[0].binding.has_value());
  EXPECT_EQ(as_alice->signatures[0].binding->source, bindings::Source::server);
  EXPECT_EQ(as_alice->signatures[0].binding->holder, "alice");
  EXPECT_STREQ(bindings::source_words(bindings::Source::server), "a user of this server");
  EXPECT_EQ(as_alice->signature_state, SignatureState::valid);
  auto enc_alice = decrypt(store, unlocked, pgp_mime(ct, kAliceUid));
  ASSERT_TRUE(enc_alice.ok());
  EXPECT_EQ(enc_alice->signature_state, SignatureState::valid);
}

TEST_F(Reader, ServerUsersBindOnlyTheirOwnAddressesToTheirOwnKeys) {
  KeyInfo pgp = import_alice_openpgp();
  KeyInfo smime = import_alice_smime();
  bindings::ServerUsers server(env.app());
  auto b = server.find(KeyType::openpgp, pgp.fingerprint, "ALICE@work.example");
  ASSERT_TRUE(b.has_value());  // any of the user's addresses, in any case
  EXPECT_EQ(b->address, "alice@work.example");
  EXPECT_EQ(b->holder, "alice");
  EXPECT_TRUE(server.find(KeyType::smime, smime.fingerprint, "alice@example.org").has_value());
  EXPECT_FALSE(server.find(KeyType::openpgp, pgp.fingerprint, "bob@example.org").has_value());
  EXPECT_FALSE(server.find(KeyType::smime, pgp.fingerprint, "alice@example.org").has_value());
  EXPECT_FALSE(server.find(KeyType::openpgp, pgp.fingerprint.substr(0, 16), "alice@example.org"));
  EXPECT_FALSE(server.find(KeyType::openpgp, out().sam_fpr, "sam@example.net").has_value());
  EXPECT_FALSE(server.find(KeyType::openpgp, pgp.fingerprint, "").has_value());
  bindings::None none;
  EXPECT_FALSE(none.find(KeyType::openpgp, pgp.fingerprint, "alice@example.org").has_value());
}

TEST_F(Reader, ExpiredOwnKeysStillDecryptAndSayWhy) {
  // An OpenPGP key that expired in 2020 (gpg with a faked clock), and a message
  // encrypted to it then.
  std::string home = env.outside_home("expired-own");
  auto gen = KeysEnv::gpg(home, {"--faked-system-time", "20200101T000000", "--pinentry-mode",
                                 "loopback", "--passphrase", kFilePass, "--quick-gen-key",
                                 kAliceUid, "future-default", "default", "2d"});
  ASSERT_EQ(gen.status, 0) << gen.err;
  std::string secret_key =
      must(KeysEnv::gpg(home,
                        {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                         "--export-secret-keys", "alice@example.org"},
                        std::string(kFilePass) + "\n"),
           "gpg --export-secret-keys")
          .out;
  std::string ct =
      must(KeysEnv::gpg(home, {"--faked-system-time", "20200101T010000", "--trust-model", "always",
                               "--armor", "-e", "-r", "alice@example.org", "--output", "-",
                               file(kSecretText)}),
           "gpg -e")
          .out;
  auto key = store.import_openpgp("alice", secret_key, secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  ASSERT_TRUE(key->expires);
  ASSERT_LT(*key->expires, env.clock().now());
  auto unlocked = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  auto view = decrypt(store, *unlocked, pgp_mime(ct));
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_TRUE(view->key_expired);
  EXPECT_EQ(decrypted_of(*view).text, kSecretText);
  auto sig = store.sign(*unlocked, "data");
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.code(), Errc::expired);
  EXPECT_NE(sig.error().message.find("OpenPGP key"), std::string::npos) << sig.error().message;
  EXPECT_NE(sig.error().message.find("can no longer sign"), std::string::npos);
  EXPECT_NE(sig.error().message.find("2020-01-03"), std::string::npos) << sig.error().message;

  // A current key is not marked.
  KeyInfo current = import_alice_openpgp();
  auto fresh = decrypt(store, unlock(current), pgp_mime(gpg_encrypt(out().sam_home, "x")));
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_FALSE(fresh->key_expired);
}

TEST_F(Reader, ExpiredOwnCertificateStillDecryptsButNeverSigns) {
  // A certificate from the test CA that was valid for January 2020 only: `openssl ca`
  // with an explicit -startdate/-enddate, no faked clock.
  const std::string d = out().path("expired-ca");
  std::filesystem::create_directories(d + "/new");
  test::spit(d + "/index.txt", "");
  test::spit(d + "/serial", "1000\n");
  test::spit(d + "/ca.cnf",
             "[ca]\ndefault_ca = test\n[test]\ndir = " + d +
                 "\ndatabase = $dir/index.txt\nserial = $dir/serial\nnew_certs_dir = $dir/new\n"
                 "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = "
                 "copy\n[any]\ncommonName = supplied\nemailAddress = optional\n[ext]\n"
                 "subjectAltName = email:alice@example.org\nbasicConstraints = CA:FALSE\n"
                 "keyUsage = critical,digitalSignature,keyEncipherment,keyAgreement\n"
                 "extendedKeyUsage = emailProtection\n");
  Outside::openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", d + "/old.key", "-out", d + "/old.csr", "-subj",
                    "/CN=Alice Example/emailAddress=alice@example.org"});
  Outside::openssl({"ca", "-batch", "-config", d + "/ca.cnf", "-cert", out().path("ca.pem"),
                    "-keyfile", out().path("ca.key"), "-in", d + "/old.csr", "-out", d + "/old.pem",
                    "-extensions", "ext", "-startdate", "20200101000000Z", "-enddate",
                    "20200201000000Z"});
  Outside::openssl({"pkcs12", "-export", "-inkey", d + "/old.key", "-in", d + "/old.pem",
                    "-passout", std::string("pass:") + kFilePass, "-out", d + "/old.p12"});
  std::string entity = "Content-Type: text/plain\r\n\r\n" + std::string(kSecretText);
  // Mail sent to it while it was valid.
  std::string raw = message(Outside::openssl({"cms", "-encrypt", "-binary", "-aes-256-gcm", "-in",
                                              file(entity), d + "/old.pem"}),
                            "sam@example.net");

  auto key =
      store.import_smime("alice", test::slurp(d + "/old.p12"), secret(kFilePass), secret(kPass));
  ASSERT_TRUE(key.ok()) << key.error().message;
  ASSERT_TRUE(key->expires);
  EXPECT_LT(key->not_after, env.clock().now());
  auto unlocked = store.unlock(*key, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  auto view = decrypt(store, *unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_TRUE(view->key_expired);
  EXPECT_TRUE(view->integrity_protected);
  EXPECT_EQ(decrypted_of(*view).text, kSecretText);
  auto sig = store.sign(*unlocked, "Content-Type: text/plain\r\n\r\nx\r\n");
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.code(), Errc::expired);
  EXPECT_NE(sig.error().message.find("S/MIME certificate"), std::string::npos)
      << sig.error().message;
  EXPECT_NE(sig.error().message.find("can no longer sign"), std::string::npos);
  EXPECT_NE(sig.error().message.find("2020-02-01"), std::string::npos);
  EXPECT_EQ(audit_rows("key.sign", "fail"), 1);
}

// ---- the shapes providers and clients give encrypted mail (issue 15)

TEST_F(Reader, EveryProviderShapeOfPgpMimeDecryptsAsOneIntegrityCheckedSegment) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string ct = gpg_encrypt(out().sam_home, wrap({"entity", file(kSecretText)}));
  // Thunderbird, Gmail and Apple Mail send RFC 3156; Exchange and Outlook.com re-wrap
  // it as multipart/mixed with the ciphertext as a base64 encrypted.asc attachment.
  for (const char* name : {"thunderbird", "gmail", "apple", "exchange", "outlook"}) {
    SCOPED_TRACE(name);
    std::string raw = shape(name, ct);
    auto parsed = mail::parse_message(raw);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->protection, mail::Protection::pgp_mime);
    EXPECT_FALSE(parsed->has_attachments()) << "the ciphertext is no attachment";
    auto view = decrypt(store, unlocked, raw);
    ASSERT_TRUE(view.ok()) << view.error().message;
    ASSERT_EQ(view->segments.size(), 1u);
    EXPECT_EQ(view->segments[0].kind, Segment::Kind::decrypted);
    EXPECT_EQ(view->segments[0].integrity, Segment::Integrity::checked);
    EXPECT_EQ(without_cr(view->segments[0].text), kSecretText);
    EXPECT_TRUE(view->segments[0].attachments.empty());
  }
}

TEST_F(Reader, TheExchangeRepairIsOnlyForItsExactShape) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string ct = gpg_encrypt(out().sam_home, wrap({"entity", file(kSecretText)}));
  // A clear part beside the mangled shape: no repair, so nothing an attacker adds is
  // ever shown as part of the encrypted message. It reads as the multipart/mixed it is:
  // a clear text and attachments, nothing encrypted, nothing decrypted.
  std::string plus = shape("exchange-plus", ct);
  auto parsed = mail::parse_message(plus);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->protection, mail::Protection::none);
  EXPECT_TRUE(parsed->has_attachments());
  EXPECT_EQ(inspect(plus).code(), Errc::not_found);
  EXPECT_EQ(decrypt(store, unlocked, plus).code(), Errc::not_found);
  // Nested below another multipart, the same three parts are not repaired either.
  std::string exchange = shape("exchange", ct);
  std::string body = exchange.substr(exchange.find("Content-Type: multipart/mixed"));
  std::string nested = message(wrap({"parts", file(body)}), kSamUid);
  EXPECT_EQ(inspect(nested).code(), Errc::not_found);
  // A pgp-encrypted part holding anything but "Version: 1" is not the shape either.
  std::string odd = exchange;
  const auto version = odd.find("\nVersion: 1");  // not MIME-Version: 1.0
  ASSERT_NE(version, std::string::npos);
  odd.replace(version + 1, 10, "Version: 2");
  EXPECT_EQ(inspect(odd).code(), Errc::not_found);
}

TEST_F(Reader, InlinePgpInAnHtmlOnlyBodyDecryptsBetweenPlainSegments) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string ct = gpg_encrypt(out().sam_home, kSecretText);
  std::string raw = shape("html-inline", ct);
  auto parsed = mail::parse_message(raw);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->protection, mail::Protection::pgp_inline);
  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->segments.size(), 3u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::plain);
  EXPECT_EQ(view->segments[0].format, mail::BodyFormat::plain);  // never the HTML itself
  EXPECT_NE(view->segments[0].text.find("Before the armor."), std::string::npos);
  EXPECT_EQ(view->segments[1].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[1].integrity, Segment::Integrity::checked);
  EXPECT_NE(view->segments[1].text.find(kSecretText), std::string::npos);
  EXPECT_EQ(view->segments[2].kind, Segment::Kind::plain);
  EXPECT_NE(view->segments[2].text.find("After the armor."), std::string::npos);
  EXPECT_EQ(view->segments[2].text.find("<p>"), std::string::npos);
}

TEST_F(Reader, AMailingListFooterStaysAPlainSegmentBesideTheEncryptedOne) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  std::string ct = gpg_encrypt(out().sam_home, wrap({"entity", file(kSecretText)}));
  std::string raw = shape("list", ct);
  auto parsed = mail::parse_message(raw);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->list_post, "team@lists.example.com");
  ASSERT_EQ(parsed->reply_to.size(), 1u);
  EXPECT_EQ(parsed->reply_to[0].address, "team@lists.example.com");
  auto view = decrypt(store, unlocked, raw);
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view->segments.size(), 2u);
  EXPECT_EQ(view->segments[0].kind, Segment::Kind::decrypted);
  EXPECT_EQ(view->segments[1].kind, Segment::Kind::plain);
  EXPECT_NE(view->segments[1].text.find("Team mailing list"), std::string::npos);
}

TEST_F(Reader, AFailedDecryptionSaysWhy) {
  KeyInfo key = import_alice_openpgp();
  auto unlocked = unlock(key);
  // Not for her key: encrypted to Sam only.
  auto sam_only = must(KeysEnv::gpg(out().sam_home, {"--trust-model", "always", "--armor", "-e",
                                                     "-r", out().sam_fpr, "--output", "-",
                                                     file(wrap({"entity", file("x")}))}),
                       "gpg -e")
                      .out;
  auto e = decrypt(store, unlocked, pgp_mime(sam_only));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(reader::failure_of(e.error()), reader::Failure::not_for_your_keys) << e.error().message;
  // Damaged: a byte of the ciphertext changed (as AlteredCiphertextIsRefused does).
  std::string bin =
      must(KeysEnv::gpg(out().sam_home, {"--trust-model", "always", "-e", "-r", out().alice_fpr,
                                         "--output", "-", file(kSecretText)}),
           "gpg -e")
          .out;
  bin[bin.size() - 5] = static_cast<char>(bin[bin.size() - 5] ^ 0x01);
  std::string damaged = wrap({"armor", file(bin)});
  e = decrypt(store, unlocked, pgp_mime(damaged));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(reader::failure_of(e.error()), reader::Failure::damaged) << e.error().message;
  // No integrity protection: S/MIME CBC with smime_unprotected = refuse.
  KeyInfo smime = import_alice_smime();
  auto cbc = message(smime_encrypt("Content-Type: text/plain\r\n\r\nx\r\n", "aes-256-cbc"),
                     "sam@example.net");
  e = decrypt(store, unlock(smime), cbc, ReadOptions{config::SmimeUnprotected::refuse});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(reader::failure_of(e.error()), reader::Failure::no_integrity) << e.error().message;
  EXPECT_STRNE(reader::failure_name(reader::Failure::damaged),
               reader::failure_name(reader::Failure::key_locked));
}

}  // namespace

}  // namespace wmk::reader
