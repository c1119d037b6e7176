#include "core/store/schema.h"

#include <string>
#include <vector>

#include "core/store/engine.h"

namespace wmk::store {

namespace {

// sql is the portable SQL both engines run (core/store/db.h); the engine-specific
// parts are for what has no portable spelling, such as triggers.
struct Migration {
  int version;
  const char* sql;
  const char* sqlite_sql = nullptr;
  const char* postgresql_sql = nullptr;
};

// Append only once released. Each block names the concern that owns its tables.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, R"sql(
-- auth: users and their addresses
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  login         TEXT NOT NULL UNIQUE,
  name          TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,          -- PHC string: $argon2id$v=19$m=..,t=..,p=..$salt$hash
  disabled      INTEGER NOT NULL DEFAULT 0,
  created       INTEGER NOT NULL
);
CREATE TABLE user_emails (
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  email      TEXT NOT NULL UNIQUE COLLATE NOCASE,
  is_primary INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX user_emails_user ON user_emails(user_id);

-- auth: online-guessing throttle; scope is 'login:NAME', 'addr:IP' or 'key:FPR'
CREATE TABLE auth_failures (
  scope        TEXT PRIMARY KEY,
  failures     INTEGER NOT NULL,
  last_failure INTEGER NOT NULL,
  locked_until INTEGER NOT NULL DEFAULT 0
);

-- session: only the SHA-256 of the cookie token is stored
CREATE TABLE sessions (
  id          TEXT PRIMARY KEY,          -- hex SHA-256 of the session token
  short_id    TEXT NOT NULL UNIQUE,      -- what `session list` shows and `kill` takes
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token  TEXT NOT NULL,
  created     INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  client_addr TEXT NOT NULL DEFAULT '',
  user_agent  TEXT NOT NULL DEFAULT '',
  notice      TEXT                       -- told to the session at its next request
);
CREATE INDEX sessions_user ON sessions(user_id);

-- audit: append-only event log
CREATE TABLE audit (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  login       TEXT NOT NULL DEFAULT '',
  event       TEXT NOT NULL,             -- login, logout, unlock, decrypt, sign, revoke, ...
  outcome     TEXT NOT NULL,             -- ok, fail, denied, expired, ...
  key_fpr     TEXT NOT NULL DEFAULT '',
  session     TEXT NOT NULL DEFAULT '',  -- short session id
  client_addr TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_login_at ON audit(login, at);
CREATE INDEX audit_key_at ON audit(key_fpr, at);

-- mail: header index of each user's Maildir folders; the Maildir stays the truth
CREATE TABLE mail_index (
  user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  folder    TEXT NOT NULL,               -- INBOX, Sent, Drafts
  uid       TEXT NOT NULL,               -- Maildir unique name (before the ':2,' info)
  subdir    TEXT NOT NULL,               -- 'new' or 'cur'
  filename  TEXT NOT NULL,               -- full file name including flags
  date      INTEGER NOT NULL,            -- Date header (Unix s), else the file's mtime
  from_name TEXT NOT NULL DEFAULT '',
  from_addr TEXT NOT NULL DEFAULT '',
  subject   TEXT NOT NULL DEFAULT '',
  size      INTEGER NOT NULL,
  seen      INTEGER NOT NULL DEFAULT 0,
  encrypted INTEGER NOT NULL DEFAULT 0,
  signed    INTEGER NOT NULL DEFAULT 0,
  has_attachments INTEGER NOT NULL DEFAULT 0,
  protection TEXT NOT NULL DEFAULT 'none', -- mail::protection_name(): a hint, not a claim
  PRIMARY KEY (user_id, folder, uid)
);
CREATE INDEX mail_index_date ON mail_index(user_id, folder, date DESC, uid DESC);
CREATE TABLE mail_folder_state (
  user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  folder    TEXT NOT NULL,
  new_mtime INTEGER NOT NULL,            -- mtimes (ns) of new/ and cur/ when last indexed
  cur_mtime INTEGER NOT NULL,
  message_count INTEGER NOT NULL,        -- rows indexed then; a mismatch forces a rescan
  PRIMARY KEY (user_id, folder)
);

-- keys: custody of private keys; the key secret is wrapped under a KEK from the passphrase
-- (docs/security.md, "Key custody")
CREATE TABLE keys (
  id             INTEGER PRIMARY KEY,
  fingerprint    TEXT NOT NULL UNIQUE,   -- uppercase hex: OpenPGP v4, S/MIME SHA-256 of the cert
  user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  type           TEXT NOT NULL CHECK (type IN ('openpgp', 'smime')),
  algorithm      TEXT NOT NULL,
  created        INTEGER NOT NULL,
  expires        INTEGER,                -- NULL: never
  revoked        INTEGER NOT NULL DEFAULT 0,
  kdf            TEXT NOT NULL,          -- 'argon2id'
  kdf_params     TEXT NOT NULL,          -- 'm=KiB,t=N,p=N'
  kdf_salt       BLOB NOT NULL,
  wrapped_secret BLOB NOT NULL,          -- AEAD(KEK, key secret), bound to the fingerprint
  private_blob   BLOB,                   -- S/MIME: AEAD(key secret, PKCS#8 DER)
  certificate    BLOB,                   -- S/MIME: PEM certificate chain, leaf first
  public_blob    BLOB                    -- OpenPGP: armored public key, for display/export
);
CREATE INDEX keys_user ON keys(user_id);
-- The addresses a key serves; at most one default key per (address, type).
CREATE TABLE key_emails (
  key_id     INTEGER NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
  email      TEXT NOT NULL COLLATE NOCASE,
  type       TEXT NOT NULL CHECK (type IN ('openpgp', 'smime')),
  is_default INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, email)
);
CREATE INDEX key_emails_email ON key_emails(email);
CREATE UNIQUE INDEX key_emails_one_default ON key_emails(email, type) WHERE is_default = 1;

-- grant: at most one live grant per key (UNIQUE key_id); the key secret is wrapped
-- under the grant secret that only the browser's cookie holds
CREATE TABLE grants (
  id          TEXT PRIMARY KEY,
  key_id      INTEGER NOT NULL UNIQUE REFERENCES keys(id) ON DELETE CASCADE,
  session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  wrapped     BLOB NOT NULL,
  created     INTEGER NOT NULL,
  last_used   INTEGER NOT NULL,
  expires     INTEGER NOT NULL,          -- absolute limit
  client_addr TEXT NOT NULL DEFAULT '',
  user_agent  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grants_session ON grants(session_id);
)sql"},
      {2, R"sql(
-- auth: failures counted because the attempt was interrupted before its check ended
ALTER TABLE auth_failures ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;

-- mail: recent deliveries by content, so a retried delivery of the same bytes (an MTA
-- that did not see the first one succeed) is recognised; rows older than a day go
CREATE TABLE deliveries (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  folder  TEXT NOT NULL,
  digest  TEXT NOT NULL,                 -- hex SHA-256 of the delivered bytes
  uid     TEXT NOT NULL,
  at      INTEGER NOT NULL,
  PRIMARY KEY (user_id, folder, digest)
);
CREATE INDEX deliveries_at ON deliveries(at);
)sql"},
      {3, R"sql(
-- contacts: each user's correspondents' public keys and the addresses they are bound to
-- (docs/security.md, "Correspondents' keys"). A key's own user ids bind nothing: only
-- a row of contact_bindings (or, for this server's users, their keys) does.
CREATE TABLE contact_keys (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  fingerprint TEXT NOT NULL,             -- uppercase hex: OpenPGP v4, S/MIME SHA-256 of the leaf
  type        TEXT NOT NULL CHECK (type IN ('openpgp', 'smime')),
  algorithm   TEXT NOT NULL,
  created     INTEGER NOT NULL,
  expires     INTEGER,                   -- NULL: never
  revoked     INTEGER NOT NULL DEFAULT 0,
  user_ids    TEXT NOT NULL DEFAULT '',  -- as the key's owner wrote them, one per line; display only
  public_data BLOB NOT NULL,             -- armored OpenPGP public key (merged), or PEM certificates
  imported    INTEGER NOT NULL,
  updated     INTEGER NOT NULL,
  UNIQUE (user_id, fingerprint)
);
CREATE INDEX contact_keys_fpr ON contact_keys(fingerprint);
CREATE TABLE contact_bindings (
  contact_key_id INTEGER NOT NULL REFERENCES contact_keys(id) ON DELETE CASCADE,
  email          TEXT NOT NULL COLLATE NOCASE,
  source         TEXT NOT NULL CHECK (source IN ('wkd', 'ca', 'user', 'autocrypt')),
  first_seen     INTEGER NOT NULL,
  last_seen      INTEGER NOT NULL,
  PRIMARY KEY (contact_key_id, email, source)
);
CREATE INDEX contact_bindings_email ON contact_bindings(email);
-- Per user and From address: the key that signed the last verified message from it,
-- so a verdict can say when that changed.
CREATE TABLE contact_signers (
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  email       TEXT NOT NULL COLLATE NOCASE,
  type        TEXT NOT NULL CHECK (type IN ('openpgp', 'smime')),
  fingerprint TEXT NOT NULL,
  seen        INTEGER NOT NULL,
  PRIMARY KEY (user_id, email, type)
);
)sql"},
      {4, R"sql(
-- audit: append-only on every engine; rows can be added, never changed or removed
)sql",
       R"sql(
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
       R"sql(
CREATE FUNCTION wmk_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION wmk_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION wmk_audit_append_only();
)sql"},
      {5, R"sql(
-- sessions: the user's own mail-server password (imap_login = user), sealed under a
-- secret only the browser's cookie holds (docs/security.md, "Mail-server login")
ALTER TABLE sessions ADD COLUMN mail_password BLOB;
)sql"},
      {6, R"sql(
-- mail: the IMAP backend's mark of a folder (core/mail/mailbox.h FolderMark); the
-- Maildir backend keeps using new_mtime and cur_mtime
ALTER TABLE mail_folder_state ADD COLUMN uidvalidity INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_folder_state ADD COLUMN highest_modseq INTEGER NOT NULL DEFAULT 0;
)sql"},
  };
  return kMigrations;
}

}  // namespace

int latest_schema_version() {
  return migrations().back().version;
}

int schema_version(Db& db) {
  return db.schema_version();
}

Status migrate(Db& db) {
  for (const auto& m : migrations()) {
    Transaction tx(db);
    db.connection().before_first_migration();
    int current = schema_version(db);
    if (current > latest_schema_version()) {
      return make_error(Errc::unsupported, "the database schema (version " +
                                               std::to_string(current) +
                                               ") is newer than this webmailkey (" +
                                               std::to_string(latest_schema_version()) + ")");
    }
    if (current >= m.version)
      continue;
    db.exec(m.sql);
    const char* own = db.engine() == Engine::sqlite ? m.sqlite_sql : m.postgresql_sql;
    if (own != nullptr)
      db.exec(own);
    db.set_schema_version(m.version);
    tx.commit();
  }
  return {};
}

Status check_schema(Db& db) {
  int v = schema_version(db);
  if (v == latest_schema_version())
    return {};
  if (v > latest_schema_version()) {
    return make_error(Errc::unsupported, "the database schema (version " + std::to_string(v) +
                                             ") is newer than this webmailkey");
  }
  return make_error(Errc::config, "the database schema is at version " + std::to_string(v) +
                                      ", this webmailkey needs " +
                                      std::to_string(latest_schema_version()) +
                                      ": run `webmailkey init`");
}

}  // namespace wmk::store
