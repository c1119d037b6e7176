#!/usr/bin/env python3
"""Bad input gets a clear error and changes nothing (issue 12), through the real CLI:

- an empty key file, for `key import` (OpenPGP and S/MIME) and `contact import`;
- a garbage config file (random bytes with NUL bytes and invalid UTF-8): every command
  names the file and refuses to run, and nothing is created in the data directory.

What is stored is checked from outside: sqlite3 and gpg."""

import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

BUILD_DIR = os.environ.get("WEBMAILKEY_BUILD_DIR",
                           os.path.join(os.path.dirname(__file__), "..", "..", "build"))
WEBMAILKEY = os.path.join(BUILD_DIR, "webmailkey")


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wmk-bad-", dir="/tmp")
        self.data = os.path.join(self.tmp, "d")
        self.conf = os.path.join(self.tmp, "w.conf")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("WEBMAILKEY_CONFIG", "GNUPGHOME")}
        r = self.wmk("init", "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.wmk("user", "add", "alice", "--email", "alice@example.org", "--password-stdin",
                     stdin=b"Login-Password-Bad-Input\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        subprocess.run(["gpgconf", "--homedir", os.path.join(self.data, "gnupg"), "--kill",
                        "gpg-agent"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wmk(self, *args, stdin=b"", conf=None):
        return subprocess.run([WEBMAILKEY, "--config", conf or self.conf] + list(args),
                              input=stdin, capture_output=True, env=self.env, timeout=120)

    def rows(self, table):
        db = sqlite3.connect(os.path.join(self.data, "webmailkey.db"))
        try:
            return db.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
        finally:
            db.close()

    def keys_in_home(self):
        r = subprocess.run(["gpg", "--homedir", os.path.join(self.data, "gnupg"), "--batch",
                            "--with-colons", "--list-keys"], capture_output=True, timeout=60)
        return [l for l in r.stdout.decode().splitlines() if l.startswith("pub:")]

    def test_empty_key_file_is_refused_and_nothing_is_stored(self):
        empty = os.path.join(self.tmp, "empty.key")
        open(empty, "wb").close()
        cases = [
            ("key", "import", "alice", "--type", "openpgp", empty, "--passphrase-stdin"),
            ("key", "import", "alice", "--type", "smime", empty, "--passphrase-stdin"),
            ("key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin"),
            ("contact", "import", "alice", empty),
            ("contact", "import", "alice", "-"),
        ]
        for args in cases:
            with self.subTest(args=" ".join(args[:4])):
                stdin = b"Key-Passphrase-Bad-1\nFile-Passphrase-Bad-1\n" \
                    if "--passphrase-stdin" in args and "-" not in args else b""
                if "-" in args and "--passphrase-stdin" in args:
                    stdin = b"Key-Passphrase-Bad-1\nFile-Passphrase-Bad-1\n"  # then no key data
                r = self.wmk(*args, stdin=stdin)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                err = r.stderr.decode(errors="replace")
                self.assertRegex(err.lower(), r"empty",
                                 err)
                self.assertNotIn("Traceback", err)
                self.assertEqual(len(err.strip().splitlines()), 1, "one clear line: %r" % err)
        self.assertEqual(self.rows("keys"), 0)
        self.assertEqual(self.rows("contact_keys"), 0)
        self.assertEqual(self.keys_in_home(), [])

    def test_garbage_config_is_refused_naming_the_file(self):
        rng = random.Random(1212)
        garbage = bytes(rng.randrange(256) for _ in range(4096)) + b"\0\xff\xfe = \xc3\x28\n"
        bad = os.path.join(self.tmp, "garbage.conf")
        with open(bad, "wb") as f:
            f.write(garbage)
        before = sorted(os.listdir(self.data))
        with open(os.path.join(self.data, "webmailkey.db"), "rb") as f:
            db_before = f.read()
        for args in (("user", "list"), ("purge",), ("fsck",), ("init",)):
            with self.subTest(args=args):
                r = self.wmk(*args, conf=bad)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                err = r.stderr.decode("utf-8")  # valid UTF-8 whatever the file held
                self.assertIn("garbage.conf", err)
                self.assertRegex(err, r"line \d+|:\d+", err)
                self.assertNotIn("\0", err)
        self.assertEqual(sorted(os.listdir(self.data)), before)
        with open(os.path.join(self.data, "webmailkey.db"), "rb") as f:
            self.assertEqual(f.read(), db_before)


if __name__ == "__main__":
    unittest.main()
