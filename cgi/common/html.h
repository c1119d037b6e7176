#pragma once
// Html: markup that is safe to send, escaped by construction. A value of this type
// can only come from
//   - a string literal in our source (Literal: checked at compile time),
//   - text(): any run-time string, escaped,
//   - fill(): a literal template whose {{slots}} are escaped text or other Html,
//   - trusted_html(): the one greppable door for markup made at run time (e.g. by
//     the HTML sanitizer). Every use of it needs a reason next to it.
// A raw user string therefore cannot reach a page unescaped by accident.

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wmk::cgi {

// A string known at compile time. The consteval constructor refuses anything that
// is not a constant expression, so only literals written in our source qualify.
class Literal {
 public:
  template <std::size_t N>
  consteval Literal(const char (&s)[N]) : s_(s, N - 1) {}  // NOLINT: implicit by design
  constexpr std::string_view view() const { return s_; }

 private:
  std::string_view s_;
};

class Html {
 public:
  Html() = default;
  // Trusted markup written in our source.
  Html(Literal markup) : s_(markup.view()) {}  // NOLINT: implicit by design
  const std::string& str() const { return s_; }
  bool empty() const { return s_.empty(); }
  Html& operator+=(const Html& more) {
    s_ += more.s_;
    return *this;
  }
  friend Html operator+(Html a, const Html& b) { return a += b; }

 private:
  struct Trusted {};
  Html(Trusted, std::string s) : s_(std::move(s)) {}
  friend Html text(std::string_view raw);
  friend Html trusted_html(std::string markup);
  std::string s_;
};

// raw with & < > " ' replaced by character references, invalid UTF-8 and control
// characters (other than tab, newline, carriage return) replaced by U+FFFD. Safe
// in element content and in quoted attribute values.
std::string escape(std::string_view raw);

// raw as escaped text.
Html text(std::string_view raw);

// Markup produced at run time that the caller vouches for (sanitizer output).
// Keep every call greppable: `git grep trusted_html`.
Html trusted_html(std::string markup);

// The value of one {{slot}} in fill(): text (escaped) or Html (inserted as is).
class Slot {
 public:
  Slot(std::string_view raw) : html_(text(raw)) {}                // NOLINT: implicit by design
  Slot(const std::string& raw) : html_(text(raw)) {}              // NOLINT
  Slot(const char* raw) : html_(text(raw)) {}                     // NOLINT
  Slot(Html html) : html_(std::move(html)) {}                     // NOLINT
  Slot(long long n) : html_(text(std::to_string(n))) {}           // NOLINT
  Slot(unsigned long long n) : html_(text(std::to_string(n))) {}  // NOLINT
  Slot(int n) : html_(text(std::to_string(n))) {}                 // NOLINT
  Slot(long n) : html_(text(std::to_string(n))) {}                // NOLINT
  Slot(unsigned n) : html_(text(std::to_string(n))) {}            // NOLINT
  Slot(unsigned long n) : html_(text(std::to_string(n))) {}       // NOLINT
  const Html& html() const { return html_; }

 private:
  Html html_;
};

using Slots = std::initializer_list<std::pair<std::string_view, Slot>>;

// The template with each {{name}} replaced by its slot. Throws std::logic_error (a
// bug in the caller) when a slot is missing, unused, or placed in an unquoted
// attribute value, where escaping would not be enough.
Html fill(Literal tmpl, Slots slots);

// ` name="value"` with value escaped; for optional attributes.
Html attr(Literal name, std::string_view value);

// The items joined, for lists of rows.
Html join(const std::vector<Html>& items);

// path (a literal) with the query parameters percent-encoded (RFC 3986 unreserved
// characters kept). Hrefs built this way cannot carry a javascript: scheme.
std::string url(Literal path,
                std::initializer_list<std::pair<std::string_view, std::string_view>> query = {});

// The hidden CSRF field of a form.
Html csrf_field(std::string_view token);

}  // namespace wmk::cgi
