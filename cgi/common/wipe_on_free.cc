// Every CGI program links this file (not the unit tests): it replaces the C
// library's free() and realloc() with versions that overwrite a block before giving
// it back, so that freed memory of a request — decrypted text in GMime's and GPGME's
// buffers, rendered pages, the request's cookies in libfcgi's parameter copies,
// std::string and std::vector storage via operator delete — never lingers in a
// long-lived FastCGI worker for a later request or a core image to find.
//
// The replacement is the executable's own definition of the symbols, which the
// dynamic linker binds every shared library to (the way jemalloc or tcmalloc are
// interposed); allocation itself stays glibc's. Not built with the sanitizers, which
// interpose the same functions.
#include <malloc.h>
#include <string.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>

extern "C" {
void __libc_free(void* block);
void* __libc_malloc(std::size_t size);
}

namespace {

void wipe_block(void* block) {
  if (block != nullptr)
    explicit_bzero(block, malloc_usable_size(block));
}

}  // namespace

extern "C" void free(void* block) noexcept {
  wipe_block(block);
  __libc_free(block);
}

// glibc's realloc would hand a moved block back without going through free(): move it
// here instead, and wipe the old copy.
extern "C" void* realloc(void* block, std::size_t size) noexcept {
  if (block == nullptr)
    return __libc_malloc(size);
  if (size == 0) {
    free(block);
    return nullptr;
  }
  std::size_t have = malloc_usable_size(block);
  if (size <= have)
    return block;  // the tail is wiped when the block is freed
  void* moved = __libc_malloc(size);
  if (moved == nullptr)
    return nullptr;  // errno is ENOMEM; the old block stays valid, as realloc promises
  memcpy(moved, block, have);
  free(block);
  return moved;
}

extern "C" void* reallocarray(void* block, std::size_t count, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(block, bytes);
}
