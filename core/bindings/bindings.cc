#include "core/bindings/bindings.h"

#include <algorithm>

#include "core/auth/users.h"
#include "core/keys/keystore.h"
#include "core/util/ascii.h"

namespace wmk::bindings {

const char* source_name(Source source) {
  switch (source) {
    case Source::server:
      return "server";
    case Source::wkd:
      return "wkd";
    case Source::ca:
      return "ca";
    case Source::user:
      return "user";
    case Source::autocrypt:
      return "autocrypt";
  }
  return "server";
}

const char* source_words(Source source) {
  switch (source) {
    case Source::server:
      return "a user of this server";
    case Source::wkd:
      return "published by the address's own domain (WKD)";
    case Source::ca:
      return "a certificate authority you trust vouches for the address";
    case Source::user:
      return "you accepted this key for the address";
    case Source::autocrypt:
      return "seen in Autocrypt headers of mail from the address (not verified)";
  }
  return "a user of this server";
}

std::optional<Source> parse_source(std::string_view name) {
  for (auto s : {Source::server, Source::wkd, Source::ca, Source::user, Source::autocrypt}) {
    if (name == source_name(s))
      return s;
  }
  return std::nullopt;
}

std::optional<Binding> ServerUsers::find(keys::KeyType type, std::string_view fingerprint,
                                         std::string_view address) const {
  // A whole fingerprint only: KeyStore::find also takes prefixes, which must never
  // name a key here.
  if (address.empty() || fingerprint.size() < 40)
    return std::nullopt;
  keys::KeyStore store(app_.db, app_.config, *app_.clock);
  auto key = store.find(std::string(fingerprint));
  if (!key || key->fingerprint != fingerprint || key->type != type)
    return std::nullopt;
  auth::UserStore users(app_.db, *app_.clock);
  auto user = users.find_by_id(key->user_id);
  if (!user)
    return std::nullopt;
  const std::string wanted = util::ascii_lower(address);
  // The user's addresses as the admin set them, never the key's user ids.
  bool theirs = std::any_of(user->emails.begin(), user->emails.end(),
                            [&](const std::string& e) { return util::ascii_lower(e) == wanted; });
  if (!theirs)
    return std::nullopt;
  return Binding{Source::server, wanted, user->login};
}

std::optional<Binding> Chain::find(keys::KeyType type, std::string_view fingerprint,
                                   std::string_view address) const {
  for (const auto& source : sources_) {
    if (auto b = source->find(type, fingerprint, address))
      return b;
  }
  return std::nullopt;
}

Chain standard(app::App& app) {
  Chain chain;
  chain.add(std::make_unique<ServerUsers>(app));
  return chain;
}

}  // namespace wmk::bindings
