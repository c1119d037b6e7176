#include "tests/unit/pg_server.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

namespace wmk::test {

namespace {

constexpr uid_t kNobody = 65534;
constexpr const char* kPort = "5432";  // a socket in our own directory: no clash

// The newest installed server's bin directory, or "".
std::string find_bin() {
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(e.path() / "bin" / "initdb") &&
        std::filesystem::exists(e.path() / "bin" / "pg_ctl"))
      found.push_back((e.path() / "bin").string());
  }
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return found.empty() ? std::string() : found.back();
}

// Runs argv (no shell), as nobody when we are root; output goes to log. The exit code.
int run(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
      dup2(devnull, 0);
    if (geteuid() == 0) {
      if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)
        _exit(126);
    }
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

Result<PgServer*> PgServer::shared() {
  static std::unique_ptr<PgServer> server;
  static std::optional<Error> failed;
  if (failed)
    return *failed;
  if (!server) {
    std::unique_ptr<PgServer> s(new PgServer());
    s->bin_ = find_bin();
    if (s->bin_.empty()) {
      failed = make_error(Errc::unsupported,
                          "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                          "the PostgreSQL engine is not tested; scripts/setup installs it");
      return *failed;
    }
    if (auto st = s->start(); !st) {
      failed = st.error();
      return *failed;
    }
    server = std::move(s);
  }
  return server.get();
}

Status PgServer::start() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wmk-pg-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr)
    return make_error(Errc::io, "mkdtemp failed");
  dir_ = tmpl;
  // The socket directory's path must fit in sun_path: keep it short (it is /tmp/...).
  if (geteuid() == 0 && chown(dir_.c_str(), kNobody, kNobody) != 0)
    return make_error(Errc::io, "cannot give " + dir_ + " to nobody");
  const std::string data = dir_ + "/data";
  const std::string log = dir_ + "/log";
  if (run({bin_ + "/initdb", "-D", data, "-U", "wmk", "-A", "trust", "-E", "UTF8", "--locale=C",
           "--no-sync", "--no-instructions"},
          log) != 0)
    return make_error(Errc::io, "initdb failed: " + read_text(log));
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "\n# webmailkey unit tests: a throwaway cluster\n"
         << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "port = " << kPort << "\n"
         << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
         << "shared_buffers = 16MB\nmax_connections = 60\n";
    if (!conf)
      return make_error(Errc::io, "cannot write postgresql.conf");
  }
  if (geteuid() == 0) {
    // initdb made these as nobody; the config was appended as root.
    if (chown((data + "/postgresql.conf").c_str(), kNobody, kNobody) != 0)
      return make_error(Errc::io, "cannot chown postgresql.conf");
  }
  // The postmaster is our child and gets SIGQUIT (immediate shutdown) if this process
  // dies, so a crashed or killed test run leaves no server behind.
  const std::string server_log = dir_ + "/server.log";
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0)
    return make_error(Errc::io, "fork failed");
  if (pid_ == 0) {
    int fd = ::open(server_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (geteuid() == 0) {
      if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)
        _exit(126);
    }
    // After setuid: a change of credentials clears the parent-death signal.
    if (prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || getppid() != parent)
      _exit(125);
    const std::string postgres = bin_ + "/postgres";
    execl(postgres.c_str(), postgres.c_str(), "-D", data.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  running_ = true;
  for (int i = 0; i < 600; ++i) {
    if (store::Db::open_postgresql(conninfo("postgres")).ok())
      return {};
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      running_ = false;
      return make_error(Errc::io, "the PostgreSQL server exited: " + read_text(server_log));
    }
    usleep(100'000);
  }
  return make_error(Errc::io, "the PostgreSQL server did not accept connections within a minute: " +
                                  read_text(server_log));
}

PgServer::~PgServer() {
  if (running_) {
    // Fast shutdown: the sessions are ended, nothing is written back (fsync is off).
    ::kill(pid_, SIGINT);
    int status = 0;
    for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) != pid_; ++i)
      usleep(100'000);
    if (::kill(pid_, 0) == 0) {
      ::kill(pid_, SIGQUIT);
      waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  if (!dir_.empty())
    std::filesystem::remove_all(dir_, ec);
}

std::string PgServer::conninfo(const std::string& dbname) const {
  return "host=" + dir_ + " port=" + kPort + " user=wmk dbname=" + dbname;
}

Result<std::string> PgServer::create_database() {
  auto admin = store::Db::open_postgresql(conninfo("postgres"));
  if (!admin)
    return admin.error();
  const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(++next_db_);
  try {
    admin->exec("CREATE DATABASE " + name + " TEMPLATE template0");
  } catch (const store::StoreError& e) {
    return make_error(Errc::io, e.what());
  }
  return conninfo(name);
}

Result<store::Db> TestDatabase::open() const {
  if (engine == store::Engine::postgresql)
    return store::Db::open_postgresql(conninfo);
  return store::Db::open(sqlite_path, store::OpenMode::create_if_missing);
}

Result<TestDatabase> new_test_database(store::Engine engine, const std::string& sqlite_path) {
  TestDatabase t;
  t.engine = engine;
  t.sqlite_path = sqlite_path;
  if (engine == store::Engine::postgresql) {
    auto server = PgServer::shared();
    if (!server)
      return server.error();
    auto info = (*server)->create_database();
    if (!info)
      return info.error();
    t.conninfo = *info;
  }
  return t;
}

}  // namespace wmk::test
