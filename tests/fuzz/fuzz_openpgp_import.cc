// OpenPGP key import: what `key import --type openpgp` first does with a file (armored
// or binary) — list the keys in it through GPGME and gpg, in a GnuPG home of its own.
// Slow per input (gpg runs each time); it finds crashes in our handling of what
// GPGME reports, not in gpg.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/keys/gnupg_home.h"
#include "core/keys/openpgp.h"

namespace {
std::unique_ptr<wmk::keys::detail::OpenPgp> pgp;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/wmk-fuzz-gpg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    std::abort();
  const std::string home = std::string(tmpl) + "/gnupg";
  if (!wmk::keys::ensure_gnupg_home(home).ok())
    std::abort();
  pgp = std::make_unique<wmk::keys::detail::OpenPgp>(home, std::string(tmpl) + "/tmp");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024)
    return 0;
  (void)pgp->inspect(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
