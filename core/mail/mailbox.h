#pragma once
// A user's mailbox: the three folders (INBOX, Sent, Drafts) and what the product does
// with them, over one of two backends, one file each:
//   maildir_mailbox.cc  a Maildir on this machine (core/mail/maildir.h), the default
//   imap_mailbox.cc     a mailbox on an IMAP server (core/mail/imap.h)
// open_mailbox() (core/mail/open_mailbox.h) picks the one the config names.
//
// Message ids are strings on both backends, and what a browser sends back is checked by
// the backend before it is used. A Maildir id is the file's unique name; an IMAP id is
// "UIDVALIDITY.UID", so an id stays valid only while the folder's UIDVALIDITY holds: a
// stale id is Errc::not_found, never another message.
//
// Bytes: messages come out with LF line ends on both backends (the form Maildir files
// have as Postfix delivers them and the form compose.h writes). The IMAP backend turns
// the server's CRLF into LF when it reads, and LF into CRLF when it appends, so that the
// header index, the parser and every reading rule see the same bytes on both.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mail/imap.h"
#include "core/mail/maildir.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::mail {

struct MessageInfo {
  std::string id;
  Flags flags;
  std::uint64_t size = 0;  // bytes as the backend stores them
  std::int64_t time = 0;   // arrival: the file's mtime, the IMAP INTERNALDATE (Unix s)
  // What changes when the message is moved or re-flagged, for the index to compare:
  // the Maildir subdir and file name, the IMAP flag letters.
  std::string place;
  std::string stamp;
};

struct MessagePrefix {
  std::string id;
  std::string bytes;  // at most the asked number of bytes from the start, LF line ends
};

// What the header index recorded about a folder at its last refresh, so the next one
// asks the backend only for what changed. Maildir: the mtimes of new/ and cur/;
// IMAP: UIDVALIDITY and HIGHESTMODSEQ (0: the server has no CONDSTORE).
struct FolderMark {
  std::int64_t new_mtime = 0;
  std::int64_t cur_mtime = 0;
  std::int64_t uidvalidity = 0;
  std::int64_t highest_modseq = 0;
  bool operator==(const FolderMark&) const = default;
};

// A folder's changes since a mark.
struct FolderChanges {
  enum class Kind {
    unchanged,  // nothing changed: the index keeps its rows
    complete,   // messages is every message of the folder: rows not in it are gone
    delta,      // messages changed or arrived, vanished were removed; the rest is as it was
  };
  Kind kind = Kind::complete;
  std::vector<MessageInfo> messages;
  std::vector<std::string> vanished;
  // To record once the changes are applied (also for `unchanged`); nullopt: the folder
  // does not exist (it indexes as empty) or must be looked at again next time.
  std::optional<FolderMark> mark;
};

class Mailbox {
 public:
  virtual ~Mailbox() = default;

  // "maildir" or "imap", for messages.
  virtual const char* backend() const = 0;

  // Creates the mailbox and Sent and Drafts where missing. Errc::io if that fails.
  virtual Status ensure() = 0;

  // Every message of a folder, in no particular order. Errc::not_found if the folder
  // does not exist, Errc::io if it cannot be read.
  virtual Result<std::vector<MessageInfo>> list(Folder folder) = 0;

  // One message. Errc::invalid_argument for an id this backend never gives,
  // Errc::not_found if there is no such message (or the id is stale).
  virtual Result<MessageInfo> find(Folder folder, std::string_view id) = 0;

  // The bytes of one message (LF line ends). Errc::invalid_argument / Errc::not_found as
  // for find(), Errc::unsupported if larger than kMaxMessageBytes.
  virtual Result<std::string> read(Folder folder, std::string_view id) = 0;

  // At most max_bytes from the start of each message of ids that exists (for the header
  // index); the others are left out.
  virtual Result<std::vector<MessagePrefix>> read_prefixes(Folder folder,
                                                           const std::vector<std::string>& ids,
                                                           std::size_t max_bytes) = 0;

  // Marks a message seen. Idempotent. Errors as for find().
  virtual Status mark_seen(Folder folder, std::string_view id) = 0;

  // Sets (on) or clears one flag. Idempotent. Errors as for find().
  virtual Status set_flag(Folder folder, std::string_view id, Flag flag, bool on) = 0;

  // Stores a message (LF line ends) in Sent or Drafts with flags; returns its id.
  // Errc::not_found if the folder does not exist (ensure() first), Errc::unsupported
  // if larger than kMaxMessageBytes, Errc::io on a failure.
  virtual Result<std::string> store(Folder folder, std::string_view message, Flags flags) = 0;

  // Deletes a message. Errc::not_found if missing.
  virtual Status remove(Folder folder, std::string_view id) = 0;

  // What changed in a folder since last (nullopt: nothing recorded, or the index lost
  // rows: the answer is then complete). Fetches no message bytes. Errc::io if the
  // backend cannot be read.
  virtual Result<FolderChanges> changes(Folder folder, const std::optional<FolderMark>& last) = 0;

  // Whether a mailbox kept open since an earlier request still works (MailboxKeeper
  // asks before reusing it). IMAP: NOOP, and every folder is selected afresh at its
  // next use; Errc::io if the server closed the connection. Maildir: nothing to check.
  virtual Status alive() { return {}; }

  // How many messages this mailbox has read the bytes of (whole or a prefix) since it
  // was opened: what a refresh of the index costs, for tests and benchmarks.
  std::uint64_t messages_read() const { return messages_read_; }
  // How many message entries (id and flags, no bytes) list(), find() and changes() have
  // returned: with CONDSTORE/QRESYNC a refresh lists only what changed.
  std::uint64_t messages_listed() const { return messages_listed_; }

 protected:
  std::uint64_t messages_read_ = 0;
  std::uint64_t messages_listed_ = 0;
};

// The Maildir backend over maildir (maildir_mailbox.cc).
std::unique_ptr<Mailbox> maildir_mailbox(Maildir maildir);

// The IMAP backend (imap_mailbox.cc): connects to server (TLS, the certificate verified
// before anything else is sent) and logs in as login with password (for a Dovecot
// master user "user*master" and the master's password). Creates nothing on the server.
// Errors as ImapClient::connect() and ImapClient::login().
Result<std::unique_ptr<Mailbox>> imap_mailbox(const ImapServer& server, std::string_view login,
                                              const util::SecretBuffer& password);

// LF line ends for CRLF (the IMAP backend's reads); a lone CR stays.
std::string crlf_to_lf(std::string_view bytes);
// CRLF line ends for LF (the IMAP backend's appends); an existing CRLF stays.
std::string lf_to_crlf(std::string_view bytes);

}  // namespace wmk::mail
