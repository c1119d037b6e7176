// The check of a Web Key Directory answer (check_wkd_answer): whatever bytes a server
// sends, the answer is refused or it is exactly one public key, with no secret part,
// carrying the looked-up address. The packets are read in process (scan_openpgp), so
// no gpg runs per input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/contacts/wkd.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto scan = wmk::contacts::check_wkd_answer(body, "alice@example.org");
  if (scan && (scan->has_secret || scan->primary_keys != 1))
    std::abort();
  return 0;
}
