#!/usr/bin/env python3
"""End-to-end: `webmailkey grant list` and `grant revoke` on a database made by
`webmailkey init`, with users, sessions, keys and grants inserted by the sqlite3 tool."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("WEBMAILKEY_BUILD_DIR", "build")
WEBMAILKEY = os.path.join(BUILD_DIR, "webmailkey")

FPR1 = "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555"
FPR2 = "AAAA1111FFFF6666777788889999000011112222"
FPR3 = "0123456789ABCDEF0123456789ABCDEF01234567"


class GrantCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wmk-e2e-grant-")
        self.config = os.path.join(self.tmp.name, "webmailkey.conf")
        data = os.path.join(self.tmp.name, "data")
        self.run_cli("init", "--data-dir", data)
        self.db = os.path.join(data, "webmailkey.db")
        now = int(time.time())
        self.now = now
        self.sql(f"""
            INSERT INTO users (id, login, password_hash, created)
              VALUES (1, 'alice', 'x', 0), (2, 'bob', 'x', 0);
            INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen, client_addr)
              VALUES ('sess-a1', 'sa1', 1, 'c', {now}, {now}, '10.0.0.5'),
                     ('sess-a2', 'sa2', 1, 'c', {now}, {now}, '10.0.0.7'),
                     ('sess-b1', 'sb1', 2, 'c', {now}, {now}, '10.0.0.9');
            INSERT INTO keys (id, fingerprint, user_id, type, algorithm, created, kdf, kdf_params,
                              kdf_salt, wrapped_secret)
              VALUES (1, '{FPR1}', 1, 'openpgp', 'ed25519', 0, 'argon2id', '', x'00', x'00'),
                     (2, '{FPR2}', 1, 'openpgp', 'ed25519', 0, 'argon2id', '', x'00', x'00'),
                     (3, '{FPR3}', 2, 'smime', 'rsa3072', 0, 'argon2id', '', x'00', x'00');
            INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, expires,
                                client_addr, user_agent)
              VALUES ('aaaaaaaaa1', 1, 'sess-a1', randomblob(61), {now}, {now}, {now + 7200},
                      '10.0.0.5', 'Firefox'),
                     ('aaaaaaaaa2', 2, 'sess-a2', randomblob(61), {now + 1}, {now + 1},
                      {now + 7201}, '10.0.0.7', 'Chromium'),
                     ('bbbbbbbbb1', 3, 'sess-b1', randomblob(61), {now + 2}, {now - 900},
                      {now + 7202}, '10.0.0.9', 'curl');
        """)

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, *args, expect=0):
        proc = subprocess.run([WEBMAILKEY, "--config", self.config, *args],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, expect,
                         f"{args}: exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def json_cli(self, *args, expect=0):
        return json.loads(self.run_cli("--json", *args, expect=expect).stdout)

    def sql(self, script):
        return subprocess.run(["sqlite3", self.db], input=script, capture_output=True,
                              text=True, check=True).stdout

    def grant_ids(self):
        return sorted(self.sql("SELECT id FROM grants;").split())

    def notice(self, session):
        return self.sql(f"SELECT coalesce(notice, '') FROM sessions WHERE id = '{session}';").strip()

    def test_list_table_and_json(self):
        out = self.run_cli("grant", "list").stdout
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ID"), out)
        for column in ("LOGIN", "KEY", "SESSION", "CREATED", "LAST USED", "EXPIRES", "LEFT",
                       "CLIENT"):
            self.assertIn(column, lines[0])
        self.assertEqual(len(lines), 4, out)
        self.assertIn(FPR1, out)
        self.assertIn("expired", lines[3])  # bob's grant: idle for 900 s

        rows = self.json_cli("grant", "list")
        self.assertEqual([r["id"] for r in rows], ["aaaaaaaaa1", "aaaaaaaaa2", "bbbbbbbbb1"])
        first = rows[0]
        self.assertEqual(first["login"], "alice")
        self.assertEqual(first["key"], FPR1)
        self.assertEqual(first["session"], "sa1")
        self.assertEqual(first["created"], self.now)
        self.assertEqual(first["expires"], self.now + 7200)
        self.assertEqual(first["idle_deadline"], self.now + 600)
        self.assertTrue(first["live"])
        self.assertTrue(0 < first["time_left"] <= 600)
        self.assertEqual(first["client_addr"], "10.0.0.5")
        self.assertEqual(first["user_agent"], "Firefox")
        self.assertFalse(rows[2]["live"])
        self.assertEqual(rows[2]["time_left"], 0)

    def test_list_by_login(self):
        self.assertEqual([r["id"] for r in self.json_cli("grant", "list", "--login", "bob")],
                         ["bbbbbbbbb1"])
        err = self.json_cli("grant", "list", "--login", "nobody", expect=1)
        self.assertEqual(err["code"], "not_found")

    def test_list_empty(self):
        self.sql("DELETE FROM grants;")
        self.assertEqual(self.json_cli("grant", "list"), [])
        self.assertIn("no grants", self.run_cli("grant", "list").stdout)

    def test_revoke_needs_exactly_one_selector(self):
        self.run_cli("grant", "revoke", expect=2)
        self.run_cli("grant", "revoke", "aaaaaaaaa1", "--all", expect=2)
        self.run_cli("grant", "revoke", "--login", "alice", "--key", FPR1, expect=2)
        self.run_cli("grant", "revoke", "--bogus", expect=2)
        self.assertEqual(len(self.grant_ids()), 3)

    def test_revoke_one_grant(self):
        self.assertEqual(self.json_cli("grant", "revoke", "aaaaaaaaa1"), {"revoked": 1})
        self.assertEqual(self.grant_ids(), ["aaaaaaaaa2", "bbbbbbbbb1"])
        self.assertIn("by an administrator", self.notice("sess-a1"))
        self.assertEqual(self.notice("sess-a2"), "")
        audit = self.sql("SELECT event, outcome, login, key_fpr FROM audit;")
        self.assertIn(f"grant.revoke|ok|alice|{FPR1}", audit)
        err = self.json_cli("grant", "revoke", "aaaaaaaaa1", expect=1)
        self.assertEqual(err["code"], "not_found")

    def test_revoke_by_key(self):
        self.run_cli("grant", "revoke", "--key", "AAAA1111", expect=2)  # two keys match
        self.run_cli("grant", "revoke", "--key", "abc", expect=2)  # too short
        self.run_cli("grant", "revoke", "--key", "FFFFFFFF", expect=1)  # no such key
        self.assertEqual(len(self.grant_ids()), 3)
        out = self.run_cli("grant", "revoke", "--key", "aaaa1111ffff").stdout
        self.assertIn("revoked 1 grant", out)
        self.assertEqual(self.grant_ids(), ["aaaaaaaaa1", "bbbbbbbbb1"])
        self.assertEqual(self.json_cli("grant", "revoke", "--key", FPR2), {"revoked": 0})

    def test_revoke_by_login(self):
        self.assertEqual(self.json_cli("grant", "revoke", "--login", "alice"), {"revoked": 2})
        self.assertEqual(self.grant_ids(), ["bbbbbbbbb1"])
        self.run_cli("grant", "revoke", "--login", "nobody", expect=1)

    def test_revoke_all(self):
        out = self.run_cli("grant", "revoke", "--all").stdout
        self.assertIn("revoked 3 grants", out)
        self.assertEqual(self.grant_ids(), [])
        self.assertIn("by an administrator", self.notice("sess-a1"))
        self.assertIn("by an administrator", self.notice("sess-a2"))
        self.assertEqual(self.notice("sess-b1"), "")  # bob's grant had already expired
        self.assertEqual(self.json_cli("grant", "revoke", "--all"), {"revoked": 0})

    def test_missing_database_fails_cleanly(self):
        shutil.rmtree(os.path.dirname(self.db))
        self.run_cli("grant", "list", expect=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
