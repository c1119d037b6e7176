#pragma once
// Each user's directory of correspondents' keys (docs/security.md, "Correspondents'
// keys"): OpenPGP public keys and S/MIME certificates, each bound to specific
// addresses, each binding with its source. Owns tables contact_keys, contact_bindings
// and contact_signers.
//
// A key's own user ids bind nothing: only a binding says "this key speaks for this
// address" for this user. The public key itself is made usable for verifying by
// keys::KeyStore (OpenPGP: imported into the server's GnuPG home, merged there).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/app/app.h"
#include "core/bindings/bindings.h"
#include "core/keys/keystore.h"
#include "core/keys/types.h"
#include "core/mail/outgoing.h"
#include "core/net/https.h"
#include "core/util/result.h"

namespace wmk::contacts {

// Where a binding of a key to an address comes from: bindings::Source (server, wkd,
// ca, user, autocrypt). `server` is not stored here: it is a key of this server's user
// for that user's address (bindings::ServerUsers).
using BindingSource = bindings::Source;

struct Binding {
  std::string email;  // lowercased
  BindingSource source = BindingSource::user;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
};

// Whether a key may be used to encrypt now.
enum class KeyState { usable, expired, revoked, no_encryption };
const char* key_state_name(KeyState state);
// Why not, in words ("the key was revoked by its owner"); "" for usable.
const char* key_state_words(KeyState state);

struct ContactKey {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string login;
  keys::KeyType type = keys::KeyType::openpgp;
  std::string fingerprint;
  std::string algorithm;
  std::int64_t created = 0;
  std::optional<std::int64_t> expires;
  bool revoked = false;
  bool can_encrypt = false;
  std::vector<std::string> user_ids;  // as the key's owner wrote them: bind nothing
  std::string public_data;            // armored OpenPGP key, or PEM certificates
  std::int64_t imported = 0;
  std::int64_t updated = 0;
  std::vector<Binding> bindings;
  KeyState state = KeyState::usable;  // at the time it was read
};

struct ImportRequest {
  // The addresses to bind. Empty: the one address the key carries (refused if it
  // carries none or several, naming them).
  std::vector<std::string> emails;
  // user (the default), wkd or autocrypt. An S/MIME certificate that chains to the
  // trust store and names the address is bound as `ca` instead of `user`.
  BindingSource source = BindingSource::user;
};

// A key bound to an address for a user, as the verdict and compose code ask for it.
struct BoundKey {
  std::string fingerprint;
  keys::KeyType type = keys::KeyType::openpgp;
  BindingSource source = BindingSource::user;
  std::int64_t contact_key_id = 0;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
};

class ContactStore {
 public:
  // keys: the same App's key custody, which makes public keys usable.
  ContactStore(app::App& app, keys::KeyStore& keys, keys::Actor actor = keys::Actor::cli());

  // Reads the key or certificate in data without storing anything: what an import
  // would take (to show its fingerprint first). Errors as import.
  Result<keys::PublicKey> read(std::string_view data);

  // Imports one OpenPGP public key (armored or binary) or one certificate (PEM or DER,
  // chain after it) for login and binds it to request's addresses. Importing a key again
  // merges it (new subkeys, expiry, revocations) and adds bindings. Errc::not_found for
  // an unknown login; Errc::invalid_argument for a secret key (nothing of it is
  // stored), several keys, more than kMaxKeyDataBytes, malformed data, or an unclear
  // address; audited as contact.import.
  Result<ContactKey> import(const std::string& login, std::string_view data,
                            const ImportRequest& request);

  // Every contact key, or login's (Errc::not_found for an unknown login), by id.
  Result<std::vector<ContactKey>> list(const std::optional<std::string>& login = std::nullopt);

  // One contact key. Errc::not_found.
  Result<ContactKey> get(std::int64_t id);

  // Deletes a contact key and its bindings; its OpenPGP public key leaves the GnuPG
  // home when no other user has it. Errc::not_found.
  Status remove(std::int64_t id);

  // Looks address up by WKD (wkd_lookup) and imports the answer for login, binding
  // only address, with source wkd. Errors as wkd_lookup and import.
  Result<ContactKey> lookup_wkd(const std::string& login, const std::string& address);

  // The same for several addresses: the lookups run at once (wkd_lookup_all: at most
  // kWkdTimeout together), the imports one after the other. One result per address, in
  // order; an unknown login fails every one (Errc::not_found).
  std::vector<Result<ContactKey>> lookup_wkd(const std::string& login,
                                             const std::vector<std::string>& addresses);

  // The keys bound to address for the user (newest binding first), of type if given.
  std::vector<BoundKey> bound_to(std::int64_t user_id, std::string_view address,
                                 std::optional<keys::KeyType> type = std::nullopt);

  // The key to encrypt to address for the user: the most recently bound usable key of
  // type. Errc::not_found when none is bound; Errc::expired / Errc::revoked (saying
  // so) when every bound key is unusable.
  Result<ContactKey> encryption_key(std::int64_t user_id, std::string_view address,
                                    keys::KeyType type);

  // encryption_key for user_id as the outgoing mail asks it (mail::Outbox::use_contacts):
  // the key's public data. Uses this ContactStore, which must outlive it.
  mail::RecipientKeys recipient_keys(std::int64_t user_id);

  // Records that a verified message from address was signed by fingerprint at time
  // `when`, and returns the fingerprint that signed the previous one if it was another
  // (nullopt when it is the first or the same).
  std::optional<std::string> note_signer(std::int64_t user_id, std::string_view address,
                                         keys::KeyType type, const std::string& fingerprint,
                                         std::int64_t when);

  // Autocrypt Level 1: the Autocrypt header value of a message from from_address dated
  // `when`. The key is imported and bound to from_address with source autocrypt (its
  // last_seen moves forward only). Errc::invalid_argument if the header is malformed or
  // its addr is not from_address (then it is ignored, as the specification says).
  // Audited as contact.import when it binds or changes a key, or its import fails (a
  // header seen again, which only moves last_seen, writes no row).
  Result<ContactKey> autocrypt_seen(std::int64_t user_id, std::string_view from_address,
                                    std::string_view header_value, std::int64_t when);

  // Autocrypt Level 1 at delivery: the one Autocrypt header of a message delivered to
  // the user (several, or none: nothing happens), for its From address, dated
  // min(Date, now). nullopt when there is nothing to take; errors as autocrypt_seen.
  Result<std::optional<ContactKey>> autocrypt_from_message(std::int64_t user_id,
                                                           std::string_view raw);

  // S/MIME at delivery (docs/security.md, "Correspondents' keys"): when raw is an
  // S/MIME signed (not encrypted) message whose signature is good, whose signer's
  // certificate chains to the trust store and names the From address, and no binding
  // yet ties that certificate to the address for the user, the certificate is stored
  // and bound to the From address with source ca (dated min(Date, now)). A
  // self-signed or unknown-CA certificate, one that does not name the From address,
  // or a bad signature: nothing is stored (nullopt). Errors as import.
  Result<std::optional<ContactKey>> smime_signer_from_message(std::int64_t user_id,
                                                              std::string_view raw);

 private:
  Result<ContactKey> import_for(std::int64_t user_id, const std::string& login,
                                std::string_view data, const ImportRequest& request,
                                std::int64_t when);
  void load_bindings(ContactKey& key);
  void audit(const std::string& login, const char* event, const Status& outcome,
             std::string_view fingerprint, std::string_view detail);

  app::App& app_;
  keys::KeyStore& keys_;
  keys::Actor actor_;
};

// bindings::Lookup over one user's directory: the newest binding of the address to the
// key with this fingerprint and type (sources wkd, ca, user, autocrypt).
class DirectoryBindings final : public bindings::Lookup {
 public:
  DirectoryBindings(app::App& app, std::int64_t user_id) : app_(app), user_id_(user_id) {}
  std::optional<bindings::Binding> find(keys::KeyType type, std::string_view fingerprint,
                                        std::string_view address) const override;

 private:
  app::App& app_;
  std::int64_t user_id_;
};

// Every binding source for reading mail of the user user_id, in order of trust:
// bindings::ServerUsers, then the user's own directory (DirectoryBindings: wkd, ca,
// user, autocrypt).
bindings::Chain standard_bindings(app::App& app, std::int64_t user_id);

// The HTTPS options for WKD from the config (wkd_ca_file, wkd_resolve).
net::HttpsOptions wkd_options(const config::Config& config);

}  // namespace wmk::contacts
