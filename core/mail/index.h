#pragma once
// The header index: one row per message of a user's folder in the store (tables
// mail_index and mail_folder_state), so that listing a large folder does not read
// every message. The mailbox (core/mail/mailbox.h, Maildir or IMAP) stays the truth:
// each refresh() asks it what changed since the mark recorded last time (Maildir: the
// mtimes of new/ and cur/; IMAP: UIDVALIDITY and HIGHESTMODSEQ) and reads only the
// messages it has no row for. A dropped table or deleted rows (the row count no longer
// matches the one recorded) make the next refresh compare the whole folder, as does a
// new UIDVALIDITY, whose ids all differ from the old ones.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mail/mailbox.h"
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
  std::uint64_t size = 0;  // bytes of the message as the mailbox stores it
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
  // How much of each message is read to index it: the header block and enough of the
  // body to see the MIME structure (attachments, encryption) of most messages.
  static constexpr std::size_t kScanBytes = 64 * 1024;
  static constexpr int kMaxPageSize = 1000;

  // db must be migrated; user_id must exist (rows cascade with the user). The index
  // keeps a reference to mailbox.
  MailIndex(store::Db& db, std::int64_t user_id, Mailbox& mailbox);

  // Brings the index of folder up to date with the mailbox if the folder changed
  // since the last refresh (or the index lost rows): new messages are read (their
  // first kScanBytes), parsed and added, vanished ones dropped, moved or re-flagged
  // ones updated, in one transaction. A missing folder indexes as empty. Errc::io if
  // the mailbox cannot be read.
  Status refresh(Folder folder);

  // Page page_no (1-based) of page_size summaries, newest first, with the total count.
  // Errc::invalid_argument if page_no < 1 or page_size is not in 1..kMaxPageSize.
  // Reads the index only: call refresh() first.
  Result<Page> page(Folder folder, int page_no, int page_size);

  // The summary of one message, or nullopt if it is not indexed.
  std::optional<Summary> find(Folder folder, std::string_view uid);

  // Indexes one message right after it was written (parses it; replaces any row).
  // Errc::invalid_argument for a bad uid, Errc::not_found if there is no such message.
  Status note_delivered(Folder folder, std::string_view uid);

  // Updates one message's row after it was moved or re-flagged (mark_seen), or drops
  // it if the message is gone. Cheap: no parsing unless the message was not indexed.
  Status note_changed(Folder folder, std::string_view uid);

 private:
  static Summary summarize(const MessageInfo& info, const std::string* prefix);
  void upsert(Folder folder, const MessageInfo& info, const Summary& s);

  store::Db& db_;
  std::int64_t user_id_;
  Mailbox& mailbox_;
};

}  // namespace wmk::mail
