#include "core/mail/index.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "core/mail/deliver.h"
#include "core/store/schema.h"
#include "core/util/fs.h"
#include "tests/unit/mail_backends.h"
#include "tests/unit/test_util.h"

namespace wmk::mail {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kBase = 1'700'000'000;

// A message dated kBase + n hours.
std::string message(int n, const std::string& extra_headers = "") {
  auto date = std::chrono::sys_seconds(std::chrono::seconds(kBase + n * 3600));
  std::time_t t = date.time_since_epoch().count();
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", std::gmtime(&t));
  return "From: Sender " + std::to_string(n) + " <s" + std::to_string(n) +
         "@example.org>\n"
         "To: user@example.org\n"
         "Subject: message " +
         std::to_string(n) + "\nDate: " + buf + "\nMessage-ID: <" + std::to_string(n) +
         "@example.org>\n" + extra_headers + "\nBody of message " + std::to_string(n) + "\n";
}

std::string fixture(const std::string& name) {
  return util::read_file(std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/mail/" + name)
      .value();
}

// Drops a message into new/ the way an outside delivery agent would.
void drop_file(const Maildir& md, Folder f, const std::string& name, const std::string& data) {
  std::ofstream(md.folder_path(f) + "/new/" + name, std::ios::binary) << data;
}

std::int64_t rows(store::Db& db) {
  auto st = db.prepare("SELECT count(*) FROM mail_index");
  st.step();
  return st.column_int(0);
}

// The index's cases on both backends (tests/unit/mail_backends.h). Those that look at
// what only a Maildir has (directory mtimes, file names, the delivery agent writing
// files) run on Maildir alone; each says why.
// Skips the IMAP run of a case that needs a Maildir, saying why.
#define MAILDIR_ONLY(why)                    \
  if (imap())                                \
    GTEST_SKIP() << "Maildir only: " << why; \
  static_assert(true)

// `webmailkey deliver` writes into the Maildir; on IMAP the server's own delivery agent
// does (Dovecot's LDA), which the product does not run.
constexpr const char* kDeliverIsMaildirs = "webmailkey deliver is the Maildir's delivery agent";

class IndexTest : public IndexedBackendTest {
 protected:
  void SetUp() override { open_indexed(2); }
  std::string deliver(int n, const std::string& extra = "") {
    return BackendTest::deliver(message(n, extra));
  }
};

TEST_P(IndexTest, RefreshIndexesHeadersNewestFirst) {
  deliver(1);
  deliver(3);
  deliver(2);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects(), (std::vector<std::string>{"message 3", "message 2", "message 1"}));
  auto p = index->page(Folder::inbox, 1, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, 3);
  const Summary& top = p->items.front();
  EXPECT_EQ(top.date, kBase + 3 * 3600);
  EXPECT_EQ(top.from_name, "Sender 3");
  EXPECT_EQ(top.from_addr, "s3@example.org");
  EXPECT_EQ(top.from_display(), "Sender 3");
  // The size of the message as stored: LF line ends on a Maildir, CRLF on IMAP.
  EXPECT_EQ(top.size, imap() ? with_crlf(message(3)).size() : message(3).size());
  EXPECT_FALSE(top.seen);
  EXPECT_FALSE(top.encrypted);
  EXPECT_FALSE(top.has_attachments);
}

TEST_P(IndexTest, PagingOrderAndTotal) {
  for (int n = 0; n < 25; ++n)
    deliver(n);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto p1 = index->page(Folder::inbox, 1, 10);
  auto p3 = index->page(Folder::inbox, 3, 10);
  auto p4 = index->page(Folder::inbox, 4, 10);
  ASSERT_TRUE(p1.ok() && p3.ok() && p4.ok());
  EXPECT_EQ(p1->total, 25);
  EXPECT_EQ(p1->page_count(), 3);
  ASSERT_EQ(p1->items.size(), 10u);
  EXPECT_EQ(p1->items.front().subject, "message 24");
  EXPECT_EQ(p1->items.back().subject, "message 15");
  ASSERT_EQ(p3->items.size(), 5u);
  EXPECT_EQ(p3->items.front().subject, "message 4");
  EXPECT_EQ(p3->items.back().subject, "message 0");
  EXPECT_TRUE(p4->items.empty());
  EXPECT_EQ(p4->total, 25);
  for (std::size_t i = 1; i < p1->items.size(); ++i)
    EXPECT_GT(p1->items[i - 1].date, p1->items[i].date);

  EXPECT_EQ(index->page(Folder::inbox, 0, 10).code(), Errc::invalid_argument);
  EXPECT_EQ(index->page(Folder::inbox, 1, 0).code(), Errc::invalid_argument);
  EXPECT_EQ(index->page(Folder::inbox, 1, MailIndex::kMaxPageSize + 1).code(),
            Errc::invalid_argument);
}

// Messages with the same Date are shown in the order they arrived, the last first, where
// the backend knows it. On IMAP the eleven deliveries take UIDs 1 to 11, so an order of
// the ids as text ("V.9" above "V.10") would show it.
TEST_P(IndexTest, SameDateOrdersByArrivalNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 11; ++i)
    ids.push_back(deliver(5));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto p = index->page(Folder::inbox, 1, 20);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->items.size(), ids.size());
  // A Maildir name carries no arrival order beyond its leading seconds (webmailkey's
  // own are "SECONDS.P<pid>Q<counter>R<random>.host", Postfix's differ), so on a Maildir
  // same-Date messages order by name as text: "Q10" before "Q9" within one second. On
  // IMAP the UID is the arrival order.
  std::vector<std::string> expected(ids.rbegin(), ids.rend());
  if (!imap())
    std::sort(expected.begin(), expected.end(), std::greater<>());
  for (std::size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(p->items[i].uid, expected[i]) << i;
}

TEST_P(IndexTest, UnchangedFolderIsNotRescanned) {
  deliver(1);
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  // Tamper with a row behind the index's back: with the mtimes and the row count
  // unchanged, refresh() must trust the index and not rescan.
  db.exec("UPDATE mail_index SET subject = 'tampered'");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects(), std::vector<std::string>{"tampered"});
}

TEST_P(IndexTest, OutsideDeliveryIsNoticedAtNextRefresh) {
  deliver(1);
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects().size(), 1u);
  // Postfix (or any MDA) writes a file into new/ without telling us; on IMAP another
  // client appends.
  std::string id = "1700000000.M1P1.mx";
  if (imap())
    id = BackendTest::deliver(message(2));
  else
    drop_file(*md, Folder::inbox, id, message(2));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects(), (std::vector<std::string>{"message 2", "message 1"}));
  auto s = index->find(Folder::inbox, id);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->from_addr, "s2@example.org");
}

TEST_P(IndexTest, ChangeInTheSameClockTickIsNotMissed) {
  MAILDIR_ONLY("directory mtimes are the Maildir's change mark; IMAP's is the server's");
  // No aging: the refresh sees a folder changed "just now" and must look again
  // next time, even if a new file leaves the directory mtime as it was.
  deliver(1);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto before = md->dir_times(Folder::inbox);
  drop_file(*md, Folder::inbox, "1700000001.M1P1.mx", message(2));
  struct timespec same[2] = {{0, UTIME_OMIT},
                             {before->new_ns / 1'000'000'000, before->new_ns % 1'000'000'000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (md->folder_path(Folder::inbox) + "/new").c_str(), same, 0), 0);
  ASSERT_EQ(md->dir_times(Folder::inbox)->new_ns, before->new_ns);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects().size(), 2u);
}

TEST_P(IndexTest, VanishedAndMovedFilesAreReconciled) {
  auto gone = deliver(1);
  auto read = deliver(2);
  deliver(3);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  settle();
  ASSERT_TRUE(outside_remove(Folder::inbox, gone).ok());
  ASSERT_TRUE(outside_mark_seen(Folder::inbox, read).ok());
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects(), (std::vector<std::string>{"message 3", "message 2"}));
  EXPECT_FALSE(index->find(Folder::inbox, gone).has_value());
  auto s = index->find(Folder::inbox, read);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->seen);
  if (imap())
    return;  // subdir and file name are the Maildir's
  auto row = db.prepare("SELECT subdir, filename FROM mail_index WHERE uid = ?");
  row.bind(1, read);
  ASSERT_TRUE(row.step());
  EXPECT_EQ(row.column_text(0), "cur");
  EXPECT_EQ(row.column_text(1), read + ":2,S");
}

TEST_P(IndexTest, DeletedRowsAreRebuiltFromTheMailbox) {
  for (int n = 0; n < 5; ++n)
    deliver(n);
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  ASSERT_EQ(rows(db), 5);

  db.exec("DELETE FROM mail_index WHERE subject = 'message 2'");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(rows(db), 5);

  db.exec("DELETE FROM mail_index");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(rows(db), 5);

  db.exec("DELETE FROM mail_index; DELETE FROM mail_folder_state;");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects().size(), 5u);
  EXPECT_EQ(subjects().front(), "message 4");
}

TEST_P(IndexTest, FoldersAndUsersAreSeparate) {
  deliver(1);
  auto sent = box->store(Folder::sent, message(7), Flags{Flag::seen});
  ASSERT_TRUE(sent.ok());
  for (Folder f : kAllFolders)
    ASSERT_TRUE(index->refresh(f).ok());
  EXPECT_EQ(subjects(Folder::inbox), std::vector<std::string>{"message 1"});
  EXPECT_EQ(subjects(Folder::sent), std::vector<std::string>{"message 7"});
  EXPECT_TRUE(subjects(Folder::drafts).empty());
  EXPECT_TRUE(index->find(Folder::sent, *sent)->seen);

  auto other_box = other_user_box();
  ASSERT_NE(other_box, nullptr);
  MailIndex other(db, 2, *other_box);
  // No Maildir yet (on IMAP: a user who never logged in): empty, not an error.
  ASSERT_TRUE(other.refresh(Folder::inbox).ok());
  auto p = other.page(Folder::inbox, 1, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, 0);
  EXPECT_EQ(subjects(Folder::inbox).size(), 1u);  // user 1 untouched
}

TEST_P(IndexTest, HintsComeFromTheMimeStructure) {
  auto enc = std::optional(BackendTest::deliver(fixture("pgp_mime.eml")));
  auto att = std::optional(BackendTest::deliver(fixture("mixed_attachments.eml")));
  auto smime = std::optional(BackendTest::deliver(fixture("smime_auth_enveloped.eml")));
  auto sig = std::optional(BackendTest::deliver(fixture("pgp_signed.eml")));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto e = index->find(Folder::inbox, *enc);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->encrypted);
  EXPECT_EQ(e->protection, Protection::pgp_mime);
  EXPECT_FALSE(e->has_attachments);
  auto a = index->find(Folder::inbox, *att);
  EXPECT_TRUE(a->has_attachments);
  EXPECT_FALSE(a->encrypted);
  EXPECT_EQ(a->subject, "Grüße aus Köln – Anhänge ✓");
  EXPECT_EQ(a->from_name, "Jörg Müller");
  EXPECT_EQ(a->date, 1709292896);
  EXPECT_EQ(index->find(Folder::inbox, *smime)->protection, Protection::smime_auth_enveloped);
  EXPECT_TRUE(index->find(Folder::inbox, *sig)->is_signed);
  EXPECT_FALSE(index->find(Folder::inbox, *sig)->encrypted);
}

TEST_P(IndexTest, UnparseableFileIsStillListed) {
  std::string id = "1700000002.M1P1.mx";
  if (imap())
    id = BackendTest::deliver("no headers here, just text\n");
  else
    drop_file(*md, Folder::inbox, id, "no headers here, just text\n");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto s = index->find(Folder::inbox, id);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->subject, "");
  EXPECT_GT(s->date, 0);  // the file's mtime (IMAP: INTERNALDATE) stands in for the Date
}

TEST_P(IndexTest, NoteDeliveredAndNoteChanged) {
  auto uid = deliver(9);
  EXPECT_FALSE(index->find(Folder::inbox, uid).has_value());
  ASSERT_TRUE(index->note_delivered(Folder::inbox, uid).ok());
  auto s = index->find(Folder::inbox, uid);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->subject, "message 9");
  EXPECT_FALSE(s->seen);

  // note_changed() follows the product's own change (on IMAP another client's shows at
  // the next refresh, which selects the folder again).
  ASSERT_TRUE(box->mark_seen(Folder::inbox, uid).ok());
  ASSERT_TRUE(index->note_changed(Folder::inbox, uid).ok());
  EXPECT_TRUE(index->find(Folder::inbox, uid)->seen);

  ASSERT_TRUE(box->remove(Folder::inbox, uid).ok());
  ASSERT_TRUE(index->note_changed(Folder::inbox, uid).ok());
  EXPECT_FALSE(index->find(Folder::inbox, uid).has_value());

  EXPECT_EQ(index->note_delivered(Folder::inbox, "../x").code(), Errc::invalid_argument);
  EXPECT_EQ(index->note_delivered(Folder::inbox, uid).code(), Errc::not_found);
}

TEST_P(IndexTest, DeliverMessageDeliversAndIndexes) {
  MAILDIR_ONLY(kDeliverIsMaildirs);
  auto d = deliver_message(db, 1, *md, Folder::inbox,
                           "From MAILER-DAEMON Fri Mar  1 12:00:00 2024\n" + message(4));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->index_error.has_value());
  EXPECT_EQ(*md->read(Folder::inbox, d->uid), message(4));  // envelope line dropped
  auto s = index->find(Folder::inbox, d->uid);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->subject, "message 4");
}

TEST_P(IndexTest, DeliverMessageRefusesNonMessagesAndLeavesNothing) {
  MAILDIR_ONLY(kDeliverIsMaildirs);
  for (std::string bad : {std::string(), std::string("From x Fri Mar  1 12:00:00 2024\n"),
                          fixture("malformed.eml"), fixture("binary_junk.eml")}) {
    auto d = deliver_message(db, 1, *md, Folder::inbox, bad);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.code(), Errc::invalid_argument) << d.error().message;
  }
  EXPECT_TRUE(md->list(Folder::inbox)->empty());
  EXPECT_EQ(rows(db), 0);
}

TEST_P(IndexTest, DeliverMessageCreatesTheMaildir) {
  MAILDIR_ONLY(kDeliverIsMaildirs);
  test::TempDir fresh;
  Maildir new_md(fresh.path() + "/a/b/Maildir");
  auto d = deliver_message(db, 2, new_md, Folder::inbox, message(1));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(fs::is_directory(fresh.path() + "/a/b/Maildir/.Drafts/cur"));
}

TEST_P(IndexTest, DeliveryStandsWhenIndexingFails) {
  MAILDIR_ONLY(kDeliverIsMaildirs);
  store::Db no_schema = store::Db::open_memory();  // the index table does not exist
  auto d = deliver_message(no_schema, 1, *md, Folder::inbox, message(1));
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_TRUE(d->index_error.has_value());
  EXPECT_TRUE(md->read(Folder::inbox, d->uid).ok());
}

TEST_P(IndexTest, TenThousandMessages) {
  MAILDIR_ONLY("files written straight into new/; scripts/bench measures the inbox over IMAP");
  constexpr int kCount = 10'000;
  std::string new_dir = md->folder_path(Folder::inbox) + "/new/";
  for (int n = 0; n < kCount; ++n) {
    std::ofstream(new_dir + "1700000000.M" + std::to_string(n) + "P1.bench", std::ios::binary)
        << message(n, n % 10 == 0 ? "Content-Type: multipart/encrypted; "
                                    "protocol=\"application/pgp-encrypted\"; boundary=b\n"
                                  : "");
  }
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0;
  };
  auto t0 = clock::now();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto t1 = clock::now();
  auto p = index->page(Folder::inbox, 7, 50);
  auto t2 = clock::now();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, kCount);
  ASSERT_EQ(p->items.size(), 50u);
  EXPECT_EQ(p->items.front().subject, "message " + std::to_string(kCount - 1 - 300));
  EXPECT_EQ(p->items[0].encrypted, (kCount - 1 - 300) % 10 == 0);
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());  // records a settled state
  auto t3 = clock::now();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());  // nothing changed
  auto t4 = clock::now();
  std::cout << "[ timing ] index build of " << kCount << " messages: " << ms(t1 - t0)
            << " ms; page query: " << ms(t2 - t1) << " ms; unchanged refresh: " << ms(t4 - t3)
            << " ms\n";
}

INSTANTIATE_TEST_SUITE_P(Backends, IndexTest, ::testing::Values(Backend::maildir, Backend::imap),
                         backend_test_name);

}  // namespace
}  // namespace wmk::mail
