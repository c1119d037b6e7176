// S/MIME key import: PKCS#12 (DER) and PEM key files, as `key import --type smime`
// reads them, with an empty and a wrong password.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/keys/smime.h"
#include "core/util/secret.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view file(reinterpret_cast<const char*>(data), size);
  static const auto empty = wmk::util::SecretBuffer::copy_of(std::string_view());
  static const auto password = wmk::util::SecretBuffer::copy_of(std::string_view("fuzz"));
  if (wmk::keys::detail::looks_like_pem(file)) {
    (void)wmk::keys::detail::parse_pem(file, empty);
    (void)wmk::keys::detail::parse_pem(file, password);
  } else {
    (void)wmk::keys::detail::parse_pkcs12(file, empty);
    (void)wmk::keys::detail::parse_pkcs12(file, password);
  }
  return 0;
}
