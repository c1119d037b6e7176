#include "core/mail/sanitize.h"

#include <fcntl.h>
#include <gumbo.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/util/ascii.h"
#include "core/util/fs.h"
#include "core/util/html_escape.h"
#include "core/util/utf8.h"

namespace wmk::mail {
namespace {

using util::append_utf8;
using util::ascii_lower;
using util::kReplacementChar;
using util::next_code_point;

constexpr std::size_t kMaxUrlBytes = 8192;
constexpr std::size_t kMaxAttributeBytes = 1024;
constexpr std::size_t kMaxAltChars = 200;

// ---------------------------------------------------------------- UTF-8 and escaping

// Control characters that never belong in shown text (TAB and LF do).
bool is_unwanted_control(char32_t c) {
  return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

// Calls fn(code point) for each code point of s, invalid UTF-8 read as U+FFFD and
// unwanted control characters skipped.
template <class Fn>
void for_each_shown_char(std::string_view s, Fn fn) {
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, len] = next_code_point(s, i);
    i += len;
    if (!is_unwanted_control(cp))
      fn(cp);
  }
}

// Appends s escaped for HTML text and for double-quoted attribute values alike,
// unwanted control characters left out.
void append_escaped(std::string& out, std::string_view s) {
  for_each_shown_char(s, [&](char32_t c) { util::append_html_escaped(out, c); });
}

bool is_ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_html_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

// ------------------------------------------------------- resource guard before parsing
//
// gumbo's tree construction costs time proportional to the depth of the open element
// stack for many tokens (scope checks, formatting element lookups), so deep nesting
// is quadratic, and its tree destruction recurses, so about a million nested elements
// overflow the stack. This pass bounds both before gumbo sees the input. It is a rough
// tokenizer and needs no precision: it only ever removes markup, and whatever comes out
// is still parsed by gumbo and filtered by the allow-list, so no security property
// rests on it. It errs towards counting too much: every "<x" is a tag, even inside
// comments, scripts or attribute values.

// Elements that open nothing (void) or that the parser closes by itself when a sibling
// starts (p, li, td...), so they do not deepen the tree on their own; the enclosing
// table or list is counted instead.
bool deepens_tree(std::string_view name) {
  static const char* const kFlat[] = {
      "area",   "base",  "basefont", "bgsound", "br",     "col",    "embed",    "frame",
      "hr",     "image", "img",      "input",   "keygen", "link",   "meta",     "param",
      "source", "track", "wbr",      "html",    "head",   "body",   "p",        "li",
      "dt",     "dd",    "tr",       "td",      "th",     "option", "optgroup", "rb",
      "rt",     "rtc",   "rp",       "thead",   "tbody",  "tfoot",  "colgroup", "caption"};
  for (const char* flat : kFlat) {
    if (name == flat)
      return false;
  }
  return true;
}

struct TagExtent {
  std::size_t end;           // just past the '>' ending the tag, or html.size()
  std::size_t excess_attrs;  // where the attribute past kMaxHtmlAttributes starts, or npos
};

// Scans a tag from just after its name the way the HTML tokenizer does (quoted values
// may hold '>', a quote only opens a value after '='), counting attributes: gumbo's
// duplicate-attribute check is quadratic in their number.
TagExtent scan_tag(std::string_view html, std::size_t i) {
  enum class State { before_name, name, after_name, before_value, unquoted, quoted, after_quoted };
  State state = State::before_name;
  char quote = 0;
  std::size_t attributes = 0;
  std::size_t excess = std::string_view::npos;
  auto start_attribute = [&](std::size_t at) {
    if (++attributes > kMaxHtmlAttributes && excess == std::string_view::npos)
      excess = at;
    state = State::name;
  };
  for (; i < html.size(); ++i) {
    char c = html[i];
    switch (state) {
      case State::before_name:
      case State::after_quoted:
        if (c == '>')
          return {i + 1, excess};
        if (c == '/' || is_html_space(c))
          state = State::before_name;
        else
          start_attribute(i);
        break;
      case State::name:
        if (c == '>')
          return {i + 1, excess};
        if (c == '=')
          state = State::before_value;
        else if (c == '/')
          state = State::before_name;
        else if (is_html_space(c))
          state = State::after_name;
        break;
      case State::after_name:
        if (c == '>')
          return {i + 1, excess};
        if (c == '=')
          state = State::before_value;
        else if (c == '/')
          state = State::before_name;
        else if (!is_html_space(c))
          start_attribute(i);
        break;
      case State::before_value:
        if (c == '>')
          return {i + 1, excess};
        if (c == '"' || c == '\'') {
          quote = c;
          state = State::quoted;
        } else if (!is_html_space(c)) {
          state = State::unquoted;
        }
        break;
      case State::unquoted:
        if (c == '>')
          return {i + 1, excess};
        if (is_html_space(c))
          state = State::before_name;
        break;
      case State::quoted:
        if (c == quote)
          state = State::after_quoted;
        break;
    }
  }
  return {html.size(), excess};
}

// The input cut to kMaxHtmlInputBytes, without the start tags that would nest deeper
// than kMaxHtmlNesting, without any tag past the kMaxHtmlTags-th, and without the
// attributes of a tag past its kMaxHtmlAttributes-th.
std::string limit_markup(std::string_view html) {
  if (html.size() > kMaxHtmlInputBytes)
    html = html.substr(0, kMaxHtmlInputBytes);
  std::string out;
  out.reserve(html.size());
  std::unordered_map<std::string, int> open;  // counted start tags not yet ended, by name
  int depth = 0;
  std::size_t tags = 0;
  std::size_t copied = 0;  // html[0, copied) has been dealt with
  std::size_t i = 0;
  while ((i = html.find('<', i)) != std::string_view::npos) {
    std::size_t start = i;
    std::size_t p = i + 1;
    bool is_end = p < html.size() && html[p] == '/';
    if (is_end)
      ++p;
    if (p >= html.size() || !is_ascii_alpha(html[p])) {
      i = start + 1;
      continue;
    }
    std::size_t name_begin = p;
    while (p < html.size() && !is_html_space(html[p]) && html[p] != '/' && html[p] != '>')
      ++p;
    std::string name =
        ascii_lower(html.substr(name_begin, std::min<std::size_t>(p - name_begin, 64)));
    TagExtent tag = scan_tag(html, p);
    i = tag.end;
    bool remove = ++tags > kMaxHtmlTags;
    if (!remove && is_end) {
      auto it = open.find(name);
      if (it != open.end()) {
        --depth;
        if (--it->second == 0)
          open.erase(it);
      }
    } else if (!remove && deepens_tree(name)) {
      if (depth >= kMaxHtmlNesting) {
        remove = true;
      } else {
        ++depth;
        ++open[name];
      }
    }
    if (remove) {
      out.append(html.substr(copied, start - copied));
      copied = tag.end;
    } else if (tag.excess_attrs != std::string_view::npos) {
      out.append(html.substr(copied, tag.excess_attrs - copied));
      out += '>';
      copied = tag.end;
    }
  }
  out.append(html.substr(copied));
  return out;
}

// ------------------------------------------------------------------------ the tree

// Owns one gumbo parse and the buffer its nodes point into.
class HtmlTree {
 public:
  explicit HtmlTree(std::string_view html) : source_(limit_markup(html)) {
    options_ = kGumboDefaultOptions;
    options_.max_errors = 0;  // error records copy the open element stack: quadratic
    output_ = gumbo_parse_with_options(&options_, source_.data(), source_.size());
    if (output_ == nullptr)
      throw std::bad_alloc();
  }
  ~HtmlTree() { gumbo_destroy_output(&options_, output_); }
  HtmlTree(const HtmlTree&) = delete;
  HtmlTree& operator=(const HtmlTree&) = delete;

  const GumboNode* document() const { return output_->document; }

 private:
  std::string source_;
  GumboOptions options_;
  GumboOutput* output_ = nullptr;
};

const GumboVector* children_of(const GumboNode* node) {
  switch (node->type) {
    case GUMBO_NODE_DOCUMENT:
      return &node->v.document.children;
    case GUMBO_NODE_ELEMENT:
      return &node->v.element.children;
    default:
      return nullptr;  // templates are never entered
  }
}

// Walks the tree depth first without recursion (the tree may be deep).
// enter(node, parent_states) returns the State to keep for the node, or nullopt not to
// descend into it; leave(node, state) runs after its children.
template <class State, class Enter, class Leave>
void walk(const GumboNode* root, Enter enter, Leave leave) {
  struct Frame {
    const GumboNode* node;
    unsigned next_child;
    State state;
  };
  std::vector<Frame> stack;
  if (auto state = enter(root))
    stack.push_back(Frame{root, 0, std::move(*state)});
  while (!stack.empty()) {
    Frame& top = stack.back();
    const GumboVector* kids = children_of(top.node);
    if (kids != nullptr && top.next_child < kids->length) {
      const auto* child = static_cast<const GumboNode*>(kids->data[top.next_child++]);
      if (auto state = enter(child))
        stack.push_back(Frame{child, 0, std::move(*state)});  // invalidates `top`
      continue;
    }
    leave(top.node, top.state);
    stack.pop_back();
  }
}

// ---------------------------------------------------------------- element policy

enum class Action {
  drop,       // the element and everything in it
  unwrap,     // not the element, but its content
  keep,       // the element with its allowed attributes, and its content
  keep_void,  // an element without content (br, hr)
  image,      // replaced by the text "[image]"
};

Action action_for(const GumboElement& e) {
  // Foreign content (SVG, MathML) has its own parsing rules and scripting; no part
  // of it is shown.
  if (e.tag_namespace != GUMBO_NAMESPACE_HTML)
    return Action::drop;
  switch (e.tag) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_SPAN:
    case GUMBO_TAG_B:
    case GUMBO_TAG_I:
    case GUMBO_TAG_U:
    case GUMBO_TAG_S:
    case GUMBO_TAG_STRIKE:
    case GUMBO_TAG_EM:
    case GUMBO_TAG_STRONG:
    case GUMBO_TAG_SMALL:
    case GUMBO_TAG_BIG:
    case GUMBO_TAG_SUB:
    case GUMBO_TAG_SUP:
    case GUMBO_TAG_DEL:
    case GUMBO_TAG_INS:
    case GUMBO_TAG_MARK:
    case GUMBO_TAG_Q:
    case GUMBO_TAG_CITE:
    case GUMBO_TAG_ABBR:
    case GUMBO_TAG_KBD:
    case GUMBO_TAG_SAMP:
    case GUMBO_TAG_VAR:
    case GUMBO_TAG_TT:
    case GUMBO_TAG_CODE:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_TFOOT:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_TD:
    case GUMBO_TAG_TH:
    case GUMBO_TAG_A:
    case GUMBO_TAG_FONT:
      return Action::keep;
    case GUMBO_TAG_BR:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_WBR:
      return Action::keep_void;
    case GUMBO_TAG_IMG:  // gumbo turns <image> into img
      return Action::image;
    // Not shown, and what is inside is not content either: document metadata,
    // scripts and styles, frames, plugins and media (remote content), forms
    // (phishing), raw-text and template containers.
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_TITLE:
    case GUMBO_TAG_BASE:
    case GUMBO_TAG_LINK:
    case GUMBO_TAG_META:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_FRAME:
    case GUMBO_TAG_FRAMESET:
    case GUMBO_TAG_NOFRAMES:
    case GUMBO_TAG_NOEMBED:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_APPLET:
    case GUMBO_TAG_PARAM:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_VIDEO:
    case GUMBO_TAG_SOURCE:
    case GUMBO_TAG_TRACK:
    case GUMBO_TAG_BGSOUND:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_ISINDEX:
    case GUMBO_TAG_INPUT:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_DATALIST:
    case GUMBO_TAG_OPTGROUP:
    case GUMBO_TAG_OPTION:
    case GUMBO_TAG_KEYGEN:
    case GUMBO_TAG_MENUITEM:
      return Action::drop;
    default:
      // html, body, unknown and the remaining harmless elements (section, label,
      // marquee, ...): their text is the message, their markup is not needed.
      return Action::unwrap;
  }
}

bool one_of(std::string_view value, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

bool all_of_chars(std::string_view s, bool (*ok)(char)) {
  return std::all_of(s.begin(), s.end(), ok);
}

// A small non-negative integer as written, "" if value is not 1 to max_digits digits.
std::string digits(std::string_view value, std::size_t max_digits) {
  if (value.empty() || value.size() > max_digits || !all_of_chars(value, is_ascii_digit))
    return "";
  std::size_t first = value.find_first_not_of('0');
  return first == std::string_view::npos ? "0" : std::string(value.substr(first));
}

bool is_color_char(char c) {
  return is_ascii_alpha(c) || is_ascii_digit(c) || c == '#';
}
bool is_font_face_char(char c) {
  return is_ascii_alpha(c) || is_ascii_digit(c) || c == ' ' || c == ',' || c == '-' || c == '_';
}
bool is_lang_char(char c) {
  return is_ascii_alpha(c) || is_ascii_digit(c) || c == '-';
}

bool is_table_cell(GumboTag tag) {
  return tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH;
}
bool is_table_part(GumboTag tag) {
  return tag == GUMBO_TAG_THEAD || tag == GUMBO_TAG_TBODY || tag == GUMBO_TAG_TFOOT ||
         tag == GUMBO_TAG_TR || is_table_cell(tag);
}

// The cleaned value of an attribute worth keeping on an element of this tag, or
// nullopt to drop it. Everything not named here is dropped: event handlers, style,
// class, id, and every attribute that takes a URL (a's href is handled by the caller).
std::optional<std::string> allowed_attribute(GumboTag tag, std::string_view name,
                                             std::string_view raw_value) {
  std::string value = ascii_lower(raw_value);
  if (name == "title") {
    if (raw_value.size() > kMaxAttributeBytes)
      return std::nullopt;
    return std::string(raw_value);
  }
  if (name == "lang") {
    if (raw_value.empty() || raw_value.size() > 35 || !all_of_chars(raw_value, is_lang_char))
      return std::nullopt;
    return std::string(raw_value);
  }
  if (name == "dir") {
    if (!one_of(value, {"ltr", "rtl", "auto"}))
      return std::nullopt;
    return value;
  }
  if (name == "align") {
    bool block = tag == GUMBO_TAG_P || tag == GUMBO_TAG_DIV || tag == GUMBO_TAG_H1 ||
                 tag == GUMBO_TAG_H2 || tag == GUMBO_TAG_H3 || tag == GUMBO_TAG_H4 ||
                 tag == GUMBO_TAG_H5 || tag == GUMBO_TAG_H6 || tag == GUMBO_TAG_TABLE ||
                 tag == GUMBO_TAG_CAPTION || tag == GUMBO_TAG_HR || is_table_part(tag);
    if (!block || !one_of(value, {"left", "right", "center", "justify"}))
      return std::nullopt;
    return value;
  }
  if (name == "valign") {
    if (!is_table_part(tag) || !one_of(value, {"top", "middle", "bottom", "baseline"}))
      return std::nullopt;
    return value;
  }
  if ((name == "colspan" || name == "rowspan") && is_table_cell(tag)) {
    std::string n = digits(value, 4);
    if (n.empty() || n == "0")
      return std::nullopt;
    return n;
  }
  if (name == "width" && (tag == GUMBO_TAG_TABLE || is_table_cell(tag))) {
    std::string_view number = value;
    bool percent = !number.empty() && number.back() == '%';
    if (percent)
      number.remove_suffix(1);
    std::string n = digits(number, 4);
    if (n.empty())
      return std::nullopt;
    return percent ? n + "%" : n;
  }
  if ((name == "border" || name == "cellpadding" || name == "cellspacing") &&
      tag == GUMBO_TAG_TABLE) {
    std::string n = digits(value, 3);
    if (n.empty())
      return std::nullopt;
    return n;
  }
  if ((name == "bgcolor" && (tag == GUMBO_TAG_TABLE || is_table_part(tag))) ||
      (name == "color" && tag == GUMBO_TAG_FONT)) {
    if (value.empty() || value.size() > 20 || !all_of_chars(value, is_color_char))
      return std::nullopt;
    return value;
  }
  if (name == "size" && tag == GUMBO_TAG_FONT) {
    std::string_view number = value;
    std::string sign;
    if (!number.empty() && (number.front() == '+' || number.front() == '-')) {
      sign = std::string(1, number.front());
      number.remove_prefix(1);
    }
    if (number.size() != 1 || number[0] < '1' || number[0] > '7')
      return std::nullopt;
    return sign + std::string(number);
  }
  if (name == "face" && tag == GUMBO_TAG_FONT) {
    if (raw_value.empty() || raw_value.size() > 100 || !all_of_chars(raw_value, is_font_face_char))
      return std::nullopt;
    return std::string(raw_value);
  }
  if (name == "start" && tag == GUMBO_TAG_OL) {
    std::string n = digits(value, 6);
    if (n.empty())
      return std::nullopt;
    return n;
  }
  if (name == "type" && tag == GUMBO_TAG_OL) {
    if (!one_of(raw_value, {"1", "a", "A", "i", "I"}))
      return std::nullopt;
    return std::string(raw_value);
  }
  if (name == "value" && tag == GUMBO_TAG_LI) {
    std::string n = digits(value, 6);
    if (n.empty())
      return std::nullopt;
    return n;
  }
  return std::nullopt;
}

const char* attribute_value(const GumboElement& e, const char* name) {
  const GumboAttribute* a = gumbo_get_attribute(&e.attributes, name);
  if (a == nullptr || a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
    return nullptr;
  return a->value;
}

// The link target to keep: an absolute http, https or mailto URL, its scheme in lower
// case; nullopt for anything else. gumbo has already decoded character references, so
// "&#106;avascript:" arrives here as "javascript:". Relative URLs are refused too: in a
// srcdoc frame they would resolve against the webmail itself.
std::optional<std::string> safe_link(std::string_view href) {
  // What a URL parser strips: leading and trailing C0 controls and spaces.
  while (!href.empty() && static_cast<unsigned char>(href.front()) <= 0x20)
    href.remove_prefix(1);
  while (!href.empty() && static_cast<unsigned char>(href.back()) <= 0x20)
    href.remove_suffix(1);
  if (href.empty() || href.size() > kMaxUrlBytes)
    return std::nullopt;
  // A URL parser silently removes TAB and LF inside ("java\tscript:" is javascript:);
  // refuse every control character, invalid UTF-8 and bidi controls instead.
  for (std::size_t i = 0; i < href.size();) {
    auto [cp, len] = next_code_point(href, i);
    i += len;
    if (cp == kReplacementChar || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
        (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069))
      return std::nullopt;
  }
  std::size_t colon = href.find(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  std::string scheme = ascii_lower(href.substr(0, colon));
  std::string_view rest = href.substr(colon + 1);
  if (scheme == "http" || scheme == "https") {
    if (rest.size() < 3 || rest.substr(0, 2) != "//")
      return std::nullopt;
  } else if (scheme == "mailto") {
    if (rest.empty())
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  return scheme + ":" + std::string(rest);
}

// "[image]" or "[image: ALT]", for an img element. Images are never loaded: remote
// ones would tell the sender the mail was read (and from where), cid: ones are not
// served yet.
std::string image_placeholder(const GumboElement& e) {
  std::string alt;
  if (const char* a = attribute_value(e, "alt")) {
    bool space = false;
    std::size_t chars = 0;
    for_each_shown_char(a, [&](char32_t c) {
      if (chars >= kMaxAltChars)
        return;
      if (c == ' ' || c == '\t' || c == '\n' || c == 0xa0) {
        space = !alt.empty();
        return;
      }
      if (space)
        alt += ' ';
      space = false;
      append_utf8(alt, c);
      ++chars;
    });
  }
  return alt.empty() ? "[image]" : "[image: " + alt + "]";
}

// ---------------------------------------------------------------- sanitize_html

struct SanitizeState {
  bool emitted = false;  // the element's tags were written
  bool is_link = false;  // an emitted <a>
};

class Sanitizer {
 public:
  std::string run(const GumboNode* document) {
    walk<SanitizeState>(
        document, [this](const GumboNode* n) { return enter(n); },
        [this](const GumboNode* n, const SanitizeState& s) { leave(n, s); });
    // A parser skips whitespace before the body starts; so must the output, to read the
    // same when parsed again.
    std::size_t first = out_.find_first_not_of(" \t\n\f\r");
    out_.erase(0, first == std::string::npos ? out_.size() : first);
    return std::move(out_);
  }

 private:
  std::optional<SanitizeState> enter(const GumboNode* node) {
    switch (node->type) {
      case GUMBO_NODE_DOCUMENT:
        return SanitizeState{};
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
        append_escaped(out_, node->v.text.text);
        return std::nullopt;
      case GUMBO_NODE_ELEMENT:
        return enter_element(node->v.element);
      default:  // comments, CDATA (only in foreign content), templates
        return std::nullopt;
    }
  }

  std::optional<SanitizeState> enter_element(const GumboElement& e) {
    Action action = action_for(e);
    if (action == Action::keep && e.tag == GUMBO_TAG_A) {
      // A link inside a link would be split by the next parser; keep the outer one.
      const char* href = attribute_value(e, "href");
      std::optional<std::string> link = href != nullptr ? safe_link(href) : std::nullopt;
      if (!link || open_links_ > 0 || depth_ >= kMaxHtmlOutputDepth)
        return SanitizeState{};  // unwrap
      out_ += "<a href=\"";
      append_escaped(out_, *link);
      out_ += '"';
      append_attributes(e);
      out_ += " rel=\"noopener noreferrer\" target=\"_blank\">";
      ++open_links_;
      ++depth_;
      return SanitizeState{true, true};
    }
    switch (action) {
      case Action::drop:
        return std::nullopt;
      case Action::unwrap:
        return SanitizeState{};
      case Action::image:
        append_escaped(out_, image_placeholder(e));
        return std::nullopt;
      case Action::keep_void:
        out_ += '<';
        out_ += gumbo_normalized_tagname(e.tag);
        append_attributes(e);
        out_ += '>';
        return std::nullopt;
      case Action::keep:
        if (depth_ >= kMaxHtmlOutputDepth)
          return SanitizeState{};
        out_ += '<';
        out_ += gumbo_normalized_tagname(e.tag);
        append_attributes(e);
        out_ += '>';
        if (e.tag == GUMBO_TAG_PRE && starts_with_newline(e))
          out_ += '\n';  // a parser drops the first newline after <pre>
        ++depth_;
        return SanitizeState{true, false};
    }
    return std::nullopt;
  }

  void leave(const GumboNode* node, const SanitizeState& s) {
    if (!s.emitted)
      return;
    out_ += "</";
    out_ += gumbo_normalized_tagname(node->v.element.tag);
    out_ += '>';
    --depth_;
    if (s.is_link)
      --open_links_;
  }

  void append_attributes(const GumboElement& e) {
    for (unsigned i = 0; i < e.attributes.length; ++i) {
      const auto* a = static_cast<const GumboAttribute*>(e.attributes.data[i]);
      if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
        continue;
      std::optional<std::string> value = allowed_attribute(e.tag, a->name, a->value);
      if (!value)
        continue;
      out_ += ' ';
      out_ += a->name;  // one of the fixed names above, lower case
      out_ += "=\"";
      append_escaped(out_, *value);
      out_ += '"';
    }
  }

  static bool starts_with_newline(const GumboElement& e) {
    if (e.children.length == 0)
      return false;
    const auto* first = static_cast<const GumboNode*>(e.children.data[0]);
    return (first->type == GUMBO_NODE_TEXT || first->type == GUMBO_NODE_WHITESPACE) &&
           first->v.text.text[0] == '\n';
  }

  std::string out_;
  int depth_ = 0;
  int open_links_ = 0;
};

// ---------------------------------------------------------------- html_to_text

// Builds text with lazily placed line breaks and spaces, so that markup whitespace
// and empty elements do not leave runs of blank lines.
enum class Whitespace { collapse, preserve };

class TextBuilder {
 public:
  // Text from a text node: whitespace runs collapse to one space unless preserved.
  void text(std::string_view s, Whitespace whitespace) {
    for_each_shown_char(s, [&](char32_t c) {
      if (whitespace == Whitespace::preserve) {
        if (c == '\n')
          pending_newlines_ = started_ ? pending_newlines_ + 1 : 0;
        else
          put(c);
        return;
      }
      if (c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == 0xa0)
        pending_space_ = true;
      else
        put(c);
    });
  }

  // Inline text that is not from the message body ("[image]", " <url>").
  void inline_text(std::string_view s) {
    for_each_shown_char(s, [&](char32_t c) { put(c); });
  }

  void space() { pending_space_ = true; }
  // The next text starts on a new line (lines = 1) or after a blank line (lines = 2).
  void block_break(int lines) { pending_newlines_ = std::max(pending_newlines_, lines); }
  // <br>: one more line break each.
  void line_break() { pending_newlines_ = std::min(pending_newlines_ + 1, 2); }
  // The next line starts with this marker after the indentation ("- ", "3. ").
  void item(std::string marker) {
    block_break(1);
    item_marker_ = std::move(marker);
  }
  void set_quote_depth(int d) { quote_depth_ = d; }
  void set_indent(int d) { indent_ = d; }

  std::size_t size() const { return out_.size(); }
  std::string_view since(std::size_t pos) const {
    return std::string_view(out_).substr(std::min(pos, out_.size()));
  }

  std::string finish() { return std::move(out_); }

 private:
  void put(char32_t c) {
    if (!started_ || pending_newlines_ > 0) {
      if (started_) {
        out_.append(static_cast<std::size_t>(pending_newlines_), '\n');
      }
      for (int k = 0; k < quote_depth_; ++k)
        out_ += "> ";
      if (!item_marker_.empty()) {
        out_ += std::string(static_cast<std::size_t>(std::max(indent_ - 1, 0)) * 2, ' ');
        out_ += item_marker_;
        item_marker_.clear();
      } else {
        out_ += std::string(static_cast<std::size_t>(indent_) * 2, ' ');
      }
      started_ = true;
    } else if (pending_space_) {
      out_ += ' ';
    }
    pending_newlines_ = 0;
    pending_space_ = false;
    append_utf8(out_, c);
  }

  std::string out_;
  bool started_ = false;
  int pending_newlines_ = 0;
  bool pending_space_ = false;
  int quote_depth_ = 0;
  int indent_ = 0;
  std::string item_marker_;
};

enum class Block { none, line, paragraph };

Block block_of(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_XMP:
    case GUMBO_TAG_PLAINTEXT:
      return Block::paragraph;
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_HGROUP:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_MENU:
    case GUMBO_TAG_DIR:
      return Block::line;
    default:
      return Block::none;
  }
}

struct TextState {
  Block block = Block::none;
  std::optional<std::string> link;  // the safe href of an <a>
  std::size_t link_text_start = 0;
  int list_counter = -1;  // ol: the next number; else -1
  bool preformatted = false;
  bool quote = false;
};

class TextConverter {
 public:
  std::string run(const GumboNode* document) {
    walk<TextState>(
        document, [this](const GumboNode* n) { return enter(n); },
        [this](const GumboNode* n, TextState& s) { leave(n, s); });
    std::string text = out_.finish();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.pop_back();
    return text;
  }

 private:
  std::optional<TextState> enter(const GumboNode* node) {
    switch (node->type) {
      case GUMBO_NODE_DOCUMENT:
        return TextState{};
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
        out_.text(node->v.text.text,
                  preformatted_ > 0 ? Whitespace::preserve : Whitespace::collapse);
        return std::nullopt;
      case GUMBO_NODE_ELEMENT:
        return enter_element(node->v.element);
      default:
        return std::nullopt;
    }
  }

  std::optional<TextState> enter_element(const GumboElement& e) {
    Action action = action_for(e);
    if (action == Action::drop)
      return std::nullopt;
    if (action == Action::image) {
      out_.space();
      out_.inline_text(image_placeholder(e));
      out_.space();
      return std::nullopt;
    }
    switch (e.tag) {
      case GUMBO_TAG_BR:
        out_.line_break();
        return std::nullopt;
      case GUMBO_TAG_HR:
        out_.block_break(1);
        out_.inline_text("----");
        out_.block_break(1);
        return std::nullopt;
      case GUMBO_TAG_TD:
      case GUMBO_TAG_TH:
        out_.space();
        break;
      default:
        break;
    }
    TextState s;
    s.block = block_of(e.tag);
    if (s.block == Block::paragraph)
      out_.block_break(2);
    else if (s.block == Block::line)
      out_.block_break(1);
    if (e.tag == GUMBO_TAG_PRE || e.tag == GUMBO_TAG_LISTING || e.tag == GUMBO_TAG_XMP ||
        e.tag == GUMBO_TAG_PLAINTEXT) {
      s.preformatted = true;
      ++preformatted_;
    }
    if (e.tag == GUMBO_TAG_BLOCKQUOTE) {
      s.quote = true;
      out_.set_quote_depth(++quote_depth_);
    }
    if (e.tag == GUMBO_TAG_UL || e.tag == GUMBO_TAG_OL) {
      s.list_counter = e.tag == GUMBO_TAG_OL ? 1 : -1;
      if (e.tag == GUMBO_TAG_OL) {
        const char* start = attribute_value(e, "start");
        std::string n = start != nullptr ? digits(start, 6) : "";
        if (!n.empty())
          s.list_counter = std::stoi(n);
      }
      lists_.push_back(s.list_counter);
      out_.set_indent(static_cast<int>(lists_.size()));
    }
    if (e.tag == GUMBO_TAG_LI) {
      if (!lists_.empty() && lists_.back() >= 0)
        out_.item(std::to_string(lists_.back()++) + ". ");
      else
        out_.item("- ");
    }
    if (e.tag == GUMBO_TAG_A) {
      if (const char* href = attribute_value(e, "href")) {
        s.link = safe_link(href);
        s.link_text_start = out_.size();
      }
    }
    return s;
  }

  void leave(const GumboNode* node, TextState& s) {
    if (node->type != GUMBO_NODE_ELEMENT)
      return;
    GumboTag tag = node->v.element.tag;
    if (s.link) {
      std::string shown = *s.link;
      if (shown.rfind("mailto:", 0) == 0)
        shown.erase(0, 7);
      if (out_.since(s.link_text_start).find(shown) == std::string_view::npos) {
        out_.space();
        out_.inline_text("<" + shown + ">");
      }
    }
    if (s.preformatted)
      --preformatted_;
    if (s.quote)
      out_.set_quote_depth(--quote_depth_);
    if (tag == GUMBO_TAG_UL || tag == GUMBO_TAG_OL) {
      lists_.pop_back();
      out_.set_indent(static_cast<int>(lists_.size()));
    }
    if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH)
      out_.space();
    if (s.block == Block::paragraph)
      out_.block_break(2);
    else if (s.block == Block::line)
      out_.block_break(1);
  }

  TextBuilder out_;
  int preformatted_ = 0;
  int quote_depth_ = 0;
  std::vector<int> lists_;
};

// ------------------------------------------------------------- parser isolation
//
// gumbo 0.10.1 (the Debian package; upstream is archived) aborts on some inputs: an
// assertion in its table handling fires for `<table><svg><desc><![CDATA[<]]>>`. A
// message must not be able to kill the page that shows it, nor run the parser for
// minutes, so the parse runs in a child process with a CPU limit. The parent accepts
// the child's output only if it is in the sanitizer's output form (is_sanitized_html),
// so even a child subverted by a parser bug cannot hand back markup we would not
// have written.

constexpr rlim_t kChildCpuSeconds = 10;
constexpr std::size_t kMaxChildOutputBytes = std::size_t{256} << 20;

// What produce() returns when run in a child process; nullopt if the child could not
// be started, crashed, threw, or ran out of CPU time.
std::optional<std::string> run_isolated(const std::function<std::string()>& produce) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return std::nullopt;
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0)
    return std::nullopt;
  if (pid == 0) {
    // The child: no destructors, no atexit handlers, no stdio flushing (the parent's
    // buffered output must not be written twice); only _exit.
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A parser crash just ends the child: no handler of the parent (a sanitizer's or
    // libFuzzer's report) runs in it.
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE})
      (void)::signal(sig, SIG_DFL);
    rlimit cpu{kChildCpuSeconds, kChildCpuSeconds + 1};
    (void)::setrlimit(RLIMIT_CPU, &cpu);
    rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    int status = 1;
    try {
      std::string out = produce();
      status = util::write_all(write_end.get(), out).ok() ? 0 : 1;
    } catch (...) {
      status = 2;
    }
    ::_exit(status);
  }
  write_end.reset();
  auto out = util::read_all(read_end.get(), kMaxChildOutputBytes);
  read_end.reset();  // a child still writing (output too large) gets EPIPE
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return std::nullopt;
  }
  if (!out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return std::nullopt;
  return std::move(out).value();
}

// The source as escaped text in a <pre>: what is shown when the parser failed.
std::string source_as_text(std::string_view html) {
  std::string out = "<pre>";
  if (html.size() > kMaxHtmlInputBytes)
    html = html.substr(0, kMaxHtmlInputBytes);
  if (!html.empty() && html.front() == '\n')
    out += '\n';
  append_escaped(out, html);
  out += "</pre>";
  return out;
}

// ------------------------------------------------------------- output form check

bool is_output_element(std::string_view name, bool* is_void) {
  static const char* const kElements[] = {
      "p",       "div",    "span", "b",    "i",   "u",     "s",       "strike", "em",
      "strong",  "small",  "big",  "sub",  "sup", "del",   "ins",     "mark",   "q",
      "cite",    "abbr",   "kbd",  "samp", "var", "tt",    "code",    "pre",    "blockquote",
      "address", "center", "ul",   "ol",   "li",  "dl",    "dt",      "dd",     "h1",
      "h2",      "h3",     "h4",   "h5",   "h6",  "table", "caption", "thead",  "tbody",
      "tfoot",   "tr",     "td",   "th",   "a",   "font"};
  for (const char* void_name : {"br", "hr", "wbr"}) {
    if (name == void_name) {
      *is_void = true;
      return true;
    }
  }
  *is_void = false;
  return std::find(std::begin(kElements), std::end(kElements), name) != std::end(kElements);
}

bool is_output_attribute(std::string_view name) {
  static const char* const kAttributes[] = {
      "title", "lang",   "dir",         "align",       "valign",  "colspan", "rowspan",
      "width", "border", "cellpadding", "cellspacing", "bgcolor", "color",   "size",
      "face",  "start",  "type",        "value",       "href",    "rel",     "target"};
  return std::find(std::begin(kAttributes), std::end(kAttributes), name) != std::end(kAttributes);
}

// The length of the character reference at s[i] if it is one the escaper writes, else 0.
std::size_t escape_length(std::string_view s, std::size_t i) {
  for (std::string_view e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"}) {
    if (s.substr(i, e.size()) == e)
      return e.size();
  }
  return 0;
}

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = s[i] == '&' ? escape_length(s, i) : 0;
    if (len == 0) {
      out += s[i++];
      continue;
    }
    std::string_view e = s.substr(i, len);
    out += e == "&amp;" ? '&' : e == "&lt;" ? '<' : e == "&gt;" ? '>' : e == "&quot;" ? '"' : '\'';
    i += len;
  }
  return out;
}

// True if s is text as append_escaped writes it: valid UTF-8, no control character
// but TAB and LF, no < > " ' and no & that does not start one of our escapes.
bool is_escaped_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '<' || c == '>' || c == '"' || c == '\'')
      return false;
    if (c == '&') {
      std::size_t len = escape_length(s, i);
      if (len == 0)
        return false;
      i += len;
      continue;
    }
    auto [cp, len] = next_code_point(s, i);
    if ((cp == kReplacementChar && len == 1) || is_unwanted_control(cp))
      return false;
    i += len;
  }
  return true;
}

// True if s is valid UTF-8 without control characters but TAB and LF.
bool is_clean_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, len] = next_code_point(s, i);
    if ((cp == kReplacementChar && len == 1) || is_unwanted_control(cp))
      return false;
    i += len;
  }
  return true;
}

// True if tag (between < and >) is a start or end tag as the Sanitizer writes them.
bool is_output_tag(std::string_view tag) {
  bool is_void = false;
  if (!tag.empty() && tag.front() == '/')
    return is_output_element(tag.substr(1), &is_void) && !is_void;
  std::size_t space = tag.find(' ');
  std::string_view name = tag.substr(0, space);
  if (!is_output_element(name, &is_void))
    return false;
  std::string_view rest = space == std::string_view::npos ? "" : tag.substr(space);
  while (!rest.empty()) {
    // ' NAME="VALUE"'
    std::size_t eq = rest.find("=\"");
    if (rest.front() != ' ' || eq == std::string_view::npos)
      return false;
    std::string_view attr = rest.substr(1, eq - 1);
    std::size_t close = rest.find('"', eq + 2);
    if (close == std::string_view::npos || !is_output_attribute(attr))
      return false;
    std::string_view value = rest.substr(eq + 2, close - eq - 2);
    if (!is_escaped_text(value))
      return false;
    if (attr == "href" || attr == "rel" || attr == "target") {
      if (name != "a")
        return false;
      std::string raw = unescape(value);
      if (attr == "href" && safe_link(raw) != raw)
        return false;
      if (attr == "rel" && raw != "noopener noreferrer")
        return false;
      if (attr == "target" && raw != "_blank")
        return false;
    }
    rest.remove_prefix(close + 1);
  }
  return true;
}

}  // namespace

bool is_sanitized_html(std::string_view html) {
  std::size_t text_start = 0;
  for (std::size_t i = 0; i < html.size(); ++i) {
    if (html[i] != '<')
      continue;
    std::size_t end = html.find('>', i);
    if (end == std::string_view::npos ||
        !is_escaped_text(html.substr(text_start, i - text_start)) ||
        !is_output_tag(html.substr(i + 1, end - i - 1)))
      return false;
    i = end;
    text_start = end + 1;
  }
  return is_escaped_text(html.substr(text_start));
}

namespace detail {

std::string sanitize_html_in_process(std::string_view html) {
  HtmlTree tree(html);
  return Sanitizer().run(tree.document());
}

std::string html_to_text_in_process(std::string_view html) {
  HtmlTree tree(html);
  return TextConverter().run(tree.document());
}

#ifdef WEBMAILKEY_FUZZING
namespace {
bool (*fuzz_in_process)(std::string_view) = nullptr;
}

void set_in_process_for_fuzzing(bool (*in_process)(std::string_view html)) {
  fuzz_in_process = in_process;
}
#endif

}  // namespace detail

namespace {

// produce(html) in a child (run_isolated); in fuzz builds maybe in this process.
std::optional<std::string> produce_isolated(std::string_view html,
                                            std::string (*produce)(std::string_view)) {
#ifdef WEBMAILKEY_FUZZING
  if (detail::fuzz_in_process != nullptr && detail::fuzz_in_process(html))
    return produce(html);
#endif
  return run_isolated([html, produce] { return produce(html); });
}

}  // namespace

std::string sanitize_html(std::string_view html) {
  auto out = produce_isolated(html, detail::sanitize_html_in_process);
  if (out && is_sanitized_html(*out))
    return std::move(out).value();
  return source_as_text(html);
}

std::string html_to_text(std::string_view html) {
  auto out = produce_isolated(html, detail::html_to_text_in_process);
  if (out && is_clean_text(*out))
    return std::move(out).value();
  std::string text;
  for_each_shown_char(html.substr(0, std::min(html.size(), kMaxHtmlInputBytes)),
                      [&](char32_t c) { append_utf8(text, c); });
  return text;
}

}  // namespace wmk::mail
