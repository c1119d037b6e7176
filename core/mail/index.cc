#include "core/mail/index.h"

#include <unordered_map>

namespace wmk::mail {

namespace {

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

// Where an indexed message was and how it was flagged (columns subdir and filename:
// the Maildir subdir and file name, or "imap" and the IMAP flag letters).
struct IndexedPlace {
  std::string place;
  std::string stamp;
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

MailIndex::MailIndex(store::Db& db, std::int64_t user_id, Mailbox& mailbox)
    : db_(db), user_id_(user_id), mailbox_(mailbox) {}

Summary MailIndex::summarize(const MessageInfo& info, const std::string* prefix) {
  Summary s;
  s.uid = info.id;
  s.date = info.time;
  s.size = info.size;
  s.seen = info.flags.has(Flag::seen);
  if (prefix == nullptr)
    return s;
  // A message that does not parse is still listed (the mailbox is the truth), with
  // empty headers, so that the user can see and delete it.
  auto parsed = parse_message(*prefix, ParseDepth::structure);
  if (!parsed)
    return s;
  s.date = parsed->date.value_or(info.time);
  s.from_name = parsed->from.name;
  s.from_addr = parsed->from.address;
  s.subject = parsed->subject;
  s.protection = parsed->protection;
  s.encrypted = is_encrypted(parsed->protection);
  s.is_signed = is_signed(parsed->protection);
  s.has_attachments = parsed->has_attachments();
  return s;
}

void MailIndex::upsert(Folder folder, const MessageInfo& info, const Summary& s) {
  db_.prepare(
         "INSERT INTO mail_index (user_id, folder, uid, subdir, filename, date, from_name, "
         "from_addr, subject, size, seen, encrypted, signed, has_attachments, protection) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, folder, uid) "
         "DO UPDATE SET subdir = excluded.subdir, filename = excluded.filename, date = "
         "excluded.date, from_name = excluded.from_name, from_addr = excluded.from_addr, subject "
         "= excluded.subject, size = excluded.size, seen = excluded.seen, encrypted = "
         "excluded.encrypted, signed = excluded.signed, has_attachments = "
         "excluded.has_attachments, protection = excluded.protection")
      .bind_all(user_id_, folder_name(folder), info.id, info.place, info.stamp, s.date, s.from_name,
                s.from_addr, s.subject, static_cast<std::int64_t>(s.size), s.seen ? 1 : 0,
                s.encrypted ? 1 : 0, s.is_signed ? 1 : 0, s.has_attachments ? 1 : 0,
                protection_name(s.protection))
      .run();
}

Status MailIndex::refresh(Folder folder) {
  const char* fname = folder_name(folder);
  std::int64_t indexed = 0;
  {
    auto count = db_.prepare("SELECT count(*) FROM mail_index WHERE user_id = ? AND folder = ?");
    count.bind_all(user_id_, fname);
    count.step();
    indexed = count.column_int(0);
  }
  // The mark counts only while the rows it was recorded with are all there.
  std::optional<FolderMark> last;
  {
    auto state = db_.prepare(
        "SELECT new_mtime, cur_mtime, uidvalidity, highest_modseq, message_count "
        "FROM mail_folder_state WHERE user_id = ? AND folder = ?");
    state.bind_all(user_id_, fname);
    if (state.step() && state.column_int(4) == indexed)
      last = FolderMark{state.column_int(0), state.column_int(1), state.column_int(2),
                        state.column_int(3)};
  }

  auto changes = mailbox_.changes(folder, last);
  if (!changes)
    return changes.error();
  if (changes->kind == FolderChanges::Kind::unchanged && changes->mark == last)
    return {};

  std::unordered_map<std::string, IndexedPlace> rows;
  {
    auto st = db_.prepare(
        "SELECT uid, subdir, filename FROM mail_index WHERE user_id = ? AND folder = ?");
    st.bind_all(user_id_, fname);
    while (st.step())
      rows.emplace(st.column_text(0), IndexedPlace{st.column_text(1), st.column_text(2)});
  }

  std::vector<const MessageInfo*> added;
  std::vector<const MessageInfo*> moved;
  std::vector<std::string> vanished;
  for (const MessageInfo& m : changes->messages) {
    auto it = rows.find(m.id);
    if (it == rows.end()) {
      added.push_back(&m);
      continue;
    }
    if (it->second.place != m.place || it->second.stamp != m.stamp)
      moved.push_back(&m);
    rows.erase(it);
  }
  if (changes->kind == FolderChanges::Kind::complete) {
    for (const auto& [uid, place] : rows)  // what is left has vanished from the mailbox
      vanished.push_back(uid);
  } else {
    vanished = changes->vanished;
  }

  // Read and parse outside the transaction: the write lock is held only for the writes.
  std::vector<std::string> ids;
  for (const MessageInfo* m : added)
    ids.push_back(m->id);
  auto prefixes = mailbox_.read_prefixes(folder, ids, kScanBytes);
  if (!prefixes)
    return prefixes.error();
  std::unordered_map<std::string, const std::string*> prefix_of;
  for (const MessagePrefix& p : *prefixes)
    prefix_of.emplace(p.id, &p.bytes);
  std::vector<std::pair<const MessageInfo*, Summary>> summaries;
  for (const MessageInfo* m : added) {
    auto it = prefix_of.find(m->id);
    summaries.emplace_back(m, summarize(*m, it == prefix_of.end() ? nullptr : it->second));
  }

  store::Transaction tx(db_);
  {
    auto del = db_.prepare("DELETE FROM mail_index WHERE user_id = ? AND folder = ? AND uid = ?");
    for (const std::string& uid : vanished) {
      del.reset();
      del.bind_all(user_id_, fname, uid).run();
    }
  }
  for (const auto& [info, summary] : summaries)
    upsert(folder, *info, summary);
  {
    auto upd = db_.prepare(
        "UPDATE mail_index SET subdir = ?, filename = ?, seen = ? "
        "WHERE user_id = ? AND folder = ? AND uid = ?");
    for (const MessageInfo* m : moved) {
      upd.reset();
      upd.bind_all(m->place, m->stamp, m->flags.has(Flag::seen) ? 1 : 0, user_id_, fname, m->id)
          .run();
    }
  }
  if (changes->mark) {
    const FolderMark& mark = *changes->mark;
    db_.prepare(
           "INSERT INTO mail_folder_state (user_id, folder, new_mtime, cur_mtime, uidvalidity, "
           "highest_modseq, message_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT count(*) "
           "FROM mail_index WHERE user_id = ?1 AND folder = ?2)) ON CONFLICT (user_id, folder) "
           "DO UPDATE SET new_mtime = excluded.new_mtime, cur_mtime = excluded.cur_mtime, "
           "uidvalidity = excluded.uidvalidity, highest_modseq = excluded.highest_modseq, "
           "message_count = excluded.message_count")
        .bind_all(user_id_, fname, mark.new_mtime, mark.cur_mtime, mark.uidvalidity,
                  mark.highest_modseq)
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
  // Same Date: the later arrival first. An IMAP id is "UIDVALIDITY.UID", one
  // UIDVALIDITY per indexed folder, so the longer id is the larger UID ("V.10" after
  // "V.9", which a text order would put the other way round); Maildir names keep their
  // text order.
  auto st = db_.prepare(std::string("SELECT ") + kSummaryColumns +
                        " FROM mail_index WHERE user_id = ? AND folder = ? "
                        "ORDER BY date DESC, CASE WHEN subdir = 'imap' THEN length(uid) ELSE 0 "
                        "END DESC, uid DESC LIMIT ? OFFSET ?");
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
  auto info = mailbox_.find(folder, uid);
  if (!info)
    return info.error();
  auto prefixes = mailbox_.read_prefixes(folder, {info->id}, kScanBytes);
  if (!prefixes)
    return prefixes.error();
  const std::string* prefix = prefixes->empty() ? nullptr : &prefixes->front().bytes;
  upsert(folder, *info, summarize(*info, prefix));
  return {};
}

Status MailIndex::note_changed(Folder folder, std::string_view uid) {
  auto info = mailbox_.find(folder, uid);
  if (!info && info.code() == Errc::not_found) {
    db_.prepare("DELETE FROM mail_index WHERE user_id = ? AND folder = ? AND uid = ?")
        .bind_all(user_id_, folder_name(folder), uid)
        .run();
    return {};
  }
  if (!info)
    return info.error();
  auto upd = db_.prepare(
      "UPDATE mail_index SET subdir = ?, filename = ?, seen = ? "
      "WHERE user_id = ? AND folder = ? AND uid = ?");
  upd.bind_all(info->place, info->stamp, info->flags.has(Flag::seen) ? 1 : 0, user_id_,
               folder_name(folder), info->id)
      .run();
  if (db_.changes() == 0)
    return note_delivered(folder, uid);
  return {};
}

}  // namespace wmk::mail
