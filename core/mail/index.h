#pragma once
// The header index: one row per message of a user's folder in SQLite (tables
// mail_index and mail_folder_state), so that listing a large folder does not open
// every file. The Maildir stays the truth: the index is rebuilt from it whenever the
// mtimes of new/ and cur/ or the number of rows no longer match what was recorded,
// so a dropped table, deleted rows or a message delivered by Postfix or moved by
// Dovecot are all picked up at the next refresh().

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mail/maildir.h"
#include "core/mail/mime.h"
#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::mail {

struct Summary {
  std::string uid;
  std::int64_t date = 0;  // Date header in Unix seconds, else the file's mtime
  std::string from_name;
  std::string from_addr;
  std::string subject;
  std::uint64_t size = 0;  // bytes of the message file
  bool seen = false;
  bool encrypted = false;  // hints from the MIME structure, not security claims
  bool is_signed = false;
  bool has_attachments = false;
  Protection protection = Protection::none;

  // The sender's name if given, else the address.
  std::string from_display() const;
};

struct Page {
  std::vector<Summary> items;  // newest first (date, then uid, descending)
  std::int64_t total = 0;      // messages in the folder
  int page_no = 1;
  int page_size = 0;
  int page_count() const;
};

class MailIndex {
 public:
  // How much of each file is read to index it: the header block and enough of the
  // body to see the MIME structure (attachments, encryption) of most messages.
  static constexpr std::size_t kScanBytes = 64 * 1024;
  static constexpr int kMaxPageSize = 1000;

  // db must be migrated; user_id must exist (rows cascade with the user).
  MailIndex(store::Db& db, std::int64_t user_id, const Maildir& maildir);

  // Brings the index of folder up to date with the Maildir if the folder changed
  // since the last refresh (or the index lost rows): new files are parsed and added,
  // vanished ones dropped, moved or re-flagged ones updated, in one transaction.
  // A missing folder indexes as empty. Errc::io if the Maildir cannot be read.
  Status refresh(Folder folder);

  // Page page_no (1-based) of page_size summaries, newest first, with the total count.
  // Errc::invalid_argument if page_no < 1 or page_size is not in 1..kMaxPageSize.
  // Reads the index only: call refresh() first.
  Result<Page> page(Folder folder, int page_no, int page_size);

  // The summary of one message, or nullopt if it is not indexed.
  std::optional<Summary> find(Folder folder, std::string_view uid);

  // Indexes one message right after it was written (parses it; replaces any row).
  // Errc::invalid_argument for a bad uid, Errc::not_found if there is no such file.
  Status note_delivered(Folder folder, std::string_view uid);

  // Updates one message's row after it was moved or re-flagged (mark_seen), or drops
  // it if its file is gone. Cheap: no parsing unless the message was not indexed.
  Status note_changed(Folder folder, std::string_view uid);

 private:
  Summary summarize(Folder folder, const Entry& entry) const;
  void upsert(Folder folder, const Entry& entry, const Summary& s);

  store::Db& db_;
  std::int64_t user_id_;
  const Maildir& maildir_;
};

}  // namespace wmk::mail
