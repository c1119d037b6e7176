#include "core/mail/deliver.h"

#include <exception>

#include "core/mail/index.h"
#include "core/mail/mime.h"

namespace wmk::mail {

namespace {

// Drops an mbox envelope line ("From sender date"); it is not a header.
std::string_view strip_envelope_line(std::string_view raw) {
  if (raw.substr(0, 5) != "From ")
    return raw;
  auto eol = raw.find('\n');
  return eol == std::string_view::npos ? std::string_view() : raw.substr(eol + 1);
}

}  // namespace

Result<Delivery> deliver_message(store::Db& db, std::int64_t user_id, const Maildir& maildir,
                                 Folder folder, std::string_view raw) {
  std::string_view message = strip_envelope_line(raw);
  if (message.empty())
    return make_error(Errc::invalid_argument, "refusing to deliver an empty message");
  if (message.size() > kMaxMessageBytes) {
    return make_error(Errc::invalid_argument, "the message is larger than the limit of " +
                                                  std::to_string(kMaxMessageBytes >> 20) + " MiB");
  }
  auto parsed = parse_message(message, ParseDepth::structure);
  if (!parsed) {
    return make_error(Errc::invalid_argument, "refusing to deliver: " + parsed.error().message);
  }
  WMK_TRY(maildir.ensure());
  auto uid = maildir.deliver(folder, message);
  if (!uid)
    return uid.error();

  Delivery out{*uid, std::nullopt};
  // The message is safely in new/: from here on a failure must not be reported as
  // a failed delivery, or the MTA would deliver it a second time.
  try {
    Status indexed = MailIndex(db, user_id, maildir).note_delivered(folder, *uid);
    if (!indexed.ok())
      out.index_error = indexed.error();
  } catch (const std::exception& e) {
    out.index_error = make_error(Errc::io, std::string("indexing failed: ") + e.what());
  }
  return out;
}

}  // namespace wmk::mail
