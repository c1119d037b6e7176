#pragma once
// Small file-system helpers: an owning fd, atomic replace, private directories.

#include <sys/types.h>
#include <string>
#include <string_view>

#include "core/util/result.h"

namespace wmk::util {

// Owns a file descriptor; closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o)
      reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Creates dir (and parents) with mode 0700 if missing, and checks that it is a directory.
Status ensure_private_dir(const std::string& dir);

// Writes data to path atomically: a temp file in the same directory, fsync, rename,
// fsync of the directory. A crash leaves either the old file or the new one.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600);

// Reads a whole file. Errc::not_found if it does not exist.
Result<std::string> read_file(const std::string& path);

// Writes all of data to fd, retrying on EINTR and short writes.
Status write_all(int fd, std::string_view data);

// Reads fd to EOF, refusing more than max_size bytes (Errc::invalid_argument).
Result<std::string> read_all(int fd, std::size_t max_size);

bool path_exists(const std::string& path);

}  // namespace wmk::util
