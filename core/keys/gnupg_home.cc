#include "core/keys/gnupg_home.h"

#include <sys/stat.h>

#include <mutex>
#include <sstream>

#include "core/keys/subprocess.h"
#include "core/util/fs.h"

namespace wmk::keys {

namespace {

// gpg-agent 2.1+ knows --s2k-count; ask the installed one rather than assume, since an
// unknown option in gpg-agent.conf stops the agent from starting.
bool agent_supports_s2k_count() {
  static std::once_flag once;
  static bool supported = false;
  std::call_once(once, [] {
    auto r = detail::run_process({"gpg-agent", "--dump-options"});
    supported = r.ok() && r->out.find("--s2k-count\n") != std::string::npos;
  });
  return supported;
}

constexpr const char* kGpgConf =
    "# Written by webmailkey init; rewritten if changed. See docs/security.md.\n"
    "# Passphrases come only from webmailkey through GPGME's loopback callback.\n"
    "pinentry-mode loopback\n"
    "no-auto-key-retrieve\n"
    "no-greeting\n";

// The lines that make the agent unable to bypass webmailkey: check_gnupg_home
// insists on each of them.
const char* const kRequiredAgentLines[] = {
    "default-cache-ttl 0",      "max-cache-ttl 0",         "allow-loopback-pinentry",
    "ignore-cache-for-signing", "no-allow-external-cache",
};

}  // namespace

std::string agent_conf_text(S2kCost cost) {
  std::string text =
      "# Written by webmailkey init; rewritten if changed. See docs/security.md.\n"
      "# gpg-agent never caches a passphrase, so it can never bypass a grant.\n";
  for (const char* line : kRequiredAgentLines) {
    text += line;
    text += '\n';
  }
  if (cost == S2kCost::cheap && agent_supports_s2k_count()) {
    text +=
        "# Key passphrases here are 256-bit random key secrets: stretching them adds\n"
        "# nothing, and the memory-hard KDF runs once per unlock in webmailkey instead.\n"
        "s2k-count 65536\n";
  }
  return text;
}

Status ensure_gnupg_home(const std::string& dir, S2kCost cost) {
  WMK_TRY(util::ensure_private_dir(dir));
  if (::chmod(dir.c_str(), 0700) != 0)
    return make_error(Errc::io, "cannot set mode 0700 on " + dir);
  auto write_if_changed = [](const std::string& path, const std::string& text) -> Result<bool> {
    auto current = util::read_file(path);
    if (current.ok() && *current == text)
      return false;
    WMK_TRY(util::write_file_atomic(path, text, 0600));
    return true;
  };
  auto gpg_changed = write_if_changed(dir + "/gpg.conf", kGpgConf);
  if (!gpg_changed)
    return gpg_changed.error();
  auto agent_changed = write_if_changed(dir + "/gpg-agent.conf", agent_conf_text(cost));
  if (!agent_changed)
    return agent_changed.error();
  if (*agent_changed)
    WMK_TRY(stop_agent(dir));
  return {};
}

Status check_gnupg_home(const std::string& dir) {
  if (!util::path_exists(dir))
    return make_error(Errc::not_found,
                      "the GnuPG home " + dir + " is missing: run `webmailkey init`");
  auto conf = util::read_file(dir + "/gpg-agent.conf");
  if (!conf) {
    return make_error(Errc::config,
                      "cannot read " + dir + "/gpg-agent.conf: run `webmailkey init`");
  }
  std::istringstream lines(*conf);
  std::string line;
  std::vector<std::string> present;
  while (std::getline(lines, line))
    present.push_back(line);
  for (const char* required : kRequiredAgentLines) {
    bool found = false;
    for (const auto& l : present)
      found = found || l == required;
    if (!found) {
      return make_error(Errc::config, dir + "/gpg-agent.conf lacks \"" + required +
                                          "\", so gpg-agent could cache passphrases: run "
                                          "`webmailkey init` to repair it");
    }
  }
  return {};
}

Result<std::string> agent_socket_path(const std::string& dir) {
  auto r = detail::run_process({"gpgconf", "--homedir", dir, "--list-dirs", "agent-socket"});
  if (!r)
    return r.error();
  std::string path = r->out;
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r'))
    path.pop_back();
  if (r->exit_status != 0 || path.empty())
    return make_error(Errc::io, "gpgconf could not name the agent socket for " + dir);
  // gpgconf percent-escapes some characters; a data directory should not contain them.
  if (path.find('%') != std::string::npos)
    return make_error(Errc::config,
                      "the GnuPG home path " + dir + " needs escaping; use a plain path");
  return path;
}

Status launch_agent(const std::string& dir) {
  auto r = detail::run_process({"gpgconf", "--homedir", dir, "--launch", "gpg-agent"});
  if (!r)
    return r.error();
  if (r->exit_status != 0)
    return make_error(Errc::io, "gpg-agent could not be started for " + dir);
  return {};
}

Status stop_agent(const std::string& dir) {
  auto r = detail::run_process({"gpgconf", "--homedir", dir, "--kill", "gpg-agent"});
  if (!r)
    return r.error();
  if (r->exit_status != 0)
    return make_error(Errc::io, "gpgconf --kill gpg-agent failed for " + dir);
  return {};
}

}  // namespace wmk::keys
