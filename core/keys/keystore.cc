#include "core/keys/keystore.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/auth/users.h"
#include "core/crypto/aead.h"
#include "core/crypto/kdf.h"
#include "core/keys/gnupg_home.h"
#include "core/keys/home_cache.h"
#include "core/keys/openpgp.h"
#include "core/keys/openpgp_engine.h"
#include "core/keys/smime.h"
#include "core/keys/smime_engine.h"
#include "core/util/ascii.h"
#include "core/util/encoding.h"
#include "core/util/fs.h"
#include "core/util/timefmt.h"

namespace wmk::keys {

namespace {

constexpr const char* kKdfName = "argon2id";
constexpr std::size_t kKeySecretSize = 32;
constexpr std::size_t kSaltSize = 16;
constexpr std::int64_t kDefaultCertDays = 365;
constexpr std::int64_t kSecondsPerDay = 86400;
// A certificate issued moments ago on a machine whose clock runs a little ahead is
// still usable.
constexpr std::int64_t kNotBeforeSkew = 300;

// Associated data: a wrapped secret or key opens only in its own row.
std::string secret_ad(const std::string& fingerprint, KeyType type) {
  return std::string("webmailkey key secret v1|") + key_type_name(type) + "|" + fingerprint;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The user's addresses, lowercased, primary first.
struct UserRow {
  std::int64_t id = 0;
  std::string login;
  std::string name;
  std::vector<std::string> emails;
};

Result<UserRow> lookup_user(store::Db& db, const util::Clock& clock, const std::string& login) {
  auto u = auth::UserStore(db, clock).find(login);
  if (!u)
    return make_error(Errc::not_found, "no user " + login);
  UserRow row{u->id, u->login, u->name, {}};
  for (const auto& e : u->emails)
    row.emails.push_back(lower(e));
  return row;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : sep) + s;
  return out;
}

crypto::KdfParams kdf_params_of(const config::Config& c) {
  return crypto::KdfParams{c.kdf_memory_kib, c.kdf_iterations, c.kdf_parallelism};
}

// The addresses a key will serve: those of its own that are the user's, plus the
// one named explicitly (which must be the user's).
Result<std::vector<std::string>> choose_emails(const UserRow& user,
                                               const std::vector<std::string>& key_emails,
                                               const std::optional<std::string>& email) {
  std::vector<std::string> out;
  for (const auto& e : key_emails) {
    if (contains(user.emails, e) && !contains(out, e))
      out.push_back(e);
  }
  if (email) {
    auto e = lower(*email);
    if (!contains(user.emails, e)) {
      return make_error(Errc::invalid_argument, e + " is not an address of user " + user.login +
                                                    " (" + join(user.emails) + ")");
    }
    if (!contains(out, e))
      out.push_back(e);
  }
  if (out.empty()) {
    return make_error(Errc::invalid_argument,
                      "the key is for " + (key_emails.empty() ? "no address" : join(key_emails)) +
                          ", none of which is an address of user " + user.login + " (" +
                          join(user.emails) + "); name one with --email");
  }
  return out;
}

}  // namespace

KeyStore::KeyStore(store::Db& db, const config::Config& config, const util::Clock& clock,
                   Actor actor)
    : db_(db), config_(config), clock_(clock), actor_(std::move(actor)) {}
KeyStore::~KeyStore() = default;
KeyStore::KeyStore(KeyStore&&) noexcept = default;

namespace {

// Imports and generations hold this lock shared while a key is in the GnuPG home
// without its row; the orphan sweep holds it exclusive, so it never mistakes a key
// being imported for a leftover.
Result<util::Fd> lock_key_changes(const config::Config& cfg, int how) {
  WMK_TRY(util::ensure_private_dir(cfg.data_dir));
  const std::string path = cfg.data_dir + "/keys.lock";
  util::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid())
    return make_error(Errc::io, "cannot open " + path + ": " + std::strerror(errno));
  while (::flock(fd.get(), how) != 0) {
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK)
      return make_error(Errc::busy, "a key is being imported or generated right now");
    return make_error(Errc::io, "cannot lock " + path + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

Result<KeyStore::Orphans> KeyStore::remove_orphans(store::PurgeMode mode) {
  WMK_TRY(check_home());
  auto lock = lock_key_changes(config_, LOCK_EX | LOCK_NB);
  if (!lock)
    return lock.error();
  Orphans out;
  // No import runs (we hold the lock): every import scratch home is a leftover.
  const std::string scratch = config_.data_dir + "/tmp";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(scratch, ec)) {
    if (e.path().filename().string().rfind("import-", 0) != 0 || !e.is_directory())
      continue;
    if (mode == store::PurgeMode::remove) {
      (void)stop_agent(e.path().string());
      std::error_code rm;
      std::filesystem::remove_all(e.path(), rm);
    }
    ++out.scratch_homes;
  }
  auto in_home = pgp().secret_fingerprints();
  if (!in_home)
    return in_home.error();
  for (const auto& fpr : *in_home) {
    auto st = db_.prepare("SELECT 1 FROM keys WHERE fingerprint = ? AND type = 'openpgp'");
    st.bind(1, fpr);
    if (st.step())
      continue;
    st.reset();
    if (mode == store::PurgeMode::remove) {
      if (auto removed = pgp().remove(fpr); !removed.ok() && removed.code() != Errc::not_found)
        return removed.error();
      audit_raw("", kEventDelete, Status{}, fpr, "orphan in the GnuPG home (no database row)");
    }
    out.keys.push_back(fpr);
  }
  // Public keys no user and no contact holds (a contact import killed between gpg's
  // import and its row, or a contact delete between the two).
  auto all = pgp().all_fingerprints();
  if (!all)
    return all.error();
  for (const auto& fpr : *all) {
    if (std::find(in_home->begin(), in_home->end(), fpr) != in_home->end())
      continue;
    auto st = db_.prepare(
        "SELECT 1 FROM keys WHERE fingerprint = ? AND type = 'openpgp' UNION ALL "
        "SELECT 1 FROM contact_keys WHERE fingerprint = ? AND type = 'openpgp'");
    st.bind_all(fpr, fpr);
    if (st.step())
      continue;
    if (mode == store::PurgeMode::remove) {
      if (auto removed = pgp().remove(fpr); !removed.ok() && removed.code() != Errc::not_found)
        return removed.error();
    }
    out.public_keys.push_back(fpr);
  }
  return out;
}

Result<util::Fd> KeyStore::hold_key_changes() {
  return lock_key_changes(config_, LOCK_SH);
}

detail::OpenPgpEngine& KeyStore::openpgp() {
  if (!openpgp_)
    openpgp_ = std::make_unique<detail::OpenPgpEngine>(db_, config_);
  return *openpgp_;
}

detail::KeyEngine& KeyStore::engine(KeyType type) {
  if (type == KeyType::openpgp)
    return openpgp();
  if (!smime_)
    smime_ = std::make_unique<detail::SmimeEngine>(db_, clock_);
  return *smime_;
}

detail::OpenPgp& KeyStore::pgp() {
  return openpgp().pgp();
}

detail::HomeCache KeyStore::cache() {
  return openpgp().cache();
}

Status KeyStore::check_home() {
  return openpgp().check_home();
}

namespace {

constexpr const char* kKeyColumns =
    "SELECT k.id, k.fingerprint, k.type, k.user_id, u.login, k.algorithm, k.created, "
    "k.expires, k.revoked, k.kdf_params, k.certificate FROM keys k JOIN users u ON u.id = "
    "k.user_id ";

KeyInfo row_to_info(store::Db& db, store::Statement& st) {
  KeyInfo k;
  k.id = st.column_int(0);
  k.fingerprint = st.column_text(1);
  k.type = parse_key_type(st.column_text(2)).value_or(KeyType::openpgp);
  k.user_id = st.column_int(3);
  k.login = st.column_text(4);
  k.algorithm = st.column_text(5);
  k.created = st.column_int(6);
  k.expires = st.column_optional_int(7);
  k.revoked = st.column_int(8) != 0;
  k.kdf_params = st.column_text(9);
  if (k.type == KeyType::smime && !st.column_is_null(10)) {
    auto blob = st.column_blob(10);
    auto ci = detail::cert_info(
        std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()));
    if (ci) {
      k.subject = ci->subject;
      k.issuer = ci->issuer;
      k.serial = ci->serial;
      k.not_before = ci->not_before;
      k.not_after = ci->not_after;
    }
  }
  auto em = db.prepare("SELECT email, is_default FROM key_emails WHERE key_id = ? ORDER BY email");
  em.bind(1, k.id);
  while (em.step()) {
    k.emails.push_back(em.column_text(0));
    if (em.column_int(1) != 0)
      k.default_for.push_back(em.column_text(0));
  }
  return k;
}

}  // namespace

Result<KeyInfo> KeyStore::load(std::int64_t id) {
  auto st = db_.prepare(std::string(kKeyColumns) + "WHERE k.id = ?");
  st.bind(1, id);
  if (!st.step())
    return make_error(Errc::not_found, "no key with id " + std::to_string(id));
  return row_to_info(db_, st);
}

void KeyStore::audit_raw(std::string_view login, const char* event, const Status& outcome,
                         std::string_view fingerprint, std::string_view detail) {
  std::string text(detail);
  if (!outcome.ok()) {
    if (!text.empty())
      text += ": ";
    text += outcome.error().message;
  }
  record_key_event(db_, clock_, actor_, login, event, outcome.ok() ? "ok" : "fail", fingerprint,
                   text);
}

void KeyStore::audit(const KeyInfo& key, const char* event, const Status& outcome,
                     std::string_view detail) {
  audit_raw(key.login, event, outcome, key.fingerprint, detail);
}

Result<KeyInfo> KeyStore::store_new_key(
    std::int64_t user_id, const std::string& login, KeyType type, const std::string& fingerprint,
    const std::string& algorithm, std::int64_t created, std::optional<std::int64_t> expires,
    bool revoked, const std::vector<std::string>& emails, const util::SecretBuffer& key_secret,
    const util::SecretBuffer& passphrase, const std::vector<std::uint8_t>* private_blob,
    const std::string* certificate, const std::string* public_blob,
    const std::string* openpgp_secret) {
  (void)login;
  auto params = kdf_params_of(config_);
  auto salt = util::random_bytes(kSaltSize);
  auto kek = crypto::derive_key(passphrase, salt, params);
  auto wrapped = crypto::seal(kek, key_secret.bytes(), secret_ad(fingerprint, type));

  store::Transaction tx(db_);
  auto ins = db_.prepare(
      "INSERT INTO keys (fingerprint, user_id, type, algorithm, created, expires, revoked, kdf, "
      "kdf_params, kdf_salt, wrapped_secret, private_blob, certificate, public_blob, "
      "openpgp_secret, material_digest) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
  ins.bind_all(fingerprint, user_id, key_type_name(type), algorithm, created, expires,
               revoked ? 1 : 0, kKdfName, params.to_string(), salt, wrapped);
  if (private_blob != nullptr)
    ins.bind(12, *private_blob);
  else
    ins.bind(12, std::nullopt);
  auto as_blob = [](const std::string* s) {
    return std::vector<std::uint8_t>(s->begin(), s->end());
  };
  if (certificate != nullptr)
    ins.bind(13, as_blob(certificate));
  else
    ins.bind(13, std::nullopt);
  if (public_blob != nullptr)
    ins.bind(14, as_blob(public_blob));
  else
    ins.bind(14, std::nullopt);
  if (openpgp_secret != nullptr && public_blob != nullptr) {
    ins.bind(15, as_blob(openpgp_secret));
    ins.bind(16, detail::material_digest(*openpgp_secret, *public_blob));
  } else {
    ins.bind(15, std::nullopt);
    ins.bind(16, std::nullopt);
  }
  auto r = ins.try_step();
  if (!r) {
    if (r.code() == Errc::already_exists)
      return make_error(Errc::already_exists, "key " + fingerprint + " is already held here");
    return r.error();
  }
  std::int64_t id = ins.column_int(0);
  ins.reset();
  for (const auto& e : emails) {
    // The first key of its type for an address becomes that address's default.
    auto has_default =
        db_.prepare("SELECT 1 FROM key_emails WHERE email = ? AND type = ? AND is_default = 1");
    has_default.bind_all(e, key_type_name(type));
    bool make_default = !has_default.step();
    db_.prepare("INSERT INTO key_emails (key_id, email, type, is_default) VALUES (?, ?, ?, ?)")
        .bind_all(id, e, key_type_name(type), make_default ? 1 : 0)
        .run();
  }
  tx.commit();
  return load(id);
}

Result<Generated> KeyStore::generate(const std::string& login, const GenerateOptions& options,
                                     const util::SecretBuffer& passphrase) {
  auto fail = [&](const Error& e) -> Error {
    audit_raw(login, kEventGenerate, e, "", key_type_name(options.type));
    return e;
  };
  if (auto st = auth::check_key_passphrase_policy(config_, passphrase); !st.ok())
    return fail(st.error());
  auto user = lookup_user(db_, clock_, login);
  if (!user)
    return fail(user.error());
  if (user->emails.empty())
    return fail(make_error(Errc::invalid_argument, "user " + login + " has no address"));
  std::string email = options.email ? lower(*options.email) : user->emails.front();
  if (!contains(user->emails, email)) {
    return fail(make_error(Errc::invalid_argument, email + " is not an address of user " + login +
                                                       " (" + join(user->emails) + ")"));
  }
  if (options.valid_days && *options.valid_days < 0)
    return fail(make_error(Errc::invalid_argument, "the validity must not be negative"));
  auto key_secret = util::SecretBuffer::random(kKeySecretSize);
  Generated out;

  if (options.type == KeyType::openpgp) {
    detail::PgpAlgorithm algo;
    if (options.algorithm.empty() || options.algorithm == "ed25519") {
      algo = detail::PgpAlgorithm::ed25519;
    } else if (options.algorithm == "rsa3072") {
      algo = detail::PgpAlgorithm::rsa3072;
    } else {
      return fail(make_error(
          Errc::invalid_argument,
          "unknown OpenPGP algorithm \"" + options.algorithm + "\" (ed25519 or rsa3072)"));
    }
    if (auto h = check_home(); !h.ok())
      return fail(h.error());
    std::string uid = user->name.empty() ? email : user->name + " <" + email + ">";
    std::optional<std::int64_t> expires_in;
    if (options.valid_days && *options.valid_days > 0)
      expires_in = *options.valid_days * kSecondsPerDay;
    auto key_lock = lock_key_changes(config_, LOCK_SH);
    if (!key_lock)
      return fail(key_lock.error());
    auto& pgp = this->pgp();
    auto meta = pgp.generate(uid, algo, expires_in, key_secret);
    if (!meta)
      return fail(meta.error());
    auto pub = pgp.export_public(meta->fingerprint);
    auto material = cache().read_from_home(meta->fingerprint);
    Result<KeyInfo> key =
        !pub ? Result<KeyInfo>(pub.error())
        : !material
            ? Result<KeyInfo>(material.error())
            : store_new_key(user->id, login, KeyType::openpgp, meta->fingerprint, meta->algorithm,
                            meta->created, meta->expires, meta->revoked, {email}, key_secret,
                            passphrase, nullptr, nullptr, &*pub, &*material);
    if (!key) {
      (void)pgp.remove(meta->fingerprint);
      return fail(key.error());
    }
    out.key = std::move(key).value();
  } else {
    detail::SmimeAlgorithm algo;
    if (options.algorithm.empty() || options.algorithm == "rsa3072") {
      algo = detail::SmimeAlgorithm::rsa3072;
    } else if (options.algorithm == "p256") {
      algo = detail::SmimeAlgorithm::ec_p256;
    } else {
      return fail(
          make_error(Errc::invalid_argument,
                     "unknown S/MIME algorithm \"" + options.algorithm + "\" (rsa3072 or p256)"));
    }
    std::int64_t days = options.valid_days.value_or(kDefaultCertDays);
    if (days < 1)
      return fail(
          make_error(Errc::invalid_argument, "a certificate must be valid for a day or more"));
    auto m = detail::generate(user->name, email, algo, clock_.now(), days,
                              options.want_csr ? detail::WithCsr::yes : detail::WithCsr::no);
    if (!m)
      return fail(m.error());
    auto blob =
        crypto::seal(key_secret, m->pkcs8_der.bytes(), detail::smime_blob_ad(m->cert.fingerprint));
    auto key = store_new_key(user->id, login, KeyType::smime, m->cert.fingerprint,
                             m->cert.algorithm, m->cert.not_before, m->cert.not_after, false,
                             {email}, key_secret, passphrase, &blob, &m->chain_pem, nullptr);
    if (!key)
      return fail(key.error());
    out.key = std::move(key).value();
    out.csr_pem = m->csr_pem;
  }
  audit(out.key, kEventGenerate, Status{}, out.key.algorithm);
  return out;
}

Result<KeyInfo> KeyStore::import_openpgp(const std::string& login, std::string_view key_data,
                                         const util::SecretBuffer& file_passphrase,
                                         const util::SecretBuffer& passphrase,
                                         const std::optional<std::string>& email) {
  std::string fpr;
  auto fail = [&](const Error& e) -> Error {
    audit_raw(login, kEventImport, e, fpr, "openpgp");
    return e;
  };
  if (key_data.empty())
    return fail(make_error(Errc::invalid_argument, "the key file is empty"));
  if (auto st = auth::check_key_passphrase_policy(config_, passphrase); !st.ok())
    return fail(st.error());
  auto user = lookup_user(db_, clock_, login);
  if (!user)
    return fail(user.error());
  if (auto h = check_home(); !h.ok())
    return fail(h.error());
  auto key_lock = lock_key_changes(config_, LOCK_SH);
  if (!key_lock)
    return fail(key_lock.error());
  // A cut-off file must be reported as such, not by whatever gpg made of its first half.
  if (key_data.find("-----BEGIN PGP") != std::string_view::npos &&
      key_data.find("-----END PGP") == std::string_view::npos) {
    return fail(
        make_error(Errc::corrupt, "the key file is truncated: its ASCII armor has no END line"));
  }
  auto& pgp = this->pgp();
  auto listed = pgp.inspect(key_data);
  if (!listed)
    return fail(listed.error());
  if (listed->size() == 1 && listed->front().user_ids.empty()) {
    return fail(make_error(Errc::corrupt,
                           "the key file is damaged or truncated: the key in it "
                           "has no user id (an OpenPGP key always has one)"));
  }
  if (listed->size() != 1) {
    return fail(make_error(Errc::invalid_argument, "the file holds " +
                                                       std::to_string(listed->size()) +
                                                       " OpenPGP keys; import one at a time"));
  }
  fpr = listed->front().fingerprint;
  auto emails = choose_emails(*user, listed->front().emails, email);
  if (!emails)
    return fail(emails.error());
  auto held = db_.prepare("SELECT 1 FROM keys WHERE fingerprint = ?");
  held.bind(1, fpr);
  bool already = held.step();
  held.reset();  // the read ends before fail() writes the audit row
  if (already)
    return fail(make_error(Errc::already_exists, "key " + fpr + " is already held here"));
  // A key in the GnuPG home without a database row is a leftover of an interrupted
  // operation; its key secret is lost, so it is unusable: clear it first.
  if (pgp.find(fpr).ok())
    (void)pgp.remove(fpr);
  auto key_secret = util::SecretBuffer::random(kKeySecretSize);
  auto meta = pgp.import_secret(key_data, file_passphrase, key_secret);
  if (!meta)
    return fail(meta.error());
  auto pub = pgp.export_public(fpr);
  auto material = cache().read_from_home(fpr);
  Result<KeyInfo> key =
      !pub        ? Result<KeyInfo>(pub.error())
      : !material ? Result<KeyInfo>(material.error())
                  : store_new_key(user->id, login, KeyType::openpgp, fpr, meta->algorithm,
                                  meta->created, meta->expires, meta->revoked, *emails, key_secret,
                                  passphrase, nullptr, nullptr, &*pub, &*material);
  if (!key) {
    (void)pgp.remove(fpr);
    return fail(key.error());
  }
  audit(*key, kEventImport, Status{}, "openpgp " + key->algorithm);
  return key;
}

Result<KeyInfo> KeyStore::import_smime(const std::string& login, std::string_view key_data,
                                       const util::SecretBuffer& file_passphrase,
                                       const util::SecretBuffer& passphrase,
                                       const std::optional<std::string>& email) {
  std::string fpr;
  auto fail = [&](const Error& e) -> Error {
    audit_raw(login, kEventImport, e, fpr, "smime");
    return e;
  };
  if (key_data.empty())
    return fail(make_error(Errc::invalid_argument, "the key file is empty"));
  if (auto st = auth::check_key_passphrase_policy(config_, passphrase); !st.ok())
    return fail(st.error());
  auto user = lookup_user(db_, clock_, login);
  if (!user)
    return fail(user.error());
  auto m = detail::looks_like_pem(key_data) ? detail::parse_pem(key_data, file_passphrase)
                                            : detail::parse_pkcs12(key_data, file_passphrase);
  if (!m)
    return fail(m.error());
  fpr = m->cert.fingerprint;
  auto emails = choose_emails(*user, m->cert.emails, email);
  if (!emails)
    return fail(emails.error());
  auto key_secret = util::SecretBuffer::random(kKeySecretSize);
  auto blob = crypto::seal(key_secret, m->pkcs8_der.bytes(), detail::smime_blob_ad(fpr));
  auto key = store_new_key(user->id, login, KeyType::smime, fpr, m->cert.algorithm,
                           m->cert.not_before, m->cert.not_after, false, *emails, key_secret,
                           passphrase, &blob, &m->chain_pem, nullptr);
  if (!key)
    return fail(key.error());
  audit(*key, kEventImport, Status{}, "smime " + key->algorithm);
  return key;
}

Result<std::vector<KeyInfo>> KeyStore::list(const std::optional<std::string>& login) {
  std::vector<KeyInfo> out;
  std::string sql = kKeyColumns;
  std::int64_t user_id = 0;
  if (login) {
    auto user = lookup_user(db_, clock_, *login);
    if (!user)
      return user.error();
    user_id = user->id;
    sql += "WHERE k.user_id = ? ";
  }
  sql += "ORDER BY u.login, k.type, k.created, k.id";
  auto st = db_.prepare(sql);
  if (login)
    st.bind(1, user_id);
  while (st.step())
    out.push_back(row_to_info(db_, st));
  return out;
}

Result<KeyInfo> KeyStore::find(const std::string& fingerprint_or_prefix) {
  auto normalized = normalize_fingerprint_prefix(fingerprint_or_prefix);
  if (!normalized)
    return normalized.error();
  const std::string& want = *normalized;
  auto st = db_.prepare(std::string(kKeyColumns) +
                        "WHERE substr(k.fingerprint, 1, length(?1)) = ?1 ORDER BY k.fingerprint");
  st.bind(1, want);
  std::vector<KeyInfo> hits;
  while (st.step())
    hits.push_back(row_to_info(db_, st));
  if (hits.empty())
    return make_error(Errc::not_found, "no key " + want);
  for (auto& k : hits) {
    if (k.fingerprint == want)
      return std::move(k);
  }
  if (hits.size() > 1) {
    std::string names;
    for (const auto& k : hits)
      names += "\n  " + k.fingerprint + " (" + key_type_name(k.type) + ", " + k.login + ")";
    return make_error(Errc::invalid_argument, "the prefix " + want + " matches " +
                                                  std::to_string(hits.size()) +
                                                  " keys; give more digits:" + names);
  }
  return std::move(hits.front());
}

Result<KeyInfo> KeyStore::find_by_id(std::int64_t id) {
  return load(id);
}

Result<KeyInfo> KeyStore::find_default(const std::string& email, KeyType type) {
  auto st =
      db_.prepare("SELECT key_id FROM key_emails WHERE email = ? AND type = ? AND is_default = 1");
  st.bind_all(lower(email), key_type_name(type));
  if (!st.step()) {
    return make_error(Errc::not_found,
                      std::string("no default ") + key_type_name(type) + " key for " + email);
  }
  return load(st.column_int(0));
}

Result<std::string> KeyStore::export_public(const KeyInfo& key) {
  auto st = db_.prepare("SELECT public_blob, certificate FROM keys WHERE id = ?");
  st.bind(1, key.id);
  if (!st.step())
    return make_error(Errc::not_found, "key " + key.fingerprint + " is gone");
  int col = key.type == KeyType::openpgp ? 0 : 1;
  if (st.column_is_null(col))
    return make_error(Errc::corrupt, "key " + key.fingerprint + " has no public part stored");
  auto blob = st.column_blob(col);
  st.reset();  // the read ends before the audit row is written
  audit(key, kEventExport, Status{}, "public");
  return std::string(blob.begin(), blob.end());
}

Result<std::string> KeyStore::export_autocrypt(const KeyInfo& key, const std::string& address) {
  if (key.type != KeyType::openpgp)
    return make_error(Errc::invalid_argument, "Autocrypt carries OpenPGP keys only");
  std::string a = util::ascii_lower(address);
  if (std::find(key.emails.begin(), key.emails.end(), a) == key.emails.end())
    return make_error(Errc::invalid_argument,
                      "the key " + key.fingerprint + " does not serve " + a);
  if (key.revoked)
    return make_error(Errc::revoked, "the key " + key.fingerprint + " is revoked");
  if (key.expires && *key.expires <= clock_.now())
    return make_error(Errc::expired, "the key " + key.fingerprint + " has expired");
  auto st = db_.prepare("SELECT public_blob FROM keys WHERE id = ?");
  st.bind(1, key.id);
  if (!st.step() || st.column_is_null(0))
    return make_error(Errc::not_found, "key " + key.fingerprint + " has no public part stored");
  auto blob = st.column_blob(0);
  st.reset();
  WMK_TRY(check_home());
  WMK_TRY(ensure_in_home(key));
  return pgp().autocrypt_key(
      key.fingerprint, std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()),
      a);
}

Result<std::string> KeyStore::export_secret(const KeyInfo& key,
                                            const util::SecretBuffer& passphrase,
                                            const util::SecretBuffer& export_passphrase) {
  auto fail = [&](const Error& e) -> Error {
    audit(key, kEventExport, e, "secret");
    return e;
  };
  if (auto st = auth::check_min_length(export_passphrase, config_.key_passphrase_min_length,
                                       "export passphrase", "key_passphrase_min_length");
      !st.ok())
    return fail(st.error());
  auto unlocked = unlock(key, passphrase);
  if (!unlocked)
    return fail(unlocked.error());
  auto out = engine(key.type).export_secret(key, unlocked->key_secret(), export_passphrase);
  if (!out)
    return fail(out.error());
  audit(key, kEventExport, Status{}, "secret");
  return out;
}

Status KeyStore::change_passphrase(const KeyInfo& key, const util::SecretBuffer& old_passphrase,
                                   const util::SecretBuffer& new_passphrase) {
  auto fail = [&](const Error& e) -> Error {
    audit(key, kEventPasswd, e);
    return e;
  };
  if (auto st = auth::check_key_passphrase_policy(config_, new_passphrase); !st.ok())
    return fail(st.error());
  auto st = db_.prepare("SELECT wrapped_secret FROM keys WHERE id = ? AND fingerprint = ?");
  st.bind_all(key.id, key.fingerprint);
  if (!st.step())
    return fail(make_error(Errc::not_found, "key " + key.fingerprint + " is gone"));
  auto old_wrapped = st.column_blob(0);
  st.reset();
  // Check the old passphrase without the expiry rule: an expired key may still get a
  // new passphrase.
  auto prot_st = db_.prepare("SELECT kdf_params, kdf_salt FROM keys WHERE id = ?");
  prot_st.bind(1, key.id);
  prot_st.step();
  auto params = crypto::KdfParams::parse(prot_st.column_text(0));
  const auto old_salt = prot_st.column_blob(1);
  prot_st.reset();
  if (!params)
    return fail(
        make_error(Errc::corrupt, "key " + key.fingerprint + " has damaged KDF parameters"));
  auto old_kek = crypto::derive_key(old_passphrase, old_salt, *params);
  auto key_secret = crypto::open(old_kek, old_wrapped, secret_ad(key.fingerprint, key.type));
  if (!key_secret) {
    return fail(make_error(Errc::wrong_passphrase, "wrong passphrase for key " + key.fingerprint));
  }
  auto new_params = kdf_params_of(config_);
  auto salt = util::random_bytes(kSaltSize);
  auto kek = crypto::derive_key(new_passphrase, salt, new_params);
  auto wrapped = crypto::seal(kek, key_secret->bytes(), secret_ad(key.fingerprint, key.type));
  // One statement: SQLite makes it atomic and durable. The compare on the old blob
  // refuses to overwrite a concurrent change.
  auto up = db_.prepare(
      "UPDATE keys SET kdf = ?, kdf_params = ?, kdf_salt = ?, wrapped_secret = ? "
      "WHERE id = ? AND wrapped_secret = ?");
  up.bind_all(kKdfName, new_params.to_string(), salt, wrapped, key.id, old_wrapped);
  auto r = up.try_step();
  if (!r)
    return fail(r.error());
  if (db_.changes() != 1) {
    return fail(make_error(Errc::conflict, "the passphrase of key " + key.fingerprint +
                                               " changed meanwhile; nothing was written"));
  }
  audit(key, kEventPasswd, Status{});
  return {};
}

Status KeyStore::remove(const KeyInfo& key) {
  auto fail = [&](const Error& e) -> Error {
    audit(key, kEventDelete, e);
    return e;
  };
  store::Transaction tx(db_);
  // Hand the default role for each address to the newest other key of the type.
  auto defaults = db_.prepare("SELECT email FROM key_emails WHERE key_id = ? AND is_default = 1");
  defaults.bind(1, key.id);
  std::vector<std::string> emails;
  while (defaults.step())
    emails.push_back(defaults.column_text(0));
  auto del = db_.prepare("DELETE FROM keys WHERE id = ? AND fingerprint = ?");
  del.bind_all(key.id, key.fingerprint);
  del.run();
  if (db_.changes() != 1)
    return fail(make_error(Errc::not_found, "key " + key.fingerprint + " is gone"));
  for (const auto& e : emails) {
    db_.prepare(
           "UPDATE key_emails SET is_default = 1 WHERE email = ?1 AND type = ?2 AND key_id = "
           "(SELECT ke.key_id FROM key_emails ke JOIN keys k ON k.id = ke.key_id WHERE ke.email "
           "= ?1 AND ke.type = ?2 ORDER BY k.created DESC, k.id DESC LIMIT 1)")
        .bind_all(e, key_type_name(key.type))
        .run();
  }
  // Inside the transaction: if the engine fails, the row stays and nothing changed.
  if (auto gone = engine(key.type).erase(key); !gone.ok())
    return fail(gone.error());
  tx.commit();
  audit(key, kEventDelete, Status{});
  return {};
}

Result<std::vector<PublicKey>> KeyStore::read_public(KeyType type, std::string_view data) {
  return engine(type).read_public(data);
}

Result<std::vector<PublicKey>> KeyStore::import_public(KeyType type, std::string_view data) {
  return engine(type).import_public(data);
}

Result<PublicKey> KeyStore::public_openpgp(const std::string& fingerprint) {
  WMK_TRY(check_home());
  auto m = pgp().find(fingerprint);
  if (!m)
    return m.error();
  PublicKey k = detail::public_of(*m);
  auto armored = pgp().export_public(m->fingerprint);
  if (!armored)
    return armored.error();
  k.data = std::move(armored).value();
  return k;
}

Status KeyStore::remove_public_openpgp(const std::string& fingerprint) {
  auto st = db_.prepare("SELECT 1 FROM keys WHERE fingerprint = ?");
  st.bind(1, fingerprint);
  if (st.step())
    return {};
  WMK_TRY(check_home());
  auto m = pgp().find(fingerprint);
  if (!m)
    return m.code() == Errc::not_found ? Status{} : Status{m.error()};
  if (m->has_secret)
    return {};
  Status gone = pgp().remove(fingerprint);
  if (!gone.ok() && gone.code() != Errc::not_found)
    return gone;
  return {};
}

Status KeyStore::ensure_in_home(const KeyInfo& key) {
  return engine(key.type).prepare(key);
}

Status KeyStore::cache_public_openpgp(std::string_view armored) {
  WMK_TRY(check_home());
  return cache().ensure_public(armored);
}

Result<KeyStore::MaterialFill> KeyStore::fill_key_material(store::PurgeMode mode) {
  WMK_TRY(check_home());
  auto filled = cache().fill_missing(mode == store::PurgeMode::remove);
  if (!filled)
    return filled.error();
  return MaterialFill{std::move(filled->filled), std::move(filled->missing)};
}

Status KeyStore::usable_for(const KeyInfo& key, KeyUse use) {
  if (key.revoked)
    return make_error(Errc::revoked, "key " + key.fingerprint + " is revoked");
  std::int64_t now = clock_.now();
  if (key.type == KeyType::smime && key.not_before > now + kNotBeforeSkew)
    return make_error(Errc::expired,
                      "the certificate of key " + key.fingerprint + " is not valid yet");
  // Past its expiry a key still opens the mail that was sent to it (old mail must stay
  // readable), but it no longer vouches for anything new: no signature.
  if (use == KeyUse::sign && key_expired(key, now)) {
    const bool smime = key.type == KeyType::smime;
    return make_error(
        Errc::expired,
        std::string("your ") + (smime ? "S/MIME certificate" : "OpenPGP key") + " " +
            key.fingerprint + " expired on " + util::format_utc(*key.expires) +
            ": it still decrypts your mail, but it can no longer sign. Send without a "
            "signature, or ask your administrator for a new " +
            (smime ? "certificate" : "key"));
  }
  return {};
}

Result<UnlockedKey> KeyStore::unlock(const KeyInfo& key_in, const util::SecretBuffer& passphrase) {
  auto fresh = load(key_in.id);
  if (!fresh || fresh->fingerprint != key_in.fingerprint) {
    engine(key_in.type).forget(key_in.fingerprint);
    Error e = make_error(Errc::not_found, "key " + key_in.fingerprint + " is gone");
    audit(key_in, kEventUnlock, e);
    return e;
  }
  const KeyInfo& key = *fresh;
  auto fail = [&](const Error& e) -> Error {
    audit(key, kEventUnlock, e);
    return e;
  };
  if (auto st = usable_for(key, KeyUse::decrypt); !st.ok())
    return fail(st.error());
  // Before the KDF: a key whose material this node cannot have is refused at once, and
  // a key made before the store held its material has it filled here, on its node.
  if (auto c = engine(key.type).prepare(key); !c.ok())
    return fail(c.error());
  auto st = db_.prepare("SELECT kdf, kdf_params, kdf_salt, wrapped_secret FROM keys WHERE id = ?");
  st.bind(1, key.id);
  if (!st.step())
    return fail(make_error(Errc::not_found, "key " + key.fingerprint + " is gone"));
  if (st.column_text(0) != kKdfName)
    return fail(make_error(Errc::unsupported, "key " + key.fingerprint + " uses an unknown KDF"));
  auto params = crypto::KdfParams::parse(st.column_text(1));
  const auto salt = st.column_blob(2);
  const auto wrapped = st.column_blob(3);
  // An open statement keeps a read transaction, and a read transaction held through
  // the KDF makes the audit write below fail with SQLITE_BUSY (stale WAL snapshot)
  // whenever another connection wrote meanwhile, e.g. a racing unlock's grant.
  st.reset();
  if (!params)
    return fail(
        make_error(Errc::corrupt, "key " + key.fingerprint + " has damaged KDF parameters"));
  auto kek = crypto::derive_key(passphrase, salt, *params);
  auto secret = crypto::open(kek, wrapped, secret_ad(key.fingerprint, key.type));
  if (!secret) {
    if (secret.code() == Errc::corrupt)
      return fail(make_error(Errc::corrupt,
                             "the wrapped secret of key " + key.fingerprint + " is damaged"));
    return fail(make_error(Errc::wrong_passphrase, "wrong passphrase for key " + key.fingerprint));
  }
  if (secret->size() != kKeySecretSize)
    return fail(make_error(Errc::corrupt, "the key secret of " + key.fingerprint + " is damaged"));
  audit(key, kEventUnlock, Status{});
  return UnlockedKey(key, std::move(secret).value());
}

Result<UnlockedKey> KeyStore::from_key_secret(const KeyInfo& key_in,
                                              util::SecretBuffer key_secret) {
  auto fresh = load(key_in.id);
  if (!fresh || fresh->fingerprint != key_in.fingerprint) {
    // Deleted on another node: this node's copy goes too.
    engine(key_in.type).forget(key_in.fingerprint);
    return make_error(Errc::not_found, "key " + key_in.fingerprint + " is gone");
  }
  WMK_TRY(usable_for(*fresh, KeyUse::decrypt));
  if (key_secret.size() != kKeySecretSize)
    return make_error(Errc::crypto, "a key secret is " + std::to_string(kKeySecretSize) + " bytes");
  WMK_TRY(engine(fresh->type).check_key_secret(*fresh, key_secret));
  return UnlockedKey(std::move(fresh).value(), std::move(key_secret));
}

Result<DecryptResult> KeyStore::decrypt(const UnlockedKey& key, std::string_view ciphertext) {
  const KeyInfo& info = key.info();
  auto fail = [&](const Error& e) -> Error {
    audit(info, kEventDecrypt, e);
    return e;
  };
  if (auto st = usable_for(info, KeyUse::decrypt); !st.ok())
    return fail(st.error());
  auto out = engine(info.type).decrypt(info, key.key_secret(), ciphertext);
  if (!out)
    return fail(out.error());
  out->key_expired = key_expired(info, clock_.now());
  audit(info, kEventDecrypt, Status{}, out->cipher);
  return out;
}

Result<SignResult> KeyStore::sign(const UnlockedKey& key, std::string_view data) {
  const KeyInfo& info = key.info();
  auto fail = [&](const Error& e) -> Error {
    audit(info, kEventSign, e);
    return e;
  };
  if (auto st = usable_for(info, KeyUse::sign); !st.ok())
    return fail(st.error());
  auto out = engine(info.type).sign(info, key.key_secret(), data);
  if (!out)
    return fail(out.error());
  audit(info, kEventSign, Status{}, out->micalg);
  return out;
}

Result<VerifyResult> KeyStore::verify(KeyType type, std::string_view signed_data,
                                      std::string_view signature) {
  return engine(type).verify(signed_data, signature);
}

Result<std::string> KeyStore::encrypt(KeyType type, const std::vector<std::string>& recipient_keys,
                                      std::string_view plaintext, SmimeCipher cipher) {
  return engine(type).encrypt(recipient_keys, plaintext, cipher);
}

}  // namespace wmk::keys
