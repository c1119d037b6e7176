// MIME parsing against messages built by Python's `email` package
// (tests/fixtures/make_mail_fixtures.py): the expected values below are that
// script's inputs.

#include "core/mail/mime.h"

#include <gtest/gtest.h>

#include <string>

#include "core/mail/magic.h"
#include "core/util/fs.h"

namespace wmk::mail {
namespace {

constexpr std::int64_t kFixtureDate = 1709292896;  // Fri, 01 Mar 2024 12:34:56 +0100
constexpr const char* kArmor =
    "-----BEGIN PGP MESSAGE-----\n"
    "\n"
    "hQEMA0fakeFAKEfakeAQf/not-real-ciphertext-only-for-structure-tests\n"
    "=AbCd\n"
    "-----END PGP MESSAGE-----\n";

std::string fixture(const std::string& name) {
  auto data = util::read_file(std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/mail/" + name);
  if (!data)
    throw std::runtime_error("missing fixture " + name + ": " + data.error().message);
  return std::move(data).value();
}

ParsedMessage parsed(const std::string& name) {
  auto m = parse_message(fixture(name));
  if (!m)
    throw std::runtime_error(name + " did not parse: " + m.error().message);
  return std::move(m).value();
}

const Part* part(const ParsedMessage& m, const std::string& id) {
  for (const auto& p : m.parts) {
    if (p.id == id)
      return &p;
  }
  return nullptr;
}

bool has_line_break(const std::string& s) {
  return s.find('\r') != std::string::npos || s.find('\n') != std::string::npos;
}

TEST(Mime, DecodesRfc2047HeadersAndAddresses) {
  auto m = parsed("mixed_attachments.eml");
  EXPECT_EQ(m.subject, "Grüße aus Köln – Anhänge ✓");  // UTF-8 B encoded-word
  EXPECT_EQ(m.from.name, "Jörg Müller");
  EXPECT_EQ(m.from.address, "joerg@example.org");
  EXPECT_EQ(m.from.display(), "Jörg Müller <joerg@example.org>");
  ASSERT_EQ(m.to.size(), 2u);
  EXPECT_EQ(m.to[0].name, "Anna Schmidt");
  EXPECT_EQ(m.to[0].address, "anna@example.net");
  EXPECT_EQ(m.to[1].name, "");
  EXPECT_EQ(m.to[1].address, "bob@example.com");
  ASSERT_EQ(m.cc.size(), 1u);
  EXPECT_EQ(m.cc[0].name, "François");  // ISO-8859-1 Q encoded-word
  EXPECT_EQ(m.cc[0].address, "francois@example.fr");
  ASSERT_TRUE(m.date.has_value());
  EXPECT_EQ(*m.date, kFixtureDate);
  EXPECT_EQ(m.message_id, "mixed-1@example.org");
  EXPECT_EQ(m.protection, Protection::none);
}

TEST(Mime, FlattensLeafPartsWithStableIds) {
  auto m = parsed("mixed_attachments.eml");
  ASSERT_EQ(m.parts.size(), 8u);
  const char* ids[] = {"1.1", "1.2", "2", "3", "4", "5", "6", "7"};
  for (std::size_t i = 0; i < m.parts.size(); ++i)
    EXPECT_EQ(m.parts[i].id, ids[i]);

  EXPECT_EQ(part(m, "1.1")->content_type, "text/plain");
  EXPECT_EQ(part(m, "1.1")->charset, "utf-8");
  EXPECT_FALSE(part(m, "1.1")->is_attachment);
  EXPECT_EQ(part(m, "1.2")->content_type, "text/html");
  EXPECT_FALSE(part(m, "1.2")->is_attachment);

  const Part* png = part(m, "2");
  EXPECT_EQ(png->content_type, "image/png");
  EXPECT_EQ(png->disposition, "attachment");
  EXPECT_EQ(png->filename, "pixel.png");
  EXPECT_EQ(png->size, 69u);  // decoded, not the base64 length
  EXPECT_TRUE(png->is_attachment);

  EXPECT_EQ(part(m, "3")->content_type, "application/pdf");
  EXPECT_EQ(part(m, "3")->filename, "report.pdf");
  EXPECT_EQ(part(m, "3")->size, 142u);

  // "../../etc/passwd" keeps its base name only.
  EXPECT_EQ(part(m, "4")->filename, "passwd");
  EXPECT_TRUE(part(m, "4")->is_attachment);
  EXPECT_EQ(part(m, "4")->size, 32u);

  EXPECT_EQ(part(m, "5")->content_type, "text/plain");      // declared, and false
  EXPECT_EQ(part(m, "6")->filename, "Übersicht.txt");       // RFC 2231
  EXPECT_EQ(part(m, "7")->filename, "Bericht für Q1.pdf");  // RFC 2047 in a parameter
  EXPECT_TRUE(m.has_attachments());
}

TEST(Mime, PrefersTextPlainBodyQuotedPrintable) {
  auto m = parsed("mixed_attachments.eml");
  EXPECT_EQ(m.text, "Hallo Anna,\n\nanbei die Unterlagen. Grüße, Jörg\n");
  EXPECT_EQ(m.text_format, BodyFormat::plain);
  EXPECT_EQ(m.text_part_id, "1.1");
}

TEST(Mime, ConvertsIso88591QuotedPrintable) {
  auto m = parsed("latin1_qp.eml");
  EXPECT_EQ(m.subject, "Café crème brûlée");
  EXPECT_EQ(m.text, "Un café crème, s'il vous plaît.\nÀ bientôt!\n");
  EXPECT_EQ(m.parts.size(), 1u);
  EXPECT_EQ(m.parts[0].id, "1");
  EXPECT_FALSE(m.has_attachments());
}

TEST(Mime, ConvertsWindows1252EightBit) {
  auto m = parsed("windows1252_8bit.eml");
  EXPECT_EQ(m.subject, "Preis € 5");  // UTF-8 Q encoded-word
  EXPECT_EQ(m.text, "“Quoted” – €10 … naïve\n");
}

TEST(Mime, ConvertsKoi8rBase64) {
  auto m = parsed("koi8r_base64.eml");
  EXPECT_EQ(m.subject, "Привет из Москвы");
  EXPECT_EQ(m.text, "Привет, мир! Это тест.\n");
}

TEST(Mime, AlternativePrefersPlain) {
  auto m = parsed("alternative.eml");
  EXPECT_EQ(m.text, "Plain version\n");
  EXPECT_EQ(m.text_format, BodyFormat::plain);
  EXPECT_EQ(m.text_part_id, "1");
  ASSERT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(m.parts[1].id, "2");
  EXPECT_EQ(m.parts[1].content_type, "text/html");
  EXPECT_FALSE(m.has_attachments());
}

TEST(Mime, HtmlOnlyIsFlaggedNotConverted) {
  auto m = parsed("html_only.eml");
  EXPECT_EQ(m.text_format, BodyFormat::html);
  EXPECT_EQ(m.text, "<html><body><p>Only HTML &amp; nothing else</p></body></html>\n");
}

TEST(Mime, ForwardedMessageIsOneAttachment) {
  auto raw = fixture("forwarded.eml");
  auto m = parse_message(raw);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->parts.size(), 2u);
  EXPECT_EQ(m->parts[1].content_type, "message/rfc822");
  EXPECT_TRUE(m->parts[1].is_attachment);
  EXPECT_EQ(m->text, "See the forwarded message.\n");
  auto inner = part_content(raw, "2");
  ASSERT_TRUE(inner.ok()) << inner.error().message;
  EXPECT_NE(inner->bytes.find("Subject: inner"), std::string::npos);
  EXPECT_NE(inner->bytes.find("The inner body"), std::string::npos);
}

TEST(Mime, RefusesInputWithoutHeaderBlock) {
  for (const char* name : {"malformed.eml", "binary_junk.eml"}) {
    auto m = parse_message(fixture(name));
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_EQ(m.code(), Errc::corrupt) << name;
    EXPECT_NE(m.error().message.find("not a mail message"), std::string::npos);
  }
  EXPECT_EQ(parse_message("").code(), Errc::corrupt);
  EXPECT_EQ(part_content(fixture("malformed.eml"), "1").code(), Errc::corrupt);
}

TEST(Mime, DetectsProtectionFromStructure) {
  struct Case {
    const char* file;
    Protection expected;
  } cases[] = {
      {"pgp_mime.eml", Protection::pgp_mime},
      {"pgp_inline.eml", Protection::pgp_inline},
      {"smime_enveloped.eml", Protection::smime_enveloped},
      {"smime_auth_enveloped.eml", Protection::smime_auth_enveloped},
      {"smime_signed.eml", Protection::smime_signed},
      {"pgp_signed.eml", Protection::pgp_signed},
      {"alternative.eml", Protection::none},
      {"mixed_attachments.eml", Protection::none},
  };
  for (const auto& c : cases) {
    auto full = parse_message(fixture(c.file));
    ASSERT_TRUE(full.ok()) << c.file;
    EXPECT_EQ(full->protection, c.expected) << c.file;
    auto structure = parse_message(fixture(c.file), ParseDepth::structure);
    ASSERT_TRUE(structure.ok()) << c.file;
    EXPECT_EQ(structure->protection, c.expected) << c.file;
    EXPECT_TRUE(structure->text.empty());
  }
  EXPECT_TRUE(is_encrypted(Protection::smime_auth_enveloped));
  EXPECT_FALSE(is_encrypted(Protection::pgp_signed));
  EXPECT_TRUE(is_signed(Protection::pgp_signed));
}

TEST(Mime, CryptoStructurePartsAreNotAttachments) {
  auto m = parsed("pgp_mime.eml");
  ASSERT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(m.parts[0].role, PartRole::crypto_control);
  EXPECT_EQ(m.parts[1].role, PartRole::encrypted_payload);
  EXPECT_FALSE(m.has_attachments());
  EXPECT_TRUE(m.text.empty());
  EXPECT_EQ(m.text_format, BodyFormat::none);

  auto s = parsed("smime_signed.eml");
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts[1].role, PartRole::signature);
  EXPECT_FALSE(s.has_attachments());
  EXPECT_EQ(s.text, "Signed text\n");

  auto e = parsed("smime_enveloped.eml");
  ASSERT_EQ(e.parts.size(), 1u);
  EXPECT_EQ(e.parts[0].role, PartRole::encrypted_payload);
  EXPECT_FALSE(e.has_attachments());
}

TEST(Mime, EncryptedPayloadPgpMime) {
  auto p = encrypted_payload(fixture("pgp_mime.eml"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->protection, Protection::pgp_mime);
  EXPECT_EQ(p->part_id, "2");
  EXPECT_EQ(p->bytes, kArmor);
}

TEST(Mime, EncryptedPayloadInlinePgpIsTheArmoredBlockOnly) {
  auto p = encrypted_payload(fixture("pgp_inline.eml"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->protection, Protection::pgp_inline);
  EXPECT_EQ(p->bytes, kArmor);
}

TEST(Mime, EncryptedPayloadSmimeIsDer) {
  const std::string der = [] {
    const char* hex =
        "3080060b2a864886f70d0109100117a08066616b652d656e76656c6f7065642d6461746100000000";
    std::string out;
    for (std::size_t i = 0; hex[i] != '\0'; i += 2)
      out += static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16));
    return out;
  }();
  for (const char* name : {"smime_enveloped.eml", "smime_auth_enveloped.eml"}) {
    auto p = encrypted_payload(fixture(name));
    ASSERT_TRUE(p.ok()) << name << ": " << p.error().message;
    EXPECT_EQ(p->bytes, der) << name;
    EXPECT_EQ(p->part_id, "1");
  }
}

TEST(Mime, EncryptedPayloadRefusesPlainAndSignedMessages) {
  EXPECT_EQ(encrypted_payload(fixture("alternative.eml")).code(), Errc::not_found);
  EXPECT_EQ(encrypted_payload(fixture("pgp_signed.eml")).code(), Errc::not_found);
  EXPECT_EQ(encrypted_payload(fixture("malformed.eml")).code(), Errc::corrupt);
}

TEST(Mime, PartContentSniffsInsteadOfTrustingTheSender) {
  auto raw = fixture("mixed_attachments.eml");
  auto png = part_content(raw, "2");
  ASSERT_TRUE(png.ok()) << png.error().message;
  EXPECT_EQ(png->sniffed_type, "image/png");
  EXPECT_EQ(png->bytes.size(), 69u);
  EXPECT_EQ(png->bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  // Part 5 declares text/plain but carries the PNG bytes.
  auto liar = part_content(raw, "5");
  ASSERT_TRUE(liar.ok());
  EXPECT_EQ(liar->declared_type, "text/plain");
  EXPECT_EQ(liar->sniffed_type, "image/png");
  EXPECT_EQ(liar->bytes, png->bytes);
  EXPECT_EQ(liar->filename, "notes.txt");

  auto pdf = part_content(raw, "3");
  ASSERT_TRUE(pdf.ok());
  EXPECT_EQ(pdf->sniffed_type, "application/pdf");

  auto passwd = part_content(raw, "4");
  ASSERT_TRUE(passwd.ok());
  EXPECT_EQ(passwd->filename, "passwd");
  EXPECT_EQ(passwd->bytes, "root:x:0:0:root:/root:/bin/bash\n");

  auto body = part_content(raw, "1.1");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->filename, "part-1.1");  // no name given: a safe made-up one
}

TEST(Mime, PartContentRefusesBadIds) {
  auto raw = fixture("mixed_attachments.eml");
  EXPECT_EQ(part_content(raw, "9").code(), Errc::not_found);
  EXPECT_EQ(part_content(raw, "1").code(), Errc::not_found);  // a multipart, not a leaf
  for (const char* bad : {"", "../2", "1.", ".1", "1..2", "a", "2/3"})
    EXPECT_EQ(part_content(raw, bad).code(), Errc::invalid_argument) << bad;
}

TEST(Mime, HeaderInjectionIsNeutralised) {
  // Encoded-words may decode to CR/LF; shown as-is they could forge headers or lines.
  std::string raw =
      "From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40evil.example?= <eve@example.org>\n"
      "Subject: =?utf-8?q?Hello=0D=0ABcc=3A_victim=40example.org?=\n"
      "Message-ID: <a\tb@example.org>\n"
      "\n"
      "body\n";
  auto m = parse_message(raw);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(has_line_break(m->subject));
  EXPECT_FALSE(has_line_break(m->from.name));
  EXPECT_EQ(m->subject, "Hello Bcc: victim@example.org");
  EXPECT_EQ(m->from.address, "eve@example.org");
  EXPECT_EQ(m->message_id.find('\t'), std::string::npos);
}

TEST(Mime, MissingDateIsNullopt) {
  auto m = parse_message("Subject: no date\n\nbody\n");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->date.has_value());
  EXPECT_EQ(m->text, "body\n");
  EXPECT_EQ(m->text_format, BodyFormat::plain);  // no Content-Type: text/plain
}

TEST(Mime, UndeclaredEightBitTextBecomesValidUtf8) {
  // Latin-1 bytes without a charset: read as windows-1252, not passed through.
  auto m = parse_message("Subject: x\n\ncaf\xe9\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->text, "café\n");
  auto crlf = parse_message("Subject: x\r\n\r\nline one\r\nline two\r\n");
  ASSERT_TRUE(crlf.ok());
  EXPECT_EQ(crlf->text, "line one\nline two\n");
}

TEST(Mime, SafeFilename) {
  EXPECT_EQ(safe_filename("../../etc/passwd"), "passwd");
  EXPECT_EQ(safe_filename("..\\..\\windows\\win.ini"), "win.ini");
  EXPECT_EQ(safe_filename("/absolute/path.txt"), "path.txt");
  EXPECT_EQ(safe_filename(".."), "");
  EXPECT_EQ(safe_filename("."), "");
  EXPECT_EQ(safe_filename(".bashrc"), "bashrc");
  EXPECT_EQ(safe_filename("  name.txt  "), "name.txt");
  EXPECT_EQ(safe_filename("a\r\nb\x01.txt"), "ab.txt");
  // U+202E RIGHT-TO-LEFT OVERRIDE would show "evil\u202Etxt.exe" as "evilexe.txt".
  EXPECT_EQ(safe_filename("evil\u202Etxt.exe"), "eviltxt.exe");
  EXPECT_EQ(safe_filename("caf\xe9.txt"), "caf\uFFFD.txt");  // invalid UTF-8 replaced
  std::string long_name(150, 'a');
  for (int i = 0; i < 50; ++i)
    long_name += "é";
  std::string cut = safe_filename(long_name);
  EXPECT_LE(cut.size(), 200u);
  EXPECT_EQ(clean_header_text(cut), cut);  // still valid UTF-8: no split character
  EXPECT_GT(cut.size(), 190u);
}

TEST(Mime, CleanHeaderText) {
  EXPECT_EQ(clean_header_text("a\r\nb"), "a b");
  EXPECT_EQ(clean_header_text("  lead\tand  trail  "), "lead and trail");
  EXPECT_EQ(clean_header_text("x\u2028y\u0085z"), "x y z");
  EXPECT_EQ(clean_header_text("\xff"), "\uFFFD");
}

TEST(Magic, SniffsTypesFromBytes) {
  auto png = part_content(fixture("mixed_attachments.eml"), "2");
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(sniff_mime_type(png->bytes), "image/png");
  EXPECT_EQ(sniff_mime_type("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
            "application/pdf");
  EXPECT_EQ(sniff_mime_type("just some words\nand another line\n"), "text/plain");
  EXPECT_EQ(sniff_mime_type(""), "application/x-empty");
  auto magic = Magic::open();
  ASSERT_TRUE(magic.ok()) << magic.error().message;
  EXPECT_EQ(magic->mime_type(png->bytes), "image/png");
}

}  // namespace
}  // namespace wmk::mail
