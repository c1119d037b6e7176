#include "core/mail/maildir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/util/fs.h"
#include "tests/unit/test_util.h"

namespace wmk::mail {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMessage = "From: a@example.org\nSubject: hi\n\nbody\n";

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  return out;
}

class MaildirTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(md.ensure().ok()); }
  std::string root() const { return dir.path() + "/Maildir"; }
  test::TempDir dir;
  util::ManualClock clock{1'700'000'000};
  Maildir md{dir.path() + "/Maildir", clock};
};

TEST(MaildirFolders, NamesRoundTripAndNothingElseIsAccepted) {
  for (Folder f : kAllFolders)
    EXPECT_EQ(folder_from_name(folder_name(f)), f);
  EXPECT_EQ(std::string(folder_name(Folder::inbox)), "INBOX");
  EXPECT_EQ(std::string(folder_name(Folder::sent)), "Sent");
  EXPECT_EQ(std::string(folder_name(Folder::drafts)), "Drafts");
  for (const char* bad : {"", "inbox", "sent", ".Sent", "Trash", "../INBOX", "INBOX/../..",
                          "Sent\n", "/etc", "INBOX "})
    EXPECT_FALSE(folder_from_name(bad).has_value()) << bad;
}

TEST(MaildirFlags, SortedDeduplicatedAndKeepsUnknownLetters) {
  Flags f = Flags::from_letters("SRaFS,");
  EXPECT_EQ(f.letters(), "FRSa");
  EXPECT_TRUE(f.has(Flag::seen));
  EXPECT_FALSE(f.has(Flag::draft));
  EXPECT_EQ(f.with(Flag::draft).letters(), "DFRSa");
  EXPECT_EQ((Flags{Flag::seen, Flag::draft}).letters(), "DS");
}

TEST(MaildirUid, Validation) {
  EXPECT_TRUE(valid_uid("1700000000.P12Q1R0011223344556677.host"));
  for (const char* bad : {"", ".", "..", ".hidden", "../x", "a/b", "x:2,S", "a\nb", "a\x7f"})
    EXPECT_FALSE(valid_uid(bad)) << bad;
  EXPECT_FALSE(valid_uid(std::string(256, 'a')));
}

TEST_F(MaildirTest, EnsureCreatesPrivateMaildirPlusPlusLayout) {
  for (const char* sub : {"", "/.Sent", "/.Drafts"}) {
    for (const char* leaf : {"tmp", "new", "cur"}) {
      std::string p = root() + sub + "/" + leaf;
      struct stat st {};
      ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
      EXPECT_TRUE(S_ISDIR(st.st_mode));
      EXPECT_EQ(st.st_mode & 0777, 0700u) << p;
    }
  }
  EXPECT_EQ(md.folder_path(Folder::sent), root() + "/.Sent");
  EXPECT_TRUE(md.ensure().ok());  // idempotent
}

TEST_F(MaildirTest, DeliverWritesIntoNewAndLeavesTmpEmpty) {
  auto uid = md.deliver(Folder::inbox, kMessage);
  ASSERT_TRUE(uid.ok()) << uid.error().message;
  EXPECT_TRUE(valid_uid(*uid));
  EXPECT_EQ(uid->rfind("1700000000.", 0), 0u) << *uid;  // seconds from the clock
  EXPECT_EQ(files_in(root() + "/new"), std::vector<std::string>{*uid});
  EXPECT_TRUE(files_in(root() + "/tmp").empty());
  EXPECT_TRUE(files_in(root() + "/cur").empty());
  struct stat st {};
  ASSERT_EQ(::stat((root() + "/new/" + *uid).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto data = md.read(Folder::inbox, *uid);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, kMessage);

  auto listed = md.list(Folder::inbox);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const Entry& e = listed->front();
  EXPECT_EQ(e.uid, *uid);
  EXPECT_EQ(e.subdir, Subdir::new_);
  EXPECT_EQ(e.filename, *uid);
  EXPECT_EQ(e.size, std::string(kMessage).size());
  EXPECT_TRUE(e.flags.letters().empty());
  EXPECT_GT(e.mtime, 0);
}

TEST_F(MaildirTest, UniqueNamesEvenWithinOneSecond) {
  std::set<std::string> uids;
  for (int i = 0; i < 100; ++i) {
    auto uid = md.deliver(Folder::inbox, kMessage);
    ASSERT_TRUE(uid.ok());
    uids.insert(*uid);
  }
  EXPECT_EQ(uids.size(), 100u);
  EXPECT_EQ(files_in(root() + "/new").size(), 100u);
}

TEST_F(MaildirTest, FailedDeliveryLeavesNothingBehind) {
  // new/ replaced by a plain file: the link step fails (as root too, unlike chmod).
  fs::remove_all(root() + "/new");
  { std::ofstream(root() + "/new") << "in the way"; }
  auto uid = md.deliver(Folder::inbox, kMessage);
  ASSERT_FALSE(uid.ok());
  EXPECT_EQ(uid.code(), Errc::io);
  EXPECT_NE(uid.error().message.find("new"), std::string::npos) << uid.error().message;
  EXPECT_TRUE(files_in(root() + "/tmp").empty());
  EXPECT_TRUE(fs::is_regular_file(root() + "/new"));
}

TEST_F(MaildirTest, DeliverToMissingFolderIsNotFound) {
  test::TempDir other;
  Maildir missing(other.path() + "/nope");
  auto uid = missing.deliver(Folder::inbox, kMessage);
  ASSERT_FALSE(uid.ok());
  EXPECT_EQ(uid.code(), Errc::not_found);
  EXPECT_FALSE(fs::exists(other.path() + "/nope"));
}

TEST_F(MaildirTest, MarkSeenMovesNewToCurAndAddsFlags) {
  auto uid = md.deliver(Folder::inbox, kMessage);
  ASSERT_TRUE(uid.ok());
  ASSERT_TRUE(md.mark_seen(Folder::inbox, *uid).ok());
  EXPECT_TRUE(files_in(root() + "/new").empty());
  EXPECT_EQ(files_in(root() + "/cur"), std::vector<std::string>{*uid + ":2,S"});
  ASSERT_TRUE(md.mark_seen(Folder::inbox, *uid).ok());  // idempotent
  EXPECT_EQ(files_in(root() + "/cur"), std::vector<std::string>{*uid + ":2,S"});
  auto e = md.find(Folder::inbox, *uid);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->subdir, Subdir::cur);
  EXPECT_TRUE(e->flags.has(Flag::seen));
  EXPECT_EQ(*md.read(Folder::inbox, *uid), kMessage);

  // In cur/ with other flags: S joins them in ASCII order.
  auto flagged = md.store(Folder::inbox, kMessage, Flags{Flag::replied, Flag::flagged});
  ASSERT_TRUE(flagged.ok());
  ASSERT_TRUE(md.mark_seen(Folder::inbox, *flagged).ok());
  EXPECT_TRUE(fs::exists(root() + "/cur/" + *flagged + ":2,FRS"));
  EXPECT_FALSE(fs::exists(root() + "/cur/" + *flagged + ":2,FR"));
}

TEST_F(MaildirTest, StoreWritesIntoCurWithFlags) {
  auto uid = md.store(Folder::sent, kMessage, Flags{Flag::seen});
  ASSERT_TRUE(uid.ok()) << uid.error().message;
  EXPECT_EQ(files_in(root() + "/.Sent/cur"), std::vector<std::string>{*uid + ":2,S"});
  EXPECT_TRUE(files_in(root() + "/.Sent/tmp").empty());
  EXPECT_TRUE(files_in(root() + "/cur").empty());  // not in INBOX
  EXPECT_EQ(*md.read(Folder::sent, *uid), kMessage);
  EXPECT_EQ(md.read(Folder::inbox, *uid).code(), Errc::not_found);

  auto draft = md.store(Folder::drafts, kMessage, Flags{Flag::draft, Flag::seen});
  ASSERT_TRUE(draft.ok());
  EXPECT_TRUE(fs::exists(root() + "/.Drafts/cur/" + *draft + ":2,DS"));
  ASSERT_TRUE(md.remove(Folder::drafts, *draft).ok());
  EXPECT_TRUE(files_in(root() + "/.Drafts/cur").empty());
  EXPECT_EQ(md.remove(Folder::drafts, *draft).code(), Errc::not_found);
}

TEST_F(MaildirTest, BadUidsAreRefusedBeforeTouchingTheFileSystem) {
  { std::ofstream(root() + "/secret") << "outside new/ and cur/"; }
  for (const char* bad : {"../secret", "..", ".", "", "new/../../secret", ".hidden", "x:2,S"}) {
    EXPECT_EQ(md.read(Folder::inbox, bad).code(), Errc::invalid_argument) << bad;
    EXPECT_EQ(md.find(Folder::inbox, bad).code(), Errc::invalid_argument) << bad;
    EXPECT_EQ(md.mark_seen(Folder::inbox, bad).code(), Errc::invalid_argument) << bad;
    EXPECT_EQ(md.remove(Folder::inbox, bad).code(), Errc::invalid_argument) << bad;
  }
  EXPECT_TRUE(fs::exists(root() + "/secret"));
  EXPECT_EQ(md.read(Folder::inbox, "1700000000.P1Q1R00.nohost").code(), Errc::not_found);
}

TEST_F(MaildirTest, ListSkipsHiddenFilesDirectoriesAndSymlinks) {
  auto uid = md.deliver(Folder::inbox, kMessage);
  ASSERT_TRUE(uid.ok());
  { std::ofstream(root() + "/new/.hidden") << "x"; }
  fs::create_directory(root() + "/cur/adir");
  { std::ofstream(dir.path() + "/outside") << "Subject: outside\n\nnot yours\n"; }
  fs::create_symlink(dir.path() + "/outside", root() + "/new/link");
  auto listed = md.list(Folder::inbox);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().uid, *uid);
  // A symlink is never followed, even when named directly.
  EXPECT_EQ(md.read(Folder::inbox, "link").code(), Errc::not_found);
}

TEST_F(MaildirTest, ListParsesFlagsOfForeignNames) {
  // Names as Dovecot writes them, with ,S=size and keyword letters.
  { std::ofstream(root() + "/cur/1035478339.M27624P13941.mail,S=1234,W=1256:2,Sa") << kMessage; }
  { std::ofstream(root() + "/new/1035478340.M1P2.mail") << kMessage; }
  auto listed = md.list(Folder::inbox);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& e : *listed) {
    if (e.subdir == Subdir::cur) {
      EXPECT_EQ(e.uid, "1035478339.M27624P13941.mail,S=1234,W=1256");
      EXPECT_EQ(e.flags.letters(), "Sa");
    } else {
      EXPECT_EQ(e.uid, "1035478340.M1P2.mail");
    }
  }
  EXPECT_TRUE(md.read(Folder::inbox, "1035478339.M27624P13941.mail,S=1234,W=1256").ok());
}

TEST_F(MaildirTest, DirTimesChangeWhenAMessageArrives) {
  auto before = md.dir_times(Folder::inbox);
  ASSERT_TRUE(before.ok());
  // Make the recorded time clearly older than any coarse-clock tick.
  struct timespec old[2] = {{1'600'000'000, 0}, {1'600'000'000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root() + "/new").c_str(), old, 0), 0);
  auto aged = md.dir_times(Folder::inbox);
  ASSERT_TRUE(aged.ok());
  EXPECT_EQ(aged->new_ns, 1'600'000'000LL * 1'000'000'000);
  ASSERT_TRUE(md.deliver(Folder::inbox, kMessage).ok());
  auto after = md.dir_times(Folder::inbox);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->new_ns, aged->new_ns);
  EXPECT_EQ(Maildir(dir.path() + "/none").dir_times(Folder::inbox).code(), Errc::not_found);
}

TEST_F(MaildirTest, ReadRefusesOversizedMessages) {
  std::string path = root() + "/new/big";
  {
    std::ofstream f(path);
    f << "Subject: big\n\n";
  }
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(kMaxMessageBytes) + 1), 0);
  EXPECT_EQ(md.read(Folder::inbox, "big").code(), Errc::unsupported);
  auto e = md.find(Folder::inbox, "big");
  ASSERT_TRUE(e.ok());
  auto prefix = md.read_prefix(Folder::inbox, *e, 100);
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->size(), 100u);
  EXPECT_EQ(prefix->rfind("Subject: big", 0), 0u);
}

}  // namespace
}  // namespace wmk::mail

namespace wmk::mail {
namespace {

// Regression: find() on a read message must not depend on listing the folder, and a
// message renamed by another client with other flags must still be found.
TEST_F(MaildirTest, FindsSeenAndOtherwiseFlaggedMessagesInCur) {
  auto uid = md.deliver(Folder::inbox, kMessage);
  ASSERT_TRUE(uid.ok());
  ASSERT_TRUE(md.mark_seen(Folder::inbox, *uid).ok());
  auto seen = md.find(Folder::inbox, *uid);
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_EQ(seen->filename, *uid + ":2,S");
  EXPECT_TRUE(seen->flags.has(Flag::seen));
  // An outside client (Dovecot) marks it replied and flagged: FRS.
  fs::rename(root() + "/cur/" + *uid + ":2,S", root() + "/cur/" + *uid + ":2,FRS");
  auto moved = md.find(Folder::inbox, *uid);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->filename, *uid + ":2,FRS");
  auto raw = md.read(Folder::inbox, *uid);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, kMessage);
}

}  // namespace
}  // namespace wmk::mail
