// MIME parsing (GMime) and the reader's segmenting of a message into plain and
// protected parts: what every message from the outside goes through.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/mail/mime.h"
#include "core/reader/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (auto message = wmk::mail::Message::parse(raw, wmk::mail::ParseDepth::full))
    (void)wmk::reader::inspect(*message);
  return 0;
}
