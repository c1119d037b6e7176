// Building outgoing mail. Every message built here is read back by an independent
// implementation: Python's `email` package (tests/fixtures/check_message.py), gpg
// and openssl. Signatures and ciphertexts are made by gpg and openssl on the bytes
// our code hands out, so a wrong canonical form fails verification.

#include "core/mail/compose.h"

#include <gtest/gtest.h>

#include <string>

#include "core/util/encoding.h"
#include "core/util/json.h"
#include "tests/unit/mail_test_tools.h"

namespace wmk::mail {
namespace {

using test::fixture_path;
using test::read_test_file;
using test::run_command;
using test::write_test_file;

constexpr std::int64_t kDate = 1717243200;  // 2024-06-01 12:00:00 UTC

HeaderFields fields() {
  return HeaderFields{kDate, "test-1@example.org", ""};
}

Draft simple_draft() {
  Draft d;
  d.from = {"Alice Example", "alice@example.org"};
  d.to = {{"Bob", "bob@example.net"}};
  d.subject = "Hello";
  d.body = "Hi Bob,\nsee you.\n";
  return d;
}

std::string all_bytes() {
  std::string s;
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 256; ++i)
      s += static_cast<char>(i);
  return s;
}

void add_pairs(util::JsonWriter& w, const char* key, const std::vector<Address>& list) {
  w.key(key).begin_array();
  for (const Address& a : list)
    w.begin_array().value(a.name).value(a.address).end_array();
  w.end_array();
}

// Runs check_message.py on message against expected; returns its complaints ("" if none).
std::string python_check(const std::string& message, const std::string& expected_json) {
  test::TempDir dir;
  write_test_file(dir.path() + "/m.eml", message);
  write_test_file(dir.path() + "/expected.json", expected_json);
  auto r = run_command("python3 " + fixture_path("check_message.py") + " " + dir.path() +
                       "/m.eml " + dir.path() + "/expected.json");
  if (r.status != 0 && r.output.empty())
    return "check_message.py failed with status " + std::to_string(r.status);
  return r.output;
}

// The expectations for a draft built as a plain message; a signed one also has the
// signature part, of signature_type, as its last attachment.
std::string expected_for(const Draft& d, const std::vector<std::string>& header_names,
                         const std::string& signature_type = "") {
  util::JsonWriter w;
  w.begin_object();
  w.field("subject", d.subject);
  w.key("from").begin_array().begin_array().value(d.from.name).value(d.from.address).end_array();
  w.end_array();
  add_pairs(w, "to", d.to);
  add_pairs(w, "cc", d.cc);
  w.field("body", to_lf_line_ends(to_crlf_line_ends(d.body)));
  w.key("attachments").begin_array();
  for (const Attachment& a : d.attachments) {
    w.begin_object()
        .field("filename", safe_filename(a.filename))
        .field("content_type", a.content_type)
        .field("sha256", util::sha256_hex(a.bytes))
        .field("size", static_cast<std::int64_t>(a.bytes.size()))
        .end_object();
  }
  if (!signature_type.empty())
    w.begin_object().field("content_type", signature_type).end_object();
  w.end_array();
  w.key("header_names").begin_array();
  for (const auto& h : header_names)
    w.value(h);
  w.end_array();
  w.end_object();
  return w.str();
}

// ---- addresses

TEST(ComposeAddress, AcceptsPlainAddresses) {
  for (const char* a : {"alice@example.org", "a.b+tag@sub.example.co.uk", "x_y-z@localhost",
                        "o'brien@example.ie", "1@2.example"})
    EXPECT_TRUE(validate_address(a).ok()) << a;
}

TEST(ComposeAddress, RefusesOptionsInjectionAndJunk) {
  const std::string too_long = std::string(250, 'a') + "@example.org";
  for (std::string a : {std::string("-oQ/tmp/x@example.org"),
                        std::string("-f@example.org"),
                        std::string("alice@example.org\r\nBcc: eve@evil.example"),
                        std::string("alice@example.org\n"),
                        std::string("ali\0ce@example.org", 18),
                        std::string("a b@example.org"),
                        std::string("alice"),
                        std::string("a@b@example.org"),
                        std::string("\"quoted\"@example.org"),
                        std::string("<alice@example.org>"),
                        std::string("alice@-example.org"),
                        std::string("alice@example..org"),
                        std::string(".alice@example.org"),
                        std::string("al..ice@example.org"),
                        std::string("jörg@example.org"),
                        std::string("alice@exa_mple.org"),
                        std::string("alice@[127.0.0.1]"),
                        std::string(""),
                        too_long,
                        std::string(65, 'l') + "@example.org"}) {
    auto st = validate_address(a);
    ASSERT_FALSE(st.ok()) << a;
    EXPECT_EQ(st.code(), Errc::invalid_argument);
    EXPECT_EQ(st.error().message.find('\n'), std::string::npos) << st.error().message;
  }
}

TEST(ComposeAddress, ErrorNamesTheAddress) {
  auto st = validate_address("-oQ@example.org");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("-oQ@example.org"), std::string::npos);
  EXPECT_NE(st.error().message.find("'-'"), std::string::npos);
}

TEST(ComposeAddress, ParsesTheFieldsUsersType) {
  auto r = parse_address_field(
      "Anna Schmidt <anna@example.net>, bob@example.com; \"Müller, Jörg\" <j@example.de>,"
      " <carol@example.org> , =?utf-8?q?Fran=C3=A7ois?= <f@example.fr>,,");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].name, "Anna Schmidt");
  EXPECT_EQ((*r)[0].address, "anna@example.net");
  EXPECT_EQ((*r)[1].name, "");
  EXPECT_EQ((*r)[1].address, "bob@example.com");
  EXPECT_EQ((*r)[2].name, "Müller, Jörg");
  EXPECT_EQ((*r)[2].address, "j@example.de");
  EXPECT_EQ((*r)[3].address, "carol@example.org");
  EXPECT_EQ((*r)[4].name, "François");
  EXPECT_TRUE(parse_address_field("")->empty());
  EXPECT_TRUE(parse_address_field("  ,  ")->empty());
}

TEST(ComposeAddress, RefusesFieldsThatCouldInject) {
  for (const char* f : {
           "bob@example.com\r\nBcc: eve@evil.example",
           "bob@example.com\nBcc: eve@evil.example",
           // An encoded-word whose text is CR LF "Bcc: eve@evil.example".
           "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?= <bob@example.com>",
           "=?utf-8?q?a=0Ab?= <bob@example.com>",
           "bob@example.com eve@evil.example",  // no separator: not one address
           "grp: bob@example.com",              // groups are not supported
           "\"unclosed <bob@example.com>",
           "Bob <bob@example.com> trailing",
           "Bob <-oQ@example.com>",
           "Bob <<bob@example.com>>",
       }) {
    auto r = parse_address_field(f);
    ASSERT_FALSE(r.ok()) << f;
    EXPECT_EQ(r.code(), Errc::invalid_argument) << f;
  }
}

TEST(ComposeAddress, FormatsForTheFormAndParsesBack) {
  std::vector<Address> list = {
      {"Müller, Jörg", "j@example.de"}, {"", "bob@example.com"}, {"Say \"hi\"", "s@example.org"}};
  std::string field = format_address_field(list);
  auto back = parse_address_field(field);
  ASSERT_TRUE(back.ok()) << field << ": " << back.error().message;
  ASSERT_EQ(back->size(), 3u);
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_EQ((*back)[i].name, list[i].name) << field;
    EXPECT_EQ((*back)[i].address, list[i].address);
  }
}

// ---- building

TEST(ComposeBuild, PlainMessageReadsBackInPython) {
  Draft d = simple_draft();
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->find('\r'), std::string::npos);  // LF line ends for sendmail and Maildir
  EXPECT_EQ(
      python_check(*m, expected_for(d, {"content-transfer-encoding", "content-type", "date", "from",
                                        "message-id", "mime-version", "subject", "to"})),
      "");
  EXPECT_NE(m->find("Date: Sat, 01 Jun 2024 12:00:00 +0000\n"), std::string::npos);
  EXPECT_NE(m->find("Message-Id: <test-1@example.org>\n"), std::string::npos);
}

TEST(ComposeBuild, NonAsciiEverywhereRoundTrips) {
  Draft d;
  d.from = {"Jörg Müller", "joerg@example.org"};
  d.to = {{"Anna „Ани“ Schmidt", "anna@example.net"}, {"", "bob@example.com"}};
  d.cc = {{"Müller, Jörg (Büro)", "buero@example.de"},
          {"Say \"hi\" \\ there", "s@example.org"},
          {"日本語の名前", "nihon@example.jp"}};
  d.subject =
      "Grüße aus Köln – Anhänge ✓ and a long subject that must be folded because it goes on "
      "and on well beyond the seventy-eight characters of a line, 日本語も";
  d.body =
      "Grüße,\r\nFrom the start of a line\nTrailing spaces   \nTrailing tab\t\n.\n"
      "A very long line: " +
      std::string(1200, 'x') + "\n–\n日本語\n\nno final newline";
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(
      python_check(*m, expected_for(d, {"cc", "content-transfer-encoding", "content-type", "date",
                                        "from", "message-id", "mime-version", "subject", "to"})),
      "");
  // Nothing unencoded, no line a transport would mangle.
  for (unsigned char c : *m)
    ASSERT_LT(c, 0x80);
  std::size_t start = 0;
  while (start < m->size()) {
    std::size_t nl = m->find('\n', start);
    std::string_view line(m->data() + start, (nl == std::string::npos ? m->size() : nl) - start);
    EXPECT_LE(line.size(), 998u);
    EXPECT_FALSE(line.starts_with("From ")) << line;
    start = nl == std::string::npos ? m->size() : nl + 1;
  }
}

TEST(ComposeBuild, SubjectThatLooksEncodedStaysLiteral) {
  // Typed literally, this encoded-word would decode to CR LF "Bcc: eve@evil.example".
  Draft d = simple_draft();
  d.subject = "Re: =?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?= and more";
  d.to[0].name = "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?=";
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(
      python_check(*m, expected_for(d, {"content-transfer-encoding", "content-type", "date", "from",
                                        "message-id", "mime-version", "subject", "to"})),
      "");
  EXPECT_EQ(m->find("Bcc"), std::string::npos);
}

TEST(ComposeBuild, RefusesLineBreaksInEveryField) {
  const std::vector<std::string> evil = {"a\r\nBcc: eve@evil.example", "a\nb",     "a\rb",
                                         std::string("a\0b", 3),       "a\u2028b", "a\x1b[31mb"};
  for (const std::string& e : evil) {
    Draft d = simple_draft();
    d.subject = e;
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "subject";
    d = simple_draft();
    d.from.name = e;
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "from name";
    d = simple_draft();
    d.to[0].name = e;
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "to name";
    d = simple_draft();
    d.cc = {{e, "c@example.org"}};
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "cc name";
    d = simple_draft();
    d.to[0].address = "bob@example.net" + e;
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "to address";
    d = simple_draft();
    d.in_reply_to = "x@y" + e;
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "in-reply-to";
    d = simple_draft();
    d.references = {"x@y" + e};
    EXPECT_EQ(build_message(d, fields()).code(), Errc::invalid_argument) << "references";
  }
  Draft d = simple_draft();
  EXPECT_EQ(build_message(d, HeaderFields{kDate, "x@y>\r\nBcc: e@v.example", ""}).code(),
            Errc::invalid_argument);
}

TEST(ComposeBuild, BodyWithControlLineBreaksIsJustText) {
  // A body may hold anything a user types, including what looks like headers.
  Draft d = simple_draft();
  d.body = "\r\nBcc: eve@evil.example\r\n\r\n--boundary\r\nContent-Type: text/html\r\n";
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(
      python_check(*m, expected_for(d, {"content-transfer-encoding", "content-type", "date", "from",
                                        "message-id", "mime-version", "subject", "to"})),
      "");
}

TEST(ComposeBuild, RepliesCarryThreadHeaders) {
  Draft d = simple_draft();
  d.in_reply_to = "orig-2@example.net";
  d.references = {"orig-1@example.net", "orig-2@example.net"};
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  util::JsonWriter w;
  w.begin_object()
      .field("in_reply_to", "<orig-2@example.net>")
      .field("references", "<orig-1@example.net> <orig-2@example.net>")
      .end_object();
  EXPECT_EQ(python_check(*m, w.str()), "");
}

TEST(ComposeBuild, AttachmentsSurviveByteForByte) {
  Draft d = simple_draft();
  // A PNG signature and IHDR chunk of a 1x1 image, then anything.
  std::string png = std::string(
                        "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0"
                        "\x90wS\xde",
                        33) +
                    all_bytes();
  d.attachments.push_back(make_attachment("../../etc/Grüße \"quoted\"; name=x.bin", all_bytes()));
  d.attachments.push_back(make_attachment("crlf.txt", "line one\r\nline two\r\n\r\n.\r\nFrom x\n"));
  d.attachments.push_back(make_attachment("bild.png", png));
  d.attachments.push_back(make_attachment("", ""));
  d.attachments.push_back(
      make_attachment("日本語のファイル名がとても長いです.pdf", "%PDF-1.4\n%\xe2\xe3\n"));
  EXPECT_EQ(d.attachments[0].filename, "Grüße \"quoted\"; name=x.bin");
  EXPECT_EQ(d.attachments[2].content_type, "image/png");
  auto m = build_message(d, fields());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(python_check(*m, expected_for(d, {"content-type", "date", "from", "message-id",
                                              "mime-version", "subject", "to"})),
            "");
}

TEST(ComposeBuild, RecipientsAreToThenCcWithoutDuplicates) {
  Draft d = simple_draft();
  d.to = {{"", "a@example.org"}, {"", "B@example.org"}};
  d.cc = {{"", "b@example.org"}, {"", "c@example.org"}, {"", "A@EXAMPLE.org"}};
  EXPECT_EQ(recipients(d),
            (std::vector<std::string>{"a@example.org", "B@example.org", "c@example.org"}));
  EXPECT_TRUE(validate_draft(d, DraftCheck::to_send).ok());
  d.to.clear();
  d.cc.clear();
  EXPECT_TRUE(validate_draft(d, DraftCheck::to_save).ok());
  EXPECT_EQ(validate_draft(d, DraftCheck::to_send).code(), Errc::invalid_argument);
}

TEST(ComposeBuild, MessageIdIsFreshAtTheSendersDomain) {
  std::string a = make_message_id("alice@example.org");
  std::string b = make_message_id("alice@example.org");
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.ends_with("@example.org"));
  EXPECT_TRUE(validate_address(a).ok()) << a;
}

// ---- signed and encrypted structures, checked by gpg and openssl

class ComposeCrypto : public ::testing::Test {
 protected:
  Draft rich_draft() {
    Draft d = simple_draft();
    d.subject = "Signiert: Grüße";
    d.body = "From here on: trailing   \nGrüße ✓\n\n-- \nAlice\n";
    d.attachments.push_back(make_attachment("daten.bin", all_bytes()));
    return d;
  }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  test::TempDir dir_;
};

TEST_F(ComposeCrypto, PgpMimeSignatureVerifiesWithGpg) {
  test::GpgFixture gpg("alice@example.org");
  Draft d = rich_draft();
  auto entity = content_entity(d);
  ASSERT_TRUE(entity.ok()) << entity.error().message;
  // Canonical: every line end CRLF, nothing 8-bit.
  EXPECT_EQ(to_crlf_line_ends(*entity), *entity);
  for (unsigned char c : *entity)
    ASSERT_LT(c, 0x80);
  write_test_file(path("entity"), *entity);
  auto s = run_command(gpg.gpg() + " --digest-algo SHA256 --armor --detach-sign -o " +
                       path("sig.asc") + " " + path("entity"));
  ASSERT_EQ(s.status, 0) << s.output;
  auto signed_part = signed_entity(*entity, SignatureFormat::openpgp,
                                   read_test_file(path("sig.asc")), "pgp-sha256");
  ASSERT_TRUE(signed_part.ok()) << signed_part.error().message;
  auto headers = message_headers(d, fields());
  ASSERT_TRUE(headers.ok());
  std::string message = assemble_message(*headers, *signed_part);
  write_test_file(path("m.eml"), message);

  auto split = run_command("python3 " + fixture_path("split_signed.py") + " " + path("m.eml") +
                           " " + path("signed") + " " + path("sig"));
  ASSERT_EQ(split.status, 0) << split.output;
  EXPECT_NE(split.output.find("micalg=pgp-sha256"), std::string::npos);
  EXPECT_NE(split.output.find("protocol=application/pgp-signature"), std::string::npos);
  EXPECT_EQ(read_test_file(path("signed")), *entity);
  auto v = run_command(gpg.gpg() + " --verify " + path("sig") + " " + path("signed"));
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_NE(v.output.find("Good signature"), std::string::npos) << v.output;

  // The signed message still reads as the draft.
  EXPECT_EQ(python_check(message, expected_for(d,
                                               {"content-type", "date", "from", "message-id",
                                                "mime-version", "subject", "to"},
                                               "application/pgp-signature")),
            "");

  // A changed byte in transit breaks it: the check can fail.
  std::string tampered = message;
  tampered.replace(tampered.find("Gr=C3=BC=C3=9Fe"), 3, "Gr_");
  write_test_file(path("t.eml"), tampered);
  ASSERT_EQ(run_command("python3 " + fixture_path("split_signed.py") + " " + path("t.eml") + " " +
                        path("signed2") + " " + path("sig2"))
                .status,
            0);
  EXPECT_NE(run_command(gpg.gpg() + " --verify " + path("sig2") + " " + path("signed2")).status, 0);
}

TEST_F(ComposeCrypto, SmimeSignatureVerifiesWithOpensslCms) {
  test::SmimeFixture smime("alice@example.org");
  Draft d = rich_draft();
  auto entity = content_entity(d);
  ASSERT_TRUE(entity.ok());
  write_test_file(path("entity"), *entity);
  auto s = run_command("openssl cms -sign -binary -md sha256 -in " + path("entity") + " -signer " +
                       smime.cert() + " -inkey " + smime.key() + " -outform DER -out " +
                       path("sig.der"));
  ASSERT_EQ(s.status, 0) << s.output;
  auto signed_part =
      signed_entity(*entity, SignatureFormat::smime, read_test_file(path("sig.der")), "sha-256");
  ASSERT_TRUE(signed_part.ok());
  std::string message = assemble_message(*message_headers(d, fields()), *signed_part);
  write_test_file(path("m.eml"), message);
  auto v = run_command("openssl cms -verify -in " + path("m.eml") + " -inform SMIME -CAfile " +
                       smime.cert() + " -purpose any -out " + path("content"));
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_NE(v.output.find("Verification successful"), std::string::npos) << v.output;
  EXPECT_EQ(read_test_file(path("content")), *entity);
  EXPECT_EQ(python_check(message, expected_for(d,
                                               {"content-type", "date", "from", "message-id",
                                                "mime-version", "subject", "to"},
                                               "application/pkcs7-signature")),
            "");
}

TEST_F(ComposeCrypto, PgpMimeEncryptedDecryptsWithGpg) {
  test::GpgFixture gpg("bob@example.net");
  Draft d = rich_draft();
  auto entity = content_entity(d);
  ASSERT_TRUE(entity.ok());
  write_test_file(path("entity"), *entity);
  auto e = run_command(gpg.gpg() + " --armor --encrypt -r bob@example.net -o " + path("c.asc") +
                       " " + path("entity"));
  ASSERT_EQ(e.status, 0) << e.output;
  auto enc = pgp_encrypted_entity(read_test_file(path("c.asc")));
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  std::string message = assemble_message(*message_headers(d, fields()), *enc);
  write_test_file(path("m.eml"), message);
  util::JsonWriter w;
  w.begin_object().field("content_type", "multipart/encrypted").end_object();
  EXPECT_EQ(python_check(message, w.str()), "");
  auto ctl = run_command("python3 " + fixture_path("mime_part.py") + " " + path("m.eml") + " 1 " +
                         path("version"));
  EXPECT_EQ(ctl.output, "application/pgp-encrypted\n");
  EXPECT_EQ(read_test_file(path("version")), "Version: 1\n");
  auto p = run_command("python3 " + fixture_path("mime_part.py") + " " + path("m.eml") + " 2 " +
                       path("payload"));
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_EQ(p.output, "application/octet-stream\n");
  auto dec = run_command(gpg.gpg() + " -o " + path("plain") + " -d " + path("payload"));
  ASSERT_EQ(dec.status, 0) << dec.output;
  EXPECT_EQ(read_test_file(path("plain")), *entity);
  EXPECT_FALSE(pgp_encrypted_entity("not armored").ok());
}

TEST_F(ComposeCrypto, SmimeEnvelopedDecryptsWithOpensslCms) {
  test::SmimeFixture smime("bob@example.net");
  Draft d = rich_draft();
  auto entity = content_entity(d);
  ASSERT_TRUE(entity.ok());
  write_test_file(path("entity"), *entity);
  for (auto [cipher, kind] : {std::pair{"-aes-256-gcm", SmimeEnvelope::auth_enveloped},
                              std::pair{"-aes256", SmimeEnvelope::enveloped}}) {
    auto e =
        run_command("openssl cms -encrypt -binary " + std::string(cipher) + " -in " +
                    path("entity") + " -outform DER -out " + path("c.der") + " " + smime.cert());
    ASSERT_EQ(e.status, 0) << e.output;
    std::string message = assemble_message(
        *message_headers(d, fields()), smime_encrypted_entity(read_test_file(path("c.der")), kind));
    write_test_file(path("m.eml"), message);
    auto dec =
        run_command("openssl cms -decrypt -binary -in " + path("m.eml") + " -inform SMIME -recip " +
                    smime.cert() + " -inkey " + smime.key() + " -out " + path("plain"));
    ASSERT_EQ(dec.status, 0) << cipher << ": " << dec.output;
    EXPECT_EQ(read_test_file(path("plain")), *entity) << cipher;
    util::JsonWriter w;
    w.begin_object().field("content_type", "application/pkcs7-mime").end_object();
    EXPECT_EQ(python_check(message, w.str()), "");
  }
}

TEST(ComposeStructure, RefusesBadMicalgAndSignatures) {
  EXPECT_FALSE(signed_entity("x", SignatureFormat::openpgp, "-----BEGIN PGP SIGNATURE-----\n",
                             "pgp-sha256\r\nX: y")
                   .ok());
  EXPECT_FALSE(signed_entity("x", SignatureFormat::openpgp, "garbage", "pgp-sha256").ok());
  EXPECT_FALSE(signed_entity("x", SignatureFormat::smime, "", "sha-256").ok());
}

}  // namespace
}  // namespace wmk::mail
