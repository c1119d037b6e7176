// Recovery after a crash and limits on mail input (issue 12): delivery that leaves
// nothing half-written and recognises an MTA's retry, the header limit, Maildir tmp/
// cleaning, fsck of orphan keys made by real gpg, UTF-8 in names and JSON.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/auth/users.h"
#include "core/contacts/contacts.h"
#include "core/mail/deliver.h"
#include "core/mail/maildir.h"
#include "core/mail/mime.h"
#include "core/setup/fsck.h"
#include "core/util/encoding.h"
#include "core/util/json.h"
#include "core/util/utf8.h"
#include "tests/unit/keys_test_util.h"

namespace wmk {

namespace {

namespace fs = std::filesystem;
using test::KeysEnv;
using test::secret;

std::string message(const std::string& subject, const std::string& body = "hello\n") {
  return "From: Erin <erin@example.net>\nTo: alice@example.org\nSubject: " + subject +
         "\nMessage-ID: <" + subject + "@example.net>\n\n" + body;
}

int files_in(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    n += e.is_regular_file() ? 1 : 0;
  return n;
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    user_id_ = auth::UserStore(env.app().db, env.clock()).find("alice")->id;
    md_.emplace(config::maildir_for(env.app().config, "alice", "alice@example.org"), env.clock());
  }
  std::string inbox(const char* sub) const {
    return md_->folder_path(mail::Folder::inbox) + "/" + sub;
  }
  KeysEnv env;
  std::int64_t user_id_ = 0;
  std::optional<mail::Maildir> md_;
};

}  // namespace

// Issue 12: a kill after the message was complete made the MTA's retry store it twice.
TEST_F(RecoveryTest, RetriedDeliveryOfTheSameBytesIsStoredOnce) {
  const std::string m = message("retry");
  auto first =
      mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, m, env.clock());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->duplicate);
  auto again =
      mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox,
                            "From MAILER-DAEMON Fri Mar  1 12:00:00 2024\n" + m, env.clock());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->uid, first->uid);
  EXPECT_EQ(files_in(inbox("new")), 1);
  // Read meanwhile (moved to cur/): still recognised.
  ASSERT_TRUE(md_->mark_seen(mail::Folder::inbox, first->uid).ok());
  auto third =
      mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, m, env.clock());
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->duplicate);
  // Other bytes are another message; the same bytes after a day are delivered again.
  auto other = mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox,
                                     message("other"), env.clock());
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->duplicate);
  env.clock().advance(mail::kDeliveryMemory + std::chrono::seconds(1));
  auto later =
      mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, m, env.clock());
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(later->duplicate);
  EXPECT_EQ(files_in(inbox("new")) + files_in(inbox("cur")), 3);
  // The record of "other" is a day old; the one of m was renewed by the last delivery.
  EXPECT_EQ(mail::purge_deliveries(env.app().db, env.clock(), store::PurgeMode::dry_run), 1);
  EXPECT_EQ(mail::purge_deliveries(env.app().db, env.clock(), store::PurgeMode::remove), 1);
  EXPECT_EQ(env.count("SELECT count(*) FROM deliveries"), 1);
}

// A delivery killed after its record but before its link: the retry uses the
// reserved name and stores exactly one copy.
TEST_F(RecoveryTest, ARetryAfterADeliveryKilledBeforeItsLinkStoresOneCopy) {
  const std::string m = message("half");
  const std::string reserved = md_->new_uid();
  ASSERT_TRUE(md_->ensure().ok());
  auto ins = env.app().db.prepare(
      "INSERT INTO deliveries (user_id, folder, digest, uid, at) VALUES (?, 'INBOX', ?, ?, ?)");
  ins.bind_all(user_id_, util::sha256_hex(m), reserved, env.clock().now());
  ins.run();
  auto d = mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, m, env.clock());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->duplicate);
  EXPECT_EQ(d->uid, reserved);
  EXPECT_EQ(files_in(inbox("new")), 1);
}

// Issue 12: a 50 MB header line was accepted (390 MB to deliver, 5.5 s per view).
TEST_F(RecoveryTest, HeaderOverTheLimitIsRefusedAndNothingIsStored) {
  mail::DeliverLimits limits;
  limits.max_header_bytes = 4096;
  const std::string big =
      "From: a@example.net\nX-Long: " + std::string(5000, 'x') + "\nSubject: big\n\nbody\n";
  auto d = mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, big,
                                 env.clock(), limits);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), Errc::unsupported);
  EXPECT_NE(d.error().message.find("4096"), std::string::npos);
  EXPECT_EQ(files_in(inbox("new")), 0);
  EXPECT_EQ(env.count("SELECT count(*) FROM deliveries"), 0);
  // A body of any size is not a header.
  const std::string long_body = "From: a@example.net\nSubject: ok\n\n" + std::string(8000, 'y');
  EXPECT_TRUE(mail::deliver_message(env.app().db, user_id_, *md_, mail::Folder::inbox, long_body,
                                    env.clock(), limits)
                  .ok());
}

TEST(HeaderLimit, AFiftyMegabyteHeaderLineIsRefusedByTheParserAtOnce) {
  const std::string raw =
      "From: a@example.net\nX-Junk: " + std::string(50u << 20, 'x') + "\nSubject: s\n\nbody\n";
  const auto start = std::chrono::steady_clock::now();
  auto parsed = mail::parse_message(raw);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.code(), Errc::unsupported);
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_EQ(mail::header_block_size("A: b\r\n\r\nbody"), 8u);
  EXPECT_EQ(mail::header_block_size("A: b\n\nbody"), 6u);
  EXPECT_EQ(mail::header_block_size("A: b\n"), 5u);
}

// Bad input: MIME nested thousands of levels deep is parsed in bounded time and stack.
TEST(HeaderLimit, MimeNestedThousandsDeepIsBounded) {
  constexpr int kDepth = 5000;
  std::string raw =
      "From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b0\"\n\n";
  for (int i = 1; i < kDepth; ++i) {
    raw += "--b" + std::to_string(i - 1) + "\nContent-Type: multipart/mixed; boundary=\"b" +
           std::to_string(i) + "\"\n\n";
  }
  raw += "--b" + std::to_string(kDepth - 1) + "\nContent-Type: text/plain\n\ndeep\n";
  for (int i = kDepth - 1; i >= 0; --i)
    raw += "--b" + std::to_string(i) + "--\n";
  const auto start = std::chrono::steady_clock::now();
  auto parsed = mail::parse_message(raw);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  if (parsed) {
    for (const auto& p : parsed->parts)
      EXPECT_LT(p.id.size(), 200u);
  }
}

// Issue 12: a killed deliver left a partial 2 MiB file in tmp/. Children deliver a
// 5 MB message and are killed at random moments: tmp/ stays empty, and new/ holds
// only complete messages.
TEST_F(RecoveryTest, ADeliveryKilledAtRandomMomentsLeavesNothingHalfWritten) {
  ASSERT_TRUE(md_->ensure().ok());
  const std::string m = message("big", std::string(5u << 20, 'z') + "\n");
  std::mt19937 rng(7);
  for (int round = 0; round < 12; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)md_->deliver(mail::Folder::inbox, m);
      ::_exit(0);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    ::kill(pid, SIGKILL);
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  }
  EXPECT_EQ(files_in(inbox("tmp")), 0);
  for (const auto& e : fs::directory_iterator(inbox("new")))
    EXPECT_EQ(fs::file_size(e.path()), m.size()) << e.path();
}

TEST_F(RecoveryTest, OldTmpFilesAreCleanedRecentOnesKept) {
  ASSERT_TRUE(md_->ensure().ok());
  std::ofstream(inbox("tmp") + "/old.partial") << "half a message";
  std::ofstream(inbox("tmp") + "/recent.partial") << "being written";
  fs::last_write_time(inbox("tmp") + "/old.partial",
                      fs::file_time_type::clock::now() - std::chrono::hours(40));
  EXPECT_EQ(md_->clean_tmp(setup::kMaildirTmpAge, true), 1);
  EXPECT_EQ(files_in(inbox("tmp")), 2);
  auto r = setup::fsck(env.app(), setup::FsckDepth::cheap, store::PurgeMode::remove);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->maildir_tmp, 1);
  EXPECT_FALSE(fs::exists(inbox("tmp") + "/old.partial"));
  EXPECT_TRUE(fs::exists(inbox("tmp") + "/recent.partial"));
}

// Issue 12: a killed `key import` left keys in the GnuPG home with no database row,
// and nothing cleaned them up. Made here by outside gpg importing straight into the
// server's home, as a killed import would leave one.
TEST_F(RecoveryTest, FsckRemovesKeysInTheGnupgHomeThatHaveNoRow) {
  const std::string outside = env.outside_home("outside");
  const std::string held_fpr = KeysEnv::gpg_make_key(outside, "Alice <alice@example.org>", "pw1");
  const std::string orphan_fpr = KeysEnv::gpg_make_key(outside, "Zed <zed@example.org>", "pw2");
  auto export_secret = [&](const std::string& fpr, const std::string& pass) {
    auto r = KeysEnv::gpg(outside,
                          {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                           "--export-secret-keys", fpr},
                          pass + "\n");
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  };
  auto store = env.store();
  auto held = store.import_openpgp("alice", export_secret(held_fpr, "pw1"), secret("pw1"),
                                   secret("a long key passphrase"));
  ASSERT_TRUE(held.ok()) << held.error().message;
  const std::string orphan_file = env.path("orphan.asc");
  test::spit(orphan_file, export_secret(orphan_fpr, "pw2"));
  auto imp = KeysEnv::gpg(
      env.gnupg_home(),
      {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", orphan_file}, "pw2\n");
  ASSERT_EQ(imp.status, 0) << imp.err;

  auto dry = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::dry_run);
  ASSERT_TRUE(dry.ok()) << dry.error().message;
  ASSERT_TRUE(dry->orphans_checked);
  EXPECT_EQ(dry->orphan_keys, std::vector<std::string>{orphan_fpr});
  auto done = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::remove);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->orphan_keys, std::vector<std::string>{orphan_fpr});
  auto listed = KeysEnv::gpg(env.gnupg_home(), {"--with-colons", "--list-secret-keys"});
  EXPECT_EQ(listed.out.find(orphan_fpr), std::string::npos);
  EXPECT_NE(listed.out.find(held_fpr), std::string::npos);  // the held key stays
  auto again = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::remove);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->orphan_keys.empty());
  EXPECT_EQ(env.count("SELECT count(*) FROM audit WHERE event = 'key.delete' AND "
                      "detail LIKE '%orphan%'"),
            1);
}

// Issue 12: a killed `contact import` left the public key in the GnuPG home with no
// contact_keys row, and nothing removed it. Made here by outside gpg importing a public
// key straight into the server's home; a key imported as a contact stays.
TEST_F(RecoveryTest, FsckRemovesPublicKeysNoUserOrContactHolds) {
  const std::string outside = env.outside_home("outside");
  const std::string held_fpr = KeysEnv::gpg_make_key(outside, "Carol <carol@example.net>", "");
  const std::string orphan_fpr = KeysEnv::gpg_make_key(outside, "Zed <zed@example.net>", "");
  auto store = env.store();
  contacts::ContactStore contacts(env.app(), store, keys::Actor{"test", "", ""});
  auto exported = KeysEnv::gpg(outside, {"--armor", "--export", held_fpr});
  ASSERT_EQ(exported.status, 0) << exported.err;
  auto held = contacts.import("alice", exported.out, {});
  ASSERT_TRUE(held.ok()) << held.error().message;
  const std::string orphan_file = env.path("orphan-public.asc");
  test::spit(orphan_file, KeysEnv::gpg(outside, {"--armor", "--export", orphan_fpr}).out);
  auto imp = KeysEnv::gpg(env.gnupg_home(), {"--import", orphan_file});
  ASSERT_EQ(imp.status, 0) << imp.err;

  auto dry = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::dry_run);
  ASSERT_TRUE(dry.ok()) << dry.error().message;
  ASSERT_TRUE(dry->orphans_checked);
  EXPECT_EQ(dry->orphan_public_keys, std::vector<std::string>{orphan_fpr});
  EXPECT_TRUE(dry->orphan_keys.empty());
  auto done = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::remove);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->orphan_public_keys, std::vector<std::string>{orphan_fpr});
  auto listed = KeysEnv::gpg(env.gnupg_home(), {"--with-colons", "--list-keys"});
  EXPECT_EQ(listed.out.find(orphan_fpr), std::string::npos);
  EXPECT_NE(listed.out.find(held_fpr), std::string::npos);  // the contact's key stays
  auto again = setup::fsck(env.app(), setup::FsckDepth::full, store::PurgeMode::remove);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->orphan_public_keys.empty());
}

// The staged import: the file's passphrase never protects a key in the server's home.
TEST_F(RecoveryTest, ImportedKeyInTheHomeDoesNotOpenWithTheFilePassphrase) {
  const std::string outside = env.outside_home("outside");
  const std::string fpr = KeysEnv::gpg_make_key(outside, "Alice <alice@example.org>", "file-pw");
  auto exported = KeysEnv::gpg(outside,
                               {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                                "--export-secret-keys", fpr},
                               "file-pw\n");
  ASSERT_EQ(exported.status, 0);
  auto key = env.store().import_openpgp("alice", exported.out, secret("file-pw"),
                                        secret("a long key passphrase"));
  ASSERT_TRUE(key.ok()) << key.error().message;
  // Outside gpg, asked to sign with the server's home and the file's passphrase, fails.
  auto signed_out = KeysEnv::gpg(env.gnupg_home(),
                                 {"--pinentry-mode", "loopback", "--passphrase-fd", "0",
                                  "--local-user", fpr, "--detach-sign", "--armor"},
                                 "file-pw\n");
  EXPECT_NE(signed_out.status, 0);
  EXPECT_EQ(signed_out.out.find("BEGIN PGP SIGNATURE"), std::string::npos);
  // No scratch home is left behind.
  int scratch = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(env.data_dir() + "/tmp", ec))
    scratch += e.path().filename().string().rfind("import-", 0) == 0 ? 1 : 0;
  EXPECT_EQ(scratch, 0);
}

// Bad input: an OpenPGP compression bomb (80 MiB of zeros, compressed by gpg to a few
// hundred kilobytes) is refused once the plaintext passes 64 MiB, not expanded.
TEST_F(RecoveryTest, OpenPgpCompressionBombIsCappedNotExpanded) {
  const std::string outside = env.outside_home("outside");
  const std::string fpr = KeysEnv::gpg_make_key(outside, "Alice <alice@example.org>", "pw");
  auto exported = KeysEnv::gpg(
      outside, {"--pinentry-mode", "loopback", "--passphrase-fd", "0", "--export-secret-keys", fpr},
      "pw\n");
  ASSERT_EQ(exported.status, 0);
  auto store = env.store();
  auto key =
      store.import_openpgp("alice", exported.out, secret("pw"), secret("a long key passphrase"));
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto bomb = KeysEnv::gpg(outside,
                           {"--trust-model", "always", "--compress-algo", "zlib",
                            "--compress-level", "9", "-r", fpr, "-e"},
                           std::string(80u << 20, '\0'));
  ASSERT_EQ(bomb.status, 0) << bomb.err;
  ASSERT_LT(bomb.out.size(), 2u << 20);
  auto unlocked = store.unlock(*key, secret("a long key passphrase"));
  ASSERT_TRUE(unlocked.ok()) << unlocked.error().message;
  auto r = store.decrypt(*unlocked, bomb.out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::unsupported) << r.error().message;
  // A small message still decrypts.
  auto small = KeysEnv::gpg(outside, {"--trust-model", "always", "-r", fpr, "-e"}, "hello\n");
  ASSERT_EQ(small.status, 0);
  EXPECT_TRUE(store.decrypt(*unlocked, small.out).ok());
}

// Issue 12: `user add --name` with invalid UTF-8 was stored, and --json then printed
// invalid JSON.
TEST_F(RecoveryTest, NamesMustBeValidUtf8AndJsonStaysValid) {
  EXPECT_TRUE(util::valid_utf8("Ærin Ünal ✓"));
  EXPECT_FALSE(util::valid_utf8("bad \xff byte"));
  EXPECT_FALSE(util::valid_utf8("overlong \xc0\xaf"));
  EXPECT_FALSE(util::valid_utf8("cut \xe2\x9c"));
  EXPECT_TRUE(util::valid_utf8("replacement \xef\xbf\xbd is fine"));
  auth::UserStore users(env.app().db, env.clock());
  const crypto::KdfParams cheap{64, 1, 1};
  auto bad = users.add("erin", "erin@example.org", "bad \xff", secret("pw"), cheap);
  EXPECT_EQ(bad.code(), Errc::invalid_argument);
  EXPECT_FALSE(users.find("erin").has_value());
  EXPECT_TRUE(users.add("erin", "erin@example.org", "Ærin", secret("pw"), cheap).ok());
  EXPECT_EQ(util::json_quote("a\xff"
                             "b\xc3\xa9"),
            "\"a\xef\xbf\xbd"
            "b\xc3\xa9\"");
  EXPECT_TRUE(util::valid_utf8(util::json_quote("x\xc0\xaf\xe2\x9c")));
}

}  // namespace wmk
