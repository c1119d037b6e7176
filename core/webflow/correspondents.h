#pragma once
// The user's own additions to their directory of correspondents' keys from the web
// (core/contacts owns the directory and its rules; this only says who acts):
//   - a key or certificate the user uploads or pastes on /keys, bound to the addresses
//     the user names (or the one the key carries), source `user`: the same
//     ContactStore::import as `webmailkey contact import`;
//   - a key a message offers: an attached application/pgp-keys part, or the Autocrypt
//     header of the From address. The page shows it first (fingerprint, address);
//     only the user's explicit confirmation imports it, for the From address only;
//   - a key attached inside an encrypted message (an application/pgp-keys part of
//     the decrypted content): offered on /decrypt from the one decryption of that
//     page; importing it decrypts the message again under the grant (the form names
//     the part, never carries the key: docs/security.md, "Keys offered by a message").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/app/app.h"
#include "core/contacts/contacts.h"
#include "core/keys/types.h"
#include "core/session/session.h"
#include "core/util/result.h"
#include "core/webflow/flow.h"
#include "core/webflow/key_session.h"

namespace wmk::webflow {

// Imports data (an OpenPGP public key, armored or binary, or a certificate, PEM or
// DER) into the session user's directory, bound to emails (empty: the one address the
// key carries) with source user (an S/MIME certificate that chains to the trust store
// and names the address: ca). Audited as contact.import with the session as actor.
// Errors as contacts::ContactStore::import.
Result<contacts::ContactKey> import_contact_key(app::App& app, const session::Session& session,
                                                std::string_view data,
                                                const std::vector<std::string>& emails);

// A key a message offers for its sender.
struct KeyOffer {
  enum class Kind { attached, autocrypt };
  Kind kind = Kind::attached;
  std::string part_id;      // attached: the application/pgp-keys part
  std::string fingerprint;  // what an import would take
  keys::KeyType type = keys::KeyType::openpgp;
  std::string from;                 // the message's From address, lowercased
  std::vector<std::string> emails;  // the addresses the key carries (its owner's claim)
  bool names_from = false;          // the key carries the From address
  bool bound = false;               // already bound to from for this user
  std::string problem;              // why it cannot be imported ("" if it can)
};

// "attached" or "autocrypt" (stable; for forms and data attributes).
const char* offer_kind_name(KeyOffer::Kind kind);
std::optional<KeyOffer::Kind> parse_offer_kind(std::string_view name);

// The keys a message of the session user's mailbox offers: each
// application/pgp-keys part, then the one Autocrypt header (of an encrypted message,
// only the header: its parts are ciphertext). message is the request's one parse of
// the message and raw its bytes (the Autocrypt header is read as written; raw is not
// parsed again). A part or header that does not read as a public key is listed with
// its problem. Nothing is stored.
std::vector<KeyOffer> key_offers(app::App& app, const session::Session& session,
                                 const mail::Message& message, std::string_view raw);

// Imports the offer of raw of this kind (and part_id, for an attached key) whose
// fingerprint is expected_fingerprint (what the page showed), for the From address:
// an attached key with source user, an Autocrypt header with source autocrypt (as
// delivery would take it, contacts::ContactStore::autocrypt_seen). Errc::not_found if
// the message offers no such key, Errc::conflict if its fingerprint is another,
// Errc::invalid_argument if the message has no From address or (Autocrypt) the header
// is for another address; errors as import.
Result<contacts::ContactKey> accept_key_offer(app::App& app, const session::Session& session,
                                              std::string_view raw, KeyOffer::Kind kind,
                                              std::string_view part_id,
                                              std::string_view expected_fingerprint);

// The keys a decrypted message carries (reader::Segment::keys: application/pgp-keys
// parts of its integrity-checked segments, read by the one decryption of this
// request), each as an attached offer whose part_id is the decrypted attachment id
// ("ENCRYPTED-PART:INNER-PART"), for the From address of the stored message. Nothing
// is decrypted again and nothing is stored. Autocrypt-Gossip headers of the inner
// message are not offered: they name other recipients' keys, which the sender only
// passes on (Autocrypt Level 1 §2.7), and bind nothing for the sender.
std::vector<KeyOffer> decrypted_key_offers(app::App& app, const session::Session& session,
                                           const Decrypted& decrypted);

// Accepting a decrypted message's key: the import, or what the key flow shows instead
// (the unlock page, the key in use elsewhere).
using DecryptedOfferOutcome = std::variant<contacts::ContactKey, NeedUnlock, InUseElsewhere>;

// Imports the key that message ref carries inside its encryption as part_id, whose
// fingerprint is expected_fingerprint, for the From address with source user. The
// message is decrypted once for this request through keys (its grant, as a decrypted
// attachment's download is); the key's bytes come from that decryption, never from
// the form. Errc::not_found if the decrypted content carries no such key,
// Errc::conflict if its fingerprint is another, Errc::invalid_argument if the message
// has no From address; errors as KeySession::decrypt and as import.
Result<DecryptedOfferOutcome> accept_decrypted_key_offer(KeySession& keys, const MessageRef& ref,
                                                         std::string_view part_id,
                                                         std::string_view expected_fingerprint);

}  // namespace wmk::webflow
