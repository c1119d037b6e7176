#pragma once
// Replying to and forwarding a message of the user's own mailbox, and the rules for
// quoting decrypted text into a draft (docs/security.md, "Replying and forwarding").
// A server that decrypts for its users is a decryption oracle if a reply quotes
// whatever decrypts, to whoever asks: an attacker wraps a captured ciphertext in a
// mail of their own and waits for the reply. So decrypted text goes into a draft
// without asking only when
//   - the whole message is one encrypted part (no clear text beside it) whose
//     integrity was checked,
//   - a valid signature by the From address covers it, and
//   - every recipient of the draft is that signer or one of the user's own addresses
//     (recipients come from answer_recipients(), the one place that decides them;
//     an address added later counts too: unapproved_recipients()).
// Otherwise the user first sees what would be quoted and to whom, and quoting happens
// only after an explicit yes. A decrypted part without integrity protection is never
// quoted. cgi/ only parses and renders this.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/auth/users.h"
#include "core/keys/keystore.h"
#include "core/mail/compose.h"
#include "core/webflow/key_session.h"

namespace wmk::webflow {

// How a new draft answers a message (RFC 5322 §3.6.3, RFC 2369):
//   reply       to Reply-To if the message has one, else to From;
//   reply_all   the same, with every To and Cc address of the original as Cc;
//   reply_list  to the list's List-Post address;
//   forward     to nobody yet.
// The user's own addresses are left out of reply_all.
enum class Derive { reply, reply_all, reply_list, forward };

// reply, reply_all or reply_list.
bool is_reply(Derive how);
// "reply", "reply_all", "reply_list", "forward": the request parameter naming the
// message answered (docs/http.md), and back.
const char* derive_param(Derive how);
std::optional<Derive> derive_from_param(std::string_view param);

// The user's answer to "quote the decrypted text?".
enum class QuoteAnswer {
  ask,  // not asked yet: quote only when the rule allows it without asking
  yes,  // the user saw what and to whom and said yes (a POST with the CSRF token)
  no,   // start without the decrypted text
};

// Who a draft answering (or forwarding) m goes to first, by the rules of Derive: only
// valid addresses, each once, in header order. The only place that computes a new
// draft's recipients. note: why To is empty, when it is ("" otherwise).
struct Recipients {
  std::vector<mail::Address> to;
  std::vector<mail::Address> cc;
  std::string note;
};
Recipients answer_recipients(const mail::ParsedMessage& m, Derive how, const auth::User& user);

// The thread headers of a reply to m (RFC 5322 §3.6.4): In-Reply-To is m's Message-ID;
// References is m's References (else its In-Reply-To when that names one message)
// followed by m's Message-ID. Both empty when m has no valid Message-ID.
struct Thread {
  std::string in_reply_to;
  std::vector<std::string> references;
};
Thread reply_thread(const mail::ParsedMessage& m);

// Whether the decrypted text of d may be quoted into a draft to recipients without
// asking, and if not, why (sentences for the user).
struct QuoteCheck {
  bool without_asking = false;
  std::vector<std::string> reasons;
};
QuoteCheck check_quote(const Decrypted& d, const std::vector<mail::Address>& recipients,
                       const auth::User& user, Derive how);

// What quoting d would put into a draft: the text of its segments in message order,
// clear ones marked as such; never a decrypted part without integrity protection.
struct Quotable {
  std::string text;                   // "" if nothing can be quoted
  std::vector<std::string> left_out;  // what was left out and why
};
Quotable quotable(const Decrypted& d);

// How a derived draft treats the original's text.
enum class QuoteState {
  clear,       // the original was not encrypted: its text is quoted as it is
  quoted,      // decrypted text is quoted (rule met, or the user said yes)
  ask,         // the user must be asked first: nothing decrypted is in the draft
  not_quoted,  // encrypted, and nothing of it is quoted (locked, declined, unusable)
};

struct Derived {
  mail::Draft draft;
  QuoteState state = QuoteState::clear;
  // ask: the text that would be quoted; not_quoted and ask: why (for the notice).
  std::string pending;
  std::vector<std::string> reasons;
  // Why the draft has no recipient yet (Recipients::note), or "".
  std::string recipient_note;
};

// A new draft answering or forwarding the message read (KeySession::read, the same
// reading the page shows): From is the user's address the message came to, the
// technology that of the original (else of the user's keys), recipients from
// answer_recipients(), and the text quoted by the rules above and answer.
Derived derive_draft(keys::KeyStore& keys, const Reading& read, const auth::User& user, Derive how,
                     QuoteAnswer answer);

// A new, empty draft from the user's primary address, with the technology of the
// user's keys (OpenPGP unless only an S/MIME key exists).
mail::Draft new_draft(keys::KeyStore& keys, const auth::User& user);

// The recipients of draft that may not get its decrypted text without asking: for
// text quoted to its signer, every recipient that is neither the signer nor one of
// the user's addresses (an address the user added, say). Empty otherwise.
std::vector<std::string> unapproved_recipients(const mail::Draft& draft, const auth::User& user);

// "Re: subject" / "Fwd: subject", not doubled.
std::string with_prefix(std::string_view prefix, const std::string& subject);

// text with "> " before each line (">" before an empty or quoted line).
std::string quote_lines(const std::string& text);

}  // namespace wmk::webflow
