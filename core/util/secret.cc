#include "core/util/secret.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace wmk::util {

void wipe(void* data, std::size_t size) {
  if (data != nullptr && size > 0)
    OPENSSL_cleanse(data, size);
}

SecretBuffer::SecretBuffer(std::size_t size) : size_(size), capacity_(size) {
  if (size == 0)
    return;
  data_ = static_cast<std::uint8_t*>(std::calloc(1, size));
  if (data_ == nullptr)
    throw std::bad_alloc();
  // Best effort: mlock can fail under RLIMIT_MEMLOCK; the wipe still happens.
  (void)mlock(data_, capacity_);
#ifdef MADV_DONTDUMP
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data_) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data_) + capacity_ + page - 1) & ~(page - 1);
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTDUMP);
#endif
}

SecretBuffer SecretBuffer::copy_of(std::span<const std::uint8_t> bytes) {
  SecretBuffer b(bytes.size());
  if (!bytes.empty())
    std::memcpy(b.data_, bytes.data(), bytes.size());
  return b;
}

SecretBuffer SecretBuffer::copy_of(std::string_view bytes) {
  return copy_of(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                               bytes.size()));
}

SecretBuffer SecretBuffer::random(std::size_t size) {
  SecretBuffer b(size);
  if (size > 0 && RAND_bytes(b.data_, static_cast<int>(size)) != 1) {
    throw std::runtime_error("the system random number generator failed");
  }
  return b;
}

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept
    : data_(other.data_), size_(other.size_), capacity_(other.capacity_) {
  other.data_ = nullptr;
  other.size_ = other.capacity_ = 0;
}

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = other.data_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.data_ = nullptr;
    other.size_ = other.capacity_ = 0;
  }
  return *this;
}

SecretBuffer::~SecretBuffer() {
  release();
}

void SecretBuffer::release() {
  if (data_ != nullptr) {
    wipe(data_, capacity_);
    (void)munlock(data_, capacity_);
    std::free(data_);
  }
  data_ = nullptr;
  size_ = capacity_ = 0;
}

void SecretBuffer::truncate(std::size_t size) {
  if (size < size_) {
    wipe(data_ + size, size_ - size);
    size_ = size;
  }
}

bool SecretBuffer::equals(const SecretBuffer& other) const {
  if (size_ != other.size_)
    return false;
  if (size_ == 0)
    return true;
  return CRYPTO_memcmp(data_, other.data_, size_) == 0;
}

SecretBuffer SecretBuffer::to_hex() const {
  static const char kHex[] = "0123456789abcdef";
  SecretBuffer out(size_ * 2);
  for (std::size_t i = 0; i < size_; ++i) {
    out.data_[2 * i] = static_cast<std::uint8_t>(kHex[data_[i] >> 4]);
    out.data_[2 * i + 1] = static_cast<std::uint8_t>(kHex[data_[i] & 0xf]);
  }
  return out;
}

SecretBuffer read_secret_line(int fd, std::size_t max_size) {
  SecretBuffer buf(max_size + 1);
  std::size_t n = 0;
  while (n <= max_size) {
    char c;
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error(std::string("reading the secret failed: ") + std::strerror(errno));
    }
    if (r == 0 || c == '\n')
      break;
    buf.data()[n++] = static_cast<std::uint8_t>(c);
    c = 0;
  }
  if (n > max_size)
    throw std::runtime_error("the secret is longer than the limit");
  if (n > 0 && buf.data()[n - 1] == '\r')
    --n;
  buf.truncate(n);
  return buf;
}

}  // namespace wmk::util
