// The HTML sanitizer and the text view of HTML mail. Whatever goes in, what comes out
// must pass the sanitizer's own check.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/mail/sanitize.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view html(reinterpret_cast<const char*>(data), size);
  std::string clean = wmk::mail::sanitize_html(html);
  if (!wmk::mail::is_sanitized_html(clean))
    std::abort();  // the sanitizer let something through that it would not allow
  (void)wmk::mail::html_to_text(html);
  return 0;
}
