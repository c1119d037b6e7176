#pragma once
// Process-wide settings for programs that hold secrets.

namespace wmk::util {

// No core dumps from this process or its children: RLIMIT_CORE 0 (soft and hard) and
// PR_SET_DUMPABLE 0 (also keeps other processes of the same user from ptrace and
// /proc/PID/mem). In a sanitizer build only the limit is set: LeakSanitizer inspects
// the process at exit with ptrace, which a non-dumpable process refuses.
void disable_core_dumps();

}  // namespace wmk::util
