#pragma once
// A user's outgoing mail: drafts in the Drafts folder, signing (PGP/MIME, RFC 3156;
// S/MIME multipart/signed, RFC 8551) with the sender's unlocked key, encryption to
// every recipient and the sender with the public keys the server holds, sending
// through a Transport, and the copy in Sent.
//
// The flow the compose page drives:
//   save_draft  → a draft id (encrypted to the sender when the message will be)
//   prepare     → signs and/or encrypts; the exact message waits in Drafts for review
//   send        → hands exactly that message (or a plain draft) to the transport, puts
//                 the copy in Sent and removes the draft; on failure the draft stays.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/keys/keystore.h"
#include "core/mail/compose.h"
#include "core/mail/drafts.h"
#include "core/mail/mailbox.h"
#include "core/mail/maildir.h"
#include "core/mail/sendmail.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::mail {

// The key to encrypt to address with when the server holds none of its own users'
// for it: the public key (armored OpenPGP, or the PEM certificate chain) of type, else
// Errc::not_found (none), or Errc::revoked / Errc::expired / Errc::invalid_argument
// saying why the bound key cannot be used. core/contacts makes one over a user's
// directory of correspondents' keys (contacts::ContactStore::recipient_keys).
using RecipientKeys =
    std::function<Result<std::string>(const std::string& address, keys::KeyType type)>;

// "openpgp" → keys::KeyType::openpgp, "smime" → keys::KeyType::smime.
keys::KeyType key_type_of(Technology t);

// A message signed and/or encrypted, waiting in Drafts for the user's Send.
struct Prepared {
  std::string draft_id;
  std::string message;  // exactly what send() hands to the transport (LF line ends)
  std::string digest;   // sha256_hex(message): the review form carries it back
  // The entity the signature covers, canonical (CRLF); empty when not signed.
  std::string signed_content;
  std::string signer_fingerprint;         // empty when not signed
  std::string micalg;                     // "pgp-sha256", "sha-256"; empty when not signed
  std::vector<std::string> encrypted_to;  // recipients and the sender; empty when not encrypted
  Technology technology = Technology::openpgp;
  bool is_signed = false;
  bool is_encrypted = false;
};

struct SentMessage {
  std::string message_id;
  std::vector<std::string> recipients;
  std::string sent_id;                   // the copy in Sent; empty if it could not be stored
  std::optional<Error> sent_copy_error;  // the message went out, but Sent could not be written
};

// Why a recipient cannot be encrypted to.
enum class MissingKeyReason {
  none,      // no key is known for the address
  revoked,   // the key known (bound) for it was revoked
  expired,   // the key known (bound) for it has expired
  unusable,  // the key known for it cannot encrypt
};

// "none", "revoked", "expired", "unusable".
const char* missing_key_reason_name(MissingKeyReason reason);

// A recipient (or the sender) without a usable key for a draft's technology.
struct MissingKey {
  std::string address;
  MissingKeyReason reason = MissingKeyReason::none;
  std::string words;  // why, in words: "no OpenPGP key is known", "the key … was revoked …"
  bool is_sender = false;
};

// Whether outgoing mail carries the sender's Autocrypt header (Autocrypt Level 1).
enum class AutocryptHeader { off, on };

class Outbox {
 public:
  // mailbox: the user's mailbox (Drafts and Sent are created when missing). keys:
  // custody of the user's and other users' keys. transport: where send() hands mail.
  Outbox(Mailbox& mailbox, keys::KeyStore& keys, Transport& transport, const util::Clock& clock);

  // The key that signs for address with technology, and that opens the address's
  // protected drafts. Errc::not_found naming the address when it has none.
  Result<keys::KeyInfo> sender_key(const std::string& address, Technology technology);

  // From now on, a recipient for whom the server holds no key of its own users is
  // encrypted to with the key that lookup gives (a user's directory of correspondents'
  // keys: contacts::ContactStore::recipient_keys), if one is usable.
  void use_contacts(RecipientKeys lookup);

  // The public keys that encryption of draft needs: each recipient's (a server user's
  // key, else a usable correspondent's key bound to the address), then the sender's.
  // Errc::not_found naming every address without a usable key, and why (revoked,
  // expired) when a bound key cannot be used.
  Result<std::vector<std::string>> encryption_keys(const Draft& draft);

  // The recipients of draft (then the sender) that have no usable key for
  // draft.technology, in that order, and why; empty when every one has one. Errors
  // only when the key code fails (Errc::io, ...), not for a missing key.
  Result<std::vector<MissingKey>> missing_keys(const Draft& draft);

  // From now on (on), every message prepared or sent carries the Autocrypt header
  // (Autocrypt Level 1) of its sender's OpenPGP key, when the sender has a usable one:
  // addr=FROM and the key as keys::KeyStore::export_autocrypt gives it. Off by default;
  // the compose page switches it on as the config's `autocrypt` says.
  void set_autocrypt(AutocryptHeader mode) { autocrypt_ = mode; }

  // The Autocrypt header value for messages from address: nullopt when it is off or
  // the address has no usable OpenPGP key. Errors from the key code.
  Result<std::optional<std::string>> autocrypt_value(const std::string& address);

  // Stores draft in Drafts and, after that succeeded, removes replace_id (if given).
  // A draft with encrypt set, or holding decrypted text (decrypted_quote), is stored
  // encrypted to the sender's key, never in the clear. Returns the new
  // id. Errc::invalid_argument as validate_draft(to_save); Errc::not_found if the
  // sender has no key to encrypt to; Errc::io if Drafts cannot be written.
  Result<std::string> save_draft(const Draft& draft, const std::optional<std::string>& replace_id);

  // The X-Webmailkey-Draft header of a stored draft, without opening it.
  // Errc::invalid_argument for a malformed id, Errc::not_found if there is no such draft.
  Result<DraftMeta> draft_meta(const std::string& id);

  // The From of a stored draft (also of a protected one), without opening it.
  Result<Address> draft_sender(const std::string& id);

  // Opens a stored draft. A protected one needs the sender's unlocked key
  // (Errc::invalid_argument without it); a prepared one comes back as the draft it was
  // made from (its signature dropped). Errc::not_found, Errc::crypto if key does not
  // open it, Errc::corrupt if it does not parse.
  Result<Draft> load_draft(const std::string& id, const keys::UnlockedKey* key);

  // Signs draft with signer (when draft.sign) and encrypts it (when draft.encrypt) to
  // its recipients and the sender, stores the result in Drafts as prepared (removing
  // replace_id), and returns it. Errc::invalid_argument if there is nothing to do, or
  // draft.sign without a signer, or the signer is not a key for draft.from with
  // draft.technology, or as validate_draft(to_send); Errc::not_found naming every
  // address without a key; Errc::crypto from the key code. Nothing is stored on failure.
  Result<Prepared> prepare(const Draft& draft, const keys::UnlockedKey* signer,
                           const std::optional<std::string>& replace_id);

  // Sends the draft id. A prepared draft goes exactly as prepared, and only if its
  // message still has digest (Errc::conflict otherwise: it changed since the review).
  // An editing draft goes as a plain message, and only if it asks for neither signing
  // nor encryption (Errc::invalid_argument: prepare it first), and, when it replies to
  // an encrypted message, only if it is encrypted or draft.unencrypted_reply_ok.
  // After the transport accepted it, the copy goes to Sent and the draft is removed.
  // Errc::io with the transport's reason when it fails: the draft is kept.
  // A clear draft that quotes decrypted text is stored encrypted: key (the sender's,
  // unlocked) opens it (Errc::invalid_argument without it), and its copy in Sent is
  // kept encrypted to the sender.
  Result<SentMessage> send(const std::string& id, const std::optional<std::string>& digest,
                           const keys::UnlockedKey* key = nullptr);

  // The key that opens and signs the stored draft id: the sender_key of its From for
  // its technology. Errc::not_found if there is no such draft or no such key.
  Result<keys::KeyInfo> draft_key(const std::string& id);

 private:
  Result<std::string> protect_for_sender(const Draft& draft, std::string_view inner,
                                         const DraftMeta& meta, const HeaderFields& fields);
  // message encrypted to the sender of draft, as a message with draft's headers.
  Result<std::string> sealed_copy(const Draft& draft, std::string_view message);
  // A recipient's key: its public key data (empty with KeyData::not_needed, which
  // spares the export and its audit row), or why there is none.
  using KeyOrMissing = std::variant<std::string, MissingKey>;
  enum class KeyData { needed, not_needed };
  Result<KeyOrMissing> recipient_key(const std::string& address, Technology technology,
                                     KeyData want);
  // The header fields of a message to be sent now from address (with its Autocrypt
  // header, if any).
  Result<HeaderFields> outgoing_fields(const std::string& address);
  Result<std::string> store_replacing(std::string_view message,
                                      const std::optional<std::string>& replace_id);

  Mailbox& mailbox_;
  keys::KeyStore& keys_;
  Transport& transport_;
  const util::Clock& clock_;
  RecipientKeys contacts_;
  AutocryptHeader autocrypt_ = AutocryptHeader::off;
};

}  // namespace wmk::mail
