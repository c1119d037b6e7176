#pragma once
// Local delivery: one message into a user's Maildir, atomically, then into the
// header index. What `webmailkey deliver` (a Postfix mailbox_command) runs.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/mail/maildir.h"
#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::mail {

// How long a delivery is remembered by its content, to recognise an MTA's retry.
inline constexpr std::chrono::seconds kDeliveryMemory{std::chrono::hours(24)};

struct DeliverLimits {
  // The largest header block accepted (config max_header_bytes, at most kMaxHeaderBytes).
  std::size_t max_header_bytes = 256 * 1024;
};

struct Delivery {
  std::string uid;
  // The same bytes were delivered to this folder within kDeliveryMemory (an MTA that
  // retried after a delivery it did not see succeed): nothing new was stored, uid
  // names the message already there.
  bool duplicate = false;
  // Set when the message was delivered but could not be indexed (say, the database
  // was busy): the delivery stands, the next refresh() indexes it.
  std::optional<Error> index_error;
};

// Delivers raw into folder of the Maildir (created if missing) and indexes it.
// A leading mbox "From " envelope line (as Postfix's local(8) prepends) is dropped.
// The message's SHA-256 is remembered for a day (table deliveries) before it is
// written, under the uid it will get, so a retry of the same bytes — even after a kill
// at any moment — ends with exactly one copy. Errors:
//   Errc::invalid_argument if raw is empty, larger than kMaxMessageBytes or has no
//   header block; Errc::unsupported if the header block is larger than
//   limits.max_header_bytes; Errc::io if the Maildir cannot be written (nothing is
//   left behind).
Result<Delivery> deliver_message(store::Db& db, std::int64_t user_id, const Maildir& maildir,
                                 Folder folder, std::string_view raw,
                                 const util::Clock& clock = util::system_clock(),
                                 const DeliverLimits& limits = {});

// Forgets deliveries older than kDeliveryMemory: counts them, deletes unless dry_run.
int purge_deliveries(store::Db& db, const util::Clock& clock, store::PurgeMode mode);

}  // namespace wmk::mail
