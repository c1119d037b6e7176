#include "core/util/result.h"

namespace wmk {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::already_exists:
      return "already_exists";
    case Errc::bad_credentials:
      return "bad_credentials";
    case Errc::wrong_passphrase:
      return "wrong_passphrase";
    case Errc::locked_out:
      return "locked_out";
    case Errc::busy:
      return "busy";
    case Errc::disabled:
      return "disabled";
    case Errc::expired:
      return "expired";
    case Errc::revoked:
      return "revoked";
    case Errc::key_in_use:
      return "key_in_use";
    case Errc::conflict:
      return "conflict";
    case Errc::corrupt:
      return "corrupt";
    case Errc::unsupported:
      return "unsupported";
    case Errc::io:
      return "io";
    case Errc::crypto:
      return "crypto";
    case Errc::config:
      return "config";
    case Errc::unavailable:
      return "unavailable";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace wmk
