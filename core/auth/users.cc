#include "core/auth/users.h"

#include <algorithm>
#include <cctype>

#include "core/config/config.h"
#include "core/util/utf8.h"

namespace wmk::auth {

namespace {

constexpr std::size_t kMaxLogin = 64;
constexpr std::size_t kMaxLocalPart = 64;
constexpr std::size_t kMaxEmail = 254;
constexpr std::size_t kMaxName = 200;

bool is_login_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// The local-part characters we accept: the common subset of RFC 5322 atext, without
// '/' (the local part may become a path element through %n) and without quotes.
bool is_local_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+=?^_`{|}~.-").find(c) != std::string_view::npos;
}

bool is_domain_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
    return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
  });
}

// LOCAL@domain with the domain lowercased: domains are case-insensitive, local parts
// are left as given.
std::string normalize_email(std::string_view email) {
  std::string out(email);
  auto at = out.rfind('@');
  if (at != std::string::npos) {
    std::transform(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
                   out.begin() + static_cast<std::ptrdiff_t>(at),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return out;
}

Status validate_name(std::string_view name) {
  if (name.size() > kMaxName)
    return make_error(Errc::invalid_argument, "the name is longer than 200 bytes");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f)
      return make_error(Errc::invalid_argument, "the name contains a control character");
  }
  if (!util::valid_utf8(name))
    return make_error(Errc::invalid_argument, "the name is not valid UTF-8");
  return {};
}

Status validate_password(const util::SecretBuffer& password) {
  if (password.empty())
    return make_error(Errc::invalid_argument, "the password is empty");
  return {};
}

constexpr std::string_view kSelectUser =
    "SELECT id, login, name, disabled, created, password_hash FROM users ";

User read_user(const store::Statement& st) {
  User u;
  u.id = st.column_int(0);
  u.login = st.column_text(1);
  u.name = st.column_text(2);
  u.disabled = st.column_int(3) != 0;
  u.created = st.column_int(4);
  return u;
}

}  // namespace

Status validate_login(std::string_view login) {
  if (login.empty())
    return make_error(Errc::invalid_argument, "the login name is empty");
  if (login.size() > kMaxLogin)
    return make_error(Errc::invalid_argument, "the login name is longer than 64 characters");
  if (!std::all_of(login.begin(), login.end(), is_login_char)) {
    return make_error(Errc::invalid_argument,
                      "the login name '" + std::string(login) +
                          "' may only contain lowercase letters, digits, '.', '_' and '-'");
  }
  if (!((login[0] >= 'a' && login[0] <= 'z') || (login[0] >= '0' && login[0] <= '9'))) {
    return make_error(Errc::invalid_argument,
                      "the login name must start with a lowercase letter or a digit");
  }
  return {};
}

Status validate_email(std::string_view email) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_argument,
                      "the address '" + std::string(email) + "' is not valid: " + why);
  };
  if (email.size() > kMaxEmail)
    return bad("longer than 254 characters");
  auto at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos)
    return bad("it needs exactly one '@'");
  std::string_view local = email.substr(0, at);
  std::string_view domain = email.substr(at + 1);
  if (local.empty() || local.size() > kMaxLocalPart)
    return bad("the part before '@' must be 1 to 64 characters");
  if (!std::all_of(local.begin(), local.end(), is_local_char))
    return bad("the part before '@' contains a character that is not allowed");
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return bad("misplaced '.' before '@'");
  if (local.front() == '-')
    return bad("the address must not start with '-'");
  if (domain.empty())
    return bad("the domain is missing");
  std::size_t start = 0;
  while (true) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!is_domain_label(label))
      return bad("the domain must be labels of letters, digits and '-' separated by '.'");
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  return {};
}

Status check_min_length(const util::SecretBuffer& secret, std::uint32_t min_length,
                        std::string_view what, std::string_view config_key) {
  std::string_view bytes(reinterpret_cast<const char*>(secret.data()), secret.size());
  std::size_t chars = 0;
  for (std::size_t i = 0; i < bytes.size(); ++chars)
    i += util::next_code_point(bytes, i).second;
  if (chars < min_length) {
    return make_error(Errc::invalid_argument, "the " + std::string(what) +
                                                  " is too short: it has " + std::to_string(chars) +
                                                  " characters, the minimum is " +
                                                  std::to_string(min_length) + " (config key " +
                                                  std::string(config_key) + ")");
  }
  return {};
}

Status check_password_policy(const config::Config& cfg, const util::SecretBuffer& password) {
  return check_min_length(password, cfg.password_min_length, "password", "password_min_length");
}

Status check_key_passphrase_policy(const config::Config& cfg,
                                   const util::SecretBuffer& passphrase) {
  return check_min_length(passphrase, cfg.key_passphrase_min_length, "key passphrase",
                          "key_passphrase_min_length");
}

crypto::KdfParams password_params(const config::Config& cfg) {
  return crypto::KdfParams{cfg.password_memory_kib, cfg.password_iterations, 1};
}

Result<User> UserStore::add(const std::string& login, const std::string& email,
                            const std::string& name, const util::SecretBuffer& password,
                            const crypto::KdfParams& params) {
  WMK_TRY(validate_login(login));
  WMK_TRY(validate_email(email));
  WMK_TRY(validate_name(name));
  WMK_TRY(validate_password(password));
  const std::string address = normalize_email(email);
  // Hash outside the transaction: it is slow and needs no lock.
  const std::string hash = crypto::hash_password(password, params);

  store::Transaction tx(db_);
  auto ins = db_.prepare(
      "INSERT INTO users (login, name, password_hash, disabled, created) VALUES (?, ?, ?, 0, ?) "
      "RETURNING id");
  ins.bind_all(login, name, hash, clock_.now());
  if (auto r = ins.try_step(); !r) {
    if (r.code() == Errc::already_exists)
      return make_error(Errc::already_exists, "a user with login '" + login + "' already exists");
    return r.error();
  }
  const std::int64_t id = ins.column_int(0);
  ins.reset();
  auto em = db_.prepare("INSERT INTO user_emails (user_id, email, is_primary) VALUES (?, ?, 1)");
  em.bind_all(id, address);
  if (auto r = em.try_step(); !r) {
    if (r.code() == Errc::already_exists)
      return make_error(Errc::already_exists,
                        "the address " + address + " already belongs to a user");
    return r.error();
  }
  tx.commit();
  auto u = find_by_id(id);
  if (!u)
    return make_error(Errc::internal, "the new user vanished");
  return std::move(*u);
}

void UserStore::load_emails(User& u) {
  auto st = db_.prepare(
      "SELECT email, is_primary FROM user_emails WHERE user_id = ? "
      "ORDER BY is_primary DESC, email");
  st.bind(1, u.id);
  u.emails.clear();
  while (st.step()) {
    u.emails.push_back(st.column_text(0));
    if (st.column_int(1) != 0 && u.email.empty())
      u.email = u.emails.back();
  }
}

std::optional<User> UserStore::find_where(std::string_view where, const std::string& key) {
  auto st = db_.prepare(std::string(kSelectUser) + std::string(where));
  st.bind(1, key);
  if (!st.step())
    return std::nullopt;
  User u = read_user(st);
  load_emails(u);
  return u;
}

std::optional<User> UserStore::find_where(std::string_view where, std::int64_t key) {
  auto st = db_.prepare(std::string(kSelectUser) + std::string(where));
  st.bind(1, key);
  if (!st.step())
    return std::nullopt;
  User u = read_user(st);
  load_emails(u);
  return u;
}

std::optional<User> UserStore::find(const std::string& login) {
  return find_where("WHERE login = ?", login);
}

std::optional<User> UserStore::find_by_id(std::int64_t id) {
  return find_where("WHERE id = ?", id);
}

std::optional<User> UserStore::find_by_email(const std::string& email) {
  return find_where("WHERE id = (SELECT user_id FROM user_emails WHERE email = ?)",
                    normalize_email(email));
}

std::vector<User> UserStore::list() {
  std::vector<User> out;
  auto st = db_.prepare(std::string(kSelectUser) + "ORDER BY login");
  while (st.step())
    out.push_back(read_user(st));
  for (auto& u : out)
    load_emails(u);
  return out;
}

std::optional<Credential> UserStore::credential(const std::string& login) {
  auto st = db_.prepare(std::string(kSelectUser) + "WHERE login = ?");
  st.bind(1, login);
  if (!st.step())
    return std::nullopt;
  Credential c{read_user(st), st.column_text(5)};
  load_emails(c.user);
  return c;
}

Status UserStore::set_password(const std::string& login, const util::SecretBuffer& password,
                               const crypto::KdfParams& params) {
  WMK_TRY(validate_password(password));
  if (!find(login))
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  const std::string hash = crypto::hash_password(password, params);
  auto st = db_.prepare("UPDATE users SET password_hash = ? WHERE login = ?");
  st.bind_all(hash, login);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  return {};
}

Status UserStore::set_disabled(const std::string& login, AccountState state) {
  auto st = db_.prepare("UPDATE users SET disabled = ? WHERE login = ?");
  st.bind_all(state == AccountState::disabled ? 1 : 0, login);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  return {};
}

Status UserStore::remove(const std::string& login) {
  auto st = db_.prepare("DELETE FROM users WHERE login = ?");
  st.bind(1, login);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  return {};
}

Status UserStore::add_email(const std::string& login, const std::string& email) {
  WMK_TRY(validate_email(email));
  const std::string address = normalize_email(email);
  store::Transaction tx(db_);
  auto u = find(login);
  if (!u)
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  auto st = db_.prepare("INSERT INTO user_emails (user_id, email, is_primary) VALUES (?, ?, 0)");
  st.bind_all(u->id, address);
  if (auto r = st.try_step(); !r) {
    if (r.code() == Errc::already_exists)
      return make_error(Errc::already_exists,
                        "the address " + address + " already belongs to a user");
    return r.error();
  }
  tx.commit();
  return {};
}

}  // namespace wmk::auth
