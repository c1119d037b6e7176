#include "core/webflow/correspondents.h"

#include <algorithm>

#include "core/bindings/bindings.h"
#include "core/contacts/autocrypt.h"
#include "core/keys/keystore.h"
#include "core/mail/mime.h"
#include "core/util/ascii.h"

namespace wmk::webflow {

namespace {

// Whether data reads as the key expected_fingerprint that the page showed: its error if
// it does not read, Errc::conflict if it is another key (the message "offers" or
// "carries" it, as how says).
Status is_shown_key(contacts::ContactStore& directory, std::string_view data,
                    std::string_view expected_fingerprint, std::string_view how) {
  auto key = directory.read(data);
  if (!key)
    return key.error();
  if (key->fingerprint != expected_fingerprint)
    return make_error(Errc::conflict, "the message " + std::string(how) + " key " +
                                          key->fingerprint + ", not the key " +
                                          std::string(expected_fingerprint) +
                                          " you were shown; nothing was imported");
  return {};
}

keys::Actor actor_of(const session::Session& session) {
  return keys::Actor{session.login, session.short_id, session.client_addr};
}

constexpr std::string_view kKeysType = "application/pgp-keys";

// Fills offer from the key data it offers for from: what an import would take, whether
// the key names from, whether it is bound to from already, or why it cannot be taken.
void describe_offer(KeyOffer& offer, contacts::ContactStore& directory,
                    const bindings::Lookup& bound, const std::string& from, std::string_view data) {
  offer.from = from;
  auto key = directory.read(data);
  if (!key) {
    offer.problem = key.error().message;
    return;
  }
  offer.fingerprint = key->fingerprint;
  offer.type = key->type;
  offer.emails = key->emails;
  offer.names_from =
      !from.empty() && std::find(key->emails.begin(), key->emails.end(), from) != key->emails.end();
  // Bound already by any source: the user's directory, or a key of this server's
  // user for that address (mail between users here carries their Autocrypt headers).
  offer.bound = !from.empty() && bound.find(key->type, key->fingerprint, from).has_value();
  if (from.empty())
    offer.problem = "the message has no sender address to bind the key to";
}

// The key data of decrypted content carried as attachment_id; nullptr if none.
const reader::CarriedKey* carried_key(const Decrypted& decrypted, std::string_view attachment_id) {
  for (const auto& segment : decrypted.view.segments) {
    for (const auto& k : segment.keys) {
      if (k.attachment_id == attachment_id)
        return &k;
    }
  }
  return nullptr;
}

}  // namespace

Result<contacts::ContactKey> import_contact_key(app::App& app, const session::Session& session,
                                                std::string_view data,
                                                const std::vector<std::string>& emails) {
  keys::KeyStore store(app.db, app.config, *app.clock, actor_of(session));
  contacts::ContactStore directory(app, store, actor_of(session));
  contacts::ImportRequest request;
  request.emails = emails;
  request.source = contacts::BindingSource::user;
  return directory.import(session.login, data, request);
}

const char* offer_kind_name(KeyOffer::Kind kind) {
  return kind == KeyOffer::Kind::autocrypt ? "autocrypt" : "attached";
}

std::optional<KeyOffer::Kind> parse_offer_kind(std::string_view name) {
  if (name == "attached")
    return KeyOffer::Kind::attached;
  if (name == "autocrypt")
    return KeyOffer::Kind::autocrypt;
  return std::nullopt;
}

std::vector<KeyOffer> key_offers(app::App& app, const session::Session& session,
                                 const mail::Message& message, std::string_view raw) {
  std::vector<KeyOffer> out;
  const mail::ParsedMessage* parsed = &message.parsed();
  // An encrypted message's parts are ciphertext: only its Autocrypt header (outside
  // the encryption) can offer a key here.
  const bool encrypted = mail::is_encrypted(parsed->protection);
  keys::KeyStore store(app.db, app.config, *app.clock, actor_of(session));
  contacts::ContactStore directory(app, store, actor_of(session));
  const std::string from = util::ascii_lower(parsed->from.address);
  const bindings::Chain chain = contacts::standard_bindings(app, session.user_id);
  auto finish = [&](KeyOffer& offer, std::string_view data) {
    describe_offer(offer, directory, chain, from, data);
  };
  for (const auto& part : parsed->parts) {
    if (encrypted || part.content_type != kKeysType)
      continue;
    KeyOffer offer;
    offer.kind = KeyOffer::Kind::attached;
    offer.part_id = part.id;
    auto content = message.part_content(part.id);
    if (!content) {
      offer.from = from;
      offer.problem = content.error().message;
    } else {
      finish(offer, content->bytes);
    }
    out.push_back(std::move(offer));
  }
  auto values = contacts::autocrypt_header_values(raw);
  if (values.size() == 1) {
    KeyOffer offer;
    offer.kind = KeyOffer::Kind::autocrypt;
    auto header = contacts::parse_autocrypt(values.front());
    if (!header) {
      offer.from = from;
      offer.problem = header.error().message;
    } else {
      finish(offer, header->keydata);
      if (offer.problem.empty() && header->addr != from)
        offer.problem = "the Autocrypt header is for " + header->addr + ", not the sender " +
                        (from.empty() ? std::string("(none)") : from);
    }
    out.push_back(std::move(offer));
  }
  return out;
}

Result<contacts::ContactKey> accept_key_offer(app::App& app, const session::Session& session,
                                              std::string_view raw, KeyOffer::Kind kind,
                                              std::string_view part_id,
                                              std::string_view expected_fingerprint) {
  auto message = mail::Message::parse(raw, mail::ParseDepth::structure);
  if (!message)
    return message.error();
  const mail::ParsedMessage* parsed = &message->parsed();
  if (mail::is_encrypted(parsed->protection) && kind != KeyOffer::Kind::autocrypt)
    return make_error(Errc::not_found,
                      "an encrypted message offers only its Autocrypt header's key here");
  const std::string from = util::ascii_lower(parsed->from.address);
  if (from.empty())
    return make_error(Errc::invalid_argument,
                      "the message has no sender address to bind the key to");
  keys::KeyStore store(app.db, app.config, *app.clock, actor_of(session));
  contacts::ContactStore directory(app, store, actor_of(session));
  if (kind == KeyOffer::Kind::attached) {
    auto it = std::find_if(parsed->parts.begin(), parsed->parts.end(), [&](const mail::Part& p) {
      return p.id == part_id && p.content_type == kKeysType;
    });
    if (it == parsed->parts.end())
      return make_error(Errc::not_found, "the message has no such attached key");
    auto content = message->part_content(part_id);
    if (!content)
      return content.error();
    WMK_TRY(is_shown_key(directory, content->bytes, expected_fingerprint, "offers"));
    contacts::ImportRequest request;
    request.emails = {from};
    request.source = contacts::BindingSource::user;
    return directory.import(session.login, content->bytes, request);
  }
  auto values = contacts::autocrypt_header_values(raw);
  if (values.size() != 1)
    return make_error(Errc::not_found, "the message has no single Autocrypt header");
  auto header = contacts::parse_autocrypt(values.front());
  if (!header)
    return header.error();
  WMK_TRY(is_shown_key(directory, header->keydata, expected_fingerprint, "offers"));
  const std::int64_t now = app.clock->now();
  const std::int64_t when = parsed->date ? std::min(*parsed->date, now) : now;
  return directory.autocrypt_seen(session.user_id, from, values.front(), when);
}

std::vector<KeyOffer> decrypted_key_offers(app::App& app, const session::Session& session,
                                           const Decrypted& decrypted) {
  std::vector<KeyOffer> out;
  keys::KeyStore store(app.db, app.config, *app.clock, actor_of(session));
  contacts::ContactStore directory(app, store, actor_of(session));
  const std::string from = util::ascii_lower(decrypted.envelope.from.address);
  const bindings::Chain chain = contacts::standard_bindings(app, session.user_id);
  for (const auto& segment : decrypted.view.segments) {
    for (const auto& k : segment.keys) {
      KeyOffer offer;
      offer.kind = KeyOffer::Kind::attached;
      offer.part_id = k.attachment_id;
      describe_offer(offer, directory, chain, from, k.data);
      out.push_back(std::move(offer));
    }
  }
  return out;
}

Result<DecryptedOfferOutcome> accept_decrypted_key_offer(KeySession& keys, const MessageRef& ref,
                                                         std::string_view part_id,
                                                         std::string_view expected_fingerprint) {
  auto outcome = keys.decrypt(ref);
  if (!outcome)
    return outcome.error();
  if (auto* need = std::get_if<NeedUnlock>(&*outcome))
    return DecryptedOfferOutcome{std::move(*need)};
  if (auto* in_use = std::get_if<InUseElsewhere>(&*outcome))
    return DecryptedOfferOutcome{std::move(*in_use)};
  const auto& decrypted = std::get<Decrypted>(*outcome);
  const std::string from = util::ascii_lower(decrypted.envelope.from.address);
  if (from.empty())
    return make_error(Errc::invalid_argument,
                      "the message has no sender address to bind the key to");
  const reader::CarriedKey* carried = carried_key(decrypted, part_id);
  if (carried == nullptr)
    return make_error(Errc::not_found, "the decrypted message carries no such key");
  const session::Session& session = keys.session();
  contacts::ContactStore directory(keys.app(), keys.keys(), actor_of(session));
  WMK_TRY(is_shown_key(directory, carried->data, expected_fingerprint, "carries"));
  contacts::ImportRequest request;
  request.emails = {from};
  request.source = contacts::BindingSource::user;
  auto imported = directory.import(session.login, carried->data, request);
  if (!imported)
    return imported.error();
  return DecryptedOfferOutcome{std::move(imported).value()};
}

}  // namespace wmk::webflow
