#include "core/keys/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/util/fs.h"

extern char** environ;

namespace wmk::keys::detail {

Result<ProcessOutput> run_process(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0)
    return make_error(Errc::io, std::string("pipe failed: ") + std::strerror(errno));
  util::Fd read_end(pipefd[0]);
  util::Fd write_end(pipefd[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0)
    return make_error(Errc::io, "cannot run " + argv[0] + ": " + std::strerror(rc));

  auto out = util::read_all(read_end.get(), std::size_t{1} << 20);
  read_end.reset();  // a child still writing gets EPIPE instead of blocking our wait
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return make_error(Errc::io, "waitpid failed for " + argv[0]);
  }
  if (!out)
    return out.error();
  ProcessOutput result;
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = std::move(out).value();
  return result;
}

}  // namespace wmk::keys::detail
