#pragma once
// Drafts as messages in the Drafts folder. A draft file is an ordinary message (so
// any mail client can open it) whose first header, X-Webmailkey-Draft, carries what
// the message itself cannot: the state and the user's choices on the compose page.
//
//   X-Webmailkey-Draft: v=1; state=editing; sign=1; encrypt=0; technology=openpgp;
//                       original-encrypted=0; plain-reply-ok=0; protected=0;
//                       quote=none [; quote-signer=addr]
//
// state=editing: the message is the draft as built (build_message); protected=1 when
// it is encrypted to the sender (drafts of messages to be encrypted).
// state=prepared: the message is the signed and/or encrypted message exactly as it
// will be sent, waiting for the user's Send after review.
// quote says whether the body holds decrypted text (then protected=1 always).
// Nothing in the header is secret and every value is a fixed token or an address.

#include <string>
#include <string_view>

#include "core/mail/compose.h"
#include "core/util/result.h"

namespace wmk::mail {

inline constexpr std::string_view kDraftHeader = "X-Webmailkey-Draft";

enum class DraftState { editing, prepared };

struct DraftMeta {
  DraftState state = DraftState::editing;
  bool sign = false;
  bool encrypt = false;
  Technology technology = Technology::openpgp;
  bool original_encrypted = false;
  bool unencrypted_reply_ok = false;
  bool is_protected = false;  // the body is encrypted (to the sender, at least)
  DecryptedQuote decrypted_quote = DecryptedQuote::none;
  std::string quote_signer;  // an address (validate_address), for to_signer
};

// The header line (with its CRLF) for meta.
std::string draft_header_line(const DraftMeta& meta);

// The draft's choices as meta for state (is_protected false).
DraftMeta meta_of(const Draft& draft, DraftState state);

// The X-Webmailkey-Draft header of a stored draft; defaults (editing, nothing chosen)
// when it is missing, as for a draft another client saved. Errc::corrupt if raw has no
// header block.
Result<DraftMeta> read_draft_meta(std::string_view raw);

// raw without its X-Webmailkey-Draft header (what is sent, or kept in Sent).
std::string strip_draft_header(std::string_view raw);

// The message to store for an unprotected draft: the draft header, then
// build_message(draft). Errc::invalid_argument as validate_draft(to_save).
Result<std::string> draft_message(const Draft& draft, const HeaderFields& fields);

// Reads a draft back from a message: From, To, Cc, Subject, In-Reply-To, References,
// the first text/plain part as body (LF line ends) and every other leaf part as an
// attachment (type sniffed again). A multipart/signed message is read from its signed
// part. Choices come from the draft header. Errc::corrupt if it does not parse;
// Errc::unsupported if it is encrypted (decrypt it first).
Result<Draft> parse_draft(std::string_view raw);

}  // namespace wmk::mail
