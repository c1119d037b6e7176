#include "core/mail/magic.h"

#include <magic.h>

#include <algorithm>
#include <optional>

namespace wmk::mail {

namespace {
constexpr const char* kUnknownType = "application/octet-stream";
}

Result<Magic> Magic::open() {
  // No decompression (MAGIC_COMPRESS is off): a zip bomb in an attachment stays a zip.
  magic_t cookie = ::magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
  if (cookie == nullptr)
    return make_error(Errc::io, "cannot initialise libmagic");
  if (::magic_load(cookie, nullptr) != 0) {
    std::string why = ::magic_error(cookie) ? ::magic_error(cookie) : "unknown error";
    ::magic_close(cookie);
    return make_error(Errc::io, "cannot load the magic database: " + why);
  }
  return Magic(cookie);
}

Magic& Magic::operator=(Magic&& o) noexcept {
  if (this != &o) {
    if (cookie_ != nullptr)
      ::magic_close(cookie_);
    cookie_ = o.cookie_;
    o.cookie_ = nullptr;
  }
  return *this;
}

Magic::~Magic() {
  if (cookie_ != nullptr)
    ::magic_close(cookie_);
}

std::string Magic::mime_type(std::string_view bytes) const {
  if (cookie_ == nullptr)
    return kUnknownType;
  std::size_t n = std::min(bytes.size(), kSniffBytes);
  const char* type = ::magic_buffer(cookie_, bytes.data(), n);
  if (type == nullptr || *type == '\0')
    return kUnknownType;
  return type;
}

std::string sniff_mime_type(std::string_view bytes) {
  thread_local std::optional<Magic> magic = [] {
    auto m = Magic::open();
    return m ? std::optional<Magic>(std::move(m).value()) : std::nullopt;
  }();
  if (!magic)
    return kUnknownType;
  return magic->mime_type(bytes);
}

}  // namespace wmk::mail
