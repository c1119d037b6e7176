#pragma once
// A user's mailbox on an IMAP server (libetpan's mailimap), over TLS with the server's
// certificate verified by OpenSSL against the system trust store (plus an optional
// extra CA file) and its name checked before any password is sent.
//
// The operations mirror Maildir's (core/mail/maildir.h): the same three folders, the
// same flag letters (as Dovecot maps them: \Seen S, \Answered R, \Flagged F, \Draft D,
// \Deleted T, the keyword $Forwarded P), the same size cap. UIDs are IMAP UIDs: valid while the
// folder's UIDVALIDITY stays the same.
//
// One ImapClient is one connection, used by one thread at a time. Every network
// wait (connect, TLS handshake, each read and write) gives up after the server's
// timeout, so a hung server costs a bounded time and an Errc::io saying so.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mail/maildir.h"
#include "core/util/result.h"
#include "core/util/secret.h"

struct mailimap;  // libetpan's session (libetpan/mailimap_types.h)

namespace wmk::mail {

inline constexpr std::chrono::seconds kImapTimeout{10};

enum class ImapTls {
  implicit,  // IMAPS: TLS from the first byte (port 993)
  starttls,  // plain IMAP, then STARTTLS before anything else (port 143)
};

struct ImapServer {
  std::string host;  // connected to, and checked against the certificate's names
  std::uint16_t port = 993;
  ImapTls tls = ImapTls::implicit;
  // A PEM file of CA certificates trusted in addition to the system store; empty: none.
  std::string extra_ca_file;
  std::chrono::seconds timeout = kImapTimeout;
};

struct ImapMessage {
  std::uint32_t uid = 0;
  Flags flags;  // in Maildir letters; keywords are left out
  std::uint64_t size = 0;
  std::int64_t internal_date = 0;  // Unix seconds (the server's arrival time)
  std::uint64_t modseq = 0;        // 0 unless the server has CONDSTORE
};

struct ImapFolderState {
  std::uint32_t uidvalidity = 0;
  std::uint32_t uidnext = 0;
  std::uint32_t exists = 0;
  // HIGHESTMODSEQ when the server has CONDSTORE (and the folder keeps mod-sequences).
  std::optional<std::uint64_t> highest_modseq;
};

struct ImapChanges {
  // Messages whose flags changed, or that arrived, since the given mod-sequence:
  // uid, flags and modseq filled in (size and internal_date are not fetched).
  std::vector<ImapMessage> changed;
  // UIDs expunged since then; only reported when the server has QRESYNC
  // (vanished_known), else the caller compares UID lists to find them.
  std::vector<std::uint32_t> vanished;
  bool vanished_known = false;
  std::uint64_t highest_modseq = 0;  // pass this to the next call
  // The folder's UIDVALIDITY: if it differs from the one the modseq came with, the
  // UIDs changed meaning and the caller starts over with list().
  std::uint32_t uidvalidity = 0;
};

struct ImapHeader {
  std::uint32_t uid = 0;
  std::string bytes;
};

class ImapClient {
 public:
  // Connects, sets up TLS and verifies the server's certificate chain and name.
  // Errc::io if the server cannot be reached, does not answer within the timeout,
  // or (STARTTLS) does not offer STARTTLS; Errc::crypto if the TLS handshake fails
  // or the certificate does not verify (the message says why, e.g. "unable to get
  // local issuer certificate" or "hostname mismatch"); Errc::config if the extra CA
  // file cannot be read.
  static Result<ImapClient> connect(const ImapServer& server);

  ImapClient(ImapClient&&) noexcept;
  ImapClient& operator=(ImapClient&&) noexcept;
  ImapClient(const ImapClient&) = delete;
  ImapClient& operator=(const ImapClient&) = delete;
  ~ImapClient();

  // LOGIN as user. A Dovecot master user logs in as "user*master" with the master's
  // password. Errc::bad_credentials if the server refuses, Errc::io on a network
  // failure. The password is not kept.
  Status login(std::string_view user, const util::SecretBuffer& password);

  // Creates Sent and Drafts where the server has none (as Maildir::ensure()).
  // Errc::io if the server refuses.
  Status ensure();

  // Selects a folder (with CONDSTORE when the server has it). Errc::not_found if the
  // server has no such folder.
  Result<ImapFolderState> select(Folder folder);

  // Every message of a folder: uid, flags, size, internal date (and modseq with
  // CONDSTORE), in UID order. Errc::not_found as for select().
  Result<std::vector<ImapMessage>> list(Folder folder);
  // The same for those of uids that exist (none for an empty uids).
  Result<std::vector<ImapMessage>> list(Folder folder, const std::vector<std::uint32_t>& uids);

  // The bytes of one message. Errc::not_found if no such uid, Errc::unsupported if
  // larger than kMaxMessageBytes (checked before the body is fetched).
  Result<std::string> read(Folder folder, std::uint32_t uid);

  // The header block (BODY.PEEK[HEADER]) of each of uids that exists, in UID order;
  // uids that do not exist are left out.
  Result<std::vector<ImapHeader>> headers(Folder folder, const std::vector<std::uint32_t>& uids);

  // At most max_bytes from the start of each of uids (BODY.PEEK[]<0.max_bytes>), for
  // the header index, which also looks at the MIME structure (MailIndex::kScanBytes).
  Result<std::vector<ImapHeader>> read_prefixes(Folder folder,
                                                const std::vector<std::uint32_t>& uids,
                                                std::size_t max_bytes);

  // Sets (on) or clears one flag (Flag::passed is the keyword $Forwarded).
  // Errc::not_found if no such uid.
  Status set_flag(Folder folder, std::uint32_t uid, Flag flag, bool on);

  // Appends a message (CRLF line ends, as IMAP stores them) with flags. Returns the
  // new UID when the server has UIDPLUS, else nullopt. Errc::unsupported if larger
  // than kMaxMessageBytes, Errc::not_found if the server has no such folder.
  Result<std::optional<std::uint32_t>> append(Folder folder, std::string_view message, Flags flags);

  // Deletes one message: \Deleted, then UID EXPUNGE (UIDPLUS) or else EXPUNGE.
  // Errc::not_found if no such uid.
  Status remove(Folder folder, std::uint32_t uid);

  // What changed in a folder since modseq (a HIGHESTMODSEQ from select() or an
  // earlier call). Errc::unsupported if the server has no CONDSTORE.
  Result<ImapChanges> changes_since(Folder folder, std::uint64_t modseq);

  bool has_condstore() const { return condstore_; }
  bool has_qresync() const { return qresync_; }
  bool has_uidplus() const { return uidplus_; }

  // NOOP: whether a connection kept since an earlier request still works. Forgets the
  // selected folder, so the next operation selects it afresh (and sees the folder's
  // state now, not the state of the earlier request). Errc::io if the server closed
  // the connection or does not answer.
  Status noop();

  // LOGOUT, politely; the destructor closes the connection in any case.
  void logout();

 private:
  struct SessionFree {
    void operator()(mailimap* s) const;
  };
  ImapClient(std::unique_ptr<mailimap, SessionFree> session, ImapServer server);

  // The error for libetpan's return code rc while doing what; a broken or timed-out
  // connection is abandoned.
  Error failure(int rc, std::string_view what) const;
  void abandon() const;
  Result<int> tcp_connect(const ImapServer& server) const;
  Status ensure_selected(Folder folder);
  Status read_capabilities();
  Result<bool> folder_exists(Folder folder);
  Result<std::vector<ImapMessage>> list_set(Folder folder, const std::vector<std::uint32_t>* uids);
  Result<std::uint64_t> size_of(Folder folder, std::uint32_t uid);
  Status store_flags(Folder folder, std::uint32_t uid, const Flags& flags, bool on);
  Result<std::vector<ImapHeader>> fetch_sections(Folder folder,
                                                 const std::vector<std::uint32_t>& uids,
                                                 bool header_only, std::size_t max_bytes);

  std::unique_ptr<mailimap, SessionFree> session_;
  ImapServer server_;
  std::optional<Folder> selected_;
  // When the current network operation began: a stream error after the timeout
  // is reported as "did not answer".
  std::chrono::steady_clock::time_point op_started_;
  bool condstore_ = false;
  bool qresync_ = false;
  bool uidplus_ = false;
};

}  // namespace wmk::mail
