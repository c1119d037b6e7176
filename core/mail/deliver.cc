#include "core/mail/deliver.h"

#include <exception>

#include "core/mail/index.h"
#include "core/mail/mailbox.h"
#include "core/mail/mime.h"
#include "core/util/encoding.h"

namespace wmk::mail {

namespace {

// Drops an mbox envelope line ("From sender date"); it is not a header.
std::string_view strip_envelope_line(std::string_view raw) {
  if (raw.substr(0, 5) != "From ")
    return raw;
  auto eol = raw.find('\n');
  return eol == std::string_view::npos ? std::string_view() : raw.substr(eol + 1);
}

struct Reservation {
  std::string uid;
  bool already_there = false;
};

// The uid this content gets: the one a delivery of the same bytes within a day
// reserved (already in the Maildir, or never finished), else a fresh one, recorded
// before any byte is written. nullopt when the database cannot be used: the delivery
// then goes on without the retry check (a busy database must not bounce mail).
std::optional<Reservation> reserve(store::Db& db, std::int64_t user_id, const Maildir& maildir,
                                   Folder folder, const std::string& digest,
                                   const util::Clock& clock) {
  try {
    const std::int64_t now = clock.now();
    store::Transaction tx(db);
    auto st = db.prepare(
        "SELECT uid, at FROM deliveries WHERE user_id = ? AND folder = ? AND digest = ?");
    st.bind_all(user_id, folder_name(folder), digest);
    if (st.step() && st.column_int(1) > now - kDeliveryMemory.count()) {
      std::string uid = st.column_text(0);
      st.reset();
      if (valid_uid(uid))
        return Reservation{uid, maildir.find(folder, uid).ok()};
    }
    st.reset();
    Reservation r{maildir.new_uid(), false};
    auto ins = db.prepare(
        "INSERT INTO deliveries (user_id, folder, digest, uid, at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, folder, digest) DO UPDATE SET uid = excluded.uid, at = excluded.at");
    ins.bind_all(user_id, folder_name(folder), digest, r.uid, now);
    ins.run();
    tx.commit();
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Result<Delivery> deliver_message(store::Db& db, std::int64_t user_id, const Maildir& maildir,
                                 Folder folder, std::string_view raw, const util::Clock& clock,
                                 const DeliverLimits& limits) {
  std::string_view message = strip_envelope_line(raw);
  if (message.empty())
    return make_error(Errc::invalid_argument, "refusing to deliver an empty message");
  if (message.size() > kMaxMessageBytes) {
    return make_error(Errc::invalid_argument, "the message is larger than the limit of " +
                                                  std::to_string(kMaxMessageBytes >> 20) + " MiB");
  }
  const std::size_t header_limit = std::min(limits.max_header_bytes, kMaxHeaderBytes);
  if (header_block_size(message) > header_limit) {
    return make_error(Errc::unsupported, "the message header is larger than the limit of " +
                                             std::to_string(header_limit) +
                                             " bytes (max_header_bytes)");
  }
  auto parsed = parse_message(message, ParseDepth::structure);
  if (!parsed) {
    return make_error(Errc::invalid_argument, "refusing to deliver: " + parsed.error().message);
  }
  WMK_TRY(maildir.ensure());
  const std::string digest = util::sha256_hex(message);
  auto reserved = reserve(db, user_id, maildir, folder, digest, clock);
  if (reserved && reserved->already_there)
    return Delivery{reserved->uid, true, std::nullopt};
  Result<std::string> uid = reserved ? maildir.deliver_as(folder, message, reserved->uid)
                                     : maildir.deliver(folder, message);
  if (!uid && uid.code() == Errc::already_exists && reserved)  // a racing retry won
    return Delivery{reserved->uid, true, std::nullopt};
  if (!uid)
    return uid.error();

  Delivery out{*uid, false, std::nullopt};
  // The message is safely in new/: from here on a failure must not be reported as
  // a failed delivery, or the MTA would deliver it a second time.
  try {
    auto mailbox = maildir_mailbox(maildir);
    Status indexed = MailIndex(db, user_id, *mailbox).note_delivered(folder, *uid);
    if (!indexed.ok())
      out.index_error = indexed.error();
  } catch (const std::exception& e) {
    out.index_error = make_error(Errc::io, std::string("indexing failed: ") + e.what());
  }
  return out;
}

int purge_deliveries(store::Db& db, const util::Clock& clock, store::PurgeMode mode) {
  const std::int64_t before = clock.now() - kDeliveryMemory.count();
  if (mode == store::PurgeMode::dry_run) {
    auto st = db.prepare("SELECT count(*) FROM deliveries WHERE at <= ?");
    st.bind(1, before);
    st.step();
    return static_cast<int>(st.column_int(0));
  }
  auto st = db.prepare("DELETE FROM deliveries WHERE at <= ?");
  st.bind(1, before);
  st.run();
  return db.changes();
}

}  // namespace wmk::mail
