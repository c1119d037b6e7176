// Correspondents' keys: the pure parsers (key data, WKD, Autocrypt) against data made
// by gpg, gpg-wks-client and openssl, and ContactStore against a real SQLite database
// and GnuPG home.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/audit/audit.h"
#include "core/contacts/autocrypt.h"
#include "core/contacts/contacts.h"
#include "core/contacts/keydata.h"
#include "core/contacts/wkd.h"
#include "core/mail/compose.h"
#include "core/util/ascii.h"
#include "core/util/encoding.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::contacts {

namespace {

using test::KeysEnv;
using test::run_cmd;

const std::string kWksClient = "/usr/lib/gnupg/gpg-wks-client";

class ContactsTest : public ::testing::Test {
 protected:
  KeysEnv env;
  keys::KeyStore keys = env.store();
  ContactStore contacts{env.app(), keys, keys::Actor{"test", "", ""}};
  std::string outside = env.outside_home("outside");

  // An unprotected key for uid in the outside home; returns its fingerprint.
  std::string make_key(const std::string& uid, const std::string& expire = "never") {
    return KeysEnv::gpg_make_key(outside, uid, "", expire);
  }
  std::string export_public(const std::string& fpr, bool armor = true) {
    std::vector<std::string> args = {"--export"};
    if (armor)
      args.insert(args.begin(), "--armor");
    args.push_back(fpr);
    auto r = KeysEnv::gpg(outside, args);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }
  std::string export_secret(const std::string& fpr) {
    auto r = KeysEnv::gpg(outside, {"--pinentry-mode", "loopback", "--passphrase", "", "--armor",
                                    "--export-secret-keys", fpr});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }
  bool in_server_home(const std::string& fpr) {
    return KeysEnv::gpg(env.gnupg_home(), {"--list-keys", fpr}).status == 0;
  }
  // A self-signed S/MIME certificate for email made by openssl; returns the PEM.
  std::string make_cert(const std::string& email, const std::string& name = "cert") {
    std::string key = env.path(name + ".key"), crt = env.path(name + ".pem");
    auto r =
        run_cmd({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj",
                 "/CN=Outside/emailAddress=" + email, "-addext", "subjectAltName=email:" + email});
    EXPECT_EQ(r.status, 0) << r.err;
    return test::slurp(crt);
  }
};

// ---- pure parsers

TEST(KeyData, Base64DecodeSkipsWhitespaceAndRejectsJunk) {
  auto d = util::base64_decode("aGVs\r\nbG8=");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(std::string(d->begin(), d->end()), "hello");
  EXPECT_FALSE(util::base64_decode("aGVs*bG8=").has_value());
  EXPECT_FALSE(util::base64_decode("aGVsbG8=x").has_value());
}

TEST(KeyData, DetectsFormats) {
  EXPECT_EQ(detect_key_format("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
            KeyFormat::openpgp_armored);
  EXPECT_EQ(detect_key_format("-----BEGIN CERTIFICATE-----\n"), KeyFormat::x509_pem);
  EXPECT_EQ(detect_key_format(std::string("\x30\x82", 2)), KeyFormat::x509_der);
  EXPECT_EQ(detect_key_format(std::string("\x99\x01", 2)), KeyFormat::openpgp_binary);
  EXPECT_EQ(detect_key_format("hello"), KeyFormat::unknown);
  EXPECT_EQ(detect_key_format(""), KeyFormat::unknown);
}

TEST_F(ContactsTest, ScanReadsGpgPublicKeysArmoredAndBinary) {
  std::string fpr = make_key("Outside Person <out@remote.example>");
  for (bool armor : {true, false}) {
    auto scan = scan_openpgp(export_public(fpr, armor));
    ASSERT_TRUE(scan.ok()) << scan.error().message;
    EXPECT_EQ(scan->primary_keys, 1u);
    EXPECT_EQ(scan->subkeys, 1u);
    EXPECT_FALSE(scan->has_secret);
    ASSERT_EQ(scan->user_ids.size(), 1u);
    EXPECT_EQ(scan->user_ids[0], "Outside Person <out@remote.example>");
    EXPECT_EQ(user_id_address(scan->user_ids[0]), "out@remote.example");
  }
}

TEST_F(ContactsTest, ScanSeesSecretKeysAndDamage) {
  std::string fpr = make_key("Secret Person <secret@remote.example>");
  auto secret = scan_openpgp(export_secret(fpr));
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  EXPECT_TRUE(secret->has_secret);

  std::string armored = export_public(fpr);
  // Flip one base64 character in the body: the CRC-24 no longer matches.
  auto body = armored.find("\n\n") + 2;
  armored[body + 10] = armored[body + 10] == 'A' ? 'B' : 'A';
  auto damaged = scan_openpgp(armored);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.error().message.find("checksum"), std::string::npos);

  std::string binary = export_public(fpr, false);
  EXPECT_FALSE(scan_openpgp(binary.substr(0, binary.size() - 7)).ok());
  EXPECT_FALSE(scan_openpgp("not a key at all").ok());
  EXPECT_FALSE(scan_openpgp(std::string(kMaxKeyDataBytes + 1, '\x99')).ok());
}

TEST(Wkd, UrlsMatchGpgWksClient) {
  if (!std::filesystem::exists(kWksClient))
    GTEST_SKIP() << "gpg-wks-client not installed";
  for (std::string address : {"Joe.Doe@Example.ORG", "alice@example.org", "x+y@sub.example.net"}) {
    auto want = run_cmd({kWksClient, "--print-wkd-url", address});
    ASSERT_EQ(want.status, 0) << want.err;
    std::string url = want.out.substr(0, want.out.find_first_of("?\n"));
    auto urls = wkd_urls(address);
    ASSERT_TRUE(urls.ok()) << urls.error().message;
    EXPECT_EQ(urls->advanced.substr(0, urls->advanced.find('?')), url) << address;
    std::string domain = util::ascii_lower(address.substr(address.find('@') + 1));
    std::string hash = url.substr(url.rfind('/') + 1);
    EXPECT_EQ(urls->direct.substr(0, urls->direct.find('?')),
              "https://" + domain + "/.well-known/openpgpkey/hu/" + hash);
  }
  // The example of draft-koch-openpgp-webkey-service §3.1.
  auto urls = wkd_urls("Joe.Doe@Example.ORG");
  ASSERT_TRUE(urls.ok());
  EXPECT_EQ(
      urls->direct,
      "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
  EXPECT_FALSE(wkd_urls("no-at-sign").ok());
  EXPECT_FALSE(wkd_urls("a@bad domain").ok());
  EXPECT_FALSE(wkd_urls("a@evil.example/path").ok());
}

TEST_F(ContactsTest, WkdAnswerMustCarryTheAddressExactly) {
  std::string good = make_key("Wkd <wkd@remote.example>");
  std::string other = make_key("Other <other@remote.example>");
  std::string bin = export_public(good, false);
  EXPECT_TRUE(check_wkd_answer(bin, "wkd@remote.example").ok());
  EXPECT_TRUE(check_wkd_answer(bin, "WKD@Remote.Example").ok());
  auto wrong = check_wkd_answer(export_public(other, false), "wkd@remote.example");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("does not carry"), std::string::npos);
  EXPECT_FALSE(check_wkd_answer(bin, "wkd@remote.example.evil").ok());
  EXPECT_FALSE(check_wkd_answer(export_secret(good), "wkd@remote.example").ok());
  EXPECT_FALSE(check_wkd_answer(bin + export_public(other, false), "wkd@remote.example").ok());
  EXPECT_FALSE(check_wkd_answer(std::string(kWkdMaxBytes + 1, '\x99'), "wkd@remote.example").ok());
}

TEST_F(ContactsTest, AutocryptHeaderParsesAndRoundTrips) {
  std::string fpr = make_key("Ac <ac@remote.example>");
  std::string bin = export_public(fpr, false);
  test::spit(env.path("ac.bin"), bin);
  auto b64 = run_cmd({"openssl", "base64", "-in", env.path("ac.bin")});  // 64-column lines
  ASSERT_EQ(b64.status, 0);
  std::string folded;
  for (char c : b64.out)
    folded += c == '\n' ? std::string("\r\n ") : std::string(1, c);
  auto h = parse_autocrypt(
      "addr=Ac@Remote.Example; prefer-encrypt=mutual; _vendor=x; keydata=\r\n " + folded);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->addr, "ac@remote.example");
  EXPECT_TRUE(h->prefer_encrypt);
  EXPECT_EQ(h->keydata, bin);
  auto again = parse_autocrypt(mail::autocrypt_header_value("ac@remote.example", bin, false));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->keydata, bin);
  EXPECT_FALSE(again->prefer_encrypt);

  EXPECT_FALSE(parse_autocrypt("addr=ac@remote.example; critical=1; keydata=" + b64.out).ok());
  EXPECT_FALSE(parse_autocrypt("addr=ac@remote.example").ok());
  EXPECT_FALSE(parse_autocrypt("keydata=" + b64.out).ok());
  EXPECT_FALSE(parse_autocrypt("addr=ac@remote.example; keydata=!!!").ok());
}

TEST(Autocrypt, HeaderValuesAreUnfoldedFromTheTopHeaderBlockOnly) {
  auto v = autocrypt_header_values(
      "From: a@b.example\r\nAutocrypt: addr=a@b.example;\r\n keydata=QUJD\r\n\tREVG\r\n"
      "Subject: x\r\n\r\nAutocrypt: addr=body@b.example; keydata=QUJD\r\n");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], " addr=a@b.example; keydata=QUJD\tREVG");
  auto h = parse_autocrypt(v[0]);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->keydata, "ABCDEF");
  EXPECT_TRUE(autocrypt_header_values("Subject: none\n\nbody").empty());
}

// ---- ContactStore

TEST_F(ContactsTest, ImportBindsTheNamedAddressOnlyAndVerifiesFromTheHome) {
  std::string fpr = make_key("Two Ids <main@remote.example>");
  ASSERT_EQ(KeysEnv::gpg(outside, {"--pinentry-mode", "loopback", "--passphrase", "",
                                   "--quick-add-uid", fpr, "Boss <boss@example.org>"})
                .status,
            0);
  std::string pub = export_public(fpr);

  ImportRequest unclear;
  auto refused = contacts.import("alice", pub, unclear);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("several addresses"), std::string::npos);
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 0);

  ImportRequest named;
  named.emails = {"Main@Remote.Example"};
  auto k = contacts.import("alice", pub, named);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->fingerprint, fpr);
  EXPECT_EQ(k->user_ids.size(), 2u);
  ASSERT_EQ(k->bindings.size(), 1u);
  EXPECT_EQ(k->bindings[0].email, "main@remote.example");
  EXPECT_EQ(k->bindings[0].source, BindingSource::user);
  EXPECT_TRUE(in_server_home(fpr));

  auto user = auth::UserStore(env.app().db, env.clock()).find("alice");
  EXPECT_EQ(contacts.bound_to(user->id, "main@remote.example").size(), 1u);
  EXPECT_TRUE(contacts.bound_to(user->id, "boss@example.org").empty());
  auto bob = auth::UserStore(env.app().db, env.clock()).find("bob");
  EXPECT_TRUE(contacts.bound_to(bob->id, "main@remote.example").empty());

  auto enc = contacts.encryption_key(user->id, "main@remote.example", keys::KeyType::openpgp);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_EQ(contacts.encryption_key(user->id, "boss@example.org", keys::KeyType::openpgp).code(),
            Errc::not_found);
}

TEST_F(ContactsTest, SecretKeyIsRefusedAndNothingOfItStored) {
  std::string fpr = make_key("Careless <careless@remote.example>");
  ImportRequest r;
  auto refused = contacts.import("alice", export_secret(fpr), r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("secret key"), std::string::npos);
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 0);
  EXPECT_FALSE(in_server_home(fpr));
  EXPECT_NE(KeysEnv::gpg(env.gnupg_home(), {"--list-secret-keys", fpr}).status, 0);
}

TEST_F(ContactsTest, MalformedAndOversizedKeysAreRefused) {
  ImportRequest r;
  r.emails = {"x@remote.example"};
  EXPECT_EQ(contacts.import("alice", "hello world", r).code(), Errc::invalid_argument);
  EXPECT_EQ(contacts.import("alice", std::string(kMaxKeyDataBytes + 1, 'A'), r).code(),
            Errc::invalid_argument);
  std::string fpr = make_key("Trunc <trunc@remote.example>");
  std::string bin = export_public(fpr, false);
  EXPECT_EQ(contacts.import("alice", bin.substr(0, bin.size() / 2), r).code(),
            Errc::invalid_argument);
  EXPECT_EQ(contacts.import("nobody", export_public(fpr), r).code(), Errc::not_found);
  r.emails = {"not an address"};
  EXPECT_EQ(contacts.import("alice", export_public(fpr), r).code(), Errc::invalid_argument);
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 0);
}

TEST_F(ContactsTest, ReimportMergesNewSubkeysAndRevocation) {
  std::string fpr = make_key("Merge <merge@remote.example>");
  ImportRequest r;
  auto first = contacts.import("alice", export_public(fpr), r);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->bindings[0].email, "merge@remote.example");
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");

  ASSERT_EQ(KeysEnv::gpg(outside, {"--pinentry-mode", "loopback", "--passphrase", "",
                                   "--quick-add-key", fpr, "cv25519", "encr"})
                .status,
            0);
  auto second = contacts.import("alice", export_public(fpr), r);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->id, first->id);
  EXPECT_GT(std::count(second->algorithm.begin(), second->algorithm.end(), '/'),
            std::count(first->algorithm.begin(), first->algorithm.end(), '/'));

  // gpg wrote a revocation certificate when it made the key; apply it outside.
  std::string rev = test::slurp(outside + "/openpgp-revocs.d/" + fpr + ".rev");
  auto colon = rev.find(":-----BEGIN");
  ASSERT_NE(colon, std::string::npos);
  rev.erase(colon, 1);
  ASSERT_EQ(KeysEnv::gpg(outside, {"--import"}, rev).status, 0);
  // The revocation alone (not the whole key) is enough to merge.
  auto revoked = contacts.import("alice", export_public(fpr), r);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(revoked->revoked);
  EXPECT_EQ(revoked->state, KeyState::revoked);
  auto enc = contacts.encryption_key(alice->id, "merge@remote.example", keys::KeyType::openpgp);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.code(), Errc::revoked);
  EXPECT_NE(enc.error().message.find("revoked"), std::string::npos);
}

TEST_F(ContactsTest, ExpiredKeyIsNeverUsedToEncrypt) {
  // A key made "in 2020" that expired a day later.
  auto r = KeysEnv::gpg(outside, {"--faked-system-time", "20200101T000000", "--pinentry-mode",
                                  "loopback", "--passphrase", "", "--quick-gen-key",
                                  "Old <old@remote.example>", "future-default", "default", "1d"});
  ASSERT_EQ(r.status, 0) << r.err;
  ImportRequest req;
  auto k = contacts.import("alice", export_public("old@remote.example"), req);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->state, KeyState::expired);
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");
  EXPECT_EQ(contacts.encryption_key(alice->id, "old@remote.example", keys::KeyType::openpgp).code(),
            Errc::expired);
}

TEST_F(ContactsTest, CertificatesPemAndDerAndNoPrivateKeys) {
  std::string pem = make_cert("cert@remote.example");
  ImportRequest r;
  auto k = contacts.import("alice", pem, r);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->type, keys::KeyType::smime);
  ASSERT_EQ(k->bindings.size(), 1u);
  EXPECT_EQ(k->bindings[0].email, "cert@remote.example");
  // Self-signed: no CA vouches for it, so it is the user's own acceptance.
  EXPECT_EQ(k->bindings[0].source, BindingSource::user);
  auto fp = run_cmd(
      {"openssl", "x509", "-in", env.path("cert.pem"), "-noout", "-fingerprint", "-sha256"});
  std::string want;
  for (char c : fp.out.substr(fp.out.find('=') + 1))
    if (c != ':' && c != '\n')
      want += c;
  EXPECT_EQ(k->fingerprint, want);

  std::string der_pem = make_cert("der@remote.example", "der");
  auto der = run_cmd({"openssl", "x509", "-in", env.path("der.pem"), "-outform", "DER"});
  ASSERT_EQ(der.status, 0);
  auto kd = contacts.import("bob", der.out, r);
  ASSERT_TRUE(kd.ok()) << kd.error().message;
  EXPECT_EQ(kd->bindings[0].email, "der@remote.example");

  // The key file with the certificate: refused, nothing stored.
  std::string with_key = test::slurp(env.path("cert.key")) + pem;
  EXPECT_EQ(contacts.import("bob", with_key, r).code(), Errc::invalid_argument);
  auto p12 = run_cmd({"openssl", "pkcs12", "-export", "-inkey", env.path("cert.key"), "-in",
                      env.path("cert.pem"), "-passout", "pass:x"});
  ASSERT_EQ(p12.status, 0) << p12.err;
  auto refused = contacts.import("bob", p12.out, r);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("PKCS#12"), std::string::npos);
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_keys"), 2);
}

TEST_F(ContactsTest, DeleteRemovesThePublicKeyWhenNobodyElseHasIt) {
  std::string fpr = make_key("Shared <shared@remote.example>");
  ImportRequest r;
  auto a = contacts.import("alice", export_public(fpr), r);
  auto b = contacts.import("bob", export_public(fpr), r);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(contacts.remove(a->id).ok());
  EXPECT_TRUE(in_server_home(fpr));
  EXPECT_EQ(contacts.get(a->id).code(), Errc::not_found);
  ASSERT_TRUE(contacts.remove(b->id).ok());
  EXPECT_FALSE(in_server_home(fpr));
  EXPECT_EQ(contacts.remove(b->id).code(), Errc::not_found);
  EXPECT_EQ(env.count("SELECT count(*) FROM contact_bindings"), 0);
}

TEST_F(ContactsTest, DeletingAUsersKeyKeepsThePublicKeyAContactHolds) {
  // alice's own key, which bob has as a correspondent's key.
  keys::GenerateOptions o;
  auto mine = keys.generate("alice", o, test::secret("alice key passphrase"));
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  const std::string fpr = mine->key.fingerprint;
  auto pub = keys.export_public(mine->key);
  ASSERT_TRUE(pub.ok());
  ImportRequest r;
  r.emails = {"alice@example.org"};
  auto held = contacts.import("bob", *pub, r);
  ASSERT_TRUE(held.ok()) << held.error().message;
  ASSERT_EQ(KeysEnv::gpg(env.gnupg_home(), {"--list-secret-keys", fpr}).status, 0);

  ASSERT_TRUE(keys.remove(mine->key).ok());
  // The secret is gone; the public key stays for bob, who still encrypts to it.
  EXPECT_NE(KeysEnv::gpg(env.gnupg_home(), {"--list-secret-keys", fpr}).status, 0);
  EXPECT_TRUE(in_server_home(fpr));
  auto bob = auth::UserStore(env.app().db, env.clock()).find("bob");
  auto enc = contacts.encryption_key(bob->id, "alice@example.org", keys::KeyType::openpgp);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_TRUE(keys.encrypt(keys::KeyType::openpgp, {enc->public_data}, "to alice").ok());

  // Without a contact holding it, a user's key leaves the home entirely.
  auto other = keys.generate("alice", o, test::secret("alice key passphrase"));
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(keys.remove(other->key).ok());
  EXPECT_FALSE(in_server_home(other->key.fingerprint));
}

TEST_F(ContactsTest, AutocryptBindsOnlyTheSenderAndKeepsFirstAndLastSeen) {
  std::string fpr = make_key("Peer <peer@remote.example>");
  std::string value =
      mail::autocrypt_header_value("peer@remote.example", export_public(fpr, false), true);
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");
  EXPECT_EQ(contacts.autocrypt_seen(alice->id, "someone@else.example", value, 1000).code(),
            Errc::invalid_argument);
  auto k = contacts.autocrypt_seen(alice->id, "Peer@Remote.Example", value, 2000);
  ASSERT_TRUE(k.ok()) << k.error().message;
  ASSERT_EQ(k->bindings.size(), 1u);
  EXPECT_EQ(k->bindings[0].source, BindingSource::autocrypt);
  EXPECT_EQ(k->bindings[0].first_seen, 2000);
  (void)contacts.autocrypt_seen(alice->id, "peer@remote.example", value, 3000);
  (void)contacts.autocrypt_seen(alice->id, "peer@remote.example", value, 2500);  // older mail
  auto again = contacts.get(k->id);
  EXPECT_EQ(again->bindings[0].first_seen, 2000);
  EXPECT_EQ(again->bindings[0].last_seen, 3000);
}

// Regression: Autocrypt imports wrote no audit row, unlike every other import.
TEST_F(ContactsTest, AutocryptImportsAreAuditedWhenTheyChangeSomething) {
  auto rows = [&] {
    audit::AuditQuery q;
    q.login = "alice";
    q.limit = 0;
    std::vector<audit::AuditEntry> out;
    for (auto& e : audit::AuditLog(env.app().db, env.clock()).query(q)) {
      if (e.event.event == "contact.import")
        out.push_back(std::move(e));
    }
    return out;  // newest first
  };
  std::string fpr = make_key("Peer <peer@remote.example>");
  std::string value =
      mail::autocrypt_header_value("peer@remote.example", export_public(fpr, false), true);
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");
  ASSERT_TRUE(contacts.autocrypt_seen(alice->id, "peer@remote.example", value, 2000).ok());
  auto log = rows();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].event.outcome, "ok");
  EXPECT_EQ(log[0].event.key_fpr, fpr);
  EXPECT_NE(log[0].event.detail.find("bound from an Autocrypt header of peer@remote.example"),
            std::string::npos)
      << log[0].event.detail;
  // The same header on the next message changes nothing but last_seen: no row.
  ASSERT_TRUE(contacts.autocrypt_seen(alice->id, "peer@remote.example", value, 3000).ok());
  EXPECT_EQ(rows().size(), 1u);
  // A new subkey is a change of the key: audited as an update.
  ASSERT_EQ(KeysEnv::gpg(outside, {"--pinentry-mode", "loopback", "--passphrase", "",
                                   "--quick-add-key", fpr, "cv25519", "encr"})
                .status,
            0);
  std::string newer =
      mail::autocrypt_header_value("peer@remote.example", export_public(fpr, false), true);
  ASSERT_TRUE(contacts.autocrypt_seen(alice->id, "peer@remote.example", newer, 4000).ok());
  log = rows();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].event.detail.find("updated from an Autocrypt header"), std::string::npos)
      << log[0].event.detail;
  // A key held already, newly bound by an Autocrypt header: audited.
  std::string other = make_key("Other <other@remote.example>");
  ImportRequest by_user;
  by_user.emails = {"other@remote.example"};
  ASSERT_TRUE(contacts.import("alice", export_public(other), by_user).ok());
  ASSERT_EQ(rows().size(), 3u);
  std::string other_value =
      mail::autocrypt_header_value("other@remote.example", export_public(other, false), false);
  ASSERT_TRUE(contacts.autocrypt_seen(alice->id, "other@remote.example", other_value, 5000).ok());
  log = rows();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].event.key_fpr, other);
  EXPECT_NE(log[0].event.detail.find("bound from an Autocrypt header"), std::string::npos);
  // A header whose key is a secret key: refused, and the refusal is audited.
  std::string secret = mail::autocrypt_header_value(
      "peer@remote.example",
      KeysEnv::gpg(outside,
                   {"--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", fpr})
          .out,
      false);
  EXPECT_FALSE(contacts.autocrypt_seen(alice->id, "peer@remote.example", secret, 6000).ok());
  log = rows();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0].event.outcome, "fail");
  EXPECT_NE(log[0].event.detail.find("secret key"), std::string::npos) << log[0].event.detail;
}

TEST_F(ContactsTest, NoteSignerSaysWhenTheKeyChanged) {
  auto alice = auth::UserStore(env.app().db, env.clock()).find("alice");
  EXPECT_FALSE(contacts.note_signer(alice->id, "p@x.example", keys::KeyType::openpgp, "AAAA", 10));
  EXPECT_FALSE(contacts.note_signer(alice->id, "p@x.example", keys::KeyType::openpgp, "AAAA", 20));
  auto changed = contacts.note_signer(alice->id, "P@x.example", keys::KeyType::openpgp, "BBBB", 30);
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(*changed, "AAAA");
}

TEST(WkdLookup, RefusesPlainHttpAndBadAddresses) {
  net::HttpsOptions o;
  EXPECT_EQ(net::https_get("http://example.org/", o).code(), Errc::invalid_argument);
  EXPECT_EQ(wkd_lookup("no-address", o).code(), Errc::invalid_argument);
}

TEST(WkdLookup, AllAtOnceKeepsTheOrderAndTheCap) {
  net::HttpsOptions o;
  std::vector<std::string> addresses;
  for (std::size_t i = 0; i <= kWkdMaxParallel; ++i)
    addresses.push_back("bad-address-" + std::to_string(i));
  auto all = wkd_lookup_all(addresses, o);
  ASSERT_EQ(all.size(), addresses.size());
  for (std::size_t i = 0; i < kWkdMaxParallel; ++i) {
    EXPECT_EQ(all[i].code(), Errc::invalid_argument);
    EXPECT_NE(all[i].error().message.find("bad-address-" + std::to_string(i)), std::string::npos)
        << all[i].error().message;
  }
  EXPECT_NE(all.back().error().message.find("not tried"), std::string::npos)
      << all.back().error().message;
}

}  // namespace

}  // namespace wmk::contacts
