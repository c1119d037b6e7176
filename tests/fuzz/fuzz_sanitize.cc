// The HTML sanitizer and the text view of HTML mail. Whatever goes in, what comes out
// must pass the sanitizer's own check. The parse and walk run in this process: the
// product runs them in a child, whose coverage libFuzzer does not see (3 inputs/s, and
// blind). Inputs with a CDATA section go only through the public functions (child and
// all), because Debian's gumbo 0.10.1 asserts on CDATA in foreign content (seed
// parser_crash.html) — why the product isolates the parser; every 256th input too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/mail/sanitize.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view html(reinterpret_cast<const char*>(data), size);
  static unsigned n = 0;
  if (++n % 256 == 0 || html.find("<![") != std::string_view::npos) {
    if (!wmk::mail::is_sanitized_html(wmk::mail::sanitize_html(html)))
      std::abort();
    (void)wmk::mail::html_to_text(html);
    return 0;
  }
  std::string clean = wmk::mail::detail::sanitize_html_in_process(html);
  if (!wmk::mail::is_sanitized_html(clean))
    std::abort();  // the sanitizer wrote something its own check would not allow
  (void)wmk::mail::detail::html_to_text_in_process(html);
  return 0;
}
