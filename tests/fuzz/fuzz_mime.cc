// MIME parsing (GMime) and the reader's segmenting of a message into plain and
// protected parts: what every message from the outside goes through.
//
// The reader turns HTML parts into text, which the product does in a forked child
// (mail::html_to_text): a fork per input made this target slow (70–90 inputs/s) and
// blind to the walk. Here it runs in process, except for HTML holding "<![" (the CDATA
// that trips Debian gumbo's assertion, fuzz_sanitize.cc), which still forks. The
// HTML sanitizer itself is fuzz_sanitize's job.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/mail/mime.h"
#include "core/mail/sanitize.h"
#include "core/reader/reader.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  wmk::mail::detail::set_in_process_for_fuzzing(
      [](std::string_view html) { return html.find("<![") == std::string_view::npos; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (auto message = wmk::mail::Message::parse(raw, wmk::mail::ParseDepth::full))
    (void)wmk::reader::inspect(*message);
  return 0;
}
