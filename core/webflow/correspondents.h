#pragma once
// The user's own additions to their directory of correspondents' keys from the web
// (core/contacts owns the directory and its rules; this only says who acts):
//   - a key or certificate the user uploads or pastes on /keys, bound to the addresses
//     the user names (or the one the key carries), source `user`: the same
//     ContactStore::import as `webmailkey contact import`;
//   - a key a message offers: an attached application/pgp-keys part, or the Autocrypt
//     header of the From address. The page shows it first (fingerprint, address);
//     only the user's explicit confirmation imports it, for the From address only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/app/app.h"
#include "core/contacts/contacts.h"
#include "core/keys/types.h"
#include "core/session/session.h"
#include "core/util/result.h"

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

// The keys raw (a message of the session user's mailbox, not encrypted) offers: each
// application/pgp-keys part, then the one Autocrypt header. A part or header that does
// not read as a public key is listed with its problem. Nothing is stored.
std::vector<KeyOffer> key_offers(app::App& app, const session::Session& session,
                                 std::string_view raw);

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

}  // namespace wmk::webflow
