#include "core/contacts/contacts.h"

#include <algorithm>

#include "core/auth/users.h"
#include "core/contacts/autocrypt.h"
#include "core/contacts/keydata.h"
#include "core/contacts/wkd.h"
#include "core/keys/key_audit.h"
#include "core/mail/mime.h"
#include "core/util/ascii.h"

namespace wmk::contacts {

namespace {

constexpr const char* kEventImport = "contact.import";
constexpr const char* kEventDelete = "contact.delete";
constexpr const char* kEventLookup = "contact.lookup";

bool plausible_address(std::string_view a) {
  auto at = a.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < a.size() &&
         a.find('@', at + 1) == std::string_view::npos &&
         a.find_first_of(" \t\r\n<>,;\"") == std::string_view::npos;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    auto nl = s.find('\n', pos);
    out.push_back(s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? s.size() : nl + 1;
  }
  return out;
}

std::string join_user_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    std::string clean;
    for (char c : id)
      clean += (c == '\n' || c == '\r') ? ' ' : c;
    out += (out.empty() ? "" : "\n") + clean;
  }
  return out;
}

KeyState state_at(const ContactKey& k, std::int64_t now) {
  if (k.revoked)
    return KeyState::revoked;
  if (k.expires && *k.expires <= now)
    return KeyState::expired;
  if (!k.can_encrypt)
    return KeyState::no_encryption;
  return KeyState::usable;
}

constexpr const char* kSelectKey =
    "SELECT c.id, c.user_id, u.login, c.type, c.fingerprint, c.algorithm, c.created, c.expires, "
    "c.revoked, c.user_ids, c.public_data, c.imported, c.updated FROM contact_keys c JOIN users u "
    "ON u.id = c.user_id ";

ContactKey row_of(const store::Statement& st, std::int64_t now) {
  ContactKey k;
  k.id = st.column_int(0);
  k.user_id = st.column_int(1);
  k.login = st.column_text(2);
  k.type = keys::parse_key_type(st.column_text(3)).value_or(keys::KeyType::openpgp);
  k.fingerprint = st.column_text(4);
  k.algorithm = st.column_text(5);
  k.created = st.column_int(6);
  k.expires = st.column_optional_int(7);
  k.revoked = st.column_int(8) != 0;
  k.user_ids = split_lines(st.column_text(9));
  auto blob = st.column_blob(10);
  k.public_data.assign(blob.begin(), blob.end());
  k.imported = st.column_int(11);
  k.updated = st.column_int(12);
  // can_encrypt is not stored: for S/MIME it is the validity period, for OpenPGP the
  // GnuPG home's view was stored as expires/revoked; the encryption subkey check runs
  // again when encrypting.
  k.can_encrypt = true;
  k.state = state_at(k, now);
  return k;
}

}  // namespace

const char* key_state_name(KeyState state) {
  switch (state) {
    case KeyState::usable:
      return "usable";
    case KeyState::expired:
      return "expired";
    case KeyState::revoked:
      return "revoked";
    case KeyState::no_encryption:
      return "no_encryption";
  }
  return "usable";
}

const char* key_state_words(KeyState state) {
  switch (state) {
    case KeyState::usable:
      return "";
    case KeyState::expired:
      return "the key has expired";
    case KeyState::revoked:
      return "the key was revoked by its owner";
    case KeyState::no_encryption:
      return "the key has no usable encryption subkey";
  }
  return "";
}

ContactStore::ContactStore(app::App& app, keys::KeyStore& keys, keys::Actor actor)
    : app_(app), keys_(keys), actor_(std::move(actor)) {}

void ContactStore::audit(const std::string& login, const char* event, const Status& outcome,
                         std::string_view fingerprint, std::string_view detail) {
  std::string d(detail);
  if (!outcome.ok())
    d += (d.empty() ? "" : ": ") + outcome.error().message;
  keys::record_key_event(app_.db, *app_.clock, actor_, login, event, outcome.ok() ? "ok" : "fail",
                         fingerprint, d);
}

Result<keys::PublicKey> ContactStore::read(std::string_view data) {
  if (data.empty())
    return make_error(Errc::invalid_argument, "the key data is empty");
  if (data.size() > kMaxKeyDataBytes)
    return make_error(Errc::invalid_argument, "the key data is larger than " +
                                                  std::to_string(kMaxKeyDataBytes / 1024) + " KiB");
  KeyFormat format = detect_key_format(data);
  keys::KeyType type = keys::KeyType::openpgp;
  switch (format) {
    case KeyFormat::openpgp_armored:
    case KeyFormat::openpgp_binary: {
      auto scan = scan_openpgp(data);
      if (!scan)
        return scan.error();
      if (scan->has_secret)
        return make_error(Errc::invalid_argument,
                          "the data holds a secret key: only public keys are taken (nothing was "
                          "stored)");
      if (scan->primary_keys != 1)
        return make_error(Errc::invalid_argument, "the data holds " +
                                                      std::to_string(scan->primary_keys) +
                                                      " OpenPGP keys; import one at a time");
      break;
    }
    case KeyFormat::x509_pem:
    case KeyFormat::x509_der:
      type = keys::KeyType::smime;
      break;
    case KeyFormat::unknown:
      return make_error(Errc::invalid_argument,
                        "the data is neither an OpenPGP public key nor an X.509 certificate");
  }
  auto read = keys_.read_public(type, data);
  if (!read)
    return read.error();
  if (read->size() != 1)
    return make_error(Errc::invalid_argument, "the data holds " + std::to_string(read->size()) +
                                                  " keys; import one at a time");
  return std::move(read->front());
}

Result<ContactKey> ContactStore::import(const std::string& login, std::string_view data,
                                        const ImportRequest& request) {
  auto user = auth::UserStore(app_.db, *app_.clock).find(login);
  if (!user)
    return make_error(Errc::not_found, "no user " + login);
  auto imported = import_for(user->id, user->login, data, request, app_.clock->now());
  audit(user->login, kEventImport, imported ? Status{} : Status{imported.error()},
        imported ? imported->fingerprint : "",
        imported ? std::string("bound with source ") + bindings::source_name(request.source)
                 : std::string());
  return imported;
}

Result<ContactKey> ContactStore::import_for(std::int64_t user_id, const std::string& login,
                                            std::string_view data, const ImportRequest& request,
                                            std::int64_t when) {
  (void)login;
  if (request.source == BindingSource::server)
    return make_error(Errc::invalid_argument, "a server binding comes from the user's own keys");
  std::vector<std::string> emails;
  for (const auto& e : request.emails) {
    std::string a = util::ascii_lower(e);
    if (!plausible_address(a))
      return make_error(Errc::invalid_argument, "not an address: " + e);
    if (std::find(emails.begin(), emails.end(), a) == emails.end())
      emails.push_back(a);
  }
  auto seen = read(data);
  if (!seen)
    return seen.error();
  bool known = false;
  {
    auto st = app_.db.prepare("SELECT 1 FROM contact_keys WHERE user_id = ? AND fingerprint = ?");
    st.bind_all(user_id, seen->fingerprint);
    known = st.step();
  }
  // An update of a key already in the directory (new subkeys, a revocation) keeps its
  // bindings and needs no address.
  if (emails.empty() && !known) {
    if (seen->emails.size() == 1) {
      emails = seen->emails;
    } else if (seen->emails.empty()) {
      return make_error(Errc::invalid_argument,
                        "the key carries no address: name the address it is for (--email)");
    } else {
      return make_error(Errc::invalid_argument,
                        "the key carries several addresses (" + join(seen->emails) +
                            "); a key's own user ids bind nothing, so name the address it is for "
                            "(--email)");
    }
  }
  // Now make it usable (gpg merges it into the home); nothing is written to the
  // database until that succeeded. A public key left in the home after a failure
  // below (or a kill) binds nothing, and `fsck` removes it: the lock keeps fsck from
  // doing so while the row is still to come.
  auto hold = keys_.hold_key_changes();
  if (!hold)
    return hold.error();
  auto got = keys_.import_public(seen->type, data);
  if (!got)
    return got.error();
  keys::PublicKey key = std::move(got->front());
  const std::int64_t now = app_.clock->now();
  const char* type_name = keys::key_type_name(key.type);
  store::Transaction tx(app_.db);
  auto upsert = app_.db.prepare(
      "INSERT INTO contact_keys (user_id, fingerprint, type, algorithm, created, expires, "
      "revoked, user_ids, public_data, imported, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT (user_id, fingerprint) DO UPDATE SET algorithm = excluded.algorithm, "
      "expires = excluded.expires, revoked = excluded.revoked, user_ids = excluded.user_ids, "
      "public_data = excluded.public_data, updated = excluded.updated");
  std::vector<std::uint8_t> blob(key.data.begin(), key.data.end());
  upsert.bind_all(user_id, key.fingerprint, type_name, key.algorithm, key.created, key.expires,
                  key.revoked ? 1 : 0, join_user_ids(key.user_ids), blob, now, now);
  upsert.run();
  // The merged key is the same for everyone who holds it.
  app_.db
      .prepare(
          "UPDATE contact_keys SET algorithm = ?, expires = ?, revoked = ?, user_ids = ?, "
          "public_data = ?, updated = ? WHERE fingerprint = ?")
      .bind_all(key.algorithm, key.expires, key.revoked ? 1 : 0, join_user_ids(key.user_ids), blob,
                now, key.fingerprint)
      .run();
  auto id_st = app_.db.prepare("SELECT id FROM contact_keys WHERE user_id = ? AND fingerprint = ?");
  id_st.bind_all(user_id, key.fingerprint);
  id_st.step();
  std::int64_t id = id_st.column_int(0);
  for (const auto& e : emails) {
    BindingSource source = request.source;
    bool names_it = std::find(key.emails.begin(), key.emails.end(), e) != key.emails.end();
    if (key.type == keys::KeyType::smime && source == BindingSource::user && key.chain_trusted &&
        names_it)
      source = BindingSource::ca;
    app_.db
        .prepare(
            "INSERT INTO contact_bindings (contact_key_id, email, source, first_seen, last_seen) "
            "VALUES (?,?,?,?,?) ON CONFLICT (contact_key_id, email, source) DO UPDATE SET "
            "last_seen = CASE WHEN excluded.last_seen > contact_bindings.last_seen THEN "
            "excluded.last_seen ELSE contact_bindings.last_seen END")
        .bind_all(id, e, bindings::source_name(source), when, when)
        .run();
  }
  tx.commit();
  return get(id);
}

void ContactStore::load_bindings(ContactKey& key) {
  auto st = app_.db.prepare(
      "SELECT email, source, first_seen, last_seen FROM contact_bindings WHERE contact_key_id = ? "
      "ORDER BY email, source");
  st.bind(1, key.id);
  while (st.step()) {
    Binding b;
    b.email = st.column_text(0);
    b.source = bindings::parse_source(st.column_text(1)).value_or(BindingSource::user);
    b.first_seen = st.column_int(2);
    b.last_seen = st.column_int(3);
    key.bindings.push_back(std::move(b));
  }
}

Result<std::vector<ContactKey>> ContactStore::list(const std::optional<std::string>& login) {
  std::optional<std::int64_t> user_id;
  if (login) {
    auto user = auth::UserStore(app_.db, *app_.clock).find(*login);
    if (!user)
      return make_error(Errc::not_found, "no user " + *login);
    user_id = user->id;
  }
  auto st = app_.db.prepare(std::string(kSelectKey) +
                            (user_id ? "WHERE c.user_id = ? ORDER BY c.id" : "ORDER BY c.id"));
  if (user_id)
    st.bind(1, *user_id);
  std::vector<ContactKey> out;
  const std::int64_t now = app_.clock->now();
  while (st.step())
    out.push_back(row_of(st, now));
  for (auto& k : out)
    load_bindings(k);
  return out;
}

Result<ContactKey> ContactStore::get(std::int64_t id) {
  auto st = app_.db.prepare(std::string(kSelectKey) + "WHERE c.id = ?");
  st.bind(1, id);
  if (!st.step())
    return make_error(Errc::not_found, "no contact key " + std::to_string(id));
  ContactKey k = row_of(st, app_.clock->now());
  load_bindings(k);
  return k;
}

Status ContactStore::remove(std::int64_t id) {
  auto key = get(id);
  if (!key)
    return key.error();
  {
    store::Transaction tx(app_.db);
    app_.db.prepare("DELETE FROM contact_keys WHERE id = ?").bind(1, id).run();
    tx.commit();
  }
  Status outcome;
  if (key->type == keys::KeyType::openpgp) {
    auto others = app_.db.prepare("SELECT 1 FROM contact_keys WHERE fingerprint = ?");
    others.bind(1, key->fingerprint);
    if (!others.step())
      outcome = keys_.remove_public_openpgp(key->fingerprint);
  }
  audit(key->login, kEventDelete, outcome, key->fingerprint, "");
  return outcome;
}

Result<ContactKey> ContactStore::lookup_wkd(const std::string& login, const std::string& address) {
  auto all = lookup_wkd(login, std::vector<std::string>{address});
  return std::move(all.front());
}

std::vector<Result<ContactKey>> ContactStore::lookup_wkd(
    const std::string& login, const std::vector<std::string>& addresses) {
  std::vector<Result<ContactKey>> out;
  auto user = auth::UserStore(app_.db, *app_.clock).find(login);
  if (!user) {
    for (std::size_t i = 0; i < addresses.size(); ++i)
      out.push_back(make_error(Errc::not_found, "no user " + login));
    return out;
  }
  std::vector<std::string> lowered;
  for (const auto& a : addresses)
    lowered.push_back(util::ascii_lower(a));
  auto answers = wkd_lookup_all(lowered, wkd_options(app_.config));
  for (std::size_t i = 0; i < lowered.size(); ++i) {
    const std::string& a = lowered[i];
    auto& found = answers[i];
    if (!found) {
      audit(user->login, kEventLookup, found.error(), "", a);
      out.push_back(found.error());
      continue;
    }
    ImportRequest request;
    request.emails = {a};
    request.source = BindingSource::wkd;
    // Whether the user held this key before: a refused lookup then takes back only
    // its own binding, never the key and the bindings the user already had.
    bool held_before = false;
    if (auto seen = read(found->key_data)) {
      auto st = app_.db.prepare("SELECT 1 FROM contact_keys WHERE user_id = ? AND fingerprint = ?");
      st.bind_all(user->id, seen->fingerprint);
      held_before = st.step();
    }
    auto imported = import_for(user->id, user->login, found->key_data, request, app_.clock->now());
    // The key the answer held, also when it is refused below (for the audit row).
    const std::string fingerprint = imported ? imported->fingerprint : std::string();
    // gpg keeps only user ids its owner's key really signed: the address must still be
    // there after gpg's own checks.
    if (imported &&
        std::none_of(imported->user_ids.begin(), imported->user_ids.end(),
                     [&](const std::string& uid) { return user_id_address(uid) == a; })) {
      if (held_before) {
        store::Transaction tx(app_.db);
        app_.db
            .prepare(
                "DELETE FROM contact_bindings WHERE contact_key_id = ? AND email = ? AND "
                "source = ?")
            .bind_all(imported->id, a, bindings::source_name(BindingSource::wkd))
            .run();
        tx.commit();
      } else {
        (void)remove(imported->id);
      }
      imported = make_error(Errc::corrupt, "the key published by WKD does not validly carry " + a);
    }
    audit(user->login, kEventLookup, imported ? Status{} : Status{imported.error()}, fingerprint,
          a + " (" + found->method + ")");
    out.push_back(std::move(imported));
  }
  return out;
}

std::vector<BoundKey> ContactStore::bound_to(std::int64_t user_id, std::string_view address,
                                             std::optional<keys::KeyType> type) {
  auto st = app_.db.prepare(
      "SELECT c.fingerprint, c.type, b.source, c.id, b.first_seen, b.last_seen FROM "
      "contact_bindings b JOIN contact_keys c ON c.id = b.contact_key_id WHERE c.user_id = ? AND "
      "b.email = ? ORDER BY b.last_seen DESC, c.id DESC");
  st.bind_all(user_id, util::ascii_lower(address));
  std::vector<BoundKey> out;
  while (st.step()) {
    BoundKey k;
    k.fingerprint = st.column_text(0);
    k.type = keys::parse_key_type(st.column_text(1)).value_or(keys::KeyType::openpgp);
    if (type && k.type != *type)
      continue;
    k.source = bindings::parse_source(st.column_text(2)).value_or(BindingSource::user);
    k.contact_key_id = st.column_int(3);
    k.first_seen = st.column_int(4);
    k.last_seen = st.column_int(5);
    out.push_back(std::move(k));
  }
  return out;
}

Result<ContactKey> ContactStore::encryption_key(std::int64_t user_id, std::string_view address,
                                                keys::KeyType type) {
  auto bound = bound_to(user_id, address, type);
  if (bound.empty())
    return make_error(Errc::not_found,
                      std::string("no ") +
                          (type == keys::KeyType::smime ? "S/MIME certificate" : "OpenPGP key") +
                          " is bound to " + std::string(address));
  std::optional<Error> why;
  for (const auto& b : bound) {
    auto k = get(b.contact_key_id);
    if (!k)
      continue;
    if (k->type == keys::KeyType::openpgp) {
      // The GnuPG home has the key as last merged (a revocation imported by anyone), after
      // merging what the store holds: another node may have imported a newer copy.
      (void)keys_.cache_public_openpgp(k->public_data);
      auto now_key = keys_.public_openpgp(k->fingerprint);
      if (now_key) {
        k->revoked = now_key->revoked;
        k->expires = now_key->expires;
        k->can_encrypt = now_key->can_encrypt;
        k->public_data = now_key->data;
        k->state = state_at(*k, app_.clock->now());
      }
    }
    if (k->state == KeyState::usable)
      return k;
    if (!why) {
      Errc code = k->state == KeyState::revoked   ? Errc::revoked
                  : k->state == KeyState::expired ? Errc::expired
                                                  : Errc::invalid_argument;
      why = make_error(code, "the key " + k->fingerprint + " bound to " + std::string(address) +
                                 " cannot be used: " + key_state_words(k->state));
    }
  }
  return *why;
}

std::optional<std::string> ContactStore::note_signer(std::int64_t user_id, std::string_view address,
                                                     keys::KeyType type,
                                                     const std::string& fingerprint,
                                                     std::int64_t when) {
  std::string a = util::ascii_lower(address);
  store::Transaction tx(app_.db);
  auto st = app_.db.prepare(
      "SELECT fingerprint, seen FROM contact_signers WHERE user_id = ? AND email = ? AND type = ?");
  st.bind_all(user_id, a, keys::key_type_name(type));
  std::optional<std::string> previous;
  bool newer = true;
  if (st.step()) {
    previous = st.column_text(0);
    newer = when >= st.column_int(1);
  }
  if (newer) {
    app_.db
        .prepare(
            "INSERT INTO contact_signers (user_id, email, type, fingerprint, seen) VALUES "
            "(?,?,?,?,?) ON CONFLICT (user_id, email, type) DO UPDATE SET fingerprint = "
            "excluded.fingerprint, seen = excluded.seen")
        .bind_all(user_id, a, keys::key_type_name(type), fingerprint, when)
        .run();
  }
  tx.commit();
  if (previous && *previous != fingerprint)
    return previous;
  return std::nullopt;
}

Result<ContactKey> ContactStore::autocrypt_seen(std::int64_t user_id, std::string_view from_address,
                                                std::string_view header_value, std::int64_t when) {
  auto header = parse_autocrypt(header_value);
  if (!header)
    return header.error();
  std::string from = util::ascii_lower(from_address);
  if (header->addr != from)
    return make_error(Errc::invalid_argument,
                      "the Autocrypt header is for " + header->addr + ", not the sender " + from);
  auto user = auth::UserStore(app_.db, *app_.clock).find_by_id(user_id);
  if (!user)
    return make_error(Errc::not_found, "no such user");
  ImportRequest request;
  request.emails = {from};
  request.source = BindingSource::autocrypt;
  // The keys this header's kind of binding already ties to the address, with their
  // data: the same header on every message from a peer only moves last_seen forward,
  // which is no change worth an audit row per message.
  std::vector<std::pair<std::string, std::string>> bound_before;  // fingerprint, data
  {
    auto st = app_.db.prepare(
        "SELECT c.fingerprint, c.public_data FROM contact_keys c JOIN contact_bindings b ON "
        "b.contact_key_id = c.id WHERE c.user_id = ? AND b.email = ? AND b.source = ?");
    st.bind_all(user_id, from, bindings::source_name(BindingSource::autocrypt));
    while (st.step()) {
      auto blob = st.column_blob(1);
      bound_before.emplace_back(st.column_text(0), std::string(blob.begin(), blob.end()));
    }
  }
  auto imported = import_for(user_id, user->login, header->keydata, request, when);
  if (!imported) {
    audit(user->login, kEventImport, Status{imported.error()}, "",
          "from an Autocrypt header of " + from);
    return imported;
  }
  auto before = std::find_if(bound_before.begin(), bound_before.end(),
                             [&](const auto& b) { return b.first == imported->fingerprint; });
  if (before != bound_before.end() && before->second == imported->public_data)
    return imported;
  audit(user->login, kEventImport, Status{}, imported->fingerprint,
        std::string(before == bound_before.end() ? "bound" : "updated") +
            " from an Autocrypt header of " + from + ", source autocrypt");
  return imported;
}

Result<std::optional<ContactKey>> ContactStore::autocrypt_from_message(std::int64_t user_id,
                                                                       std::string_view raw) {
  auto values = autocrypt_header_values(raw);
  if (values.size() != 1)
    return std::optional<ContactKey>();
  auto parsed = mail::parse_message(raw, mail::ParseDepth::structure);
  if (!parsed)
    return parsed.error();
  if (parsed->from.address.empty())
    return std::optional<ContactKey>();
  const std::int64_t now = app_.clock->now();
  const std::int64_t when = parsed->date ? std::min(*parsed->date, now) : now;
  auto seen = autocrypt_seen(user_id, parsed->from.address, values.front(), when);
  if (!seen)
    return seen.error();
  return std::optional<ContactKey>(std::move(seen).value());
}

std::optional<bindings::Binding> DirectoryBindings::find(keys::KeyType type,
                                                         std::string_view fingerprint,
                                                         std::string_view address) const {
  if (address.empty() || fingerprint.empty())
    return std::nullopt;
  auto st = app_.db.prepare(
      "SELECT b.source FROM contact_bindings b JOIN contact_keys c ON c.id = b.contact_key_id "
      "WHERE c.user_id = ? AND c.fingerprint = ? AND c.type = ? AND b.email = ? "
      "ORDER BY b.last_seen DESC LIMIT 1");
  const std::string wanted = util::ascii_lower(address);
  st.bind_all(user_id_, std::string(fingerprint), keys::key_type_name(type), wanted);
  if (!st.step())
    return std::nullopt;
  auto source = bindings::parse_source(st.column_text(0));
  if (!source)
    return std::nullopt;
  return bindings::Binding{*source, wanted, ""};
}

mail::RecipientKeys ContactStore::recipient_keys(std::int64_t user_id) {
  return [this, user_id](const std::string& address, keys::KeyType type) -> Result<std::string> {
    auto bound = encryption_key(user_id, address, type);
    if (!bound)
      return bound.error();
    return std::move(bound->public_data);
  };
}

bindings::Chain standard_bindings(app::App& app, std::int64_t user_id) {
  bindings::Chain chain = bindings::standard(app);
  chain.add(std::make_unique<DirectoryBindings>(app, user_id));
  return chain;
}

net::HttpsOptions wkd_options(const config::Config& config) {
  net::HttpsOptions o;
  o.timeout = kWkdTimeout;
  o.max_bytes = kWkdMaxBytes;
  o.extra_ca_file = config.wkd_ca_file;
  o.resolve = config.wkd_resolve;
  return o;
}

}  // namespace wmk::contacts
