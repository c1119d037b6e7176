// S/MIME custody against real openssl: PKCS#12 and PEM made by openssl import,
// messages from `openssl cms -encrypt` (CBC and GCM, RSA and EC) decrypt, and what we
// sign and encrypt opens with openssl.
#include <gtest/gtest.h>

#include "core/keys/keystore.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::keys {

namespace {

using test::KeysEnv;
using test::run_cmd;
using test::secret;

constexpr const char* kPass = "correct horse battery";
constexpr const char* kP12Pass = "p12 password";

class SmimeKeys : public ::testing::Test {
 protected:
  KeysEnv env;
  KeyStore store = env.store();

  std::string p(const std::string& name) { return env.path(name); }

  static void ok(const test::CmdResult& r, const std::string& what) {
    ASSERT_EQ(r.status, 0) << what << ": " << r.err;
  }

  // An RSA or EC key and self-signed certificate made by openssl: NAME.key, NAME.crt.
  void openssl_cert(const std::string& name, const std::string& email, bool ec = false) {
    if (ec) {
      ok(run_cmd({"openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                  p(name + ".key")}),
         "ecparam");
    } else {
      ok(run_cmd({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", p(name + ".key")}),
         "genpkey");
    }
    ok(run_cmd({"openssl", "req", "-x509", "-key", p(name + ".key"), "-out", p(name + ".crt"),
                "-days", "30", "-subj", "/CN=" + name + "/emailAddress=" + email, "-addext",
                "subjectAltName=email:" + email, "-addext",
                "keyUsage=digitalSignature,keyEncipherment,keyAgreement", "-addext",
                "extendedKeyUsage=emailProtection"}),
       "req -x509");
  }

  std::string pkcs12_of(const std::string& name) {
    ok(run_cmd({"openssl", "pkcs12", "-export", "-inkey", p(name + ".key"), "-in", p(name + ".crt"),
                "-out", p(name + ".p12"), "-passout", std::string("pass:") + kP12Pass}),
       "pkcs12 -export");
    return test::slurp(p(name + ".p12"));
  }

  // `openssl cms -encrypt` to NAME.crt with cipher, in S/MIME (MIME) or DER form.
  std::string cms_encrypt(const std::string& name, const std::string& cipher,
                          const std::string& text, const std::string& form = "SMIME") {
    test::spit(p("plain.txt"), text);
    ok(run_cmd({"openssl", "cms", "-encrypt", "-binary", "-" + cipher, "-in", p("plain.txt"),
                "-outform", form, "-out", p("msg.out"), p(name + ".crt")}),
       "cms -encrypt " + cipher);
    return test::slurp(p("msg.out"));
  }

  KeyInfo import_p12(const std::string& name, const std::string& login = "alice") {
    auto key = store.import_smime(login, pkcs12_of(name), secret(kP12Pass), secret(kPass));
    EXPECT_TRUE(key.ok()) << key.error().message;
    return key.ok() ? *key : KeyInfo{};
  }
};

TEST_F(SmimeKeys, Pkcs12FromOpensslImportsWithItsCertificateDetails) {
  openssl_cert("alice", "alice@example.org");
  KeyInfo key = import_p12("alice");
  EXPECT_EQ(key.type, KeyType::smime);
  EXPECT_EQ(key.fingerprint.size(), 64u);
  EXPECT_EQ(key.algorithm, "RSA-2048");
  EXPECT_NE(key.subject.find("CN=alice"), std::string::npos) << key.subject;
  EXPECT_EQ(key.subject, key.issuer);
  EXPECT_GT(key.not_after, key.not_before);
  EXPECT_EQ(key.expires, key.not_after);
  EXPECT_EQ(key.emails, std::vector<std::string>{"alice@example.org"});
  auto fpr =
      run_cmd({"openssl", "x509", "-in", p("alice.crt"), "-noout", "-fingerprint", "-sha256"});
  std::string colons = fpr.out.substr(fpr.out.find('=') + 1);
  std::string hex;
  for (char c : colons)
    if (std::isxdigit(static_cast<unsigned char>(c)))
      hex += c;
  EXPECT_EQ(key.fingerprint, hex);
  auto cert = store.export_public(key);
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(*cert, test::slurp(p("alice.crt")));
}

TEST_F(SmimeKeys, OpensslCmsMessagesDecryptCbcAndGcmRsaAndEc) {
  openssl_cert("rsa", "alice@example.org");
  openssl_cert("ec", "alice@work.example", /*ec=*/true);
  KeyInfo rsa = import_p12("rsa");
  // EC key and certificate as one PEM file.
  test::spit(p("ec.pem"), test::slurp(p("ec.key")) + test::slurp(p("ec.crt")));
  auto ec = store.import_smime("alice", test::slurp(p("ec.pem")), secret(""), secret(kPass));
  ASSERT_TRUE(ec.ok()) << ec.error().message;
  EXPECT_EQ(ec->algorithm, "EC P-256");

  struct Case {
    const KeyInfo* key;
    const char* name;
    const char* cipher;
    const char* form;
    bool integrity;
  };
  for (const auto& c :
       {Case{&rsa, "rsa", "aes256", "SMIME", false},
        Case{&rsa, "rsa", "aes-256-gcm", "SMIME", true},
        Case{&rsa, "rsa", "aes-256-gcm", "DER", true}, Case{&*ec, "ec", "aes256", "DER", false},
        Case{&*ec, "ec", "aes-256-gcm", "SMIME", true}}) {
    std::string text =
        std::string("Content-Type: text/plain\r\n\r\nvia ") + c.name + " " + c.cipher + "\r\n";
    std::string msg = cms_encrypt(c.name, c.cipher, text, c.form);
    auto unlocked = store.unlock(*c.key, secret(kPass));
    ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
    auto dec = store.decrypt(*unlocked, msg);
    ASSERT_TRUE(dec.ok()) << c.name << " " << c.cipher << ": " << dec.error().message;
    EXPECT_EQ(std::string(dec->plaintext.view()), text) << c.name << " " << c.cipher;
    EXPECT_EQ(dec->integrity_protected, c.integrity) << c.cipher;
  }
}

TEST_F(SmimeKeys, AlteredOrForeignMessagesFail) {
  openssl_cert("alice", "alice@example.org");
  openssl_cert("bob", "bob@example.org");
  KeyInfo alice = import_p12("alice");
  auto unlocked = store.unlock(alice, secret(kPass));
  ASSERT_TRUE(unlocked.ok());

  std::string gcm = cms_encrypt("alice", "aes-256-gcm", "authentic", "DER");
  gcm[gcm.size() - 20] ^= 0x01;
  auto altered = store.decrypt(*unlocked, gcm);
  EXPECT_EQ(altered.code(), Errc::crypto) << (altered.ok() ? "" : altered.error().message);

  std::string to_bob = cms_encrypt("bob", "aes-256-gcm", "for bob", "DER");
  auto foreign = store.decrypt(*unlocked, to_bob);
  EXPECT_EQ(foreign.code(), Errc::crypto);
  EXPECT_EQ(store.decrypt(*unlocked, "not cms at all").code(), Errc::corrupt);
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.decrypt' AND outcome = "
                      "'fail'"),
            3);
}

TEST_F(SmimeKeys, SignatureVerifiesWithOpenssl) {
  openssl_cert("alice", "alice@example.org");
  KeyInfo alice = import_p12("alice");
  auto unlocked = store.unlock(alice, secret(kPass));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  std::string data = "Content-Type: text/plain\r\n\r\nsigned by alice\r\n";
  auto sig = store.sign(*unlocked, data);
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_EQ(sig->micalg, "sha-256");
  test::spit(p("data.txt"), data);
  test::spit(p("sig.der"), sig->signature);
  auto v = run_cmd({"openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p("sig.der"),
                    "-content", p("data.txt"), "-CAfile", p("alice.crt"), "-out", p("out.txt")});
  EXPECT_EQ(v.status, 0) << v.err;
  test::spit(p("data.txt"), data + "tampered");
  auto bad = run_cmd({"openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p("sig.der"),
                      "-content", p("data.txt"), "-CAfile", p("alice.crt")});
  EXPECT_NE(bad.status, 0);

  auto ours = store.verify(KeyType::smime, data, sig->signature);
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  ASSERT_EQ(ours->signatures.size(), 1u);
  EXPECT_EQ(ours->signatures[0].status, SignatureStatus::good);
  EXPECT_FALSE(ours->signatures[0].trusted);  // self-signed: not in the system store
  EXPECT_EQ(ours->signatures[0].fingerprint, alice.fingerprint);
  EXPECT_EQ(ours->signatures[0].emails, std::vector<std::string>{"alice@example.org"});
  EXPECT_GT(ours->signatures[0].created, 0);
  auto forged = store.verify(KeyType::smime, data + "x", sig->signature);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->signatures[0].status, SignatureStatus::bad);
}

TEST_F(SmimeKeys, OpensslSignatureVerifiesHere) {
  openssl_cert("carol", "carol@example.net");
  std::string data = "hello from carol\r\n";
  test::spit(p("data.txt"), data);
  ok(run_cmd({"openssl", "cms", "-sign", "-binary", "-signer", p("carol.crt"), "-inkey",
              p("carol.key"), "-in", p("data.txt"), "-outform", "DER", "-out", p("sig.der")}),
     "cms -sign");
  auto r = store.verify(KeyType::smime, data, test::slurp(p("sig.der")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->signatures[0].status, SignatureStatus::good);
  EXPECT_EQ(r->signatures[0].emails, std::vector<std::string>{"carol@example.net"});
}

TEST_F(SmimeKeys, EncryptOpensWithOpensslGcmAndCbc) {
  openssl_cert("rsa", "carol@example.net");
  openssl_cert("ec", "dave@example.net", /*ec=*/true);
  for (auto cipher : {SmimeCipher::aes256_gcm, SmimeCipher::aes256_cbc}) {
    auto ct = store.encrypt(KeyType::smime, {test::slurp(p("rsa.crt")), test::slurp(p("ec.crt"))},
                            "to both", cipher);
    ASSERT_TRUE(ct.ok()) << ct.error().message;
    test::spit(p("ct.der"), *ct);
    for (const char* who : {"rsa", "ec"}) {
      auto d =
          run_cmd({"openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", p("ct.der"),
                   "-recip", p(std::string(who) + ".crt"), "-inkey", p(std::string(who) + ".key")});
      EXPECT_EQ(d.status, 0) << who << ": " << d.err;
      EXPECT_EQ(d.out, "to both") << who;
    }
    auto info =
        run_cmd({"openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", p("ct.der")});
    bool auth = info.out.find("authEnvelopedData") != std::string::npos ||
                info.out.find("id-smime-ct-authEnvelopedData") != std::string::npos;
    EXPECT_EQ(auth, cipher == SmimeCipher::aes256_gcm) << info.out.substr(0, 200);
  }
  EXPECT_EQ(store.encrypt(KeyType::smime, {"garbage"}, "x").code(), Errc::invalid_argument);
}

TEST_F(SmimeKeys, BadFilesGiveClearErrorsAndChangeNothing) {
  openssl_cert("alice", "alice@example.org");
  std::string p12 = pkcs12_of("alice");
  struct Case {
    const char* name;
    std::string data;
    const char* pass;
    Errc code;
  };
  for (const auto& c :
       {Case{"wrong password", p12, "nope", Errc::wrong_passphrase},
        Case{"truncated", p12.substr(0, p12.size() / 2), kP12Pass, Errc::corrupt},
        Case{"one byte", p12.substr(0, 1), kP12Pass, Errc::corrupt},
        Case{"text", "just some text\n", kP12Pass, Errc::corrupt},
        Case{"cert only", test::slurp(p("alice.crt")), "", Errc::invalid_argument},
        Case{"key only", test::slurp(p("alice.key")), "", Errc::invalid_argument}}) {
    auto r = store.import_smime("alice", c.data, secret(c.pass), secret(kPass));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.code(), c.code) << c.name << ": " << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_EQ(env.count("SELECT count(*) FROM keys"), 0) << c.name;
  }
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.import' AND outcome = "
                      "'fail'"),
            6);

  // An encrypted PKCS#8 PEM key: wrong passphrase, then the right one.
  ok(run_cmd({"openssl", "pkcs8", "-topk8", "-v2", "aes256", "-in", p("alice.key"), "-out",
              p("enc.key"), "-passout", "pass:pem pass"}),
     "pkcs8 -topk8");
  std::string pem = test::slurp(p("enc.key")) + test::slurp(p("alice.crt"));
  EXPECT_EQ(store.import_smime("alice", pem, secret("wrong"), secret(kPass)).code(),
            Errc::wrong_passphrase);
  EXPECT_EQ(store.import_smime("alice", pem, secret(""), secret(kPass)).code(),
            Errc::wrong_passphrase);
  EXPECT_EQ(env.count("SELECT count(*) FROM keys"), 0);
  auto good = store.import_smime("alice", pem, secret("pem pass"), secret(kPass));
  ASSERT_TRUE(good.ok()) << good.error().message;
  // Not the key of the certificate: refused.
  openssl_cert("other", "alice@example.org");
  std::string mismatched = test::slurp(p("other.key")) + test::slurp(p("alice.crt"));
  EXPECT_EQ(store.import_smime("alice", mismatched, secret(""), secret(kPass)).code(),
            Errc::invalid_argument);
}

TEST_F(SmimeKeys, GeneratedCertificateAndCsrAreValidForOpenssl) {
  GenerateOptions o;
  o.type = KeyType::smime;
  o.want_csr = true;
  o.valid_days = 10;
  auto g = store.generate("alice", o, secret(kPass));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->key.algorithm, "RSA-3072");
  EXPECT_EQ(g->key.not_after - g->key.not_before, 10 * 86400);
  EXPECT_NE(g->key.subject.find("CN=Alice Example"), std::string::npos) << g->key.subject;
  auto cert = store.export_public(g->key);
  test::spit(p("gen.crt"), *cert);
  test::spit(p("gen.csr"), g->csr_pem);
  auto v = run_cmd(
      {"openssl", "verify", "-purpose", "smimesign", "-CAfile", p("gen.crt"), p("gen.crt")});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  auto text = run_cmd({"openssl", "x509", "-in", p("gen.crt"), "-noout", "-text"});
  EXPECT_NE(text.out.find("email:alice@example.org"), std::string::npos);
  EXPECT_NE(text.out.find("E-mail Protection"), std::string::npos);
  auto req = run_cmd({"openssl", "req", "-in", p("gen.csr"), "-noout", "-verify", "-text"});
  EXPECT_EQ(req.status, 0) << req.err;
  EXPECT_NE(req.out.find("email:alice@example.org"), std::string::npos);

  // And it works: openssl encrypts to it, we decrypt; EC too.
  std::string msg = cms_encrypt("gen", "aes-256-gcm", "to the generated key");
  auto unlocked = store.unlock(g->key, secret(kPass));
  auto dec = store.decrypt(*unlocked, msg);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(std::string(dec->plaintext.view()), "to the generated key");
  o.algorithm = "p256";
  o.want_csr = false;
  auto ec = store.generate("alice", o, secret(kPass));
  ASSERT_TRUE(ec.ok()) << ec.error().message;
  EXPECT_EQ(ec->key.algorithm, "EC P-256");
  EXPECT_TRUE(ec->csr_pem.empty());
}

TEST_F(SmimeKeys, SecretExportIsPkcs12UnderTheExportPassphrase) {
  openssl_cert("alice", "alice@example.org");
  KeyInfo key = import_p12("alice");
  auto out = store.export_secret(key, secret(kPass), secret("export password"));
  ASSERT_TRUE(out.ok()) << out.error().message;
  test::spit(p("out.p12"), *out);
  auto wrong = run_cmd({"openssl", "pkcs12", "-in", p("out.p12"), "-nodes", "-passin",
                        "pass:" + std::string(kPass)});
  EXPECT_NE(wrong.status, 0);
  auto right = run_cmd(
      {"openssl", "pkcs12", "-in", p("out.p12"), "-nodes", "-passin", "pass:export password"});
  EXPECT_EQ(right.status, 0) << right.err << right.out;
  auto original = run_cmd({"openssl", "pkey", "-in", p("alice.key")});
  EXPECT_NE(right.out.find(original.out), std::string::npos);
}

TEST_F(SmimeKeys, ExpiredCertificateUnlocksButDoesNotSign) {
  openssl_cert("alice", "alice@example.org");
  KeyInfo key = import_p12("alice");
  EXPECT_TRUE(store.unlock(key, secret(kPass)).ok());
  env.clock().advance(std::chrono::hours(24 * 31));
  auto expired = store.unlock(key, secret(kPass));
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  auto sig = store.sign(*expired, "Content-Type: text/plain\r\n\r\nx\r\n");
  EXPECT_EQ(sig.code(), Errc::expired);
  EXPECT_NE(sig.error().message.find("S/MIME certificate"), std::string::npos);
  env.clock().advance(-std::chrono::hours(24 * 60));
  EXPECT_EQ(store.unlock(key, secret(kPass)).code(), Errc::expired);  // not valid yet
}

}  // namespace

}  // namespace wmk::keys
