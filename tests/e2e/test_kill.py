#!/usr/bin/env python3
"""Crashes at every step (issue 12): the real CLI is killed with SIGKILL at random
moments, many times each, and the store is checked after every kill:

- `deliver` of a 5 MB message: never lost, duplicated or half-written in new/ or cur/,
  nothing left in tmp/, the MTA's retry after each kill stores it exactly once;
- `key import`: a killed import leaves nothing usable; `fsck` removes what is left,
  and the import then succeeds;
- `key passwd` and `user passwd`: exactly one of the old and new secrets works;
- `purge`: runs to the end on the next try;
- `contact import`: the key is in the directory whole (row and binding) or not at all,
  and the retry imports it once;
- `init` migrating an older database (built from the migrations in
  core/store/schema.cc with Python's sqlite3): the database is at one of the versions
  with exactly that version's tables and columns, its rows kept, and the next run
  completes to the schema a fresh `init` makes;
- `PRAGMA integrity_check` is ok after each kill.

WMK_KILL_ROUNDS (default 6) sets the kills per command. Fixtures come from gpg and
Python's email package."""

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
from email import message_from_bytes
from email.message import EmailMessage

try:
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError, InvalidHashError
except ImportError:  # another Python than Debian's: ask Debian's (python3-argon2)
    PasswordHasher = None

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BUILD_DIR = os.environ.get("WEBMAILKEY_BUILD_DIR",
                           os.path.join(os.path.dirname(__file__), "..", "..", "build"))
WEBMAILKEY = os.path.join(BUILD_DIR, "webmailkey")
ROUNDS = int(os.environ.get("WMK_KILL_ROUNDS", "6"))
KEY_PASS = "Key-Passphrase-Kill-4417"
NEW_PASS = "New-Key-Passphrase-Kill-8823"
FILE_PASS = "File-Passphrase-Kill-2290"
LOGIN_PASS = "Login-Password-Kill-1"
NEW_LOGIN_PASS = "Login-Password-Kill-2"


def argon2_matches(phc, password):
    """Checks password against the PHC string with Python's argon2 (argon2-cffi)."""
    if PasswordHasher is None:
        r = subprocess.run(["/usr/bin/python3", "-c",
                            "import sys\nfrom argon2 import PasswordHasher\n"
                            "try:\n PasswordHasher().verify(sys.argv[1], sys.stdin.read())\n"
                            "except Exception:\n sys.exit(1)\n", phc],
                           input=password.encode(), capture_output=True, timeout=60)
        return r.returncode == 0
    try:
        return PasswordHasher().verify(phc, password)
    except (VerificationError, InvalidHashError):
        return False


class KillTest(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(int(os.environ.get("WMK_KILL_SEED", "1212")))
        self.tmp = tempfile.mkdtemp(prefix="wmk-kill-", dir="/tmp")
        self.data = os.path.join(self.tmp, "d")
        self.conf = os.path.join(self.tmp, "w.conf")
        self.gnupg = os.path.join(self.data, "gnupg")
        self.homes = [self.gnupg]
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("WEBMAILKEY_CONFIG", "GNUPGHOME")}
        self.ok(self.wmk("init", "--data-dir", self.data))
        # A KDF with a real cost, so that kills land inside it.
        self.set_conf(kdf_memory_kib=32768, kdf_iterations=2, password_memory_kib=16384,
                      password_iterations=1)
        self.ok(self.wmk("user", "add", "alice", "--email", "alice@example.org",
                         "--password-stdin", stdin=LOGIN_PASS + "\n"))

    def tearDown(self):
        for h in self.homes:
            subprocess.run(["gpgconf", "--homedir", h, "--kill", "gpg-agent"],
                           capture_output=True)
        for d in self.scratch_homes():
            subprocess.run(["gpgconf", "--homedir", d, "--kill", "gpg-agent"],
                           capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers

    def set_conf(self, **values):
        """Sets keys in the config file `init` wrote, replacing their lines."""
        with open(self.conf) as f:
            lines = [l for l in f.read().splitlines()
                     if l.split("=")[0].strip() not in values]
        lines += ["%s = %s" % kv for kv in values.items()]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def argv(self, *args):
        return [WEBMAILKEY, "--config", self.conf] + list(args)

    def wmk(self, *args, stdin=""):
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return subprocess.run(self.argv(*args), input=data, capture_output=True,
                              env=self.env, timeout=300)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r

    def killed_run(self, args, stdin, delay):
        """Starts the CLI, feeds stdin from a thread, kills it after delay seconds.
        Returns the exit status (negative: killed by that signal)."""
        p = subprocess.Popen(self.argv(*args), stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)

        def feed():
            try:
                p.stdin.write(stdin)
            except (BrokenPipeError, ValueError):
                pass
            finally:
                try:
                    p.stdin.close()
                except BrokenPipeError:
                    pass
        t = threading.Thread(target=feed)
        t.start()
        time.sleep(delay)
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = p.wait()
        t.join()
        return rc

    def timed(self, args, stdin):
        start = time.monotonic()
        r = self.wmk(*args, stdin=stdin)
        return r, time.monotonic() - start

    def integrity_ok(self):
        db = sqlite3.connect(os.path.join(self.data, "webmailkey.db"), timeout=30)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        finally:
            db.close()

    def sql(self, query, args=()):
        db = sqlite3.connect(os.path.join(self.data, "webmailkey.db"), timeout=30)
        try:
            return db.execute(query, args).fetchall()
        finally:
            db.close()

    def scratch_homes(self):
        d = os.path.join(self.data, "tmp")
        return [os.path.join(d, n) for n in os.listdir(d)] if os.path.isdir(d) else []

    def gpg(self, home, *args, stdin=b""):
        return subprocess.run(["gpg", "--homedir", home, "--batch", "--no-tty"] + list(args),
                              input=stdin.encode() if isinstance(stdin, str) else stdin,
                              capture_output=True, timeout=120)

    def secret_fprs(self, home):
        out = self.gpg(home, "--with-colons", "--list-secret-keys").stdout.decode()
        return {l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")}

    # ---- deliver

    def test_deliver_killed_at_random_moments(self):
        maildir = os.path.join(self.data, "mail", "alice", "Maildir")
        body = ("0123456789abcdef" * 64 + "\n") * 5000  # ~5 MB
        messages = []
        for n in range(ROUNDS):
            m = EmailMessage()
            m["From"] = "Sender <sender@example.org>"
            m["To"] = "alice@example.org"
            m["Subject"] = "kill round %d" % n
            m["Message-ID"] = "<kill-%d@example.org>" % n
            m.set_content(body)
            messages.append(m.as_bytes())
        _, full = self.timed(["deliver", "alice"], messages[0])
        for n, raw in enumerate(messages):
            rc = self.killed_run(["deliver", "alice"], raw, self.rng.uniform(0, full * 1.2))
            self.integrity_ok()
            self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [], "round %d" % n)
            # The MTA saw no success (killed) or did: either way a retry is harmless.
            r = self.ok(self.wmk("deliver", "alice", stdin=raw))
            if rc == 0:
                self.assertIn(b"already delivered", r.stdout)
        # Every message exactly once, complete; message 0 was also delivered first.
        seen = {}
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(maildir, sub)):
                with open(os.path.join(maildir, sub, name), "rb") as f:
                    raw = f.read()
                subject = message_from_bytes(raw)["Subject"]
                seen[subject] = seen.get(subject, 0) + 1
                self.assertIn(raw, messages, "a half-written or altered message: %s" % name)
        self.assertEqual(seen, {"kill round %d" % n: 1 for n in range(ROUNDS)})
        self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [])

    def test_header_over_the_limit_is_a_data_error(self):
        self.set_conf(max_header_bytes=4096)
        raw = b"From: a@example.org\nX-Long: " + b"x" * 8000 + b"\nSubject: s\n\nbody\n"
        r = self.wmk("deliver", "alice", stdin=raw)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"max_header_bytes", r.stderr)
        maildir = os.path.join(self.data, "mail", "alice", "Maildir")
        new = os.path.join(maildir, "new")
        self.assertEqual(os.listdir(new) if os.path.isdir(new) else [], [])

    # ---- key import, key passwd

    def make_key_file(self):
        home = os.path.join(self.tmp, "outside")
        os.mkdir(home, 0o700)
        with open(os.path.join(home, "gpg-agent.conf"), "w") as f:
            f.write("s2k-count 65536\n")  # fixture speed only
        self.homes.append(home)
        r = self.gpg(home, "--pinentry-mode", "loopback", "--passphrase-fd", "0",
                     "--quick-gen-key", "Alice <alice@example.org>", "future-default",
                     "default", "never", stdin=FILE_PASS + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.gpg(home, "--with-colons", "--list-keys").stdout.decode()
        fpr = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]
        sec = self.gpg(home, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                       "--export-secret-keys", fpr, stdin=FILE_PASS + "\n").stdout
        return fpr, sec

    def delete_key(self, fpr):
        # `key delete` may ask for confirmation (issue 13): say yes both ways.
        helptext = self.wmk("key", "delete", "--help").stdout.decode()
        extra = ["--yes"] if "--yes" in helptext else []
        self.ok(self.wmk("key", "delete", fpr, *extra, stdin="yes\n"))

    def opens_with(self, home, fpr, passphrase):
        r = self.gpg(home, "--pinentry-mode", "loopback", "--passphrase-fd", "0",
                     "--local-user", fpr, "--detach-sign", "--armor", stdin=passphrase + "\n")
        return r.returncode == 0

    def test_key_import_killed_at_random_moments_leaves_nothing_usable(self):
        fpr, sec = self.make_key_file()
        stdin = (KEY_PASS + "\n" + FILE_PASS + "\n").encode() + sec
        args = ["key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin"]
        r, full = self.timed(args, stdin)
        self.ok(r)
        self.delete_key(fpr)
        left_over = 0
        for n in range(ROUNDS):
            rc = self.killed_run(args, stdin, self.rng.uniform(0, full))
            self.integrity_ok()
            rows = self.sql("SELECT count(*) FROM keys WHERE fingerprint = ?", (fpr,))[0][0]
            in_home = fpr in self.secret_fprs(self.gnupg)
            if rows == 0 and in_home:
                left_over += 1
                # What a kill leaves never opens with the file's passphrase.
                self.assertFalse(self.opens_with(self.gnupg, fpr, FILE_PASS), "round %d" % n)
            fsck = self.ok(self.wmk("--json", "fsck"))
            self.assertNotIn(fpr, self.secret_fprs(self.gnupg) if rows == 0 else set())
            self.assertFalse([d for d in self.scratch_homes()
                              if os.path.basename(d).startswith("import-")], fsck.stdout)
            if rows:  # finished, or killed after its commit: a whole, usable key
                self.ok(self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                                 stdin=KEY_PASS + "\nExport-Passphrase-1\n"))
                self.delete_key(fpr)
        # After all the kills and fsck: the import works and the key is usable.
        self.ok(self.wmk(*args, stdin=stdin))
        self.ok(self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                         stdin=KEY_PASS + "\nExport-Passphrase-1\n"))
        print("key import: %d of %d kills left a key behind (removed by fsck)"
              % (left_over, ROUNDS))

    def test_key_passwd_killed_leaves_exactly_one_passphrase(self):
        key = self.ok(self.wmk("--json", "key", "generate", "alice", "--type", "openpgp",
                               "--passphrase-stdin", stdin=KEY_PASS + "\n"))
        fpr = json.loads(key.stdout)["fingerprint"]
        current = KEY_PASS
        args = ["key", "passwd", fpr, "--passphrase-stdin"]
        _, full = self.timed(args, KEY_PASS + "\n" + NEW_PASS + "\n")
        current = NEW_PASS
        for n in range(ROUNDS):
            other = KEY_PASS if current == NEW_PASS else NEW_PASS
            self.killed_run(args, (current + "\n" + other + "\n").encode(),
                            self.rng.uniform(0, full))
            self.integrity_ok()
            works = [p for p in (current, other)
                     if self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                                 stdin=p + "\nExport-Passphrase-1\n").returncode == 0]
            self.assertEqual(len(works), 1, "round %d: %r work" % (n, works))
            current = works[0]

    def test_user_passwd_and_purge_killed(self):
        args = ["user", "passwd", "alice", "--password-stdin"]
        _, full = self.timed(args, NEW_LOGIN_PASS + "\n")
        current = NEW_LOGIN_PASS
        for n in range(ROUNDS):
            other = LOGIN_PASS if current == NEW_LOGIN_PASS else NEW_LOGIN_PASS
            self.killed_run(args, (other + "\n").encode(), self.rng.uniform(0, full))
            self.integrity_ok()
            h = self.sql("SELECT password_hash FROM users WHERE login = 'alice'")[0][0]
            self.assertTrue(h.startswith("$argon2id$"), h)
            # The stored hash is whole: exactly one of the two passwords matches it
            # (checked with Python's argon2, an outside implementation).
            matches = [p for p in (current, other) if argon2_matches(h, p)]
            self.assertEqual(len(matches), 1, "round %d" % n)
            current = matches[0]
            self.killed_run(["purge"], b"", self.rng.uniform(0, 0.3))
            self.integrity_ok()
            self.ok(self.wmk("purge"))

    # ---- contact import

    def make_public_key(self, name, address):
        home = os.path.join(self.tmp, "contact-" + name)
        os.mkdir(home, 0o700)
        self.homes.append(home)
        r = self.gpg(home, "--pinentry-mode", "loopback", "--passphrase", "",
                     "--quick-gen-key", "%s <%s>" % (name, address), "future-default",
                     "default", "never")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.gpg(home, "--with-colons", "--list-keys").stdout.decode()
        fpr = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]
        return fpr, self.gpg(home, "--armor", "--export", fpr).stdout

    def contact_rows(self, fpr):
        keys = self.sql("SELECT id FROM contact_keys WHERE fingerprint = ?", (fpr,))
        bindings = self.sql("SELECT b.email, b.source FROM contact_bindings b JOIN contact_keys c "
                            "ON c.id = b.contact_key_id WHERE c.fingerprint = ?", (fpr,))
        return [k[0] for k in keys], bindings

    def public_fprs(self, home):
        out = self.gpg(home, "--with-colons", "--list-keys").stdout.decode()
        return {l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")}

    def test_contact_import_killed_at_random_moments(self):
        fpr, public = self.make_public_key("Carol", "carol@remote.example")
        args = ["contact", "import", "alice", "-"]
        r, full = self.timed(args, public)
        self.ok(r)
        ids, _ = self.contact_rows(fpr)
        self.ok(self.wmk("contact", "delete", str(ids[0])))
        self.assertNotIn(fpr, self.public_fprs(self.gnupg))
        whole = left_over = 0
        for n in range(ROUNDS):
            self.killed_run(args, public, self.rng.uniform(0, full * 1.2))
            self.integrity_ok()
            ids, bindings = self.contact_rows(fpr)
            # In the directory whole, or not at all: a key row has its binding.
            if ids:
                whole += 1
                self.assertEqual(len(ids), 1, "round %d" % n)
                self.assertEqual(bindings, [("carol@remote.example", "user")], "round %d" % n)
            else:
                self.assertEqual(bindings, [], "round %d" % n)
                if fpr in self.public_fprs(self.gnupg):
                    left_over += 1
                    # A public key with no row binds nothing; fsck takes it out.
                    self.ok(self.wmk("fsck"))
                    self.assertNotIn(fpr, self.public_fprs(self.gnupg), "round %d" % n)
            # The retry (or a second import) gives one key, bound once, usable.
            self.ok(self.wmk("contact", "import", "alice", "-", stdin=public))
            ids, bindings = self.contact_rows(fpr)
            self.assertEqual(len(ids), 1, "round %d" % n)
            self.assertEqual(bindings, [("carol@remote.example", "user")], "round %d" % n)
            listed = json.loads(self.ok(self.wmk("--json", "contact", "list", "alice")).stdout)
            mine = [c for c in listed if c["fingerprint"] == fpr]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["state"], "usable")
            self.assertIn(fpr, self.public_fprs(self.gnupg))
            # Back to nothing: delete takes the key out of the GnuPG home too.
            self.ok(self.wmk("contact", "delete", str(ids[0])))
            self.assertNotIn(fpr, self.public_fprs(self.gnupg), "round %d" % n)
        print("contact import: %d of %d kills came after the commit, %d left a public key "
              "with no row (removed by fsck)" % (whole, ROUNDS, left_over))

    # ---- schema migration

    @staticmethod
    def migrations():
        """[(version, sql)] as core/store/schema.cc holds them, for SQLite: the portable
        SQL, then SQLite's own part if the migration has one (the PostgreSQL part after
        it is left out)."""
        with open(os.path.join(SOURCE_DIR, "core", "store", "schema.cc")) as f:
            text = f.read()
        raw = r'R"sql\((.*?)\)sql"'
        found = [(int(v), portable + sqlite_own) for v, portable, sqlite_own, _ in
                 re.findall(r'\{(\d+), ' + raw + r'(?:,\s*' + raw + r',\s*' + raw + r')?\}',
                            text, re.S)]
        return found

    @staticmethod
    def shape(db):
        """Tables with their columns, and indexes: what a version's schema is made of."""
        out = {}
        for (name, kind) in db.execute("SELECT name, type FROM sqlite_master WHERE name NOT "
                                       "LIKE 'sqlite_%' ORDER BY name").fetchall():
            cols = [r[1] for r in db.execute("PRAGMA table_info(%s)" % name)] \
                if kind == "table" else []
            out[name] = (kind, tuple(cols))
        return out

    def test_migration_killed_at_random_moments(self):
        migrations = self.migrations()
        self.assertGreaterEqual(len(migrations), 2, "no migration to test")
        latest = migrations[-1][0]
        # What each version looks like, from the migrations themselves; the latest must
        # be what a fresh `init` made.
        shapes = {0: {}}
        mem = sqlite3.connect(":memory:")
        for v, sql in migrations:
            mem.executescript(sql)
            shapes[v] = self.shape(mem)
        mem.close()
        db_path = os.path.join(self.data, "webmailkey.db")
        fresh = sqlite3.connect(db_path)
        self.assertEqual(fresh.execute("PRAGMA user_version").fetchone()[0], latest)
        self.assertEqual(self.shape(fresh), shapes[latest])
        fresh.close()
        _, full = self.timed(["init"], b"")
        seen = []
        for n in range(ROUNDS):
            old = migrations[n % (len(migrations) - 1)][0]
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db_path + suffix):
                    os.remove(db_path + suffix)
            db = sqlite3.connect(db_path)
            for v, sql in migrations:
                if v <= old:
                    db.executescript(sql)
            db.execute("PRAGMA user_version = %d" % old)
            db.execute("INSERT INTO users (login, name, password_hash, created) "
                       "VALUES ('carol', 'Carol', '$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA', 1)")
            db.executemany("INSERT INTO auth_failures (scope, failures, last_failure) "
                           "VALUES (?, 1, 1)", [("addr:10.0.%d.%d" % (i // 250, i % 250),)
                                                for i in range(20000)])
            db.commit()
            db.close()
            self.killed_run(["init"], b"", self.rng.uniform(0, full * 1.5))
            self.integrity_ok()
            db = sqlite3.connect(db_path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            self.assertIn(version, range(old, latest + 1), "round %d" % n)
            seen.append("%d->%d" % (old, version))
            # Exactly one version's schema: no migration is half-applied.
            self.assertEqual(self.shape(db), shapes[version], "round %d at %d" % (n, version))
            self.assertEqual(db.execute("SELECT name FROM users").fetchall(), [("Carol",)])
            self.assertEqual(db.execute("SELECT count(*) FROM auth_failures").fetchone()[0], 20000)
            db.close()
            # The next run completes, and the data is all there.
            self.ok(self.wmk("init"))
            db = sqlite3.connect(db_path)
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], latest)
            self.assertEqual(self.shape(db), shapes[latest], "round %d" % n)
            self.assertEqual(db.execute("SELECT count(*) FROM auth_failures").fetchone()[0], 20000)
            db.close()
            users = json.loads(self.ok(self.wmk("--json", "user", "list")).stdout)
            self.assertEqual([u["login"] for u in users], ["carol"], "round %d" % n)
        print("migration: versions after each kill (from->at): " + " ".join(seen))


if __name__ == "__main__":
    unittest.main()
