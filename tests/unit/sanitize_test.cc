// The HTML sanitizer and the hostile-mail corpus (tests/fixtures/hostile/, written by
// make_hostile_fixtures.py with Python's `email` package).
//
// Output is judged the way a browser would see it: parsed again with gumbo and walked
// as a tree, never by searching the output text for what the code under test claims
// to have removed. The allow-list below is the test's own copy of the documented
// policy (docs/security.md), not the implementation's.

#include "core/mail/sanitize.h"

#include <glib.h>
#include <gtest/gtest.h>
#include <gumbo.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/mail/mime.h"
#include "core/util/fs.h"

namespace wmk::mail {
namespace {

const std::string kHostileDir = std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/hostile/";

std::string fixture(const std::string& name) {
  auto data = util::read_file(kHostileDir + name);
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

std::vector<std::string> all_fixtures() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kHostileDir)) {
    if (entry.path().extension() == ".eml")
      names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ------------------------------------------------------------- the re-parsed tree

struct Link {
  std::string href;
  std::string rel;
  std::string target;
  std::string text;
};

// What a browser builds from the sanitizer's output, reduced to what the policy is
// about.
struct Tree {
  std::vector<std::string> violations;  // empty when the output obeys the policy
  std::vector<Link> links;
  std::set<std::string> elements;
  std::string text;  // all text nodes, concatenated
  int max_depth = 0;
};

const std::set<std::string> kAllowedElements = {
    // added by the parser around any fragment
    "html", "head", "body",
    // the documented allow-list
    "p", "br", "div", "span", "b", "i", "u", "s", "strike", "em", "strong", "small", "big", "sub",
    "sup", "del", "ins", "mark", "q", "cite", "abbr", "kbd", "samp", "var", "tt", "code", "pre",
    "blockquote", "address", "center", "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "wbr", "table", "caption", "thead", "tbody", "tfoot", "tr", "td", "th", "a",
    "font"};

const std::set<std::string> kForbiddenElements = {
    "script",   "style",  "iframe",   "frame", "frameset", "form",    "input",   "button",
    "select",   "option", "textarea", "svg",   "math",     "object",  "embed",   "applet",
    "meta",     "link",   "base",     "img",   "video",    "audio",   "source",  "template",
    "noscript", "title",  "canvas",   "param", "image",    "picture", "isindex", "xmp"};

bool has_scheme(std::string_view url, std::string_view scheme) {
  std::string lower(url.substr(0, scheme.size()));
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  return lower == scheme;
}

std::string lower_copy(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

void collect_text(const GumboNode* node, std::string& out) {
  if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_WHITESPACE) {
    out += node->v.text.text;
    return;
  }
  if (node->type != GUMBO_NODE_ELEMENT)
    return;
  for (unsigned i = 0; i < node->v.element.children.length; ++i)
    collect_text(static_cast<const GumboNode*>(node->v.element.children.data[i]), out);
}

void inspect(const GumboNode* node, int depth, Tree& tree) {
  tree.max_depth = std::max(tree.max_depth, depth);
  switch (node->type) {
    case GUMBO_NODE_TEXT:
    case GUMBO_NODE_WHITESPACE:
      tree.text += node->v.text.text;
      return;
    case GUMBO_NODE_COMMENT:
      tree.violations.push_back("comment");
      return;
    case GUMBO_NODE_CDATA:
      tree.violations.push_back("CDATA");
      return;
    case GUMBO_NODE_TEMPLATE:
      tree.violations.push_back("template");
      return;
    case GUMBO_NODE_DOCUMENT:
    case GUMBO_NODE_ELEMENT:
      break;
  }
  const GumboVector* children = &node->v.document.children;
  if (node->type == GUMBO_NODE_ELEMENT) {
    const GumboElement& e = node->v.element;
    children = &e.children;
    std::string name = e.tag == GUMBO_TAG_UNKNOWN ? "(unknown)" : gumbo_normalized_tagname(e.tag);
    tree.elements.insert(name);
    if (e.tag_namespace != GUMBO_NAMESPACE_HTML)
      tree.violations.push_back("foreign element " + name);
    if (kForbiddenElements.count(name) != 0)
      tree.violations.push_back("forbidden element " + name);
    if (kAllowedElements.count(name) == 0)
      tree.violations.push_back("element outside the allow-list " + name);
    Link link;
    for (unsigned i = 0; i < e.attributes.length; ++i) {
      const auto* a = static_cast<const GumboAttribute*>(e.attributes.data[i]);
      std::string attr = a->name;
      std::string value = a->value;
      std::string where = name + " " + attr + "=\"" + value + "\"";
      if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
        tree.violations.push_back("namespaced attribute " + where);
      if (attr.rfind("on", 0) == 0)
        tree.violations.push_back("event handler " + where);
      for (const char* bad : {"style", "class", "id", "src", "srcset", "srcdoc", "background",
                              "formaction", "action", "poster", "dynsrc", "lowsrc", "data",
                              "xlink:href", "codebase", "cite", "longdesc", "usemap", "ping"}) {
        if (attr == bad)
          tree.violations.push_back("forbidden attribute " + where);
      }
      if (attr == "href") {
        if (e.tag != GUMBO_TAG_A)
          tree.violations.push_back("href outside a " + where);
        if (!has_scheme(value, "https://") && !has_scheme(value, "http://") &&
            !has_scheme(value, "mailto:"))
          tree.violations.push_back("href scheme " + where);
        link.href = value;
      } else if (attr != "title") {  // a tooltip's text is shown, never fetched
        std::string v = lower_copy(value);
        if (v.find("://") != std::string::npos || v.rfind("//", 0) == 0 ||
            v.find("javascript:") != std::string::npos || v.find("data:") != std::string::npos)
          tree.violations.push_back("URL in attribute " + where);
      }
      if (attr == "rel")
        link.rel = value;
      if (attr == "target")
        link.target = value;
    }
    if (e.tag == GUMBO_TAG_A) {
      collect_text(node, link.text);
      tree.links.push_back(link);
    }
  }
  for (unsigned i = 0; i < children->length; ++i)
    inspect(static_cast<const GumboNode*>(children->data[i]), depth + 1, tree);
}

// Parses html as a browser would parse a srcdoc document and inspects the tree.
Tree reparse(const std::string& html) {
  GumboOutput* out = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
  Tree tree;
  if (out->document->v.document.has_doctype)
    tree.violations.push_back("doctype");
  inspect(out->document, 0, tree);
  gumbo_destroy_output(&kGumboDefaultOptions, out);
  return tree;
}

bool valid_utf8(const std::string& s) {
  return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr);
}

bool has_control(const std::string& s, std::string_view allowed) {
  return std::any_of(s.begin(), s.end(), [&](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 || u == 0x7f) && allowed.find(c) == std::string_view::npos;
  });
}

// Sanitizes html and checks the policy on the output; returns the re-parsed tree.
Tree sanitized_tree(const std::string& html, const std::string& what) {
  std::string out = sanitize_html(html);
  Tree tree = reparse(out);
  for (const auto& v : tree.violations)
    ADD_FAILURE() << what << ": " << v << "\n  output: " << out.substr(0, 2000);
  EXPECT_TRUE(valid_utf8(out)) << what;
  EXPECT_FALSE(has_control(out, "\t\n")) << what;
  EXPECT_TRUE(is_sanitized_html(out)) << what;
  // Stable under re-parsing: what the browser builds from the output is what was
  // meant (the mutation-XSS property).
  EXPECT_EQ(sanitize_html(out), out) << what;
  return tree;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The decoded bytes of every text/html leaf of a fixture. An HTML text body is the
// first of them.
std::vector<std::string> html_bodies(const std::string& name) {
  std::string raw = fixture(name);
  ParsedMessage m = parsed(name);
  std::vector<std::string> bodies;
  for (const Part& p : m.parts) {
    if (p.content_type != "text/html")
      continue;
    auto content = part_content(raw, p.id);
    EXPECT_TRUE(content.ok()) << name << " part " << p.id;
    if (content)
      bodies.push_back(content->bytes);
  }
  return bodies;
}

Tree fixture_tree(const std::string& name) {
  auto bodies = html_bodies(name);
  EXPECT_EQ(bodies.size(), 1u) << name;
  return bodies.empty() ? Tree{} : sanitized_tree(bodies.front(), name);
}

// ------------------------------------------------------------- the whole corpus

TEST(HostileCorpus, HasEveryFixtureTheReadmeNames) {
  auto readme = util::read_file(kHostileDir + "README.md");
  ASSERT_TRUE(readme.ok());
  auto names = all_fixtures();
  EXPECT_GE(names.size(), 26u);
  for (const auto& name : names)
    EXPECT_TRUE(contains(*readme, "`" + name + "`")) << name << " lacks a README line";
}

TEST(HostileCorpus, EveryPartSanitizesToThePolicy) {
  for (const auto& name : all_fixtures()) {
    std::string raw = fixture(name);
    ParsedMessage m = parsed(name);
    if (m.text_format == BodyFormat::html) {
      sanitized_tree(m.text, name + " body");
      EXPECT_EQ(m.text, html_bodies(name).front()) << name;
    }
    // Every leaf, whatever it claims to be: an attacker chooses the Content-Type.
    for (const Part& p : m.parts) {
      auto content = part_content(raw, p.id);
      ASSERT_TRUE(content.ok()) << name << " part " << p.id;
      sanitized_tree(content->bytes, name + " part " + p.id);
      std::string text = html_to_text(content->bytes);
      EXPECT_TRUE(valid_utf8(text)) << name;
      EXPECT_FALSE(has_control(text, "\t\n")) << name;
    }
  }
}

TEST(HostileCorpus, DecodedHeadersHoldNoLineBreakOrControl) {
  for (const auto& name : all_fixtures()) {
    ParsedMessage m = parsed(name);
    std::vector<std::string> texts = {m.subject, m.from.name, m.from.address, m.message_id};
    for (const auto& list : {m.to, m.cc}) {
      for (const Address& a : list) {
        texts.push_back(a.name);
        texts.push_back(a.address);
      }
    }
    for (const auto& t : texts) {
      EXPECT_FALSE(has_control(t, "")) << name << ": " << t;
      EXPECT_TRUE(valid_utf8(t)) << name;
      EXPECT_FALSE(contains(t, "\u2028")) << name << ": " << t;
    }
  }
}

TEST(HostileCorpus, FilenamesHaveNoPathOrControls) {
  for (const auto& name : all_fixtures()) {
    for (const Part& p : parsed(name).parts) {
      const std::string& f = p.filename;
      EXPECT_EQ(f.find('/'), std::string::npos) << name << ": " << f;
      EXPECT_EQ(f.find('\\'), std::string::npos) << name << ": " << f;
      EXPECT_FALSE(has_control(f, "")) << name << ": " << f;
      EXPECT_FALSE(!f.empty() && f.front() == '.') << name << ": " << f;
      for (const char* bidi : {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
                               "\u2068", "\u2069", "\u200e", "\u200f"})
        EXPECT_FALSE(contains(f, bidi)) << name << ": " << f;
    }
  }
}

// ------------------------------------------------------------- fixture by fixture

TEST(HostileCorpus, ScriptsGoTextStays) {
  for (const char* name : {"script_plain.eml", "script_mixed_case.eml"}) {
    Tree t = fixture_tree(name);
    EXPECT_TRUE(contains(t.text, "After.") || contains(t.text, "Done.")) << name;
    EXPECT_FALSE(contains(t.text, "alert(")) << name << ": script text leaked: " << t.text;
  }
  Tree plain = fixture_tree("script_plain.eml");
  EXPECT_TRUE(contains(plain.text, "Hello world.")) << plain.text;
  // Split tags and bogus comments are text or unknown elements to a browser too: the
  // "alert(...)" left over is inert text, which is exactly what it must be.
  Tree split = fixture_tree("script_split_by_comments.eml");
  EXPECT_TRUE(contains(split.text, "ipt>alert(1)")) << split.text;
  EXPECT_TRUE(contains(split.text, "[image]"));
  EXPECT_TRUE(contains(split.text, "After."));
}

TEST(HostileCorpus, ForeignContentIsDropped) {
  Tree t = fixture_tree("script_in_svg.eml");
  EXPECT_TRUE(contains(t.text, "A chart:"));
  EXPECT_TRUE(contains(t.text, "After."));
  EXPECT_FALSE(contains(t.text, "click"));  // the SVG text went with the SVG
  EXPECT_TRUE(t.links.empty());
}

TEST(HostileCorpus, EventHandlersGoElementsStay) {
  Tree t = fixture_tree("event_handlers.eml");
  EXPECT_TRUE(contains(t.text, "Hover me."));
  EXPECT_TRUE(contains(t.text, "Click me."));
  EXPECT_TRUE(contains(t.text, "cell"));
  EXPECT_TRUE(contains(t.text, "[image]"));
  ASSERT_EQ(t.links.size(), 1u);
  EXPECT_EQ(t.links[0].href, "https://example.org/");
  EXPECT_TRUE(t.elements.count("table"));
}

TEST(HostileCorpus, OnlyHttpHttpsAndMailtoLinksKeepTheirTarget) {
  Tree t = fixture_tree("javascript_urls.eml");
  ASSERT_EQ(t.links.size(), 2u);
  EXPECT_EQ(t.links[0].href, "https://example.org/ok?a=1&b=2");
  EXPECT_EQ(t.links[0].text, "a fine link");
  EXPECT_EQ(t.links[0].rel, "noopener noreferrer");
  EXPECT_EQ(t.links[0].target, "_blank");
  EXPECT_EQ(t.links[1].href, "mailto:alice@example.org");
  // The refused links' text is still there, as plain text.
  for (const char* label : {"plain", "mixed case", "decimal entity", "hex entity", "padded entity",
                            "leading spaces", "tab inside", "newline inside", "named colon",
                            "vbscript", "relative to the webmail", "scheme-relative"})
    EXPECT_TRUE(contains(t.text, label)) << label;
}

TEST(HostileCorpus, DataUrlsAreRefused) {
  Tree t = fixture_tree("data_urls.eml");
  EXPECT_TRUE(t.links.empty());
  EXPECT_TRUE(contains(t.text, "base64 html"));
  EXPECT_TRUE(contains(t.text, "After."));
}

TEST(HostileCorpus, NoCssSurvives) {
  Tree t = fixture_tree("css_exfiltration.eml");
  EXPECT_TRUE(contains(t.text, "Inline style."));
  EXPECT_TRUE(contains(t.text, "IE games."));
  EXPECT_FALSE(contains(t.text, "background"));  // no style sheet leaked as text
  EXPECT_FALSE(contains(t.text, "evil.example"));
}

TEST(HostileCorpus, ImagesBecomePlaceholders) {
  Tree t = fixture_tree("remote_images.eml");
  EXPECT_FALSE(contains(t.text, "evil.example"));
  EXPECT_TRUE(contains(t.text, "[image: tracking]"));
  EXPECT_TRUE(contains(t.text, "[image: Company logo]"));  // cid: is not served either
  EXPECT_TRUE(contains(t.text, "cell"));
  EXPECT_TRUE(contains(t.text, "After."));
}

TEST(HostileCorpus, MetaBaseFormsFramesAreDropped) {
  Tree meta = fixture_tree("meta_refresh.eml");
  EXPECT_TRUE(contains(meta.text, "Redirecting..."));
  Tree base = fixture_tree("base_href.eml");
  EXPECT_TRUE(base.links.empty());
  EXPECT_TRUE(contains(base.text, "relative link that the base would capture"));
  Tree form = fixture_tree("form_action.eml");
  EXPECT_TRUE(contains(form.text, "Please log in again"));
  EXPECT_FALSE(contains(form.text, "Log in"));  // the button went with the form
  EXPECT_TRUE(contains(form.text, "After."));
  Tree frames = fixture_tree("iframe.eml");
  EXPECT_TRUE(contains(frames.text, "After."));
}

TEST(HostileCorpus, MutationXssShapesStayInert) {
  Tree t = fixture_tree("mxss.eml");
  EXPECT_TRUE(contains(t.text, "After."));
  EXPECT_TRUE(contains(t.text, "escaped attribute"));
  // xmp and listing are raw-text or text containers: their markup-looking content
  // comes out as text, never as an element.
  EXPECT_TRUE(contains(t.text, "<img src=x onerror=alert(3)>"));
  EXPECT_TRUE(contains(t.text, "<img src=x onerror=alert(4)>"));
  ASSERT_EQ(t.links.size(), 1u);
  EXPECT_EQ(t.links[0].href, "https://example.org/");
}

TEST(HostileCorpus, ParserCrashLeavesTheSourceAsText) {
  Tree t = fixture_tree("parser_crash.eml");
  EXPECT_TRUE(t.elements.count("pre"));
  EXPECT_TRUE(contains(t.text, "<table><svg><desc>"));
  EXPECT_TRUE(contains(t.text, "<p>After.</p>"));
}

TEST(HostileCorpus, ForgedSignatureBoxIsOnlyText) {
  ParsedMessage m = parsed("forged_signature_html.eml");
  EXPECT_EQ(m.protection, Protection::none);
  Tree t = fixture_tree("forged_signature_html.eml");
  EXPECT_TRUE(contains(t.text, "Good signature from CEO <ceo@bank.example>"));
  EXPECT_TRUE(contains(t.text, "Please wire the money today."));
}

TEST(HostileCorpus, SvgAndHtmlAttachmentsStayAttachments) {
  ParsedMessage svg = parsed("svg_attachment.eml");
  EXPECT_EQ(svg.text_format, BodyFormat::plain);
  ASSERT_EQ(svg.parts.size(), 2u);
  EXPECT_TRUE(svg.parts[1].is_attachment);
  EXPECT_EQ(svg.parts[1].filename, "chart.svg");

  ParsedMessage html = parsed("html_attachment.eml");
  EXPECT_EQ(html.text_format, BodyFormat::plain);
  EXPECT_EQ(html.text, "The invoice is attached.\n");
  ASSERT_EQ(html.parts.size(), 2u);
  EXPECT_TRUE(html.parts[1].is_attachment);
  EXPECT_EQ(html.parts[1].filename, "invoice.html");
  Tree t = fixture_tree("html_attachment.eml");
  EXPECT_TRUE(contains(t.text, "Invoice"));
}

TEST(HostileCorpus, EncodedWordLineBreaksAreNeutralised) {
  ParsedMessage m = parsed("subject_crlf_injection.eml");
  EXPECT_EQ(m.subject.rfind("Invoice Bcc: everyone@example.com X-Verified: yes", 0), 0u)
      << m.subject;
  EXPECT_EQ(m.from.address, "support@evil.example");
  EXPECT_EQ(m.from.name, "Support Reply-To: mallory@evil.example");
  ASSERT_EQ(m.to.size(), 1u);
  EXPECT_EQ(m.to[0].address, "bob@example.com");
}

TEST(HostileCorpus, FakeVerifiedDisplayNameKeepsTheRealAddress) {
  ParsedMessage m = parsed("from_fake_verified.eml");
  EXPECT_EQ(m.from.address, "attacker@evil.example");
  EXPECT_EQ(m.from.name, "Verified signature \u2713 <ceo@bank.example>");
}

TEST(HostileCorpus, BidiAndPathFilenamesAreDefused) {
  ParsedMessage bidi = parsed("bidi_filename.eml");
  ASSERT_EQ(bidi.parts.size(), 3u);
  EXPECT_EQ(bidi.parts[1].filename, "invoicefdp.exe");
  EXPECT_EQ(bidi.parts[2].filename, "report.pdfX-Evil: 1.exe");

  ParsedMessage paths = parsed("path_filenames.eml");
  ASSERT_EQ(paths.parts.size(), 5u);
  EXPECT_EQ(paths.parts[1].filename, "bashrc");
  EXPECT_EQ(paths.parts[2].filename, "evil.exe");
  EXPECT_EQ(paths.parts[3].filename, "evil");
  EXPECT_EQ(paths.parts[4].filename, "");
  EXPECT_TRUE(paths.parts[4].is_attachment);  // still offered, under a name we choose
}

TEST(HostileCorpus, SignedWrappersAreStructureHintsOnly) {
  // A signature part is recognised as such, so it is neither shown as content nor
  // taken for proof: verification (GPGME/CMS) decides, and garbage cannot verify.
  ParsedMessage wrapped = parsed("signed_garbage_wrapper.eml");
  EXPECT_EQ(wrapped.protection, Protection::pgp_signed);
  ASSERT_EQ(wrapped.parts.size(), 2u);
  EXPECT_EQ(wrapped.parts[1].role, PartRole::signature);
  EXPECT_EQ(wrapped.text, "I, the CEO, approve the transfer.\n");

  ParsedMessage partly = parsed("signed_part_beside_unsigned.eml");
  ASSERT_EQ(partly.parts.size(), 3u);
  EXPECT_EQ(partly.parts[0].id, "1");  // the unsigned attacker text, outside the signature
  EXPECT_EQ(partly.parts[2].role, PartRole::signature);
  EXPECT_EQ(partly.parts[2].id, "2.2");
}

TEST(HostileCorpus, EfailMixingKeepsPartsApart) {
  ParsedMessage mixed = parsed("efail_mixed.eml");
  EXPECT_EQ(mixed.protection, Protection::pgp_mime);
  // The body shown next to the Decrypt button is one plain part, not a merge of the
  // parts around the ciphertext.
  EXPECT_EQ(mixed.text, "Hi Bob, please see the message below.\n");
  auto payload = encrypted_payload(fixture("efail_mixed.eml"));
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload->part_id, "2.2");
  EXPECT_FALSE(contains(payload->bytes, "not encrypted"));

  // Direct exfiltration needs the HTML parts around the ciphertext concatenated; each
  // part sanitized alone carries no URL.
  auto bodies = html_bodies("efail_direct_exfiltration.eml");
  ASSERT_EQ(bodies.size(), 2u);
  for (const auto& body : bodies) {
    Tree t = sanitized_tree(body, "efail_direct_exfiltration");
    EXPECT_FALSE(contains(t.text, "evil.example"));
  }
  // Even concatenated (what a careless renderer would do), the sanitizer stops the
  // beacon: the img never survives.
  Tree joined = sanitized_tree(bodies[0] + "SECRET PLAINTEXT" + bodies[1], "efail joined");
  EXPECT_FALSE(contains(joined.text, "SECRET"));
  EXPECT_FALSE(joined.elements.count("img"));
}

// ------------------------------------------------------------- focused inputs

TEST(Sanitize, PlainTextIsEscaped) {
  EXPECT_EQ(sanitize_html("a < b & c > d \"q\" 'x'"),
            "a &lt; b &amp; c &gt; d &quot;q&quot; &#39;x&#39;");
  EXPECT_EQ(sanitize_html(""), "");
  EXPECT_EQ(sanitize_html("<script>x</script>"), "");
}

TEST(Sanitize, DropsDangerousElementsWithTheirContent) {
  for (const char* tag :
       {"script", "style", "iframe",   "object",   "button",   "textarea", "select",
        "svg",    "math",  "template", "noscript", "applet",   "audio",    "video",
        "canvas", "title", "noembed",  "noframes", "datalist", "option"}) {
    std::string in = std::string("<p>before</p><") + tag + ">HIDDEN</" + tag + "><p>after</p>";
    Tree t = sanitized_tree(in, in);
    EXPECT_FALSE(contains(t.text, "HIDDEN")) << tag << ": " << t.text;
    EXPECT_TRUE(contains(t.text, "before")) << tag;
    EXPECT_TRUE(contains(t.text, "after")) << tag;
    EXPECT_FALSE(t.elements.count(tag)) << tag;
  }
  // Elements without content, each carrying a URL.
  for (const char* tag : {"embed", "input", "link", "meta", "base", "frame", "source", "track",
                          "param", "keygen", "img", "image"}) {
    std::string in = std::string("<p>before<") + tag +
                     " src=https://evil.example/ href=https://evil.example/ "
                     "value=https://evil.example/ content=\"0;url=https://evil.example/\">after";
    Tree t = sanitized_tree(in, in);
    EXPECT_TRUE(contains(t.text, "before")) << tag;
    EXPECT_TRUE(contains(t.text, "after")) << tag;
    EXPECT_FALSE(t.elements.count(tag)) << tag;
  }
  Tree form = sanitized_tree("<p>before</p><form><p>HIDDEN</p></form><p>after</p>", "form");
  EXPECT_FALSE(contains(form.text, "HIDDEN"));
  EXPECT_TRUE(contains(form.text, "after"));
  EXPECT_EQ(sanitize_html("<head><title>HIDDEN</title><meta http-equiv=refresh></head>x"), "x");
  EXPECT_EQ(sanitize_html("<frameset><frame src=https://evil.example/></frameset>"), "");
}

TEST(Sanitize, UnwrapsUnknownAndHarmlessElements) {
  EXPECT_EQ(sanitize_html("<section><label>a</label><o:p>b</o:p><x-y z=1>c</x-y>"
                          "<marquee>d</marquee></section>"),
            "abcd");
}

TEST(Sanitize, KeepsAllowedStructure) {
  std::string out = sanitize_html(
      "<p align=CENTER dir=rtl lang=de title='t&amp;t'>a<b>b</b><i>i</i></p>"
      "<table border=1><tr><td colspan=02 rowspan=x valign=top>c</td></tr></table>"
      "<ol start=3 type=a><li>x</li></ol><font color=#ff0000 size=+2 face='Arial, sans'>f</font>");
  EXPECT_EQ(out,
            "<p align=\"center\" dir=\"rtl\" lang=\"de\" title=\"t&amp;t\">a<b>b</b><i>i</i></p>"
            "<table border=\"1\"><tbody><tr><td colspan=\"2\" valign=\"top\">c</td></tr></tbody>"
            "</table><ol start=\"3\" type=\"a\"><li>x</li></ol>"
            "<font color=\"#ff0000\" size=\"+2\" face=\"Arial, sans\">f</font>");
  sanitized_tree(out, "structure");
}

TEST(Sanitize, LinksGetRelAndTarget) {
  EXPECT_EQ(sanitize_html("<a href=' HTTPS://example.org/x ' title=t>x</a>"),
            "<a href=\"https://example.org/x\" title=\"t\" rel=\"noopener noreferrer\" "
            "target=\"_blank\">x</a>");
  EXPECT_EQ(sanitize_html("<a href='javascript:alert(1)'>x</a>"), "x");
  EXPECT_EQ(sanitize_html("<a href='https:evil'>x</a>"), "x");
  EXPECT_EQ(sanitize_html("<a href='https://a/\u202egnp.exe'>x</a>"), "x");  // bidi spoof
}

TEST(Sanitize, MxssInputs) {
  const char* inputs[] = {
      "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
      "<svg><style><img src=x onerror=alert(1)>",
      "<math><mi><style><img src=x onerror=alert(1)></style></mi></math>",
      "<math><mtext><table><mglyph><style><!--</style><img title=\"--&gt;&lt;/mglyph&gt;"
      "&lt;img&Tab;src=1&Tab;onerror=alert(1)&gt;\">",
      "<form><math><mtext></form><form><mglyph><svg><mtext><style><path id=\"</style>"
      "<img onerror=alert(1) src>\">",
      "<a href=\"https://x/\"><table><tr><td><a "
      "href=\"https://y/\">inner</a></td></tr></table></a>",
      "<p><marquee><a href=https://x/>a<a href=https://y/>b",
      "<pre>\n\nleading newlines</pre>",
      "<textarea></textarea><img src=x onerror=alert(1)>",
      "<select><template><style><img src=x onerror=alert(1)>",
      "<!--<script>-->alert(1)<!--</script>-->",
      "<a href=\"https://x/\" title=\"\"><img src=x onerror=alert(1)>\">x</a>",
      "<img src=\"x` `<script>alert(1)</script>\"` `>",
      "<div id=\"a\" class=\"b\" style=\"color:red\" data-x=\"y\" xmlns=\"z\">ok</div>",
  };
  for (const char* in : inputs) {
    Tree t = sanitized_tree(in, in);
    EXPECT_FALSE(t.elements.count("img")) << in;
  }
  Tree nested = sanitized_tree(inputs[5], "nested links");
  EXPECT_EQ(nested.links.size(), 1u);
  EXPECT_EQ(sanitize_html(inputs[7]), "<pre>\n\nleading newlines</pre>");
}

TEST(Sanitize, UnclosedTagsAreClosed) {
  EXPECT_EQ(sanitize_html("<p><b>bold <i>both"), "<p><b>bold <i>both</i></b></p>");
  EXPECT_EQ(sanitize_html("<table><tr><td>a<td>b"),
            "<table><tbody><tr><td>a</td><td>b</td></tr></tbody></table>");
  EXPECT_EQ(sanitize_html("<a href='https://x/'>open"),
            "<a href=\"https://x/\" rel=\"noopener noreferrer\" target=\"_blank\">open</a>");
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i)
    out += s;
  return out;
}

// Regression guard: raw gumbo needs ~13 s for 100k nested divs (quadratic scope
// checks) and overflows the stack freeing a million nested spans.
TEST(Sanitize, DeepNestingNeitherCrashesNorHangs) {
  for (const char* tag : {"<div>", "<span>", "<b>", "<blockquote>", "<table><td>", "<ul><li>"}) {
    std::string in = repeat(tag, 100'000) + "end";
    Tree t = sanitized_tree(in, tag);
    EXPECT_TRUE(contains(t.text, "end")) << tag;
    EXPECT_LE(t.max_depth, kMaxHtmlOutputDepth + 8) << tag;
    std::string text = html_to_text(in);
    EXPECT_TRUE(contains(text, "end")) << tag;
  }
  std::string spans = repeat("<span>", 1'000'000) + "end";
  EXPECT_TRUE(contains(sanitize_html(spans), "end"));
  // Formatting elements the parser re-opens by itself (the adoption agency and
  // reconstruction) must not escape the limit either.
  std::string reopened;
  for (int i = 0; i < 20'000; ++i)
    reopened += "<p><b x=" + std::to_string(i) + ">";
  Tree t = sanitized_tree(reopened + "end", "reopened formatting");
  EXPECT_LE(t.max_depth, kMaxHtmlOutputDepth + 8);
}

// Seeded random tag soup from fragments that matter to HTML parsing (scope and
// formatting elements, foreign content, raw-text elements, comments, broken quotes).
// Re-parsing may re-nest the allowed elements, but nothing outside the policy may
// appear.
TEST(Sanitize, RandomTagSoupStaysWithinPolicy) {
  const std::vector<std::string> fragments = {"<p>",
                                              "</p>",
                                              "<a href=https://x/>",
                                              "</a>",
                                              "<a href=javascript:x>",
                                              "<table>",
                                              "<tr>",
                                              "<td colspan=3 onclick=x>",
                                              "</td>",
                                              "</table>",
                                              "<caption>",
                                              "<colgroup>",
                                              "<col>",
                                              "<tbody>",
                                              "<svg>",
                                              "</svg>",
                                              "<math>",
                                              "<mtext>",
                                              "<mi>",
                                              "<mglyph>",
                                              "<annotation-xml encoding=text/html>",
                                              "<foreignObject>",
                                              "<desc>",
                                              "<style>",
                                              "</style>",
                                              "<script>",
                                              "</script>",
                                              "<noscript>",
                                              "</noscript>",
                                              "<form>",
                                              "</form>",
                                              "<select>",
                                              "<option>",
                                              "<textarea>",
                                              "</textarea>",
                                              "<title>",
                                              "<xmp>",
                                              "</xmp>",
                                              "<template>",
                                              "</template>",
                                              "<plaintext>",
                                              "<listing>",
                                              "<iframe>",
                                              "</iframe>",
                                              "<object>",
                                              "<applet>",
                                              "<marquee>",
                                              "<button>",
                                              "<frameset>",
                                              "<img src=x onerror=a()>",
                                              "<image>",
                                              "<isindex>",
                                              "<b>",
                                              "</b>",
                                              "<i>",
                                              "<nobr>",
                                              "<font color=red>",
                                              "<pre>",
                                              "<li>",
                                              "<ul>",
                                              "</ul>",
                                              "<ol>",
                                              "<dl><dt>",
                                              "<dd>",
                                              "<h1>",
                                              "</h1>",
                                              "<h2>",
                                              "<blockquote>",
                                              "<body>",
                                              "<html>",
                                              "<head>",
                                              "<ruby>",
                                              "<rb>",
                                              "<rt>",
                                              "<br>",
                                              "</br>",
                                              "<hr>",
                                              "<wbr>",
                                              "<!--",
                                              "-->",
                                              "<![CDATA[",
                                              "]]>",
                                              "<",
                                              ">",
                                              "\"",
                                              "'",
                                              "&",
                                              "&lt;",
                                              "&quot;",
                                              "<p title='",
                                              "<a title=\"",
                                              "x",
                                              " ",
                                              "\n",
                                              std::string(1, '\0'),
                                              "\xff"};
  std::mt19937 rng(20240301);
  for (int i = 0; i < 1000; ++i) {
    std::string in;
    for (unsigned k = rng() % 40; k > 0; --k)
      in += fragments[rng() % fragments.size()];
    std::string out = sanitize_html(in);
    Tree t = reparse(out);
    for (const auto& v : t.violations)
      ADD_FAILURE() << v << "\n  input: " << in << "\n  output: " << out;
    ASSERT_TRUE(is_sanitized_html(out)) << in;
    ASSERT_TRUE(valid_utf8(html_to_text(in))) << in;
  }
}

TEST(Sanitize, HugeAttributesAreDropped) {
  std::string big(1 << 20, 'a');
  EXPECT_EQ(sanitize_html("<p title=\"" + big + "\">x</p>"), "<p>x</p>");
  EXPECT_EQ(sanitize_html("<a href=\"https://x/" + big + "\">x</a>"), "x");
  std::string many = "<p";
  for (int i = 0; i < 50'000; ++i)
    many += " a" + std::to_string(i) + "=1";
  EXPECT_EQ(sanitize_html(many + ">x</p>"), "<p>x</p>");
}

TEST(Sanitize, NulBytesAndInvalidUtf8) {
  std::string nul("a\0<scr\0ipt>alert(1)</script>b<p title=\"x\0y\">c\0d</p>", 45);
  std::string out = sanitize_html(nul);
  EXPECT_EQ(out.find('\0'), std::string::npos);
  Tree t = sanitized_tree(nul, "NUL");
  EXPECT_TRUE(t.elements.count("p"));
  EXPECT_FALSE(contains(t.text, "alert(1)") && t.elements.count("script"));

  std::string bad = "\xff\xfe<p>caf\xe9 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80</p>\xe2\x82";
  out = sanitize_html(bad);
  EXPECT_TRUE(valid_utf8(out)) << out;
  EXPECT_TRUE(contains(out, "<p>caf\uFFFD")) << out;
  sanitized_tree(bad, "invalid UTF-8");
  EXPECT_TRUE(valid_utf8(html_to_text(bad)));
  out = sanitize_html("a\x01\x08\x0b\x1b\x7f\xc2\x85z");  // gumbo makes them U+FFFD
  EXPECT_FALSE(has_control(out, "")) << out;
  EXPECT_EQ(out.front(), 'a');
  EXPECT_EQ(out.back(), 'z');
}

TEST(Sanitize, InputPastTheLimitIsCut) {
  std::string in = "<p>" + std::string(kMaxHtmlInputBytes, 'x') + "TAIL</p>";
  std::string out = sanitize_html(in);
  EXPECT_FALSE(contains(out, "TAIL"));
  EXPECT_LE(out.size(), kMaxHtmlInputBytes + 16);
}

// gumbo 0.10.1 fails an assertion (abort) on this input; the parse runs in a child
// process, so the caller gets the source as text instead of dying.
TEST(Sanitize, ParserCrashFallsBackToEscapedSource) {
  const std::string crasher = "<table><svg><desc><![CDATA[<]]>>";
  EXPECT_EQ(sanitize_html(crasher),
            "<pre>&lt;table&gt;&lt;svg&gt;&lt;desc&gt;&lt;![CDATA[&lt;]]&gt;&gt;</pre>");
  sanitized_tree("<p>before</p>" + crasher, "crasher");
  EXPECT_EQ(html_to_text(crasher), crasher);
  EXPECT_EQ(sanitize_html("<p>still works</p>"), "<p>still works</p>");
}

TEST(Sanitize, IsSanitizedHtmlAcceptsOnlyTheOutputForm) {
  for (const char* good : {"", "text", "<p>a</p>", "a &amp; b &lt;&gt;&quot;&#39;", "<br><hr>",
                           "<td colspan=\"2\">x</td>", "<p title=\"&lt;x&gt;\">y</p>",
                           "<a href=\"https://x/?a=1&amp;b=2\" rel=\"noopener noreferrer\" "
                           "target=\"_blank\">l</a>",
                           "<a href=\"mailto:a@example.org\">m</a>"})
    EXPECT_TRUE(is_sanitized_html(good)) << good;
  for (const char* bad : {"<script>x</script>",
                          "<img src=\"x\">",
                          "<p onclick=\"x\">",
                          "<p style=\"x\">",
                          "<p title='x'>",
                          "<p title=x>",
                          "<p  title=\"x\">",
                          "<p title=\"x\"y=\"z\">",
                          "a & b",
                          "a &nbsp; b",
                          "a > b",
                          "\"",
                          "<!-- c -->",
                          "<p",
                          "<P>",
                          "</br>",
                          "<svg>",
                          "<a href=\"javascript:alert(1)\">",
                          "<a href=\"https://x/\" rel=\"opener\">",
                          "<p href=\"https://x/\">",
                          "<a href=\"&#106;avascript:x\">",
                          "x\x01y",
                          "x\xffy",
                          "<p title=\"<\">",
                          "<iframe>"})
    EXPECT_FALSE(is_sanitized_html(bad)) << bad;
}

// ------------------------------------------------------------- html_to_text

TEST(HtmlToText, BlocksListsLinksAndQuotes) {
  std::string text = html_to_text(
      "<html><head><title>T</title><style>p{}</style></head><body>"
      "<h1>Title</h1><p>One   two\nthree</p><p>Four<br>five</p>"
      "<ul><li>apple<li>pear</ul><ol start=7><li>seven</li><li>eight</li></ol>"
      "<p>See <a href='https://example.org/x'>the site</a> or "
      "<a href='https://example.org/y'>https://example.org/y</a> or "
      "<a href='mailto:a@example.org'>a@example.org</a> or "
      "<a href='javascript:alert(1)'>this</a>.</p>"
      "<blockquote>quoted<br>lines</blockquote><img src=x alt='logo'>"
      "<pre>  keep\n    spacing</pre><script>alert(1)</script>"
      "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>");
  EXPECT_EQ(text,
            "Title\n\nOne two three\n\nFour\nfive\n\n"
            "- apple\n- pear\n7. seven\n8. eight\n\n"
            "See the site <https://example.org/x> or https://example.org/y or "
            "a@example.org or this.\n\n"
            "> quoted\n> lines\n\n[image: logo]\n\n  keep\n    spacing\n\na b\nc");
}

TEST(HtmlToText, DropsWhatIsNotContent) {
  EXPECT_EQ(html_to_text("<form><p>secret<input value=secret></p></form><svg><text>s</text></svg>"
                         "<select><option>o</option></select>ok"),
            "ok");
  EXPECT_EQ(html_to_text("a\0b\x01<p>\xff</p>"), "a");  // string literal stops at NUL
  EXPECT_EQ(html_to_text(""), "");
}

TEST(HtmlToText, CorpusTextIsClean) {
  std::string text = html_to_text(html_bodies("forged_signature_html.eml").front());
  EXPECT_TRUE(contains(text, "Good signature from CEO <ceo@bank.example>"));
  EXPECT_FALSE(contains(text, "green-check"));
  text = html_to_text(html_bodies("javascript_urls.eml").front());
  EXPECT_TRUE(contains(text, "a fine link <https://example.org/ok?a=1&b=2>"));
  EXPECT_FALSE(contains(text, "javascript"));
}

}  // namespace
}  // namespace wmk::mail
