#pragma once
// Local delivery: one message into a user's Maildir, atomically, then into the
// header index. What `webmailkey deliver` (a Postfix mailbox_command) runs.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/mail/maildir.h"
#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::mail {

struct Delivery {
  std::string uid;
  // Set when the message was delivered but could not be indexed (say, the database
  // was busy): the delivery stands, the next refresh() indexes it.
  std::optional<Error> index_error;
};

// Delivers raw into folder of the Maildir (created if missing) and indexes it.
// A leading mbox "From " envelope line (as Postfix's local(8) prepends) is dropped.
// Errc::invalid_argument if raw is empty, larger than kMaxMessageBytes or has no
// header block; Errc::io if the Maildir cannot be written (nothing is left behind).
Result<Delivery> deliver_message(store::Db& db, std::int64_t user_id, const Maildir& maildir,
                                 Folder folder, std::string_view raw);

}  // namespace wmk::mail
