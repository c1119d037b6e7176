// The Autocrypt header parsers (issue 10's Level 1 support): the Autocrypt values of a
// message's header block, unfolded, and each value's attributes. Any input must give a
// header or an error, never a crash; an accepted header never holds key data over the
// size limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/contacts/autocrypt.h"
#include "core/contacts/keydata.h"

namespace {

void check(std::string_view value) {
  auto header = wmk::contacts::parse_autocrypt(value);
  if (header && header->keydata.size() > wmk::contacts::kMaxKeyDataBytes)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto& value : wmk::contacts::autocrypt_header_values(input))
    check(value);
  check(input);
  return 0;
}
