#!/usr/bin/env python3
"""End-to-end tests of the PostgreSQL store: `webmailkey store migrate --to postgresql`
and the CLI running on the copy (`store = postgresql`).

A real PostgreSQL runs in a throwaway cluster (tests/e2e/wmk_pg.py). The source rows
come from the CLI (users, their audit) and from Python's sqlite3 module (a bulk of
audit rows for the kill test); the target is read back with psql, an outside client.
"""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CLI, Instance  # noqa: E402
from wmk_pg import PgCluster, pg_missing  # noqa: E402

PASSWORD = "Zebra-Quartz-7731-first-password"


def dump_of(path):
    """The SQLite store's whole content, as its own SQL dump (Python's sqlite3)."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
    finally:
        con.close()


@unittest.skipIf(pg_missing(), pg_missing() or "")
class StoreMigrate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.dbname = "wmk_%s" % self._testMethodName.lower()
        self.conninfo = self.pg.create_database(self.dbname)
        self.wmk = Instance(config={"store_postgresql": '"%s"' % self.conninfo})
        self.wmk.add_user("alice", PASSWORD, "Alice@Example.org")
        self.wmk.add_user("bob", PASSWORD, "bob@example.org")
        self.db_path = os.path.join(self.wmk.data_dir, "webmailkey.db")

    def tearDown(self):
        self.wmk.close()

    def count(self, table):
        return int(self.pg.psql(self.dbname, "SELECT count(*) FROM %s" % table))

    def test_copies_checks_and_the_cli_then_runs_on_postgresql(self):
        before = dump_of(self.db_path)
        out = self.wmk.cli("store", "migrate", "--to", "postgresql", json_output=True)
        tables = {t["table"]: t for t in out["tables"]}
        self.assertEqual(out["to"], "postgresql")
        self.assertEqual(tables["users"]["rows"], 2)
        self.assertEqual(tables["user_emails"]["rows"], 2)
        self.assertGreaterEqual(tables["audit"]["rows"], 2)
        for t in tables.values():
            self.assertRegex(t["checksum"], "^[0-9a-f]{64}$")
        # What psql sees on the server is what the SQLite store held.
        src = sqlite3.connect(self.db_path)
        for name, t in tables.items():
            n = src.execute("SELECT count(*) FROM %s" % name).fetchone()[0]
            self.assertEqual(self.count(name), n, name)
            self.assertEqual(t["rows"], n, name)
        self.assertEqual(self.pg.psql(self.dbname, "SELECT login FROM users ORDER BY id"), "alice\nbob")
        self.assertEqual(self.pg.psql(self.dbname, "SELECT password_hash FROM users WHERE login = 'bob'"),
                         src.execute("SELECT password_hash FROM users WHERE login = 'bob'").fetchone()[0])
        src.close()
        self.assertEqual(dump_of(self.db_path), before, "the source changed")

        # A second copy is refused: the target is not empty.
        r = self.wmk.cli("store", "migrate", "--to", "postgresql", "--json", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["code"], "already_exists")
        self.assertEqual(self.count("users"), 2)

        # The CLI on the copy: the users are there, and new rows land in PostgreSQL only.
        self.wmk.write_config(store="postgresql")
        users = self.wmk.cli("user", "list", json_output=True)
        self.assertEqual(sorted(u["login"] for u in users), ["alice", "bob"])
        self.wmk.add_user("carol", PASSWORD, "carol@example.org")
        self.assertEqual(self.count("users"), 3)
        self.assertEqual(self.pg.psql(self.dbname, "SELECT max(id) FROM users"), "3")
        self.assertEqual(dump_of(self.db_path), before)
        # Addresses stay unique without regard to case.
        r = self.wmk.cli("user", "add", "dave", "--email", "alice@example.org", "--password-stdin",
                         input=PASSWORD + "\n", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already belongs", r.stderr)
        # The audit is append-only on the server too.
        r = subprocess.run([os.path.join(self.pg.bin, "psql"), "-X", "-d", self.conninfo, "-c",
                            "DELETE FROM audit"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("append-only", r.stderr)

    def test_a_killed_copy_leaves_the_target_empty_and_the_source_untouched(self):
        con = sqlite3.connect(self.db_path)
        con.executemany("INSERT INTO audit (at, login, event, outcome, detail) VALUES (?, ?, ?, ?, ?)",
                        ((i, "alice", "login", "ok", "bulk row %d" % i) for i in range(60000)))
        con.commit()
        con.close()
        before = dump_of(self.db_path)
        con = sqlite3.connect(self.db_path)
        latest = str(con.execute("PRAGMA user_version").fetchone()[0])
        con.close()
        p = subprocess.Popen([CLI, "--config", self.wmk.config_path, "store", "migrate", "--to",
                              "postgresql"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once the copy is under way: the schema is in place (committed before the
        # copy starts) and the copy's transaction has written audit rows.
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            tables = self.pg.psql(self.dbname, "SELECT to_regclass('wmk_schema_version') IS NOT NULL")
            if tables == "t" and self.pg.psql(self.dbname, "SELECT version FROM wmk_schema_version") == latest:
                locks = self.pg.psql("postgres", "SELECT count(*) FROM pg_locks l JOIN pg_database d "
                                     "ON d.oid = l.database WHERE d.datname = '%s' AND l.locktype = "
                                     "'advisory'" % self.dbname)
                if int(locks) > 0:
                    time.sleep(0.3)
                    break
            time.sleep(0.05)
        self.assertIsNone(p.poll(), "the copy ended before it could be killed")
        p.send_signal(signal.SIGKILL)
        p.wait()
        # The server rolls the dead client's transaction back.
        deadline = time.time() + 30
        while time.time() < deadline and int(self.pg.psql(
                "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'" % self.dbname)) > 0:
            time.sleep(0.1)
        for table in ("users", "user_emails", "audit", "sessions", "keys", "grants"):
            self.assertEqual(self.count(table), 0, table)
        self.assertEqual(dump_of(self.db_path), before, "the source changed")
        # And a copy from scratch goes through.
        out = self.wmk.cli("store", "migrate", "--to", "postgresql", json_output=True)
        audit = [t for t in out["tables"] if t["table"] == "audit"][0]
        self.assertGreaterEqual(audit["rows"], 60000)
        self.assertEqual(self.count("audit"), audit["rows"])


class StoreConfig(unittest.TestCase):
    """The connection string may hold a password: the config must not be readable by
    every user then, and the password is never shown."""

    def test_password_needs_a_private_config_and_is_never_shown(self):
        secret = "s3cret-Pw-0987"
        with Instance() as wmk:
            wmk.write_config(store_postgresql='"host=/nonexistent dbname=x password=%s"' % secret)
            r = wmk.cli("config", "check", check=False)
            self.assertNotIn(secret, r.stdout + r.stderr)
            os.chmod(wmk.config_path, 0o644)
            r = wmk.cli("user", "list", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("readable by every user", r.stderr)
            self.assertNotIn(secret, r.stdout + r.stderr)
            os.chmod(wmk.config_path, 0o640)
            wmk.write_config(store="postgresql")
            os.chmod(wmk.config_path, 0o640)
            r = wmk.cli("user", "list", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("the database at dbname=x", r.stderr)
            self.assertIn("is unreachable:", r.stderr)
            self.assertNotIn(secret, r.stdout + r.stderr)
            r = wmk.cli("store", "migrate", "--to", "postgresql", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertNotIn(secret, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
