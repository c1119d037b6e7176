#pragma once
// Users: login name, display name, e-mail addresses (one primary) and the Argon2id
// hash of the login password. Deleting a user deletes everything that hangs off it
// (addresses, sessions, keys, grants, mail index) through the schema's cascades.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/kdf.h"
#include "core/store/db.h"
#include "core/util/clock.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::config {
struct Config;
}

namespace wmk::auth {

struct User {
  std::int64_t id = 0;
  std::string login;
  std::string name;
  std::string email;                // the primary address
  std::vector<std::string> emails;  // every address, the primary first
  bool disabled = false;
  std::int64_t created = 0;  // Unix seconds
};

enum class AccountState { enabled, disabled };

// A user's stored password hash, for the login check only.
struct Credential {
  User user;
  std::string password_hash;  // PHC string
};

// Ok if login matches [a-z0-9][a-z0-9._-]{0,63}; Errc::invalid_argument saying why.
// The first character is restricted because the login becomes a path element (%u in the
// maildir pattern) and a command-line word.
Status validate_login(std::string_view login);

// Ok for a plain LOCAL@DOMAIN address safe to use in a path and on a command line;
// Errc::invalid_argument saying why otherwise.
Status validate_email(std::string_view email);

// Ok if secret has at least min_length characters (UTF-8 code points); otherwise
// Errc::invalid_argument "the WHAT is too short: it has N characters, the minimum is M
// (config key CONFIG_KEY)". The one length rule for new passwords and passphrases.
Status check_min_length(const util::SecretBuffer& secret, std::uint32_t min_length,
                        std::string_view what, std::string_view config_key);

// Ok if password has at least cfg.password_min_length characters (UTF-8 code points);
// Errc::invalid_argument naming the minimum and the config key otherwise. Applies to
// new login passwords (user add, user passwd).
Status check_password_policy(const config::Config& cfg, const util::SecretBuffer& password);

// The same for a new key passphrase (key generate, import, passwd, and the passphrase
// of a secret-key export) and cfg.key_passphrase_min_length.
Status check_key_passphrase_policy(const config::Config& cfg, const util::SecretBuffer& passphrase);

// The Argon2id cost for login passwords from the config.
crypto::KdfParams password_params(const config::Config& cfg);

class UserStore {
 public:
  UserStore(store::Db& db, const util::Clock& clock) : db_(db), clock_(clock) {}

  // Creates a user with one (primary) address. Errc::invalid_argument for a bad
  // login, address or empty password; Errc::already_exists if the login or the
  // address is taken.
  Result<User> add(const std::string& login, const std::string& email, const std::string& name,
                   const util::SecretBuffer& password, const crypto::KdfParams& params);

  // The user, or nullopt if there is none by that key. Addresses match case-insensitively.
  std::optional<User> find(const std::string& login);
  std::optional<User> find_by_id(std::int64_t id);
  std::optional<User> find_by_email(const std::string& email);
  // Every user, ordered by login.
  std::vector<User> list();

  // The user and password hash for login, or nullopt if there is no such user.
  std::optional<Credential> credential(const std::string& login);

  // Replaces the password hash. Errc::not_found, Errc::invalid_argument (empty password).
  Status set_password(const std::string& login, const util::SecretBuffer& password,
                      const crypto::KdfParams& params);
  // Switches the account on or off. Errc::not_found.
  Status set_disabled(const std::string& login, AccountState state);
  // Deletes the user and, by cascade, its addresses, sessions, keys and grants.
  // Errc::not_found.
  Status remove(const std::string& login);
  // Adds a secondary address. Errc::not_found, Errc::invalid_argument,
  // Errc::already_exists (the address belongs to someone, maybe this user).
  Status add_email(const std::string& login, const std::string& email);

 private:
  std::optional<User> find_where(std::string_view where, const std::string& key);
  std::optional<User> find_where(std::string_view where, std::int64_t key);
  void load_emails(User& u);

  store::Db& db_;
  const util::Clock& clock_;
};

}  // namespace wmk::auth
