#include "core/mail/sendmail.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/mail/compose.h"
#include "core/util/fs.h"

namespace wmk::mail {

namespace {

// The whole environment the program gets: nothing from the CGI request reaches it.
constexpr const char* kSendmailEnv[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", nullptr};

std::string errno_text(int err) {
  return std::strerror(err);
}

// What the program printed, made safe for a one-line error message.
std::string summarise_output(std::string_view out) {
  std::string s;
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t')
      s += ' ';
    else if (u < 0x20 || u == 0x7f)
      continue;
    else
      s += c;
  }
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  if (s.size() > 500)
    s = s.substr(0, 500) + "...";
  return s;
}

const char* sysexit_name(int status) {
  switch (status) {
    case 64:
      return "usage error";
    case 65:
      return "data format error";
    case 67:
      return "addressee unknown";
    case 68:
      return "host name unknown";
    case 69:
      return "service unavailable";
    case 70:
      return "internal software error";
    case 71:
      return "system error";
    case 73:
      return "cannot create output file";
    case 74:
      return "input/output error";
    case 75:
      return "temporary failure";
    case 76:
      return "remote protocol error";
    case 77:
      return "permission denied";
    case 78:
      return "configuration error";
    default:
      return nullptr;
  }
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&a_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  ~SpawnActions() { posix_spawn_file_actions_destroy(&a_); }
  posix_spawn_file_actions_t* get() { return &a_; }

 private:
  posix_spawn_file_actions_t a_;
};

Status make_pipe(util::Fd& read_end, util::Fd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return make_error(Errc::io, "cannot create a pipe: " + errno_text(errno));
  read_end = util::Fd(fds[0]);
  write_end = util::Fd(fds[1]);
  return {};
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

Result<std::vector<std::string>> sendmail_argv(const std::string& program,
                                               const std::string& sender,
                                               const std::vector<std::string>& recipients) {
  if (program.empty() || program.front() != '/')
    return make_error(Errc::config,
                      "the sendmail program must be an absolute path, not \"" + program + "\"");
  if (auto st = validate_address(sender); !st)
    return make_error(Errc::invalid_argument, "sender: " + st.error().message);
  if (recipients.empty())
    return make_error(Errc::invalid_argument, "the message has no recipient");
  std::vector<std::string> argv = {program, "-i", "-f", sender, "--"};
  for (const std::string& r : recipients) {
    WMK_TRY(validate_address(r));
    argv.push_back(r);
  }
  return argv;
}

SendmailTransport::SendmailTransport(std::string program, std::chrono::milliseconds timeout)
    : program_(std::move(program)), timeout_(timeout) {}

Status SendmailTransport::send(const std::string& sender,
                               const std::vector<std::string>& recipients,
                               std::string_view message) {
  auto argv = sendmail_argv(program_, sender, recipients);
  if (!argv)
    return argv.error();
  std::vector<char*> cargv;
  for (std::string& a : *argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);

  // The whole message is in an anonymous memory file before the program starts, and
  // that file is its stdin: if we are killed at any moment after the start, it still
  // reads the message to its real end. (With a pipe, our death would be an early end
  // of file, and sendmail would send what it got so far: a truncated message.) Never
  // a file on disk: the message may hold text the user decrypted.
  util::Fd in(::memfd_create("wmk-outgoing", MFD_CLOEXEC));
  if (!in.valid())
    return make_error(Errc::io,
                      "cannot hold the message for the mail program: " + errno_text(errno));
  for (std::size_t put = 0; put < message.size();) {
    ssize_t w = ::write(in.get(), message.data() + put, message.size() - put);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return make_error(Errc::io,
                        "cannot hold the message for the mail program: " + errno_text(errno));
    put += static_cast<std::size_t>(w);
  }
  if (::lseek(in.get(), 0, SEEK_SET) != 0)
    return make_error(Errc::io, "cannot rewind the message: " + errno_text(errno));
  util::Fd out_read, out_write;
  WMK_TRY(make_pipe(out_read, out_write));

  SpawnActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), in.get(), 0);
  posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), 1);
  posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, program_.c_str(), actions.get(), nullptr, cargv.data(),
                       const_cast<char* const*>(kSendmailEnv));
  if (rc != 0)
    return make_error(Errc::io,
                      "cannot start the mail program " + program_ + ": " + errno_text(rc));
  out_write.reset();
  set_nonblocking(out_read.get());

  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::string output;
  bool timed_out = false;
  while (out_read.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[1] = {{out_read.get(), POLLIN, 0}};
    int pr = poll(fds, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (pr < 0 && errno != EINTR)
      break;
    if (pr <= 0)
      continue;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[4096];
      ssize_t got = read(out_read.get(), buf, sizeof buf);
      if (got > 0) {
        std::size_t room = kMaxSendmailOutput - std::min(kMaxSendmailOutput, output.size());
        output.append(buf, std::min(room, static_cast<std::size_t>(got)));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_read.reset();
      }
    }
  }
  if (timed_out)
    kill(pid, SIGKILL);

  int status = 0;
  pid_t waited;
  do {
    // The program may still run after closing its output: wait for it, within the limit.
    waited = waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (waited == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        timed_out = true;
        kill(pid, SIGKILL);
        continue;
      }
      usleep(10000);
    }
  } while (waited == 0 || (waited < 0 && errno == EINTR));

  std::string said = summarise_output(output);
  std::string tail = said.empty() ? "" : ": " + said;
  if (timed_out)
    return make_error(Errc::io, "the mail program " + program_ + " did not finish within " +
                                    std::to_string(timeout_.count() / 1000) + " s and was stopped" +
                                    tail);
  if (waited < 0)
    return make_error(Errc::io, "cannot wait for the mail program: " + errno_text(errno));
  if (WIFSIGNALED(status))
    return make_error(Errc::io, "the mail program " + program_ + " was killed by signal " +
                                    std::to_string(WTERMSIG(status)) + tail);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0) {
    const char* name = sysexit_name(code);
    return make_error(Errc::io, "the mail program " + program_ + " refused the message (exit " +
                                    std::to_string(code) +
                                    (name != nullptr ? std::string(", ") + name : "") + ")" + tail);
  }
  // The file offset is shared with the program's stdin: how far it read.
  off_t read_to = ::lseek(in.get(), 0, SEEK_CUR);
  if (read_to < 0 || static_cast<std::size_t>(read_to) < message.size())
    return make_error(Errc::io, "the mail program " + program_ +
                                    " stopped reading the message before its end" + tail);
  return {};
}

}  // namespace wmk::mail
