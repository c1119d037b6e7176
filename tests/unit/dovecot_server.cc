#include "tests/unit/dovecot_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "core/util/fs.h"
#include "tests/unit/mail_test_tools.h"

namespace wmk::test {

std::uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot find a free port");
  close(fd);
  return ntohs(a.sin_port);
}

bool port_open(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

Dovecot::Dovecot(DovecotOptions options) {
  const std::string& d = dir_.path();
  chmod(d.c_str(), 0755);  // the auth and mail processes run as dovecot
  auto tools = run_command(
      "(cd " + d +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2"
      " -subj '/CN=webmailkey test CA'"
      " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr"
      " -subj '/CN=localhost'"
      " && printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
      " -out server.pem -days 2 -extfile ext.cnf)");
  if (tools.status != 0)
    throw std::runtime_error("openssl failed: " + tools.output);

  std::string users;
  for (int i = 0; i < kUsers; ++i)
    users += user_name(i) + ":{PLAIN}" + user_password(i) + "\n";
  write(d + "/passwd", users);
  write(d + "/masters", std::string("master:{PLAIN}") + kMasterPassword + "\n");
  std::filesystem::create_directories(d + "/mail");
  std::filesystem::create_directories(d + "/run");
  passwd* pw = getpwnam("dovecot");
  if (pw == nullptr || chown((d + "/mail").c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::runtime_error("cannot give the mail directory to the dovecot user");

  imap_port_ = free_port();
  imaps_port_ = free_port();
  while (imaps_port_ == imap_port_)
    imaps_port_ = free_port();
  write(d + "/dovecot.conf",
        "base_dir = " + d +
            "/run\n"
            "state_dir = " +
            d +
            "/run\n"
            "log_path = " +
            d +
            "/dovecot.log\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "ssl = required\n"
            "ssl_cert = <" +
            d +
            "/server.pem\n"
            "ssl_key = <" +
            d +
            "/server.key\n"
            "auth_mechanisms = plain\n"
            "auth_master_user_separator = *\n"
            "default_internal_user = dovecot\n"
            "default_login_user = dovenull\n"
            "first_valid_uid = 1\n"
            "passdb {\n  driver = passwd-file\n  master = yes\n  args = scheme=PLAIN " +
            d +
            "/masters\n}\n"
            "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN " +
            d +
            "/passwd\n}\n"
            "userdb {\n  driver = static\n  args = uid=dovecot gid=dovecot home=" +
            d +
            "/mail/%u\n}\n"
            "mail_location = maildir:~/Maildir\n"
            "service imap-login {\n"
            "  chroot =\n"
            "  inet_listener imap {\n    port = " +
            std::to_string(imap_port_) +
            "\n  }\n"
            "  inet_listener imaps {\n    port = " +
            std::to_string(imaps_port_) +
            "\n    ssl = yes\n  }\n}\n"
            "service anvil {\n  chroot =\n}\n"
            // The listener's port in each login line: which port a client came in on,
            // and with "TLS" whether it had TLS (STARTTLS on the plain port).
            "login_log_format_elements = user=<%u> method=%m rip=%r lip=%l lport=%{lport} "
            "mpid=%e %c session=<%{session}>\n" +
            (options.condstore ? std::string()
                               : std::string("imap_capability = ") + kPlainCapabilities + "\n"));
  start();
}

void Dovecot::start() {
  if (pid_ > 0)
    return;
  const std::string& d = dir_.path();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // a test binary that crashes leaves no Dovecot
    int out = open((d + "/dovecot.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(out, 2);
    execl(kDovecot, kDovecot, "-F", "-c", (d + "/dovecot.conf").c_str(), nullptr);
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!(port_open(imap_port_) && port_open(imaps_port_))) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("dovecot exited: " + log());
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("dovecot did not listen within 15 s: " + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Dovecot::~Dovecot() {
  stop();
}

void Dovecot::stop() {
  if (pid_ <= 0)
    return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  // The master is gone; its listeners close with it. Its imap processes outlive it
  // here, still serving their connections: end them, as a real restart or outage
  // would, so that a client's open connection is closed by the server. They are this
  // instance's: their working directory is a user's home under its mail directory.
  const std::string homes = dir_.path() + "/mail/";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::error_code link_ec;
    auto cwd = std::filesystem::read_symlink(entry.path() / "cwd", link_ec);
    if (!link_ec && cwd.string().rfind(homes, 0) == 0)
      kill(static_cast<pid_t>(std::stol(name)), SIGTERM);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while ((port_open(imap_port_) || port_open(imaps_port_)) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

std::string Dovecot::log() const {
  std::string out;
  for (const char* f : {"/dovecot.out", "/dovecot.log"}) {
    auto r = util::read_file(dir_.path() + f);
    if (r)
      out += *r;
  }
  return out;
}

void Dovecot::write(const std::string& path, std::string_view data) {
  write_test_file(path, data);
  chmod(path.c_str(), 0644);  // test credentials, read by dovecot's auth process
}

std::optional<std::string> dovecot_unavailable() {
  if (access(kDovecot, X_OK) != 0)
    return std::string(kDovecot) + " is not installed (scripts/setup installs dovecot-imapd)";
  if (geteuid() != 0)
    return std::string(
        "the IMAP tests start Dovecot, whose mail processes run as the "
        "dovecot user: they need root");
  return std::nullopt;
}

std::unique_ptr<Dovecot> start_dovecot(std::string* why, DovecotOptions options) {
  if (auto no = dovecot_unavailable()) {
    *why = *no;
    return nullptr;
  }
  try {
    return std::make_unique<Dovecot>(options);
  } catch (const std::exception& e) {
    *why = std::string("cannot start Dovecot: ") + e.what();
    return nullptr;
  }
}

}  // namespace wmk::test
