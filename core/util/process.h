#pragma once
// Process-wide settings for programs that hold secrets.

namespace wmk::util {

// No core dumps from this process or its children: RLIMIT_CORE 0 (soft and hard) and
// PR_SET_DUMPABLE 0 (also keeps other processes of the same user from ptrace and
// /proc/PID/mem). In a sanitizer build only the limit is set: LeakSanitizer inspects
// the process at exit with ptrace, which a non-dumpable process refuses.
void disable_core_dumps();

// In a LeakSanitizer build, reports the leaks of this process now (for a process about
// to execve itself, which skips the check at exit); elsewhere does nothing.
void leak_check_now();

}  // namespace wmk::util
