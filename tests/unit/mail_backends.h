#pragma once
// The mail tests on both backends (docs/testing.md): a fixture base whose parameter is
// the backend, giving one fresh user's Mailbox on a Maildir in a temporary directory or
// on the process's one test Dovecot (tests/unit/dovecot_server.h), reached over IMAPS
// with its certificate verified and logged in to as the master user, as the product
// does. Mail arrives from outside the code under test: Maildir::deliver (as Postfix
// would write it) or another IMAP client logged in as the user appending CRLF bytes (as
// Dovecot's LDA would store them). Used by mailbox_test.cc, index_test.cc and
// outgoing_test.cc.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/mail/imap.h"
#include "core/mail/index.h"
#include "core/mail/mailbox.h"
#include "core/mail/maildir.h"
#include "core/store/db.h"
#include "core/util/clock.h"
#include "tests/unit/dovecot_server.h"
#include "tests/unit/test_util.h"

namespace wmk::mail {

enum class Backend { maildir, imap };

std::string backend_test_name(const ::testing::TestParamInfo<Backend>& info);
// What GoogleTest (and so ctest -N) prints for the parameter.
void PrintTo(Backend b, std::ostream* os);

// The test's own LF to CRLF, not the code under test's.
std::string with_crlf(const std::string& lf);

// The process's one test Dovecot, started on first use (nullptr with the reason in
// *why when it cannot run here, which skips the IMAP cases).
test::Dovecot* shared_dovecot(std::string* why);

// The Dovecot's IMAPS endpoint with its test CA.
ImapServer dovecot_server(const test::Dovecot& dovecot);

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Opens box for a fresh user on the parameter's backend (the Maildir under dir, with
  // clock). Skips where Dovecot cannot run; callers return when IsSkipped() or
  // HasFatalFailure().
  void open_box(const util::Clock& clock = util::system_clock());

  bool imap() const { return GetParam() == Backend::imap; }

  // A message arriving from outside into folder; its id.
  std::string deliver(const std::string& lf_message, Folder folder = Folder::inbox);
  // An id that looks right but names nothing (for IMAP: another UIDVALIDITY).
  std::string stale(const std::string& id) const;
  // Settles the Maildir's directory mtimes (as if the last change were long ago), so a
  // refresh records a mark that the next one can trust. IMAP has no such clock.
  void settle(Folder folder = Folder::inbox);

  // From outside the code under test: the message's bytes as stored (LF line ends),
  // how many messages a folder holds, a flag set and a message removed.
  Result<std::string> stored(Folder folder, const std::string& id);
  Result<Flags> stored_flags(Folder folder, const std::string& id);
  std::size_t stored_count(Folder folder);
  Status outside_mark_seen(Folder folder, const std::string& id);
  Status outside_remove(Folder folder, const std::string& id);

  // The same user's mailbox again, on its own connection (IMAP).
  std::unique_ptr<Mailbox> same_user_box();
  // Another user's mailbox on the same backend (nothing delivered to it yet).
  std::unique_ptr<Mailbox> other_user_box();

  test::TempDir dir;
  std::optional<Maildir> md;  // the Maildir backend's, as an outside delivery agent sees it
  std::unique_ptr<Mailbox> box;
  std::unique_ptr<ImapClient> outside;  // logged in as the user (IMAP)
  test::Dovecot* dovecot = nullptr;
  int user = 0;

 private:
  static std::uint32_t imap_uid(const std::string& id);
  void sync(Folder folder);
  int settled_ = 0;
};

// A BackendTest with the header index of the box: an in-memory store holding users
// 1..users, and user 1's MailIndex on the ensured box.
class IndexedBackendTest : public BackendTest {
 protected:
  // Callers return when IsSkipped() or HasFatalFailure(), as after open_box().
  void open_indexed(int users = 1);
  // The subjects of folder's first index page, in the index's order.
  std::vector<std::string> subjects(Folder f = Folder::inbox);

  store::Db db = store::Db::open_memory();
  std::unique_ptr<MailIndex> index;
};

}  // namespace wmk::mail
