#include "core/util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/util/encoding.h"

namespace wmk::util {

namespace {
Error errno_error(const std::string& what) {
  Errc code = errno == ENOENT ? Errc::not_found : Errc::io;
  return make_error(code, what + ": " + std::strerror(errno));
}
}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
}

Status ensure_private_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p(dir);
  if (!std::filesystem::exists(p, ec)) {
    if (p.has_parent_path() && !std::filesystem::exists(p.parent_path(), ec)) {
      WMK_TRY(ensure_private_dir(p.parent_path().string()));
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return errno_error("cannot create directory " + dir);
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return errno_error("cannot stat " + dir);
  if (!S_ISDIR(st.st_mode))
    return make_error(Errc::io, dir + " exists and is not a directory");
  return {};
}

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno_error("write failed");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> read_all(int fd, std::size_t max_size) {
  std::string out;
  // A regular file's size is known: room for it once, rather than a doubling (and, in
  // the CGI programs, a wipe of the old block) every time the string grows.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(std::min(static_cast<std::size_t>(st.st_size), max_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno_error("read failed");
    }
    if (n == 0)
      break;
    if (out.size() + static_cast<std::size_t>(n) > max_size) {
      return make_error(Errc::invalid_argument,
                        "input is larger than the limit of " + std::to_string(max_size) + " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  std::string tmp = dir + "/." + p.filename().string() + ".tmp-" + random_token(6);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid())
    return errno_error("cannot create " + tmp);
  Status st = write_all(fd.get(), data);
  if (st.ok() && ::fsync(fd.get()) != 0)
    st = errno_error("fsync failed for " + tmp);
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = errno_error("cannot rename into " + path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid())
    (void)::fsync(dfd.get());
  return {};
}

Result<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return errno_error("cannot open " + path);
  return read_all(fd.get(), std::size_t{1} << 30);
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace wmk::util
