// The Mailbox interface and the header index on both backends: a Maildir in a
// temporary directory, and a real Dovecot (tests/unit/dovecot_server.h) reached over
// IMAPS with its certificate verified and logged in as a master user, as the product
// does. Mail arrives from outside the code under test: Maildir::deliver (as Postfix
// would write it) or another IMAP client logged in as the user appending CRLF bytes
// (as Dovecot's LDA would store them).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <ostream>
#include <string>

#include "core/mail/index.h"
#include "core/mail/mailbox.h"
#include "core/store/schema.h"
#include "core/util/fs.h"
#include "tests/unit/mail_backends.h"
#include "tests/unit/test_util.h"

namespace wmk::mail {
namespace {

constexpr std::int64_t kBase = 1'700'000'000;

// A message dated kBase + n hours, LF line ends (as Maildir holds it).
std::string message(int n) {
  std::time_t t = kBase + n * 3600;
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", std::gmtime(&t));
  return "From: Sender " + std::to_string(n) + " <s" + std::to_string(n) +
         "@example.org>\nTo: user@example.org\nSubject: message " + std::to_string(n) +
         "\nDate: " + buf + "\nMessage-ID: <" + std::to_string(n) + "@example.org>\n\nBody " +
         std::to_string(n) + "\n";
}

std::string fixture(const std::string& name) {
  return util::read_file(std::string(WEBMAILKEY_SOURCE_DIR) + "/tests/fixtures/mail/" + name)
      .value();
}

class MailboxTest : public IndexedBackendTest {
 protected:
  void SetUp() override { open_indexed(); }
};

TEST_P(MailboxTest, DeliveredMessageReadsWithLfLineEndsOnBothBackends) {
  std::string sent = message(1);
  auto id = deliver(sent);
  auto bytes = box->read(Folder::inbox, id);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, sent);
  EXPECT_EQ(box->messages_read(), 1u);
  auto prefixes = box->read_prefixes(Folder::inbox, {id, stale(id)}, 20);
  ASSERT_TRUE(prefixes.ok());
  ASSERT_EQ(prefixes->size(), 1u);  // the stale id is left out
  EXPECT_EQ(prefixes->front().id, id);
  EXPECT_EQ(sent.rfind(prefixes->front().bytes, 0), 0u) << prefixes->front().bytes;
}

TEST_P(MailboxTest, StoreAppendsWithFlagsAndReadsBackByteExact) {
  std::string draft = message(2);
  auto id = box->store(Folder::drafts, draft, Flags{Flag::draft, Flag::seen});
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*box->read(Folder::drafts, *id), draft);
  auto info = box->find(Folder::drafts, *id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->flags.has(Flag::draft));
  EXPECT_TRUE(info->flags.has(Flag::seen));
  auto listed = box->list(Folder::drafts);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, *id);
  if (imap()) {
    // On the server the message has CRLF line ends, as IMAP requires.
    auto on_server = outside->list(Folder::drafts);
    ASSERT_TRUE(on_server.ok());
    ASSERT_EQ(on_server->size(), 1u);
    EXPECT_EQ(*outside->read(Folder::drafts, on_server->front().uid), with_crlf(draft));
  }
}

TEST_P(MailboxTest, FlagsAreSetAndCleared) {
  auto id = deliver(message(3));
  EXPECT_FALSE(box->find(Folder::inbox, id)->flags.has(Flag::seen));
  ASSERT_TRUE(box->mark_seen(Folder::inbox, id).ok());
  ASSERT_TRUE(box->mark_seen(Folder::inbox, id).ok());  // idempotent
  EXPECT_TRUE(box->find(Folder::inbox, id)->flags.has(Flag::seen));
  ASSERT_TRUE(box->set_flag(Folder::inbox, id, Flag::passed, true).ok());
  ASSERT_TRUE(box->set_flag(Folder::inbox, id, Flag::flagged, true).ok());
  ASSERT_TRUE(box->set_flag(Folder::inbox, id, Flag::flagged, false).ok());
  auto info = box->find(Folder::inbox, id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->flags.has(Flag::passed));
  EXPECT_FALSE(info->flags.has(Flag::flagged));
  EXPECT_EQ(*box->read(Folder::inbox, id), message(3));  // the id survives the flag changes
}

TEST_P(MailboxTest, RemoveDeletesOnlyThatMessage) {
  auto a = deliver(message(1));
  auto b = deliver(message(2));
  ASSERT_TRUE(box->remove(Folder::inbox, a).ok());
  EXPECT_EQ(box->read(Folder::inbox, a).code(), Errc::not_found);
  EXPECT_EQ(box->remove(Folder::inbox, a).code(), Errc::not_found);
  EXPECT_EQ(*box->read(Folder::inbox, b), message(2));
  EXPECT_EQ(box->list(Folder::inbox)->size(), 1u);
}

TEST_P(MailboxTest, BadIdsAreRefusedAndStaleIdsNameNothing) {
  auto id = deliver(message(1));
  for (std::string bad : {"", "../x", "a/b", ".hidden", "1:2,S"})
    EXPECT_EQ(box->read(Folder::inbox, bad).code(), Errc::invalid_argument) << bad;
  EXPECT_EQ(box->read(Folder::inbox, stale(id)).code(), Errc::not_found);
  EXPECT_EQ(box->find(Folder::inbox, stale(id)).code(), Errc::not_found);
  EXPECT_EQ(box->mark_seen(Folder::inbox, stale(id)).code(), Errc::not_found);
  EXPECT_EQ(box->remove(Folder::inbox, stale(id)).code(), Errc::not_found);
  EXPECT_EQ(box->read(Folder::sent, id).code(), Errc::not_found);  // not in that folder
  EXPECT_EQ(*box->read(Folder::inbox, id), message(1));
}

TEST_P(MailboxTest, IndexRefreshIndexesHeadersNewestFirst) {
  deliver(message(1));
  deliver(message(3));
  deliver(message(2));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects(), (std::vector<std::string>{"message 3", "message 2", "message 1"}));
  auto p = index->page(Folder::inbox, 1, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, 3);
  EXPECT_EQ(p->items.front().date, kBase + 3 * 3600);
  EXPECT_EQ(p->items.front().from_name, "Sender 3");
  EXPECT_EQ(p->items.front().from_addr, "s3@example.org");
  EXPECT_FALSE(p->items.front().seen);
}

// The inbox does not re-read what it already knows: a refresh of an unchanged folder
// reads no message, a new message is read once, and a flag change or a removal reads
// nothing (IMAP: CONDSTORE/QRESYNC; Maildir: directory mtimes and file names).
TEST_P(MailboxTest, RefreshReadsOnlyNewMessages) {
  for (int n = 0; n < 3; ++n)
    deliver(message(n));
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 3u);
  const std::uint64_t listed = box->messages_listed();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 3u);
  EXPECT_EQ(box->messages_listed(), listed);  // not even the flags were fetched

  auto fourth = deliver(message(4));
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 4u);
  EXPECT_EQ(subjects().front(), "message 4");

  ASSERT_TRUE(box->mark_seen(Folder::inbox, fourth).ok());
  settle();
  const std::uint64_t listed_before_flag = box->messages_listed();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 4u);
  EXPECT_TRUE(index->find(Folder::inbox, fourth)->seen);
  // IMAP with CONDSTORE/QRESYNC: only the re-flagged message is listed; a Maildir
  // lists the folder whose mtime changed.
  EXPECT_EQ(box->messages_listed() - listed_before_flag, imap() ? 1u : 4u);

  ASSERT_TRUE(box->remove(Folder::inbox, fourth).ok());
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 4u);
  EXPECT_FALSE(index->find(Folder::inbox, fourth).has_value());
  EXPECT_EQ(subjects().size(), 3u);
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 4u);

  if (imap()) {
    // The mark is the server's: UIDVALIDITY and a HIGHESTMODSEQ (Dovecot has CONDSTORE).
    auto st = db.prepare(
        "SELECT uidvalidity, highest_modseq FROM mail_folder_state WHERE folder = 'INBOX'");
    ASSERT_TRUE(st.step());
    EXPECT_GT(st.column_int(0), 0);
    EXPECT_GT(st.column_int(1), 0);
  }
}

TEST_P(MailboxTest, IndexLosingRowsIsRebuiltWithoutRereadingTheRest) {
  for (int n = 0; n < 4; ++n)
    deliver(message(n));
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  db.exec("DELETE FROM mail_index WHERE subject = 'message 2'");
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_EQ(subjects().size(), 4u);
  EXPECT_EQ(box->messages_read(), 5u);  // four, then the lost one again
}

TEST_P(MailboxTest, FlagChangedByAnotherClientIsPickedUp) {
  auto id = deliver(message(1));
  settle();
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_FALSE(index->find(Folder::inbox, id)->seen);
  if (imap()) {
    auto uid = static_cast<std::uint32_t>(std::stoul(id.substr(id.find('.') + 1)));
    ASSERT_TRUE(outside->set_flag(Folder::inbox, uid, Flag::seen, true).ok());
  } else {
    ASSERT_TRUE(md->mark_seen(Folder::inbox, id).ok());
  }
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_TRUE(index->find(Folder::inbox, id)->seen);
  EXPECT_EQ(box->messages_read(), 1u);
}

// A folder renumbered by the server (a new UIDVALIDITY) is indexed afresh: no row of
// the old numbering survives to name a message of the new one.
TEST_P(MailboxTest, NewUidValidityRebuildsTheFolderIndex) {
  if (!imap())
    GTEST_SKIP() << "UIDVALIDITY is IMAP's";
  auto a = deliver(message(1));
  auto b = deliver(message(2));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  // As if the rows and the mark had been recorded under UIDVALIDITY 1 (ids "1.N").
  db.exec(
      "UPDATE mail_index SET uid = '1' || substr(uid, instr(uid, '.'));"
      "UPDATE mail_folder_state SET uidvalidity = 1;");
  const std::string old_a = "1" + a.substr(a.find('.'));
  ASSERT_TRUE(index->find(Folder::inbox, old_a).has_value());
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  EXPECT_FALSE(index->find(Folder::inbox, old_a).has_value());
  EXPECT_EQ(index->find(Folder::inbox, a)->subject, "message 1");
  EXPECT_EQ(index->find(Folder::inbox, b)->subject, "message 2");
  EXPECT_EQ(subjects().size(), 2u);
  EXPECT_EQ(box->read(Folder::inbox, old_a).code(), Errc::not_found);
  EXPECT_EQ(box->messages_read(), 4u);  // both read again under the new numbering
}

TEST_P(MailboxTest, HintsComeFromTheMimeStructureOnBothBackends) {
  auto enc = deliver(fixture("pgp_mime.eml"));
  auto att = deliver(fixture("mixed_attachments.eml"));
  auto smime = deliver(fixture("smime_auth_enveloped.eml"));
  auto sig = deliver(fixture("pgp_signed.eml"));
  ASSERT_TRUE(index->refresh(Folder::inbox).ok());
  auto e = index->find(Folder::inbox, enc);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->encrypted);
  EXPECT_EQ(e->protection, Protection::pgp_mime);
  auto a = index->find(Folder::inbox, att);
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->has_attachments);
  EXPECT_EQ(a->subject, "Grüße aus Köln – Anhänge ✓");
  EXPECT_EQ(a->from_name, "Jörg Müller");
  EXPECT_EQ(index->find(Folder::inbox, smime)->protection, Protection::smime_auth_enveloped);
  EXPECT_TRUE(index->find(Folder::inbox, sig)->is_signed);
}

TEST_P(MailboxTest, NoteDeliveredAndNoteChanged) {
  auto id = deliver(message(9));
  ASSERT_TRUE(index->note_delivered(Folder::inbox, id).ok());
  EXPECT_EQ(index->find(Folder::inbox, id)->subject, "message 9");
  ASSERT_TRUE(box->mark_seen(Folder::inbox, id).ok());
  ASSERT_TRUE(index->note_changed(Folder::inbox, id).ok());
  EXPECT_TRUE(index->find(Folder::inbox, id)->seen);
  ASSERT_TRUE(box->remove(Folder::inbox, id).ok());
  ASSERT_TRUE(index->note_changed(Folder::inbox, id).ok());
  EXPECT_FALSE(index->find(Folder::inbox, id).has_value());
  EXPECT_EQ(index->note_delivered(Folder::inbox, "../x").code(), Errc::invalid_argument);
  EXPECT_EQ(index->note_delivered(Folder::inbox, id).code(), Errc::not_found);
}

INSTANTIATE_TEST_SUITE_P(Backends, MailboxTest, ::testing::Values(Backend::maildir, Backend::imap),
                         backend_test_name);

// A server without CONDSTORE and QRESYNC (its own Dovecot, advertising neither): the
// index falls back to listing every UID with its flags at each refresh, and still sees a
// new message, a flag set by another client and a removal, and reads each message once.
TEST(ImapWithoutCondstoreTest, IndexFallsBackToUidAndFlagListsAndMissesNothing) {
  std::string why;
  std::unique_ptr<test::Dovecot> plain =
      test::start_dovecot(&why, test::DovecotOptions{.condstore = false});
  WMK_REQUIRE_DOVECOT(plain, why);
  const ImapServer server = dovecot_server(*plain);
  auto outside = ImapClient::connect(server);
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  ASSERT_TRUE(outside->login("user1", util::SecretBuffer::copy_of(test::user_password(1))).ok());
  // The fallback is what runs: the server really advertises neither.
  ASSERT_FALSE(outside->has_condstore());
  ASSERT_FALSE(outside->has_qresync());
  ASSERT_TRUE(outside->has_uidplus());

  auto opened = imap_mailbox(server, "user1*master",
                             util::SecretBuffer::copy_of(std::string_view(test::kMasterPassword)));
  ASSERT_TRUE(opened.ok()) << opened.error().message << "\n" << plain->log();
  std::unique_ptr<Mailbox> box = std::move(opened).value();
  ASSERT_TRUE(box->ensure().ok());
  store::Db db = store::Db::open_memory();
  ASSERT_TRUE(store::migrate(db).ok());
  db.exec("INSERT INTO users (id, login, password_hash, created) VALUES (1, 'u1', 'x', 0)");
  MailIndex index(db, 1, *box);

  auto deliver = [&](int n) {
    auto uid = outside->append(Folder::inbox, with_crlf(message(n)), Flags{});
    EXPECT_TRUE(uid.ok() && uid->has_value());
    auto state = outside->select(Folder::inbox);
    EXPECT_TRUE(state.ok());
    EXPECT_FALSE(state->highest_modseq.has_value());
    return std::make_pair(std::to_string(state->uidvalidity) + "." + std::to_string(**uid), **uid);
  };
  for (int n = 0; n < 3; ++n)
    deliver(n);
  ASSERT_TRUE(index.refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 3u);
  EXPECT_EQ(index.page(Folder::inbox, 1, 10)->total, 3);
  {
    auto st = db.prepare("SELECT highest_modseq FROM mail_folder_state WHERE folder = 'INBOX'");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int(0), 0);  // no mod-sequence to trust
  }

  // Unchanged: every UID with its flags is listed again, no message is read.
  std::uint64_t listed = box->messages_listed();
  ASSERT_TRUE(index.refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_listed() - listed, 3u);
  EXPECT_EQ(box->messages_read(), 3u);

  // A new message: seen at the next refresh, and only it is read.
  auto [fourth, fourth_uid] = deliver(4);
  ASSERT_TRUE(index.refresh(Folder::inbox).ok());
  EXPECT_EQ(box->messages_read(), 4u);
  auto page = index.page(Folder::inbox, 1, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 4);
  EXPECT_EQ(page->items.front().subject, "message 4");
  EXPECT_EQ(page->items.front().uid, fourth);
  EXPECT_FALSE(page->items.front().seen);

  // A flag set by another client: seen at the next refresh, nothing read.
  ASSERT_TRUE(outside->set_flag(Folder::inbox, fourth_uid, Flag::seen, true).ok());
  listed = box->messages_listed();
  ASSERT_TRUE(index.refresh(Folder::inbox).ok());
  EXPECT_TRUE(index.find(Folder::inbox, fourth)->seen);
  EXPECT_EQ(box->messages_listed() - listed, 4u);  // the whole folder, not a delta
  EXPECT_EQ(box->messages_read(), 4u);

  // Removed by another client: gone from the index.
  ASSERT_TRUE(outside->remove(Folder::inbox, fourth_uid).ok());
  ASSERT_TRUE(index.refresh(Folder::inbox).ok());
  EXPECT_FALSE(index.find(Folder::inbox, fourth).has_value());
  EXPECT_EQ(index.page(Folder::inbox, 1, 10)->total, 3);
  EXPECT_EQ(box->messages_read(), 4u);
}

TEST(LineEndsTest, CrlfAndLfConvertBothWaysAndLeaveLoneCr) {
  EXPECT_EQ(crlf_to_lf("a\r\nb\r\n\r\nc"), "a\nb\n\nc");
  EXPECT_EQ(crlf_to_lf("a\rb\r"), "a\rb\r");
  EXPECT_EQ(lf_to_crlf("a\nb\n\nc"), "a\r\nb\r\n\r\nc");
  EXPECT_EQ(lf_to_crlf("a\r\nb\n"), "a\r\nb\r\n");
  EXPECT_EQ(lf_to_crlf("\n"), "\r\n");
}

}  // namespace
}  // namespace wmk::mail
