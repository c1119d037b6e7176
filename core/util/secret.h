#pragma once
// SecretBuffer: owns bytes that must never leak (passwords, passphrases, key
// secrets, grant secrets). The pages are mlock()ed so they are never swapped,
// excluded from core dumps, and wiped with OPENSSL_cleanse on release.
// Move-only; there is deliberately no conversion to std::string.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace wmk::util {

class SecretBuffer {
 public:
  SecretBuffer() = default;
  // Allocates size zeroed bytes in locked memory.
  explicit SecretBuffer(std::size_t size);
  // Copies bytes in; the caller wipes its own copy (see wipe()).
  static SecretBuffer copy_of(std::span<const std::uint8_t> bytes);
  static SecretBuffer copy_of(std::string_view bytes);
  // size bytes from the CSPRNG.
  static SecretBuffer random(std::size_t size);

  SecretBuffer(SecretBuffer&& other) noexcept;
  SecretBuffer& operator=(SecretBuffer&& other) noexcept;
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  ~SecretBuffer();

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  std::span<std::uint8_t> bytes() { return {data_, size_}; }
  // A view for C APIs that take char*; never store it in a std::string.
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Shrinks the logical size (e.g. after reading fewer bytes than reserved).
  void truncate(std::size_t size);
  // Constant-time equality.
  bool equals(const SecretBuffer& other) const;
  // Lowercase hex of the bytes, itself a secret.
  SecretBuffer to_hex() const;

 private:
  void release();
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Overwrites memory in a way the compiler may not optimise out.
void wipe(void* data, std::size_t size);

// Reads a secret from fd up to the first newline (which is dropped) or EOF.
// Refuses more than max_size bytes. Returns an empty buffer on EOF with no data.
// Throws std::runtime_error on read errors.
SecretBuffer read_secret_line(int fd, std::size_t max_size = 4096);

}  // namespace wmk::util
