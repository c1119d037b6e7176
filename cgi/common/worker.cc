#include "cgi/common/worker.h"

#include <alloca.h>
#include <fcgiapp.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/util/fs.h"
#include "core/util/process.h"
#include "core/util/secret.h"

namespace wmk::cgi {

namespace {

// The request's parameters and body, read from libfcgi's streams.
RequestSource fastcgi_source(FCGX_Request& request) {
  RequestSource s;
  FCGX_Request* req = &request;
  s.env = [req](const char* name) -> std::optional<std::string> {
    const char* v = FCGX_GetParam(name, req->envp);
    if (v == nullptr)
      return std::nullopt;
    return std::string(v);
  };
  s.take_env = [req](const char* name) {
    char* v = FCGX_GetParam(name, req->envp);
    if (v == nullptr)
      return util::SecretBuffer();
    std::size_t len = std::strlen(v);
    auto copy = util::SecretBuffer::copy_of(std::string_view(v, len));
    util::wipe(v, len);  // libfcgi's copy reads as empty from now on
    return copy;
  };
  s.read_body = [req](std::span<std::uint8_t> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      int want = static_cast<int>(std::min<std::size_t>(out.size() - got, INT_MAX));
      int r = FCGX_GetStr(reinterpret_cast<char*>(out.data() + got), want, req->in);
      if (r <= 0)
        return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  };
  return s;
}

// One request, in its own frame: everything it allocated is freed (and so wiped)
// before the caller wipes the stack.
[[gnu::noinline]] void serve_one(const Program& program, const Handler& handler,
                                 FCGX_Request& request, std::optional<app::App>& app,
                                 mail::MailboxKeeper& mailboxes) {
  RequestSource source = fastcgi_source(request);
  Response response = handle(program, source, handler, app, mailboxes);
  bool ok = true;
  response.write([&](std::string_view piece) {
    if (ok && !piece.empty() &&
        FCGX_PutStr(piece.data(), static_cast<int>(piece.size()), request.out) < 0)
      ok = false;
  });
  if (!ok)
    std::cerr << "webmailkey " << program.name << ": the client went away" << std::endl;
  // Read the request's stdin to its end (the empty FCGI_STDIN record, and any body a
  // refused request left unread): libfcgi closes the connection without draining it,
  // and closing a Unix socket with unread data resets the connection instead of
  // closing it, which the web server could take for a request never delivered.
  char rest[4096];
  while (FCGX_GetStr(rest, sizeof rest, request.in) > 0) {
  }
  util::wipe(rest, sizeof rest);
}

// Set by SIGHUP: recycle after the request in hand (or now, when idle).
volatile std::sig_atomic_t recycle_requested = 0;

extern "C" void on_sighup(int) {
  recycle_requested = 1;
}

// Set by SIGTERM (how lighttpd, spawn-fcgi's supervisor or systemd stop a worker) and
// SIGINT: exit after the request in hand (or now, when idle), with status 0 and
// nothing in the server's error log. libfcgi's own SIGTERM handler would make the
// accept fail as if the socket had broken.
volatile std::sig_atomic_t stop_requested = 0;

extern "C" void on_stop(int) {
  stop_requested = 1;
}

// How many times this worker has been recycled (WEBMAILKEY_WORKER_GENERATION).
unsigned long generation() {
  const char* g = std::getenv(kGenerationEnv);
  return g == nullptr ? 0 : std::strtoul(g, nullptr, 10);
}

// Replaces the process image with a fresh copy of the program, keeping stdin (the
// listening socket): connections that arrive meanwhile wait in the socket's backlog
// instead of failing, as they would in the gap between an exit and the web server's
// restart. Returns only when exec failed.
void reexec(const Program& program) {
  std::string self = "/proc/self/exe";
  std::string arg0 = std::string(program.name) + ".cgi";
  if (auto cmdline = util::read_file("/proc/self/cmdline"); cmdline && !cmdline->empty())
    arg0 = cmdline->substr(0, cmdline->find('\0'));
  std::string gen = std::string(kGenerationEnv) + "=" + std::to_string(generation() + 1);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kGenerationEnv, std::strlen(kGenerationEnv)) != 0 ||
        (*e)[std::strlen(kGenerationEnv)] != '=')
      env.push_back(*e);
  }
  env.push_back(gen.data());
  env.push_back(nullptr);
  char* argv[] = {arg0.data(), nullptr};
  // exec skips the leak check LeakSanitizer makes at exit: make it here, so that a
  // worker's leaks over its worker_max_requests requests are reported (the sanitizer
  // suite fails on any report).
  util::leak_check_now();
  ::close_range(3, ~0U, 0);  // the database, GPGME's and libmagic's descriptors
  ::execve(self.c_str(), argv, env.data());
  std::cerr << "webmailkey " << program.name << ": cannot restart: " << std::strerror(errno)
            << "; exiting instead" << std::endl;
}

}  // namespace

bool started_as_fastcgi() {
  return FCGX_IsCGI() == 0;
}

int serve_fastcgi(const Program& program, const Handler& handler) {
  struct sigaction hup {};
  hup.sa_handler = on_sighup;  // no SA_RESTART: a SIGHUP interrupts the wait in accept()
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);
  if (FCGX_Init() != 0) {
    std::cerr << "webmailkey " << program.name << ": libfcgi could not start" << std::endl;
    return 1;
  }
  // After FCGX_Init, which installs libfcgi's handlers: these replace its SIGTERM one.
  struct sigaction stop {};
  stop.sa_handler = on_stop;  // no SA_RESTART, as for SIGHUP
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  FCGX_Request request;
  if (FCGX_InitRequest(&request, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
    std::cerr << "webmailkey " << program.name << ": libfcgi could not start" << std::endl;
    return 1;
  }
  std::optional<app::App> app;
  // At most one IMAP connection kept between requests (mail::MailboxKeeper's rules).
  mail::MailboxKeeper mailboxes;
  std::uint64_t served = 0;
  bool recycle = false;
  bool stopped = false;
  while (!recycle_requested && !stop_requested) {
    if (FCGX_Accept_r(&request) < 0) {
      stopped = stop_requested != 0;
      recycle = !stopped && recycle_requested != 0;
      if (!recycle && !stopped)
        std::cerr << "webmailkey " << program.name << ": the FastCGI socket failed" << std::endl;
      break;
    }
    serve_one(program, handler, request, app, mailboxes);
    // Frees (and so wipes) the request's parameters, including its cookies, and the
    // input and output buffers.
    FCGX_Finish_r(&request);
    wipe_stack();
    ++served;
    // Without an app (the config could not be opened) every request tries again in a
    // fresh process.
    std::uint64_t limit = app ? app->config.worker_max_requests : 1;
    if (stop_requested) {
      stopped = true;
      break;
    }
    if (served >= limit || recycle_requested) {
      recycle = true;
      break;
    }
  }
  stopped = stopped || stop_requested != 0;
  mailboxes.drop();  // LOGOUT before a recycle or an exit
  FCGX_Free(&request, 1);
  if (recycle && !stopped) {
    app.reset();
    reexec(program);
  }
  return recycle || stopped ? 0 : 1;
}

void wipe_stack() {
  auto* below = static_cast<unsigned char*>(alloca(kWipedStackBytes));
  util::wipe(below, kWipedStackBytes);
  // Keep the compiler from dropping the alloca.
  asm volatile("" : : "r"(below) : "memory");
}

}  // namespace wmk::cgi
