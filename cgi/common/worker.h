#pragma once
// The FastCGI worker (libfcgi): the same program that answers one CGI request also
// runs as a long-lived FastCGI application when a web server spawns it with a
// listening socket on stdin (lighttpd's mod_fastcgi `bin-path`).
//
// A worker keeps the config, the database connection and the GPGME engine (one
// context per GnuPG home, core/keys) across requests, and nothing else: each request
// gets a new Request, Context and Response; the session and grant checks run on every
// request as in CGI. It serves one request at a time. After
// config.worker_max_requests requests, or at SIGHUP (after the request in hand), it
// recycles: it replaces its process image with a fresh copy of the program (execve),
// keeping only the listening socket, so that requests arriving meanwhile wait in the
// socket's backlog; the fresh image reads the config afresh. A worker that dies is
// restarted by the web server. After each request the stack it used is overwritten;
// memory freed during the request is wiped by cgi/common/wipe_on_free.cc, which every
// CGI program links. See docs/security.md "FastCGI workers".

#include <cstddef>

#include "cgi/common/guard.h"

namespace wmk::cgi {

// True when stdin is a listening socket (a FastCGI application), false for CGI.
bool started_as_fastcgi();

// Accepts and answers requests on stdin's socket until the recycle limit, a SIGHUP
// or a fatal socket error; recycles by exec. Returns the process exit status when
// it cannot (1 after a socket error, 0 when exec failed).
int serve_fastcgi(const Program& program, const Handler& handler);

// Overwrites the stack below the caller's frame (kWipedStackBytes), so that nothing a
// finished request left in dead stack frames (GPGME's and GMime's read buffers)
// survives into the next.
void wipe_stack();

inline constexpr std::size_t kWipedStackBytes = 1024 * 1024;

// How many times the worker was recycled, in the fresh image's environment (0 or
// unset at first): tests and admins see a recycle in /proc/PID/environ.
inline constexpr const char* kGenerationEnv = "WEBMAILKEY_WORKER_GENERATION";

}  // namespace wmk::cgi
