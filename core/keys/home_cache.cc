#include "core/keys/home_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "core/keys/gnupg_home.h"
#include "core/keys/openpgp.h"
#include "core/util/encoding.h"
#include "core/util/fs.h"

namespace wmk::keys::detail {

namespace {

constexpr std::string_view kMagic = "webmailkey openpgp agent keys v1\n";

// A key file gpg-agent can use only with its passphrase (the key secret). Both of the
// agent's formats: the canonical S-expression ("(21:protected-private-key") and the
// extended one ("Key: (protected-private-key"). Refused: an unprotected key, a
// shadowed one (a smartcard stub) and one still in its import protection.
bool is_protected_key_file(std::string_view file) {
  const bool is_protected = file.rfind("(21:protected-private-key", 0) == 0 ||
                            file.find("Key: (protected-private-key") != std::string_view::npos;
  const bool unsafe = file.find("(11:private-key") != std::string_view::npos ||
                      file.find("(private-key") != std::string_view::npos ||
                      file.find("shadowed-private-key") != std::string_view::npos ||
                      file.find("openpgp-native") != std::string_view::npos;
  return is_protected && !unsafe;
}

bool is_keygrip(std::string_view s) {
  if (s.size() != 40)
    return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

std::string key_file_path(const std::string& home, const std::string& keygrip) {
  return home + "/private-keys-v1.d/" + keygrip + ".key";
}

std::string as_string(const std::vector<std::uint8_t>& blob) {
  return std::string(blob.begin(), blob.end());
}

std::vector<std::uint8_t> as_blob(std::string_view s) {
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

// What this process last saw in a home: per "HOME|FINGERPRINT", the material digest
// and the key files that hold it. Holds no secret (digests and keygrips).
struct Seen {
  std::string digest;
  std::vector<std::string> keygrips;
};
std::mutex g_seen_mutex;
std::map<std::string, Seen>& seen_secret() {
  static std::map<std::string, Seen> m;
  return m;
}
std::set<std::string>& seen_public() {
  static std::set<std::string> s;
  return s;
}

// Replacing a key in the home is one step for the processes of a node: two workers
// rebuilding the same key at once would otherwise remove each other's files.
Result<util::Fd> lock_home(const std::string& home) {
  const std::string path = home + "/webmailkey-cache.lock";
  util::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid())
    return make_error(Errc::io, "cannot open " + path + ": " + std::strerror(errno));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR)
      return make_error(Errc::io, "cannot lock " + path + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

std::string encode_agent_keys(const std::vector<AgentKeyFile>& files) {
  std::string out(kMagic);
  for (const auto& f : files)
    out += f.keygrip + " " + std::to_string(f.content.size()) + "\n" + f.content;
  return out;
}

Result<std::vector<AgentKeyFile>> decode_agent_keys(std::string_view data) {
  auto damaged = [](const std::string& why) {
    return make_error(Errc::corrupt, "the stored OpenPGP key material is damaged: " + why);
  };
  if (data.rfind(kMagic, 0) != 0)
    return damaged("unknown format");
  data.remove_prefix(kMagic.size());
  std::vector<AgentKeyFile> out;
  while (!data.empty()) {
    auto nl = data.find('\n');
    if (nl == std::string_view::npos || nl < 42 || data[40] != ' ')
      return damaged("a bad part header");
    AgentKeyFile f;
    f.keygrip = std::string(data.substr(0, 40));
    if (!is_keygrip(f.keygrip))
      return damaged("a bad keygrip");
    std::size_t len = 0;
    for (char c : data.substr(41, nl - 41)) {
      if (c < '0' || c > '9' || len > (1u << 24))
        return damaged("a bad length");
      len = len * 10 + static_cast<std::size_t>(c - '0');
    }
    data.remove_prefix(nl + 1);
    if (len > data.size())
      return damaged("a truncated part");
    f.content = std::string(data.substr(0, len));
    data.remove_prefix(len);
    if (!is_protected_key_file(f.content))
      return make_error(Errc::corrupt, "the stored OpenPGP key part " + f.keygrip +
                                           " is not protected by its key secret; refused");
    out.push_back(std::move(f));
  }
  if (out.empty())
    return damaged("no key part");
  return out;
}

std::string material_digest(std::string_view openpgp_secret, std::string_view public_blob) {
  return util::sha256_hex(util::sha256_hex(openpgp_secret) + util::sha256_hex(public_blob));
}

HomeCache::HomeCache(store::Db& db, OpenPgp& pgp) : db_(db), pgp_(pgp) {}

void HomeCache::forget_all() {
  std::lock_guard lock(g_seen_mutex);
  seen_secret().clear();
  seen_public().clear();
}

bool HomeCache::remembered(const std::string& fingerprint, const std::string& digest) {
  Seen seen;
  {
    std::lock_guard lock(g_seen_mutex);
    auto it = seen_secret().find(pgp_.home() + "|" + fingerprint);
    if (it == seen_secret().end() || it->second.digest != digest)
      return false;
    seen = it->second;
  }
  // A home emptied by hand (or a key deleted from it) under a running process.
  for (const auto& grip : seen.keygrips) {
    struct stat st {};
    if (::stat(key_file_path(pgp_.home(), grip).c_str(), &st) != 0)
      return false;
  }
  return true;
}

void HomeCache::remember(const std::string& fingerprint, const std::string& digest,
                         const std::vector<AgentKeyFile>& files) {
  Seen seen{digest, {}};
  for (const auto& f : files)
    seen.keygrips.push_back(f.keygrip);
  std::lock_guard lock(g_seen_mutex);
  seen_secret()[pgp_.home() + "|" + fingerprint] = std::move(seen);
}

Result<std::string> HomeCache::read_from_home(const std::string& fingerprint) {
  auto meta = pgp_.find(fingerprint);
  if (!meta || !meta->has_secret)
    return make_error(Errc::not_found, "the GnuPG home has no secret key " + fingerprint);
  std::vector<AgentKeyFile> files;
  for (const auto& grip : meta->keygrips) {
    auto content = util::read_file(key_file_path(pgp_.home(), grip));
    if (!content)
      continue;  // a part without its secret here (gpg lists every subkey)
    if (!is_protected_key_file(*content))
      return make_error(Errc::corrupt, "the GnuPG home holds key " + fingerprint +
                                           " unprotected or in a form webmailkey does not keep");
    files.push_back(AgentKeyFile{grip, std::move(content).value()});
  }
  if (files.empty())
    return make_error(Errc::not_found, "the GnuPG home has no secret key " + fingerprint);
  return encode_agent_keys(files);
}

bool HomeCache::home_matches(const std::string& fingerprint,
                             const std::vector<AgentKeyFile>& files) {
  auto meta = pgp_.find(fingerprint);
  if (!meta || !meta->has_secret)
    return false;
  for (const auto& f : files) {
    auto content = util::read_file(key_file_path(pgp_.home(), f.keygrip));
    if (!content || *content != f.content)
      return false;
  }
  return true;
}

Status HomeCache::write_home(const std::string& fingerprint, const std::vector<AgentKeyFile>& files,
                             std::string_view public_blob) {
  // What the home holds of this key now is not the store's version: out with it.
  if (auto held = pgp_.find(fingerprint); held.ok()) {
    if (auto gone = pgp_.remove(fingerprint); !gone.ok() && gone.code() != Errc::not_found)
      return gone;
  }
  const std::string dir = pgp_.home() + "/private-keys-v1.d";
  WMK_TRY(util::ensure_private_dir(dir));
  for (const auto& f : files)
    WMK_TRY(util::write_file_atomic(key_file_path(pgp_.home(), f.keygrip), f.content, 0600));
  auto imported = pgp_.import_public(public_blob);
  if (!imported)
    return imported.error();
  auto now = pgp_.find(fingerprint);
  if (!now || !now->has_secret)
    return make_error(Errc::io, "the GnuPG home did not take key " + fingerprint +
                                    " from the store" + (now ? "" : ": " + now.error().message));
  return {};
}

Status HomeCache::ensure_secret(std::int64_t key_id, const std::string& fingerprint) {
  auto st = db_.prepare("SELECT material_digest FROM keys WHERE id = ? AND fingerprint = ?");
  st.bind_all(key_id, fingerprint);
  if (!st.step()) {
    st.reset();
    WMK_TRY(drop_if_gone(fingerprint));
    return make_error(Errc::not_found, "key " + fingerprint + " is gone");
  }
  const std::string digest = st.column_is_null(0) ? std::string() : st.column_text(0);
  st.reset();
  if (!digest.empty() && remembered(fingerprint, digest))
    return {};

  // The home may have been removed as a whole: a cache is rebuilt, with the same
  // settings as `init` gives it.
  if (!util::path_exists(pgp_.home() + "/gpg-agent.conf"))
    WMK_TRY(ensure_gnupg_home(pgp_.home()));
  auto lock = lock_home(pgp_.home());
  if (!lock)
    return lock.error();

  auto rd = db_.prepare("SELECT openpgp_secret, public_blob FROM keys WHERE id = ?");
  rd.bind(1, key_id);
  if (!rd.step())
    return make_error(Errc::not_found, "key " + fingerprint + " is gone");
  const bool have_material = !rd.column_is_null(0);
  const std::string material = have_material ? as_string(rd.column_blob(0)) : std::string();
  const std::string public_blob =
      rd.column_is_null(1) ? std::string() : as_string(rd.column_blob(1));
  rd.reset();
  if (public_blob.empty())
    return make_error(Errc::corrupt, "key " + fingerprint + " has no public part stored");

  if (!have_material) {
    // A key made before the store held key material: its node's home fills the row.
    auto from_home = read_from_home(fingerprint);
    if (!from_home) {
      if (from_home.code() != Errc::not_found)
        return from_home.error();
      return make_error(
          Errc::disabled,
          "key " + fingerprint +
              " has no secret key material in the database: it was made before the "
              "database held it, and only the GnuPG home of the node that made it has it. "
              "Run `webmailkey fsck` on that node (or use the key there once), then retry");
    }
    const std::string made = material_digest(*from_home, public_blob);
    auto up = db_.prepare(
        "UPDATE keys SET openpgp_secret = ?, material_digest = ? "
        "WHERE id = ? AND openpgp_secret IS NULL");
    up.bind_all(as_blob(*from_home), made, key_id);
    WMK_TRY(up.try_step());
    auto files = decode_agent_keys(*from_home);
    if (!files)
      return files.error();
    remember(fingerprint, made, *files);
    return {};
  }

  auto files = decode_agent_keys(material);
  if (!files)
    return files.error();
  if (!home_matches(fingerprint, *files))
    WMK_TRY(write_home(fingerprint, *files, public_blob));
  remember(fingerprint, digest.empty() ? material_digest(material, public_blob) : digest, *files);
  return {};
}

Status HomeCache::drop_if_gone(const std::string& fingerprint) {
  auto st = db_.prepare("SELECT 1 FROM keys WHERE fingerprint = ?");
  st.bind(1, fingerprint);
  if (st.step())
    return {};
  st.reset();
  {
    std::lock_guard lock(g_seen_mutex);
    seen_secret().erase(pgp_.home() + "|" + fingerprint);
  }
  auto meta = pgp_.find(fingerprint);
  if (!meta || !meta->has_secret)
    return {};
  // A correspondent may hold the same public key (core/contacts): then only the
  // secret leaves, as KeyStore::remove does.
  auto held =
      db_.prepare("SELECT 1 FROM contact_keys WHERE fingerprint = ? AND type = 'openpgp' LIMIT 1");
  held.bind(1, fingerprint);
  const bool contact_holds = held.step();
  held.reset();
  Status gone = contact_holds ? pgp_.remove_secret(fingerprint) : pgp_.remove(fingerprint);
  if (!gone.ok() && gone.code() != Errc::not_found)
    return gone;
  return {};
}

Status HomeCache::ensure_public(std::string_view armored) {
  const std::string key = pgp_.home() + "|" + util::sha256_hex(armored);
  {
    std::lock_guard lock(g_seen_mutex);
    if (seen_public().count(key) != 0)
      return {};
  }
  auto imported = pgp_.import_public(armored);
  if (!imported)
    return imported.error();
  std::lock_guard lock(g_seen_mutex);
  seen_public().insert(key);
  return {};
}

Result<HomeCache::Filled> HomeCache::fill_missing(bool write) {
  std::vector<std::pair<std::int64_t, std::string>> rows;
  {
    auto st = db_.prepare(
        "SELECT id, fingerprint FROM keys WHERE type = 'openpgp' AND openpgp_secret IS NULL "
        "ORDER BY id");
    while (st.step())
      rows.emplace_back(st.column_int(0), st.column_text(1));
  }
  Filled out;
  for (const auto& [id, fpr] : rows) {
    auto from_home = read_from_home(fpr);
    if (!from_home) {
      if (from_home.code() != Errc::not_found)
        return from_home.error();
      out.missing.push_back(fpr);
      continue;
    }
    if (write) {
      auto pub = db_.prepare("SELECT public_blob FROM keys WHERE id = ?");
      pub.bind(1, id);
      if (!pub.step() || pub.column_is_null(0))
        continue;
      const std::string public_blob = as_string(pub.column_blob(0));
      pub.reset();
      auto up = db_.prepare(
          "UPDATE keys SET openpgp_secret = ?, material_digest = ? "
          "WHERE id = ? AND openpgp_secret IS NULL");
      up.bind_all(as_blob(*from_home), material_digest(*from_home, public_blob), id);
      WMK_TRY(up.try_step());
    }
    out.filled.push_back(fpr);
  }
  return out;
}

}  // namespace wmk::keys::detail
