#include "core/mail/maildir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/util/encoding.h"
#include "core/util/fs.h"

namespace wmk::mail {

namespace {

constexpr std::string_view kInfoSeparator = ":2,";

Error errno_error(const std::string& what, int err = errno) {
  Errc code = err == ENOENT ? Errc::not_found : Errc::io;
  return make_error(code, what + ": " + std::strerror(err));
}

// Owns a DIR*.
class DirHandle {
 public:
  explicit DirHandle(const std::string& path) : dir_(::opendir(path.c_str())) {}
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  ~DirHandle() {
    if (dir_ != nullptr)
      ::closedir(dir_);
  }
  DIR* get() const { return dir_; }

 private:
  DIR* dir_;
};

std::string subdir_path(const std::string& folder_dir, Subdir s) {
  return folder_dir + "/" + subdir_name(s);
}

// The host part of a unique name: '/' and ':' would break the name, so they are
// written as \057 and \072, as the Maildir specification says.
std::string safe_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
    return "localhost";
  std::string out;
  for (const char* p = buf; *p != '\0'; ++p) {
    if (*p == '/')
      out += "\\057";
    else if (*p == ':')
      out += "\\072";
    else if (static_cast<unsigned char>(*p) < 0x21 || *p == 0x7f)
      out += '_';
    else
      out += *p;
  }
  return out;
}

// Splits a file name into uid and flags. nullopt if it cannot name a message.
std::optional<std::pair<std::string, Flags>> split_filename(std::string_view name) {
  std::string_view uid = name;
  Flags flags;
  auto colon = name.find(':');
  if (colon != std::string_view::npos) {
    uid = name.substr(0, colon);
    std::string_view info = name.substr(colon);
    if (info.substr(0, kInfoSeparator.size()) == kInfoSeparator)
      flags = Flags::from_letters(info.substr(kInfoSeparator.size()));
  }
  if (!valid_uid(uid))
    return std::nullopt;
  return std::make_pair(std::string(uid), flags);
}

Status fsync_dir(const std::string& dir) {
  util::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid())
    return errno_error("cannot open " + dir);
  if (::fsync(fd.get()) != 0)
    return errno_error("fsync failed for " + dir);
  return {};
}

// Links from into to without ever replacing an existing file. Falls back to rename
// on file systems without hard links.
int link_no_replace(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0)
    return 0;
  int err = errno;
  if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS) {
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0)
      return EEXIST;
    if (::rename(from.c_str(), to.c_str()) == 0)
      return 0;
    err = errno;
  }
  return err;
}

}  // namespace

const char* folder_name(Folder folder) {
  switch (folder) {
    case Folder::inbox:
      return "INBOX";
    case Folder::sent:
      return "Sent";
    case Folder::drafts:
      return "Drafts";
  }
  return "INBOX";
}

std::optional<Folder> folder_from_name(std::string_view name) {
  for (Folder f : kAllFolders) {
    if (name == folder_name(f))
      return f;
  }
  return std::nullopt;
}

const char* subdir_name(Subdir s) {
  return s == Subdir::new_ ? "new" : "cur";
}

Flags::Flags(std::initializer_list<Flag> flags) {
  for (Flag f : flags)
    add(static_cast<char>(f));
}

Flags Flags::from_letters(std::string_view letters) {
  Flags out;
  for (char c : letters) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
      out.add(c);
  }
  return out;
}

bool Flags::has(Flag f) const {
  return letters_.find(static_cast<char>(f)) != std::string::npos;
}

Flags Flags::with(Flag f) const {
  Flags out = *this;
  out.add(static_cast<char>(f));
  return out;
}

Flags Flags::without(Flag f) const {
  Flags out = *this;
  out.letters_.erase(std::remove(out.letters_.begin(), out.letters_.end(), static_cast<char>(f)),
                     out.letters_.end());
  return out;
}

void Flags::add(char c) {
  auto it = std::lower_bound(letters_.begin(), letters_.end(), c);
  if (it == letters_.end() || *it != c)
    letters_.insert(it, c);
}

bool valid_uid(std::string_view uid) {
  if (uid.empty() || uid.size() > 255 || uid.front() == '.')
    return false;
  for (char c : uid) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == ':' || u < 0x20 || u == 0x7f)
      return false;
  }
  return true;
}

Maildir::Maildir(std::string root, const util::Clock& clock)
    : root_(std::move(root)), clock_(&clock) {
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
}

std::string Maildir::folder_path(Folder folder) const {
  switch (folder) {
    case Folder::inbox:
      return root_;
    case Folder::sent:
      return root_ + "/.Sent";
    case Folder::drafts:
      return root_ + "/.Drafts";
  }
  return root_;
}

Status Maildir::ensure() const {
  for (Folder f : kAllFolders) {
    std::string dir = folder_path(f);
    for (const char* sub : {"tmp", "new", "cur"})
      WMK_TRY(util::ensure_private_dir(dir + "/" + sub));
  }
  return {};
}

std::string Maildir::unique_name() const {
  // Seconds, pid, a per-process counter and 64 random bits: unique across processes,
  // hosts and restarts, and sortable by arrival second as the specification suggests.
  static std::atomic<std::uint64_t> counter{0};
  static const std::string host = safe_hostname();
  return std::to_string(clock_->now()) + ".P" + std::to_string(::getpid()) + "Q" +
         std::to_string(++counter) + "R" + util::hex_encode(util::random_bytes(8)) + "." + host;
}

Result<std::string> Maildir::write_tmp(Folder folder, std::string_view message,
                                       std::string& tmp_path) const {
  std::string tmp_dir = folder_path(folder) + "/tmp";
  for (int attempt = 0;; ++attempt) {
    std::string uid = unique_name();
    tmp_path = tmp_dir + "/" + uid;
    util::Fd fd(
        ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
      int err = errno;
      if (err == EEXIST && attempt < 3)
        continue;
      tmp_path.clear();
      return errno_error(
          std::string("cannot create a file in ") + folder_name(folder) + " (" + tmp_dir + ")",
          err);
    }
    Status st = util::write_all(fd.get(), message);
    if (st.ok() && ::fsync(fd.get()) != 0)
      st = errno_error("fsync failed for " + tmp_path);
    if (st.ok() && ::close(fd.release()) != 0)
      st = errno_error("close failed for " + tmp_path);
    if (!st.ok()) {
      ::unlink(tmp_path.c_str());
      tmp_path.clear();
      return st.error();
    }
    return uid;
  }
}

Result<std::string> Maildir::place(Folder folder, std::string_view message, Subdir subdir,
                                   const std::optional<Flags>& flags,
                                   const std::optional<std::string>& chosen_uid) const {
  std::string dest_dir = subdir_path(folder_path(folder), subdir);
  auto dest_for = [&](const std::string& uid) {
    std::string name = uid;
    if (flags)
      name += std::string(kInfoSeparator) + flags->letters();
    return dest_dir + "/" + name;
  };
  auto durable = [&](const std::string& uid, const std::string& dest) -> Result<std::string> {
    Status synced = fsync_dir(dest_dir);
    if (!synced.ok()) {
      // Not durable: take it back so that the caller's retry does not duplicate it.
      ::unlink(dest.c_str());
      return synced.error();
    }
    return uid;
  };

  // An unnamed file in tmp/ that gets its name in new/ only once complete and synced:
  // a process killed while writing leaves nothing behind.
  const std::string tmp_dir = folder_path(folder) + "/tmp";
  util::Fd anon(::open(tmp_dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  if (anon.valid()) {
    Status st = util::write_all(anon.get(), message);
    if (st.ok() && ::fsync(anon.get()) != 0)
      st = errno_error("fsync failed for a new message in " + tmp_dir);
    if (!st.ok())
      return st.error();
    const std::string proc = "/proc/self/fd/" + std::to_string(anon.get());
    for (int attempt = 0; attempt < 4; ++attempt) {
      std::string uid = chosen_uid ? *chosen_uid : unique_name();
      std::string dest = dest_for(uid);
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, dest.c_str(), AT_SYMLINK_FOLLOW) == 0)
        return durable(uid, dest);
      int err = errno;
      if (err == EEXIST && chosen_uid)
        return make_error(Errc::already_exists, "message " + uid + " is already there");
      if (err == EEXIST)
        continue;
      if (err == ENOENT && !util::path_exists("/proc/self/fd"))
        break;  // no /proc: the named way below
      return errno_error("cannot move the message into " + dest_dir, err);
    }
  } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return errno_error(std::string("cannot create a file in ") + folder_name(folder) + " (" +
                       tmp_dir + ")");
  }

  std::string tmp_path;
  auto uid = write_tmp(folder, message, tmp_path);
  if (!uid)
    return uid.error();
  if (chosen_uid)
    uid = *chosen_uid;
  std::string dest = dest_for(*uid);
  int err = link_no_replace(tmp_path, dest);
  ::unlink(tmp_path.c_str());
  if (err == EEXIST && chosen_uid)
    return make_error(Errc::already_exists, "message " + *uid + " is already there");
  if (err != 0)
    return errno_error("cannot move the message into " + dest_dir, err);
  return durable(*uid, dest);
}

Result<std::string> Maildir::deliver(Folder folder, std::string_view message) const {
  return place(folder, message, Subdir::new_, std::nullopt, std::nullopt);
}

Result<std::string> Maildir::deliver_as(Folder folder, std::string_view message,
                                        const std::string& uid) const {
  if (!valid_uid(uid))
    return make_error(Errc::invalid_argument, "not a valid message id");
  return place(folder, message, Subdir::new_, std::nullopt, uid);
}

Result<std::string> Maildir::store(Folder folder, std::string_view message, Flags flags) const {
  return place(folder, message, Subdir::cur, flags, std::nullopt);
}

int Maildir::clean_tmp(std::chrono::seconds max_age, bool dry_run) const {
  const std::int64_t before = clock_->now() - max_age.count();
  int count = 0;
  for (Folder f : kAllFolders) {
    const std::string tmp = folder_path(f) + "/tmp";
    std::vector<std::string> old;
    {
      DirHandle d(tmp);
      if (d.get() == nullptr)
        continue;
      int dfd = ::dirfd(d.get());
      while (struct dirent* e = ::readdir(d.get())) {
        std::string_view name = e->d_name;
        if (name == "." || name == "..")
          continue;
        struct stat st {};
        if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
          continue;
        if (st.st_mtim.tv_sec < before)
          old.emplace_back(name);
      }
    }
    for (const auto& name : old) {
      if (dry_run || ::unlink((tmp + "/" + name).c_str()) == 0)
        ++count;
    }
  }
  return count;
}

Result<std::vector<Entry>> Maildir::list(Folder folder) const {
  std::vector<Entry> out;
  std::string dir = folder_path(folder);
  for (Subdir s : {Subdir::new_, Subdir::cur}) {
    std::string sub = subdir_path(dir, s);
    DirHandle d(sub);
    if (d.get() == nullptr)
      return errno_error(std::string("cannot read folder ") + folder_name(folder) + " (" + sub +
                         ")");
    int dfd = ::dirfd(d.get());
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d.get());
      if (e == nullptr) {
        if (errno != 0)
          return errno_error("cannot read " + sub);
        break;
      }
      std::string_view name = e->d_name;
      if (name.empty() || name.front() == '.')
        continue;
      auto parts = split_filename(name);
      if (!parts)
        continue;
      struct stat st {};
      if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        continue;  // vanished meanwhile, or not a plain file
      Entry entry;
      entry.uid = std::move(parts->first);
      entry.subdir = s;
      entry.filename = std::string(name);
      entry.flags = std::move(parts->second);
      entry.size = static_cast<std::uint64_t>(st.st_size);
      entry.mtime = st.st_mtim.tv_sec;
      out.push_back(std::move(entry));
    }
  }
  return out;
}

Result<Entry> Maildir::find(Folder folder, std::string_view uid) const {
  if (!valid_uid(uid))
    return make_error(Errc::invalid_argument, "not a valid message id");
  std::string dir = folder_path(folder);
  // Fast path: an unread message sits in new/ under its bare uid.
  struct stat st {};
  std::string direct = subdir_path(dir, Subdir::new_) + "/" + std::string(uid);
  if (::lstat(direct.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    return Entry{std::string(uid),
                 Subdir::new_,
                 std::string(uid),
                 Flags{},
                 static_cast<std::uint64_t>(st.st_size),
                 st.st_mtim.tv_sec};
  }
  // Next fastest: a read message in cur/ with the flags a webmail user leaves most
  // often. Anything else (flagged, replied, other clients' flags) lists the folder.
  for (const char* flags : {"S", ""}) {
    std::string name = std::string(uid) + ":2," + flags;
    std::string path = subdir_path(dir, Subdir::cur) + "/" + name;
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      return Entry{std::string(uid),
                   Subdir::cur,
                   name,
                   Flags::from_letters(flags),
                   static_cast<std::uint64_t>(st.st_size),
                   st.st_mtim.tv_sec};
    }
  }
  auto entries = list(folder);
  if (!entries)
    return entries.error();
  for (auto& e : *entries) {
    if (e.uid == uid)
      return std::move(e);
  }
  return make_error(Errc::not_found, std::string("no such message in ") + folder_name(folder) +
                                         ": " + std::string(uid));
}

Result<std::string> Maildir::read_prefix(Folder folder, const Entry& entry,
                                         std::size_t max_bytes) const {
  if (!valid_uid(entry.uid) || entry.filename.find('/') != std::string::npos ||
      entry.filename.empty() || entry.filename.front() == '.')
    return make_error(Errc::invalid_argument, "not a valid message file name");
  std::string path = subdir_path(folder_path(folder), entry.subdir) + "/" + entry.filename;
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid())
    return errno_error("cannot open message " + entry.uid);
  std::string out;
  out.resize(std::min<std::size_t>(max_bytes, entry.size + 1));
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno_error("cannot read message " + entry.uid);
    }
    if (n == 0)
      break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<std::string> Maildir::read(Folder folder, std::string_view uid) const {
  auto entry = find(folder, uid);
  if (!entry)
    return entry.error();
  std::string path = subdir_path(folder_path(folder), entry->subdir) + "/" + entry->filename;
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid())
    return errno_error("cannot open message " + entry->uid);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return errno_error("cannot stat message " + entry->uid);
  if (static_cast<std::uint64_t>(st.st_size) > kMaxMessageBytes) {
    return make_error(Errc::unsupported, "message " + entry->uid + " is larger than " +
                                             std::to_string(kMaxMessageBytes >> 20) + " MiB");
  }
  auto data = util::read_all(fd.get(), kMaxMessageBytes);
  if (!data && data.code() == Errc::invalid_argument)
    return make_error(Errc::unsupported, "message " + entry->uid + " grew past the size limit");
  return data;
}

Status Maildir::mark_seen(Folder folder, std::string_view uid) const {
  std::string dir = folder_path(folder);
  // Another process may move the file between find() and rename(): look again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto entry = find(folder, uid);
    if (!entry)
      return entry.error();
    if (entry->subdir == Subdir::cur && entry->flags.has(Flag::seen))
      return {};
    std::string from = subdir_path(dir, entry->subdir) + "/" + entry->filename;
    std::string to = subdir_path(dir, Subdir::cur) + "/" + entry->uid +
                     std::string(kInfoSeparator) + entry->flags.with(Flag::seen).letters();
    if (::rename(from.c_str(), to.c_str()) == 0)
      return {};
    if (errno != ENOENT)
      return errno_error("cannot mark message " + entry->uid + " as seen");
  }
  return make_error(Errc::conflict,
                    "message " + std::string(uid) + " kept moving while it was being marked seen");
}

Status Maildir::set_flag(Folder folder, std::string_view uid, Flag flag, bool on) const {
  std::string dir = folder_path(folder);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto entry = find(folder, uid);
    if (!entry)
      return entry.error();
    if (entry->subdir == Subdir::cur && entry->flags.has(flag) == on)
      return {};
    Flags flags = on ? entry->flags.with(flag) : entry->flags.without(flag);
    std::string from = subdir_path(dir, entry->subdir) + "/" + entry->filename;
    std::string to = subdir_path(dir, Subdir::cur) + "/" + entry->uid +
                     std::string(kInfoSeparator) + flags.letters();
    if (::rename(from.c_str(), to.c_str()) == 0)
      return fsync_dir(subdir_path(dir, Subdir::cur));
    if (errno != ENOENT)
      return errno_error("cannot change the flags of message " + entry->uid);
  }
  return make_error(Errc::conflict, "message " + std::string(uid) +
                                        " kept moving while its flags were being changed");
}

Status Maildir::remove(Folder folder, std::string_view uid) const {
  auto entry = find(folder, uid);
  if (!entry)
    return entry.error();
  std::string path = subdir_path(folder_path(folder), entry->subdir) + "/" + entry->filename;
  if (::unlink(path.c_str()) != 0)
    return errno_error("cannot delete message " + entry->uid);
  return {};
}

Result<DirTimes> Maildir::dir_times(Folder folder) const {
  std::string dir = folder_path(folder);
  DirTimes t;
  for (Subdir s : {Subdir::new_, Subdir::cur}) {
    struct stat st {};
    std::string sub = subdir_path(dir, s);
    if (::stat(sub.c_str(), &st) != 0)
      return errno_error(std::string("cannot stat folder ") + folder_name(folder) + " (" + sub +
                         ")");
    std::int64_t ns =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    (s == Subdir::new_ ? t.new_ns : t.cur_ns) = ns;
  }
  return t;
}

}  // namespace wmk::mail
