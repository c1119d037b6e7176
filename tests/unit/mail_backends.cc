#include "tests/unit/mail_backends.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>
#include <stdexcept>

#include "core/store/schema.h"
#include "core/util/secret.h"

namespace wmk::mail {

std::string backend_test_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::maildir ? "maildir" : "imap";
}

void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::maildir ? "maildir" : "imap");
}

std::string with_crlf(const std::string& lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n')
      out += '\r';
    out += c;
  }
  return out;
}

namespace {

// The test's own CRLF to LF.
std::string with_lf(const std::string& crlf) {
  std::string out;
  for (std::size_t i = 0; i < crlf.size(); ++i) {
    if (crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n')
      continue;
    out += crlf[i];
  }
  return out;
}

// Users of the shared Dovecot handed out so far in this process.
int next_user = 0;

}  // namespace

test::Dovecot* shared_dovecot(std::string* why) {
  static std::unique_ptr<test::Dovecot> dovecot;
  static std::string why_not;
  if (!dovecot && why_not.empty())
    dovecot = test::start_dovecot(&why_not);
  *why = why_not;
  return dovecot.get();
}

ImapServer dovecot_server(const test::Dovecot& dovecot) {
  ImapServer s;
  s.host = "localhost";
  s.port = dovecot.imaps_port();
  s.extra_ca_file = dovecot.ca_file();
  return s;
}

void BackendTest::open_box(const util::Clock& clock) {
  md.emplace(dir.path() + "/Maildir", clock);
  if (!imap()) {
    box = maildir_mailbox(*md);
    return;
  }
  std::string why;
  dovecot = shared_dovecot(&why);
  WMK_REQUIRE_DOVECOT(dovecot, why);
  ASSERT_LT(next_user, test::kUsers) << "the test Dovecot has too few users";
  user = next_user++;
  auto opened = imap_mailbox(dovecot_server(*dovecot), test::user_name(user) + "*master",
                             util::SecretBuffer::copy_of(std::string_view(test::kMasterPassword)));
  ASSERT_TRUE(opened.ok()) << opened.error().message << "\n" << dovecot->log();
  box = std::move(opened).value();
  auto c = ImapClient::connect(dovecot_server(*dovecot));
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(
      c->login(test::user_name(user), util::SecretBuffer::copy_of(test::user_password(user))).ok());
  outside = std::make_unique<ImapClient>(std::move(c).value());
}

void BackendTest::sync(Folder folder) {
  // SELECT again: an IMAP session sees other sessions' expunges only when it syncs, and
  // the product's own connection is another session.
  (void)outside->select(folder);
}

std::uint32_t BackendTest::imap_uid(const std::string& id) {
  return static_cast<std::uint32_t>(std::stoul(id.substr(id.find('.') + 1)));
}

std::string BackendTest::deliver(const std::string& lf_message, Folder folder) {
  if (!imap()) {
    auto uid = md->deliver(folder, lf_message);
    EXPECT_TRUE(uid.ok());
    return uid.ok() ? *uid : "";
  }
  EXPECT_TRUE(outside->ensure().ok());
  auto uid = outside->append(folder, with_crlf(lf_message), Flags{});
  EXPECT_TRUE(uid.ok() && uid->has_value());
  auto state = outside->select(folder);
  EXPECT_TRUE(state.ok());
  if (!uid.ok() || !uid->has_value() || !state.ok())
    return "";
  return std::to_string(state->uidvalidity) + "." + std::to_string(**uid);
}

std::string BackendTest::stale(const std::string& id) const {
  if (!imap())
    return id + "x";
  auto dot = id.find('.');
  return std::to_string(std::stoul(id.substr(0, dot)) + 1) + id.substr(dot);
}

void BackendTest::settle(Folder folder) {
  if (imap())
    return;
  // A different past time each call, so each settled change is a new mark.
  std::time_t when = 1'600'000'000 + 60 * settled_++;
  struct timespec old[2] = {{when, 0}, {when, 0}};
  for (const char* sub : {"/new", "/cur"})
    ASSERT_EQ(::utimensat(AT_FDCWD, (md->folder_path(folder) + sub).c_str(), old, 0), 0);
}

Result<std::string> BackendTest::stored(Folder folder, const std::string& id) {
  if (!imap())
    return md->read(folder, id);
  sync(folder);
  auto bytes = outside->read(folder, imap_uid(id));
  if (!bytes.ok())
    return bytes;
  EXPECT_EQ(with_crlf(with_lf(*bytes)), *bytes) << "a bare LF on the IMAP server";
  return with_lf(*bytes);
}

Result<Flags> BackendTest::stored_flags(Folder folder, const std::string& id) {
  if (!imap()) {
    auto info = md->find(folder, id);
    if (!info.ok())
      return info.error();
    return info->flags;
  }
  sync(folder);
  auto l = outside->list(folder, {imap_uid(id)});
  if (!l.ok())
    return l.error();
  if (l->size() != 1)
    return make_error(Errc::not_found, "no such message on the server");
  return l->front().flags;
}

std::size_t BackendTest::stored_count(Folder folder) {
  if (!imap()) {
    auto l = md->list(folder);
    return l.ok() ? l->size() : 0;
  }
  sync(folder);
  auto l = outside->list(folder);
  return l.ok() ? l->size() : 0;
}

Status BackendTest::outside_mark_seen(Folder folder, const std::string& id) {
  if (!imap())
    return md->mark_seen(folder, id);
  return outside->set_flag(folder, imap_uid(id), Flag::seen, true);
}

Status BackendTest::outside_remove(Folder folder, const std::string& id) {
  if (!imap())
    return md->remove(folder, id);
  return outside->remove(folder, imap_uid(id));
}

std::unique_ptr<Mailbox> BackendTest::same_user_box() {
  if (!imap())
    return maildir_mailbox(*md);
  auto opened = imap_mailbox(dovecot_server(*dovecot), test::user_name(user) + "*master",
                             util::SecretBuffer::copy_of(std::string_view(test::kMasterPassword)));
  EXPECT_TRUE(opened.ok());
  return opened.ok() ? std::move(opened).value() : nullptr;
}

std::unique_ptr<Mailbox> BackendTest::other_user_box() {
  if (!imap())
    return maildir_mailbox(Maildir(dir.path() + "/other/Maildir"));
  EXPECT_LT(next_user, test::kUsers);
  auto opened = imap_mailbox(dovecot_server(*dovecot), test::user_name(next_user++) + "*master",
                             util::SecretBuffer::copy_of(std::string_view(test::kMasterPassword)));
  EXPECT_TRUE(opened.ok());
  return opened.ok() ? std::move(opened).value() : nullptr;
}

void IndexedBackendTest::open_indexed(int users) {
  ASSERT_TRUE(store::migrate(db).ok());
  for (int u = 1; u <= users; ++u) {
    db.exec("INSERT INTO users (id, login, password_hash, created) VALUES (" + std::to_string(u) +
            ", 'u" + std::to_string(u) + "', 'x', 0)");
  }
  open_box();
  if (IsSkipped() || HasFatalFailure())
    return;
  ASSERT_TRUE(box->ensure().ok());
  index = std::make_unique<MailIndex>(db, 1, *box);
}

std::vector<std::string> IndexedBackendTest::subjects(Folder f) {
  auto p = index->page(f, 1, 1000);
  EXPECT_TRUE(p.ok());
  std::vector<std::string> out;
  if (!p)
    return out;
  for (const auto& s : p->items)
    out.push_back(s.subject);
  return out;
}

}  // namespace wmk::mail
