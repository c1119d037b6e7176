#include "core/util/process.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#if defined(__SANITIZE_ADDRESS__)
#define WMK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WMK_ASAN 1
#endif
#endif
#ifdef WMK_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace wmk::util {

void disable_core_dumps() {
  struct rlimit no_core {
    0, 0
  };
  (void)::setrlimit(RLIMIT_CORE, &no_core);
#ifndef WMK_ASAN
  (void)::prctl(PR_SET_DUMPABLE, 0);
#endif
}

void leak_check_now() {
#ifdef WMK_ASAN
  (void)__lsan_do_recoverable_leak_check();
#endif
}

}  // namespace wmk::util
