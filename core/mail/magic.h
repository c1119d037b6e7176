#pragma once
// Content sniffing with libmagic. The type a sender declares for an attachment is
// never trusted for a download: the bytes decide.

#include <string>
#include <string_view>

#include "core/util/result.h"

struct magic_set;

namespace wmk::mail {

// Owns a libmagic handle (magic_t) loaded with the system database, set to
// report MIME types only. Move-only. Not thread-safe: one per thread.
class Magic {
 public:
  // Opens and loads the default magic database. Errc::io if it cannot be loaded.
  static Result<Magic> open();

  Magic(Magic&& o) noexcept : cookie_(o.cookie_) { o.cookie_ = nullptr; }
  Magic& operator=(Magic&& o) noexcept;
  Magic(const Magic&) = delete;
  Magic& operator=(const Magic&) = delete;
  ~Magic();

  // The MIME type of bytes ("image/png", "text/plain", "application/x-empty" for no
  // bytes), "application/octet-stream" if libmagic cannot tell. Looks at most at the
  // first kSniffBytes.
  std::string mime_type(std::string_view bytes) const;

  static constexpr std::size_t kSniffBytes = 1 << 20;

 private:
  explicit Magic(magic_set* cookie) : cookie_(cookie) {}
  magic_set* cookie_;
};

// mime_type() through a per-thread Magic; "application/octet-stream" if the magic
// database cannot be loaded.
std::string sniff_mime_type(std::string_view bytes);

}  // namespace wmk::mail
