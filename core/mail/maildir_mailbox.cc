// The Maildir backend of Mailbox: a Maildir on this machine. Ids are the files' unique
// names; the index's mark is the mtimes of new/ and cur/.

#include <time.h>

#include "core/mail/mailbox.h"

namespace wmk::mail {
namespace {

// Directory mtimes have the kernel's coarse clock granularity (milliseconds), so a
// file added in the same tick as the last change leaves the mtime as it was. A
// folder changed less than this long before a scan is therefore rescanned at the
// next refresh too (Dovecot guards its uidlist the same way).
constexpr std::int64_t kSettleNs = 2'000'000'000;

// The file system's idea of now: directory mtimes come from CLOCK_REALTIME, so this
// must too (it is not a business clock and is never shown).
std::int64_t fs_now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

MessageInfo info_of(const Entry& e) {
  return MessageInfo{e.uid, e.flags, e.size, e.mtime, subdir_name(e.subdir), e.filename};
}

class MaildirMailbox final : public Mailbox {
 public:
  explicit MaildirMailbox(Maildir maildir) : maildir_(std::move(maildir)) {}

  const char* backend() const override { return "maildir"; }

  Status ensure() override { return maildir_.ensure(); }

  Result<std::vector<MessageInfo>> list(Folder folder) override {
    auto entries = maildir_.list(folder);
    if (!entries)
      return entries.error();
    std::vector<MessageInfo> out;
    out.reserve(entries->size());
    for (const Entry& e : *entries)
      out.push_back(info_of(e));
    messages_listed_ += out.size();
    return out;
  }

  Result<MessageInfo> find(Folder folder, std::string_view id) override {
    auto e = maildir_.find(folder, id);
    if (!e)
      return e.error();
    ++messages_listed_;
    return info_of(*e);
  }

  Result<std::string> read(Folder folder, std::string_view id) override {
    auto bytes = maildir_.read(folder, id);
    if (bytes)
      ++messages_read_;
    return bytes;
  }

  Result<std::vector<MessagePrefix>> read_prefixes(Folder folder,
                                                   const std::vector<std::string>& ids,
                                                   std::size_t max_bytes) override {
    std::vector<MessagePrefix> out;
    for (const std::string& id : ids) {
      auto e = maildir_.find(folder, id);
      if (!e) {
        if (e.code() == Errc::not_found || e.code() == Errc::invalid_argument)
          continue;
        return e.error();
      }
      auto bytes = maildir_.read_prefix(folder, *e, max_bytes);
      if (!bytes) {
        if (bytes.code() == Errc::not_found)
          continue;
        return bytes.error();
      }
      ++messages_read_;
      out.push_back(MessagePrefix{id, std::move(bytes).value()});
    }
    return out;
  }

  Status mark_seen(Folder folder, std::string_view id) override {
    return maildir_.mark_seen(folder, id);
  }

  Status set_flag(Folder folder, std::string_view id, Flag flag, bool on) override {
    return maildir_.set_flag(folder, id, flag, on);
  }

  Result<std::string> store(Folder folder, std::string_view message, Flags flags) override {
    return maildir_.store(folder, message, flags);
  }

  Status remove(Folder folder, std::string_view id) override { return maildir_.remove(folder, id); }

  Result<FolderChanges> changes(Folder folder, const std::optional<FolderMark>& last) override {
    FolderChanges out;
    // The times are taken before the listing: a change that lands while we scan
    // leaves newer mtimes on disk than recorded, so the next refresh scans again.
    auto times = maildir_.dir_times(folder);
    if (!times) {
      if (times.code() != Errc::not_found)
        return times.error();
      return out;  // complete and empty: a missing folder indexes as empty
    }
    FolderMark mark;
    mark.new_mtime = times->new_ns;
    mark.cur_mtime = times->cur_ns;
    if (last && *last == mark) {
      out.kind = FolderChanges::Kind::unchanged;
      out.mark = mark;
      return out;
    }
    auto listed = list(folder);
    if (!listed && listed.code() != Errc::not_found)
      return listed.error();
    if (listed)
      out.messages = std::move(listed).value();
    // An unsettled folder is recorded with mtimes that can never match (-1), so
    // that the next refresh looks again.
    std::int64_t now = fs_now_ns();
    if (now - mark.new_mtime < kSettleNs || now - mark.cur_mtime < kSettleNs)
      mark.new_mtime = mark.cur_mtime = -1;
    out.mark = mark;
    return out;
  }

 private:
  Maildir maildir_;
};

}  // namespace

std::unique_ptr<Mailbox> maildir_mailbox(Maildir maildir) {
  return std::make_unique<MaildirMailbox>(std::move(maildir));
}

}  // namespace wmk::mail
