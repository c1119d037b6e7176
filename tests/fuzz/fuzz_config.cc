// The configuration parser: any text gives a config or an error with line numbers,
// and a config it accepts renders to text it accepts again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = wmk::config::parse(text, "fuzz.conf");
  if (c && !wmk::config::parse(wmk::config::render(*c), "rendered.conf"))
    std::abort();
  return 0;
}
