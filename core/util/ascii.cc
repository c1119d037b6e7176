#include "core/util/ascii.h"

namespace wmk::util {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = ascii_lower(c);
  return out;
}

}  // namespace wmk::util
