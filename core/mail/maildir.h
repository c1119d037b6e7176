#pragma once
// A user's mailbox in Maildir++ layout, as Postfix and Dovecot write it:
//   ROOT/{tmp,new,cur}            INBOX
//   ROOT/.Sent/{tmp,new,cur}      Sent
//   ROOT/.Drafts/{tmp,new,cur}    Drafts
// A message file is named UID in new/ and UID:2,FLAGS in cur/ (FLAGS in ASCII order).
//
// Folders are an enum: no name typed by a user ever becomes a path. UIDs coming
// back from a browser are checked (valid_uid) before they touch the file system.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::mail {

enum class Folder { inbox, sent, drafts };

inline constexpr Folder kAllFolders[] = {Folder::inbox, Folder::sent, Folder::drafts};

// The largest message read() returns and deliver_message() accepts.
inline constexpr std::size_t kMaxMessageBytes = std::size_t{64} << 20;

// "INBOX", "Sent" or "Drafts".
const char* folder_name(Folder folder);
// The folder with exactly that name; nullopt for anything else (no case folding, no paths).
std::optional<Folder> folder_from_name(std::string_view name);

// Maildir info flags (the letters after ":2,").
enum class Flag : char {
  draft = 'D',
  flagged = 'F',
  passed = 'P',
  replied = 'R',
  seen = 'S',
  trashed = 'T',
};

// A set of flag letters kept in ASCII order without duplicates. Letters this code
// does not know (Dovecot keywords a-z) are kept as they are.
class Flags {
 public:
  Flags() = default;
  Flags(std::initializer_list<Flag> flags);
  // The flags in the info part of a file name ("2,FRS" or just "FRS"); non-letters are dropped.
  static Flags from_letters(std::string_view letters);
  bool has(Flag f) const;
  Flags with(Flag f) const;
  Flags without(Flag f) const;
  const std::string& letters() const { return letters_; }
  bool operator==(const Flags&) const = default;

 private:
  void add(char c);
  std::string letters_;
};

enum class Subdir { new_, cur };

// "new" or "cur".
const char* subdir_name(Subdir s);

struct Entry {
  std::string uid;       // unique name, before ":2,"
  Subdir subdir;         // where the file is
  std::string filename;  // file name in subdir, with the info part
  Flags flags;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // Unix seconds
};

// Modification times (nanoseconds since the epoch) of a folder's new/ and cur/.
struct DirTimes {
  std::int64_t new_ns = 0;
  std::int64_t cur_ns = 0;
  bool operator==(const DirTimes&) const = default;
};

// True if uid can name a message: 1-255 bytes, no '/', no ':', no control byte,
// not starting with '.'.
bool valid_uid(std::string_view uid);

class Maildir {
 public:
  // root is the Maildir directory (the one holding tmp/, new/, cur/). Nothing is
  // touched until a method runs. clock names the seconds in new unique names.
  explicit Maildir(std::string root, const util::Clock& clock = util::system_clock());

  const std::string& root() const { return root_; }
  // The directory of a folder (root for INBOX, root/.Sent, root/.Drafts).
  std::string folder_path(Folder folder) const;

  // Creates root and every folder's tmp/, new/, cur/ (mode 0700) where missing.
  // Errc::io if a directory cannot be created or a file is in the way.
  Status ensure() const;

  // Delivers a message: written to tmp/ as an unnamed file (O_TMPFILE; a named one
  // where the file system has none), fsynced, then linked into new/ under a fresh
  // unique name (never replacing a file); new/ is fsynced. Returns the uid. A process
  // killed while writing leaves nothing in tmp/ (with the named fallback, a file that
  // clean_tmp() removes later). On any failure nothing is left in tmp/ or new/ and
  // the error (Errc::io, or Errc::not_found if the folder does not exist) says why.
  Result<std::string> deliver(Folder folder, std::string_view message) const;

  // The same under uid (from new_uid()); Errc::already_exists if new/ already holds it.
  Result<std::string> deliver_as(Folder folder, std::string_view message,
                                 const std::string& uid) const;

  // A fresh unique name, as deliver() chooses one.
  std::string new_uid() const { return unique_name(); }

  // Files in the tmp/ of every folder last changed more than max_age ago (a delivery
  // that died before its link; the Maildir specification says 36 hours): counts them
  // and, unless dry_run, removes them. Errors reading a folder are skipped.
  int clean_tmp(std::chrono::seconds max_age, bool dry_run) const;

  // Like deliver(), but straight into cur/ as UID:2,FLAGS (for Sent and Drafts,
  // which the user has already seen). Returns the uid.
  Result<std::string> store(Folder folder, std::string_view message, Flags flags) const;

  // The messages of a folder (new/ and cur/), in no particular order. Hidden files,
  // names that are not valid uids and anything but regular files are skipped.
  // Errc::not_found if the folder does not exist, Errc::io if it cannot be read.
  Result<std::vector<Entry>> list(Folder folder) const;

  // The file of one message. Errc::invalid_argument for a bad uid, Errc::not_found
  // if no such message.
  Result<Entry> find(Folder folder, std::string_view uid) const;

  // The bytes of one message (symlinks are not followed). Errc::invalid_argument for a
  // bad uid, Errc::not_found if missing, Errc::unsupported if larger than kMaxMessageBytes.
  Result<std::string> read(Folder folder, std::string_view uid) const;

  // Reads at most max_bytes from the start of a message that list() or find() returned
  // (for header indexing). Errc::not_found if it moved or vanished since.
  Result<std::string> read_prefix(Folder folder, const Entry& entry, std::size_t max_bytes) const;

  // Marks a message seen: new/UID moves to cur/UID:2,S; in cur/ S is added to the
  // flags. Idempotent. Errc::invalid_argument / Errc::not_found as for find().
  Status mark_seen(Folder folder, std::string_view uid) const;

  // Sets (on) or clears one flag of a message by renaming it in cur/ (a message in
  // new/ moves there), keeping its uid; the folder is fsynced. Idempotent.
  // Errc::invalid_argument / Errc::not_found as for find().
  Status set_flag(Folder folder, std::string_view uid, Flag flag, bool on) const;

  // Deletes a message (for replacing a draft). Errc::not_found if missing.
  Status remove(Folder folder, std::string_view uid) const;

  // Modification times of the folder's new/ and cur/. Errc::not_found if missing.
  Result<DirTimes> dir_times(Folder folder) const;

 private:
  Result<std::string> write_tmp(Folder folder, std::string_view message,
                                std::string& tmp_path) const;
  Result<std::string> place(Folder folder, std::string_view message, Subdir subdir,
                            const std::optional<Flags>& flags,
                            const std::optional<std::string>& chosen_uid) const;
  std::string unique_name() const;

  std::string root_;
  const util::Clock* clock_;
};

}  // namespace wmk::mail
