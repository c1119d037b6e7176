#pragma once
// GMime plumbing shared by the .cc files that use GMime (parsing here, building
// and crypto elsewhere). Includes <gmime/gmime.h>: keep it out of public headers.

#include <gmime/gmime.h>

#include <string>
#include <string_view>
#include <utility>

#include "core/mail/mime.h"

namespace wmk::mail {

// Initialises GMime once per process (thread-safe); later calls do nothing.
// GMime is never shut down: its state lives as long as the process.
void ensure_gmime();

// Owns one reference to a GObject (GMimeObject, GMimeStream, GMimeParser, ...);
// g_object_unref on destruction. Move-only.
template <class T>
class GRef {
 public:
  GRef() = default;
  // Takes ownership of a reference the caller already holds (a *_new() result).
  explicit GRef(T* p) : p_(p) {}
  // Adds a reference to an object owned elsewhere (a *_get_*() result).
  static GRef share(T* p) {
    if (p != nullptr)
      g_object_ref(p);
    return GRef(p);
  }
  GRef(GRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  GRef& operator=(GRef&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  GRef(const GRef&) = delete;
  GRef& operator=(const GRef&) = delete;
  ~GRef() { reset(); }
  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  void reset() {
    if (p_ != nullptr)
      g_object_unref(p_);
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
};

// Owns a g_malloc'ed string; g_free on destruction.
class GChars {
 public:
  explicit GChars(char* s) : s_(s) {}
  GChars(const GChars&) = delete;
  GChars& operator=(const GChars&) = delete;
  ~GChars() { g_free(s_); }
  const char* get() const { return s_; }
  std::string str() const { return s_ != nullptr ? std::string(s_) : std::string(); }

 private:
  char* s_;
};

// A memory stream holding a copy of bytes.
GRef<GMimeStream> stream_over(std::string_view bytes);

// Parses bytes as a message; null if GMime finds no header block or the header block is
// larger than kMaxHeaderBytes (mime.h).
GRef<GMimeMessage> parse_gmime_message(std::string_view raw);

// The GMime tree of a parsed message (owned by m).
GMimeMessage* gmime_message(const Message& m);

// The decoded (transfer encoding undone) content of a leaf part.
std::string decoded_content(GMimePart* part);

}  // namespace wmk::mail
