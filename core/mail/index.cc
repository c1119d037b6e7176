#include "core/mail/index.h"

#include <time.h>

#include <unordered_map>

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

constexpr const char* kSummaryColumns =
    "uid, date, from_name, from_addr, subject, size, seen, encrypted, signed, has_attachments, "
    "protection";

Protection protection_from_name(const std::string& name) {
  for (Protection p :
       {Protection::pgp_mime, Protection::pgp_inline, Protection::smime_enveloped,
        Protection::smime_auth_enveloped, Protection::smime_signed, Protection::pgp_signed}) {
    if (name == protection_name(p))
      return p;
  }
  return Protection::none;
}

Summary summary_from_row(const store::Statement& st) {
  Summary s;
  s.uid = st.column_text(0);
  s.date = st.column_int(1);
  s.from_name = st.column_text(2);
  s.from_addr = st.column_text(3);
  s.subject = st.column_text(4);
  s.size = static_cast<std::uint64_t>(st.column_int(5));
  s.seen = st.column_int(6) != 0;
  s.encrypted = st.column_int(7) != 0;
  s.is_signed = st.column_int(8) != 0;
  s.has_attachments = st.column_int(9) != 0;
  s.protection = protection_from_name(st.column_text(10));
  return s;
}

struct IndexedFile {
  std::string subdir;
  std::string filename;
};

}  // namespace

std::string Summary::from_display() const {
  return from_name.empty() ? from_addr : from_name;
}

int Page::page_count() const {
  if (page_size <= 0 || total <= 0)
    return 1;
  return static_cast<int>((total + page_size - 1) / page_size);
}

MailIndex::MailIndex(store::Db& db, std::int64_t user_id, const Maildir& maildir)
    : db_(db), user_id_(user_id), maildir_(maildir) {}

Summary MailIndex::summarize(Folder folder, const Entry& entry) const {
  Summary s;
  s.uid = entry.uid;
  s.date = entry.mtime;
  s.size = entry.size;
  s.seen = entry.flags.has(Flag::seen);
  auto prefix = maildir_.read_prefix(folder, entry, kScanBytes);
  if (!prefix)
    return s;
  // A file that does not parse is still listed (the Maildir is the truth), with
  // empty headers, so that the user can see and delete it.
  auto parsed = parse_message(*prefix, ParseDepth::structure);
  if (!parsed)
    return s;
  s.date = parsed->date.value_or(entry.mtime);
  s.from_name = parsed->from.name;
  s.from_addr = parsed->from.address;
  s.subject = parsed->subject;
  s.protection = parsed->protection;
  s.encrypted = is_encrypted(parsed->protection);
  s.is_signed = is_signed(parsed->protection);
  s.has_attachments = parsed->has_attachments();
  return s;
}

void MailIndex::upsert(Folder folder, const Entry& entry, const Summary& s) {
  db_.prepare(
         "INSERT INTO mail_index (user_id, folder, uid, subdir, filename, date, from_name, "
         "from_addr, subject, size, seen, encrypted, signed, has_attachments, protection) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, folder, uid) "
         "DO UPDATE SET subdir = excluded.subdir, filename = excluded.filename, date = "
         "excluded.date, from_name = excluded.from_name, from_addr = excluded.from_addr, subject "
         "= excluded.subject, size = excluded.size, seen = excluded.seen, encrypted = "
         "excluded.encrypted, signed = excluded.signed, has_attachments = "
         "excluded.has_attachments, protection = excluded.protection")
      .bind_all(user_id_, folder_name(folder), entry.uid, subdir_name(entry.subdir), entry.filename,
                s.date, s.from_name, s.from_addr, s.subject, static_cast<std::int64_t>(s.size),
                s.seen ? 1 : 0, s.encrypted ? 1 : 0, s.is_signed ? 1 : 0, s.has_attachments ? 1 : 0,
                protection_name(s.protection))
      .run();
}

Status MailIndex::refresh(Folder folder) {
  const char* fname = folder_name(folder);
  // The times are taken before the listing: a change that lands while we scan
  // leaves newer mtimes on disk than recorded, so the next refresh scans again.
  auto times = maildir_.dir_times(folder);
  if (!times && times.code() != Errc::not_found)
    return times.error();

  std::int64_t indexed = 0;
  {
    auto count = db_.prepare("SELECT count(*) FROM mail_index WHERE user_id = ? AND folder = ?");
    count.bind_all(user_id_, fname);
    count.step();
    indexed = count.column_int(0);
  }
  if (times) {
    auto state = db_.prepare(
        "SELECT new_mtime, cur_mtime, message_count FROM mail_folder_state "
        "WHERE user_id = ? AND folder = ?");
    state.bind_all(user_id_, fname);
    if (state.step() && state.column_int(0) == times->new_ns &&
        state.column_int(1) == times->cur_ns && state.column_int(2) == indexed)
      return {};
  }

  std::vector<Entry> entries;
  if (times) {
    auto listed = maildir_.list(folder);
    if (!listed && listed.code() != Errc::not_found)
      return listed.error();
    if (listed)
      entries = std::move(listed).value();
  }

  std::unordered_map<std::string, IndexedFile> rows;
  {
    auto st = db_.prepare(
        "SELECT uid, subdir, filename FROM mail_index WHERE user_id = ? AND folder = ?");
    st.bind_all(user_id_, fname);
    while (st.step())
      rows.emplace(st.column_text(0), IndexedFile{st.column_text(1), st.column_text(2)});
  }

  // Parse outside the transaction: the write lock is held only for the writes.
  std::vector<std::pair<const Entry*, Summary>> added;
  std::vector<const Entry*> moved;
  for (const Entry& e : entries) {
    auto it = rows.find(e.uid);
    if (it == rows.end()) {
      added.emplace_back(&e, summarize(folder, e));
      continue;
    }
    if (it->second.subdir != subdir_name(e.subdir) || it->second.filename != e.filename)
      moved.push_back(&e);
    rows.erase(it);  // what is left in rows has vanished from the Maildir
  }

  store::Transaction tx(db_);
  {
    auto del = db_.prepare("DELETE FROM mail_index WHERE user_id = ? AND folder = ? AND uid = ?");
    for (const auto& [uid, file] : rows) {
      del.reset();
      del.bind_all(user_id_, fname, uid).run();
    }
  }
  for (const auto& [entry, summary] : added)
    upsert(folder, *entry, summary);
  {
    auto upd = db_.prepare(
        "UPDATE mail_index SET subdir = ?, filename = ?, seen = ? "
        "WHERE user_id = ? AND folder = ? AND uid = ?");
    for (const Entry* e : moved) {
      upd.reset();
      upd.bind_all(subdir_name(e->subdir), e->filename, e->flags.has(Flag::seen) ? 1 : 0, user_id_,
                   fname, e->uid)
          .run();
    }
  }
  if (times) {
    // An unsettled folder is recorded with mtimes that can never match (-1), so
    // that the next refresh looks again.
    std::int64_t now = fs_now_ns();
    bool settled = now - times->new_ns >= kSettleNs && now - times->cur_ns >= kSettleNs;
    if (!settled)
      times->new_ns = times->cur_ns = -1;
    db_.prepare(
           "INSERT INTO mail_folder_state (user_id, folder, new_mtime, cur_mtime, message_count) "
           "VALUES (?1, ?2, ?3, ?4, (SELECT count(*) FROM mail_index WHERE user_id = ?1 AND "
           "folder = ?2)) ON CONFLICT (user_id, folder) DO UPDATE SET new_mtime = "
           "excluded.new_mtime, cur_mtime = excluded.cur_mtime, message_count = "
           "excluded.message_count")
        .bind_all(user_id_, fname, times->new_ns, times->cur_ns)
        .run();
  } else {
    db_.prepare("DELETE FROM mail_folder_state WHERE user_id = ? AND folder = ?")
        .bind_all(user_id_, fname)
        .run();
  }
  tx.commit();
  return {};
}

Result<Page> MailIndex::page(Folder folder, int page_no, int page_size) {
  if (page_no < 1)
    return make_error(Errc::invalid_argument, "page numbers start at 1");
  if (page_size < 1 || page_size > kMaxPageSize) {
    return make_error(Errc::invalid_argument,
                      "page size must be between 1 and " + std::to_string(kMaxPageSize));
  }
  Page p;
  p.page_no = page_no;
  p.page_size = page_size;
  {
    auto count = db_.prepare("SELECT count(*) FROM mail_index WHERE user_id = ? AND folder = ?");
    count.bind_all(user_id_, folder_name(folder));
    count.step();
    p.total = count.column_int(0);
  }
  auto st = db_.prepare(std::string("SELECT ") + kSummaryColumns +
                        " FROM mail_index WHERE user_id = ? AND folder = ? "
                        "ORDER BY date DESC, uid DESC LIMIT ? OFFSET ?");
  st.bind_all(user_id_, folder_name(folder), static_cast<std::int64_t>(page_size),
              static_cast<std::int64_t>(page_no - 1) * page_size);
  while (st.step())
    p.items.push_back(summary_from_row(st));
  return p;
}

std::optional<Summary> MailIndex::find(Folder folder, std::string_view uid) {
  auto st = db_.prepare(std::string("SELECT ") + kSummaryColumns +
                        " FROM mail_index WHERE user_id = ? AND folder = ? AND uid = ?");
  st.bind_all(user_id_, folder_name(folder), uid);
  if (!st.step())
    return std::nullopt;
  return summary_from_row(st);
}

Status MailIndex::note_delivered(Folder folder, std::string_view uid) {
  auto entry = maildir_.find(folder, uid);
  if (!entry)
    return entry.error();
  Summary s = summarize(folder, *entry);
  upsert(folder, *entry, s);
  return {};
}

Status MailIndex::note_changed(Folder folder, std::string_view uid) {
  auto entry = maildir_.find(folder, uid);
  if (!entry && entry.code() == Errc::not_found) {
    db_.prepare("DELETE FROM mail_index WHERE user_id = ? AND folder = ? AND uid = ?")
        .bind_all(user_id_, folder_name(folder), uid)
        .run();
    return {};
  }
  if (!entry)
    return entry.error();
  auto upd = db_.prepare(
      "UPDATE mail_index SET subdir = ?, filename = ?, seen = ? "
      "WHERE user_id = ? AND folder = ? AND uid = ?");
  upd.bind_all(subdir_name(entry->subdir), entry->filename, entry->flags.has(Flag::seen) ? 1 : 0,
               user_id_, folder_name(folder), entry->uid)
      .run();
  if (db_.changes() == 0)
    upsert(folder, *entry, summarize(folder, *entry));
  return {};
}

}  // namespace wmk::mail
