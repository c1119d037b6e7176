#pragma once
// Which addresses the server has verified for a signing key (docs/security.md, "What
// 'valid signature' means"). A signature is "by the sender" only when a binding
// source says that the From address belongs to the holder of the signing key; the
// user ids or certificate addresses that a key's owner chose to put on the key are
// never enough (anyone can add `Boss <boss@example.org>` to a key of their own).
//
// One interface, one class per source. Today's only source is `server`: a key held
// here for a user of this server binds exactly that user's addresses. Other sources
// (a Web Key Directory, a CA, the user's own contacts, Autocrypt) are further
// classes behind the same interface, asked in order by a Chain.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/app/app.h"
#include "core/keys/types.h"

namespace wmk::bindings {

// Where a binding of an address to a key comes from.
enum class Source {
  server,     // the key is held here for a user of this server, and the address is theirs
  wkd,        // fetched by WKD for exactly that address (core/contacts)
  ca,         // an S/MIME certificate that chains to the trust store and names the address
  user,       // the user accepted the key for the address
  autocrypt,  // seen in an Autocrypt header of mail from the address
};

// "server" (stable; for templates, JSON, logs).
const char* source_name(Source source);
// "a user of this server": how the page names the source in a verdict.
const char* source_words(Source source);
// The Source that source_name() spells so; nullopt for anything else.
std::optional<Source> parse_source(std::string_view name);

// An address verified for a key, and by what.
struct Binding {
  Source source = Source::server;
  std::string address;  // lower case
  std::string holder;   // who the source says holds the key (server: the login)
};

class Lookup {
 public:
  virtual ~Lookup() = default;
  // The binding of address to the key with this fingerprint (uppercase hex: the
  // OpenPGP primary key, or the S/MIME certificate's SHA-256) and type, or nullopt
  // if this source knows none. Never fails: a source that cannot answer knows none.
  virtual std::optional<Binding> find(keys::KeyType type, std::string_view fingerprint,
                                      std::string_view address) const = 0;
};

// Source::server: the keys table (through KeyStore) and the users' addresses.
class ServerUsers final : public Lookup {
 public:
  explicit ServerUsers(app::App& app) : app_(app) {}
  std::optional<Binding> find(keys::KeyType type, std::string_view fingerprint,
                              std::string_view address) const override;

 private:
  app::App& app_;
};

// Asks each source in order; the first binding found wins.
class Chain final : public Lookup {
 public:
  void add(std::unique_ptr<Lookup> source) { sources_.push_back(std::move(source)); }
  std::optional<Binding> find(keys::KeyType type, std::string_view fingerprint,
                              std::string_view address) const override;

 private:
  std::vector<std::unique_ptr<Lookup>> sources_;
};

// Knows no binding at all (tests, or a reader that must not claim any sender).
class None final : public Lookup {
 public:
  std::optional<Binding> find(keys::KeyType, std::string_view, std::string_view) const override {
    return std::nullopt;
  }
};

// Every source this server uses that needs no user: ServerUsers. The chain for
// reading one user's mail, which adds that user's directory of correspondents' keys,
// is contacts::standard_bindings (core/contacts sits above this module).
Chain standard(app::App& app);

}  // namespace wmk::bindings
