#!/usr/bin/env python3
"""End-to-end tests of `webmailkey user|session|purge|audit` against a real data dir.

Runs the built CLI ($WEBMAILKEY_BUILD_DIR/webmailkey). Sessions, keys and grants are
planted with Python's sqlite3 module (no CLI command creates them), so the fixtures do
not come from the code under test.
"""

import json
import os
import sqlite3
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("WEBMAILKEY_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
WEBMAILKEY = os.path.join(BUILD_DIR, "webmailkey")

PASSWORD_1 = "Zebra-Quartz-7731-first-password"
PASSWORD_2 = "Violet-Anvil-4409-second-password"


class CliTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="wmk-e2e-users-")
        self.tmp = self._tmp.name
        self.data = os.path.join(self.tmp, "data")
        self.conf = os.path.join(self.tmp, "webmailkey.conf")
        self.env = {k: v for k, v in os.environ.items() if k != "WEBMAILKEY_CONFIG"}
        r = self.wmk("init", "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.db_path = os.path.join(self.data, "webmailkey.db")
        self.assertTrue(os.path.exists(self.db_path))

    def tearDown(self):
        self._tmp.cleanup()

    def wmk(self, *args, stdin=None, json_out=False):
        argv = [WEBMAILKEY, "--config", self.conf]
        if json_out:
            argv.append("--json")
        return subprocess.run(argv + list(args), input=stdin if stdin is not None else "",
                              capture_output=True, text=True, env=self.env, timeout=120)

    def wmk_json(self, *args, stdin=None):
        r = self.wmk(*args, stdin=stdin, json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def add_user(self, login, email, password=PASSWORD_1, name=None):
        args = ["user", "add", login, "--email", email, "--password-stdin"]
        if name is not None:
            args += ["--name", name]
        r = self.wmk(*args, stdin=password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def sql(self, query, params=()):
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            rows = con.execute(query, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()


class UserCommands(CliTestCase):
    def test_add_list_show(self):
        r = self.add_user("alice", "alice@example.org", name="Alice Liddell")
        self.assertIn("alice", r.stdout)
        self.add_user("bob", "bob@example.org")
        users = self.wmk_json("user", "list")
        self.assertEqual([u["login"] for u in users], ["alice", "bob"])
        self.assertEqual(users[0]["email"], "alice@example.org")
        self.assertEqual(users[0]["name"], "Alice Liddell")
        self.assertEqual(users[0]["emails"], ["alice@example.org"])
        self.assertFalse(users[0]["disabled"])
        self.assertAlmostEqual(users[0]["created"], time.time(), delta=300)
        alice = self.wmk_json("user", "show", "alice")
        self.assertEqual(alice["login"], "alice")
        text = self.wmk("user", "list")
        self.assertEqual(text.returncode, 0)
        self.assertIn("alice@example.org", text.stdout)

    def test_global_json_may_follow_the_subcommand(self):
        self.add_user("alice", "alice@example.org")
        r = subprocess.run([WEBMAILKEY, "user", "show", "alice", "--json", "--config", self.conf],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["login"], "alice")

    def test_duplicate_user_is_refused(self):
        self.add_user("alice", "alice@example.org")
        r = self.wmk("user", "add", "alice", "--email", "other@example.org", "--password-stdin",
                     stdin=PASSWORD_2 + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists", r.stderr)
        r = self.wmk("user", "add", "carol", "--email", "ALICE@example.org", "--password-stdin",
                     stdin=PASSWORD_2 + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already belongs", r.stderr)
        self.assertEqual([u["login"] for u in self.wmk_json("user", "list")], ["alice"])

    def test_usage_errors_exit_2(self):
        cases = [
            (["user", "add", "bob", "--email", "bob@example.org"], "x\n"),  # no --password-stdin
            (["user", "add", "Bob!", "--email", "bob@example.org", "--password-stdin"], "x\n"),
            (["user", "add", "bob", "--email", "not-an-address", "--password-stdin"], "x\n"),
            (["user", "add", "bob", "--email", "bob@example.org", "--password-stdin"], ""),
            (["user", "add", "bob", "--email", "bob@example.org", "--password-stdin"], "\n"),
            (["user"], ""),
            (["user", "list", "--bogus"], ""),
            (["user", "show"], ""),
            (["session", "kill"], ""),
            (["session", "kill", "abcd0123", "--login", "alice"], ""),
            (["audit", "--since", "last tuesday"], ""),
            (["audit", "--limit", "-3"], ""),
            ([], ""),
        ]
        for args, stdin in cases:
            with self.subTest(args=args, stdin=stdin):
                r = self.wmk(*args, stdin=stdin)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), "usage errors must say why on stderr")
        self.assertEqual(self.wmk_json("user", "list"), [])

    def test_password_policy_minimum_length(self):
        r = self.wmk("user", "add", "bob", "--email", "bob@example.org", "--password-stdin",
                     stdin="x\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("password_min_length", r.stderr)
        self.assertEqual(self.wmk_json("user", "list"), [])
        self.add_user("bob", "bob@example.org")
        r = self.wmk("user", "passwd", "bob", stdin="short\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("too short", r.stderr)

    def test_delete_needs_yes_without_a_terminal(self):
        self.add_user("bob", "bob@example.org")
        r = self.wmk("user", "delete", "bob")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--yes", r.stderr)
        self.assertEqual(self.wmk_json("user", "show", "bob")["login"], "bob")
        r = self.wmk("user", "delete", "bob", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.wmk("user", "show", "bob").returncode, 1)

    def test_empty_password_message(self):
        r = self.wmk("user", "add", "bob", "--email", "bob@example.org", "--password-stdin", stdin="")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no password on standard input", r.stderr)

    def test_not_found_exits_1_with_json_error(self):
        for args in (["user", "show", "nobody"], ["user", "disable", "nobody"],
                     ["user", "enable", "nobody"], ["user", "delete", "nobody"],
                     ["session", "kill", "deadbeef"], ["session", "kill", "--login", "nobody"]):
            with self.subTest(args=args):
                r = self.wmk(*args, json_out=True)
                self.assertEqual(r.returncode, 1, r.stderr)
                err = json.loads(r.stdout)
                self.assertEqual(err["code"], "not_found")
                self.assertTrue(err["error"])
                self.assertIn(err["error"], r.stderr)
        r = self.wmk("user", "passwd", "nobody", stdin="x\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nobody", r.stderr)

    def test_disable_enable_passwd_delete(self):
        self.add_user("alice", "alice@example.org")
        self.plant_session("alice", "aaaa0001", age=10)
        r = self.wmk_json("user", "disable", "alice")
        self.assertEqual(r["sessions_ended"], 1)
        self.assertTrue(self.wmk_json("user", "show", "alice")["disabled"])
        self.assertEqual(self.sql("SELECT count(*) FROM sessions")[0][0], 0)
        self.wmk_json("user", "enable", "alice")
        self.assertFalse(self.wmk_json("user", "show", "alice")["disabled"])

        old_hash = self.sql("SELECT password_hash FROM users WHERE login='alice'")[0][0]
        self.plant_session("alice", "aaaa0002", age=10)
        r = self.wmk("user", "passwd", "alice", stdin=PASSWORD_2 + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        new_hash = self.sql("SELECT password_hash FROM users WHERE login='alice'")[0][0]
        self.assertNotEqual(old_hash, new_hash)
        self.assertTrue(new_hash.startswith("$argon2id$"))
        self.assertEqual(self.sql("SELECT count(*) FROM sessions")[0][0], 0)
        r = self.wmk("user", "passwd", "alice", stdin="\n")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.sql("SELECT password_hash FROM users WHERE login='alice'")[0][0], new_hash)

        self.wmk_json("user", "delete", "alice", "--yes")
        r = self.wmk("user", "show", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(self.sql("SELECT count(*) FROM user_emails")[0][0], 0)

    def plant_session(self, login, short_id, age, idle=None):
        """Inserts a session created `age` seconds ago, last seen `idle` seconds ago."""
        now = int(time.time())
        idle = age if idle is None else idle
        uid = self.sql("SELECT id FROM users WHERE login=?", (login,))[0][0]
        sid = (short_id * 8)[:64]
        self.sql("INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen, "
                 "client_addr, user_agent) VALUES (?, ?, ?, 'csrf', ?, ?, '192.0.2.9', 'test')",
                 (sid, short_id, uid, now - age, now - idle))
        return sid


class PasswordSecrecy(CliTestCase):
    def test_password_is_not_in_any_file_or_audit_output(self):
        # Hold a reader open so that the CLI's writes stay in the WAL file (the last
        # connection to close would checkpoint and delete it).
        holder = sqlite3.connect(self.db_path, timeout=10)
        try:
            holder.execute("SELECT count(*) FROM users").fetchall()
            self.add_user("alice", "alice@example.org", PASSWORD_1)
            r = self.wmk("user", "passwd", "alice", stdin=PASSWORD_2 + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            outputs = [self.wmk("audit").stdout, self.wmk("audit", json_out=True).stdout,
                       self.wmk("user", "show", "alice", json_out=True).stdout,
                       self.wmk("user", "list").stdout]
            blobs = {}
            for root, _, names in os.walk(self.data):
                for n in names:
                    path = os.path.join(root, n)
                    with open(path, "rb") as fh:
                        blobs[path] = fh.read()
        finally:
            holder.close()
        wal = self.db_path + "-wal"
        self.assertIn(self.db_path, blobs)
        self.assertIn(wal, blobs)
        # The search is not blind: the new user's address is in the files we read.
        self.assertTrue(any(b"alice@example.org" in blobs[f] for f in (self.db_path, wal)))
        for path, blob in blobs.items():
            for pw in (PASSWORD_1, PASSWORD_2):
                for enc in (pw.encode(), pw.encode("utf-16-le"), pw.encode("utf-16-be")):
                    self.assertNotIn(enc, blob, f"password found in {path}")
        for out in outputs:
            self.assertTrue(out)
            for pw in (PASSWORD_1, PASSWORD_2):
                self.assertNotIn(pw, out)
        h = self.sql("SELECT password_hash FROM users WHERE login='alice'")[0][0]
        self.assertTrue(h.startswith("$argon2id$v=19$"), h)


class Sessions(CliTestCase):
    def setUp(self):
        super().setUp()
        self.add_user("alice", "alice@example.org")
        self.add_user("bob", "bob@example.org")

    plant_session = UserCommands.plant_session

    def test_list_and_kill(self):
        self.plant_session("alice", "a1a1a1a1", age=100)
        self.plant_session("alice", "a2a2a2a2", age=50)
        self.plant_session("bob", "b1b1b1b1", age=10)
        # --login filters, as on every listing; an unknown login is an error.
        self.assertEqual([x["session"] for x in self.wmk_json("session", "list", "--login", "alice")],
                         ["a2a2a2a2", "a1a1a1a1"])
        r = self.wmk("session", "list", "--login", "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nobody", r.stderr)
        sessions = self.wmk_json("session", "list")
        self.assertEqual([s["session"] for s in sessions], ["b1b1b1b1", "a2a2a2a2", "a1a1a1a1"])
        self.assertEqual(sessions[0]["login"], "bob")
        self.assertEqual(sessions[0]["client_addr"], "192.0.2.9")
        self.assertFalse(sessions[0]["expired"])
        self.assertNotIn("id", sessions[0])  # the token hash is not shown
        r = self.wmk_json("session", "kill", "b1b1b1b1")
        self.assertEqual(r["ended"], 1)
        r = self.wmk_json("session", "kill", "--login", "alice")
        self.assertEqual(r["ended"], 2)
        self.assertEqual(self.wmk_json("session", "list"), [])
        events = self.wmk_json("audit", "--login", "alice")
        self.assertEqual(events[0]["event"], "session.kill")
        self.assertIn("2 ended", events[0]["detail"])
        bob_events = self.wmk_json("audit", "--login", "bob")
        self.assertEqual(bob_events[0]["event"], "session.kill")
        self.assertEqual(bob_events[0]["session"], "b1b1b1b1")

    def test_purge_deletes_only_expired_sessions(self):
        # Defaults: idle 1800 s, absolute 43200 s.
        live = self.plant_session("alice", "11111111", age=600, idle=60)
        idle = self.plant_session("alice", "22222222", age=4000, idle=3600)
        old = self.plant_session("bob", "33333333", age=50000, idle=5)
        live2 = self.plant_session("bob", "44444444", age=43000, idle=1700)  # close to limits
        for n, sid in enumerate((live, idle, old, live2)):
            uid = self.sql("SELECT user_id FROM sessions WHERE id=?", (sid,))[0][0]
            self.sql("INSERT INTO keys (fingerprint, user_id, type, algorithm, created, kdf, "
                     "kdf_params, kdf_salt, wrapped_secret) VALUES (?, ?, 'openpgp', 'x', 0, "
                     "'argon2id', 'm=64,t=1,p=1', x'00', x'00')", (f"FPR{n}", uid))
            self.sql("INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, "
                     "expires) VALUES (?, (SELECT id FROM keys WHERE fingerprint=?), ?, x'00', "
                     "?, ?, ?)", (f"g{n}", f"FPR{n}", sid, int(time.time()) - 60, int(time.time()) - 30,
                                 int(time.time()) + 3600))

        dry = self.wmk_json("purge", "--dry-run")
        self.assertTrue(dry["dry_run"])
        self.assertEqual(dry["sessions"], 2)
        self.assertEqual(self.sql("SELECT count(*) FROM sessions")[0][0], 4)
        self.assertEqual(self.sql("SELECT count(*) FROM grants")[0][0], 4)
        text = self.wmk("purge", "--dry-run")
        self.assertEqual(text.returncode, 0)
        self.assertIn("sessions: 2", text.stdout)

        done = self.wmk_json("purge")
        self.assertFalse(done["dry_run"])
        self.assertEqual(done["sessions"], 2)
        left = sorted(r[0] for r in self.sql("SELECT short_id FROM sessions"))
        self.assertEqual(left, ["11111111", "44444444"])
        # The expired sessions' grants go first (audited as grant.expire); the live stay.
        self.assertEqual(done["grants"], 2)
        grants = sorted(r[0] for r in self.sql("SELECT id FROM grants"))
        self.assertEqual(grants, ["g0", "g3"])
        # Live sessions keep their last_seen: purge does not touch them.
        self.assertEqual(self.sql("SELECT count(*) FROM keys")[0][0], 4)
        self.assertEqual(self.wmk_json("purge")["sessions"], 0)
        expired = [e for e in self.wmk_json("audit") if e["event"] == "session.expire"]
        self.assertEqual(sorted(e["session"] for e in expired), ["22222222", "33333333"])

    def test_purge_on_empty_database(self):
        r = self.wmk("purge")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sessions: 0", r.stdout)


class Audit(CliTestCase):
    def test_admin_actions_are_audited_and_filtered(self):
        self.add_user("alice", "alice@example.org")
        self.add_user("bob", "bob@example.org")
        self.assertEqual(self.wmk("user", "passwd", "alice", stdin="other password 9\n").returncode, 0)
        self.wmk_json("user", "disable", "alice")
        self.wmk_json("user", "enable", "alice")
        self.wmk_json("user", "delete", "bob", "--yes")
        events = self.wmk_json("audit", "--login", "alice")
        self.assertEqual([e["event"] for e in events],
                         ["user.enable", "user.disable", "user.passwd", "user.add"])
        for e in events:
            self.assertEqual(e["outcome"], "ok")
            self.assertIn("by cli:", e["detail"])
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual([e["event"] for e in self.wmk_json("audit", "--login", "bob")],
                         ["user.delete", "user.add"])
        self.assertEqual(len(self.wmk_json("audit")), 6)
        self.assertEqual(len(self.wmk_json("audit", "--limit", "2")), 2)
        # --since in its three forms.
        self.assertEqual(len(self.wmk_json("audit", "--since", "1h")), 6)
        self.assertEqual(self.wmk_json("audit", "--since", str(int(time.time()) + 3600)), [])
        self.assertEqual(len(self.wmk_json("audit", "--since", "2000-01-01")), 6)
        self.assertEqual(self.wmk_json("audit", "--since", "2999-01-01T00:00:00"), [])
        text = self.wmk("audit", "--login", "alice")
        self.assertEqual(text.returncode, 0)
        self.assertEqual(len(text.stdout.strip().splitlines()), 4)
        self.assertIn("user.add", text.stdout)


class NoDatabase(unittest.TestCase):
    def test_commands_before_init_fail_with_a_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "webmailkey.conf")
            with open(conf, "w") as f:
                f.write(f"data_dir = {tmp}/data\n")
            env = {k: v for k, v in os.environ.items() if k != "WEBMAILKEY_CONFIG"}
            r = subprocess.run([WEBMAILKEY, "--config", conf, "user", "list"],
                               capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertIn("init", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
