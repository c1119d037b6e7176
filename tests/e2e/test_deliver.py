#!/usr/bin/env python3
"""End to end: `webmailkey deliver` as an MTA runs it (message on stdin, exit status
read as sysexits.h: 0 delivered, 1 refused, 2 usage, 75 try again later).

The user row is written with Python's sqlite3, so this suite does not depend on
`webmailkey user add`."""

import os
import sqlite3
import subprocess
import tempfile
import unittest
from email.message import EmailMessage

BUILD = os.environ.get("WEBMAILKEY_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
WEBMAILKEY = os.path.join(BUILD, "webmailkey")

EX_TEMPFAIL = 75


def sample_message(subject="Hello from Postfix"):
    m = EmailMessage()
    m["From"] = "Sender <sender@example.org>"
    m["To"] = "alice@example.org"
    m["Subject"] = subject
    m["Date"] = "Fri, 01 Mar 2024 12:34:56 +0100"
    m["Message-ID"] = "<e2e@example.org>"
    m.set_content("Body text\n")
    return m.as_bytes()


class DeliverTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wmk-e2e-deliver-")
        self.data = os.path.join(self.tmp.name, "data")
        self.conf = os.path.join(self.tmp.name, "webmailkey.conf")
        self.run_cli(["init", "--data-dir", self.data], check=True)
        db = sqlite3.connect(os.path.join(self.data, "webmailkey.db"))
        with db:
            db.execute("INSERT INTO users (id, login, password_hash, created) "
                       "VALUES (1, 'alice', 'x', 0)")
            db.execute("INSERT INTO user_emails (user_id, email, is_primary) "
                       "VALUES (1, 'alice@example.org', 1)")
        db.close()
        self.maildir = os.path.join(self.data, "mail", "alice", "Maildir")

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, args, stdin=b"", check=False):
        p = subprocess.run([WEBMAILKEY, "--config", self.conf] + args, input=stdin,
                           capture_output=True, timeout=60)
        if check and p.returncode != 0:
            self.fail("webmailkey %s failed (%d): %s" % (args, p.returncode, p.stderr.decode()))
        return p

    def deliver(self, message, *extra):
        return self.run_cli(["deliver", "alice"] + list(extra), stdin=message)

    def test_delivers_into_new_and_indexes(self):
        envelope = b"From sender@example.org  Fri Mar  1 12:34:56 2024\n"
        p = self.deliver(envelope + sample_message())
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        new = os.listdir(os.path.join(self.maildir, "new"))
        self.assertEqual(len(new), 1)
        self.assertEqual(os.listdir(os.path.join(self.maildir, "tmp")), [])
        with open(os.path.join(self.maildir, "new", new[0]), "rb") as f:
            self.assertEqual(f.read(), sample_message())  # the envelope line is not stored
        self.assertIn(new[0], p.stdout.decode())
        db = sqlite3.connect(os.path.join(self.data, "webmailkey.db"))
        rows = db.execute("SELECT uid, folder, subject, from_addr FROM mail_index").fetchall()
        db.close()
        self.assertEqual(rows, [(new[0], "INBOX", "Hello from Postfix", "sender@example.org")])

    def test_json_output_and_folder(self):
        p = self.run_cli(["--json", "deliver", "alice", "--folder", "Drafts"],
                         stdin=sample_message("draft"))
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn('"folder":"Drafts"', p.stdout.decode())
        self.assertIn('"indexed":true', p.stdout.decode())
        self.assertEqual(len(os.listdir(os.path.join(self.maildir, ".Drafts", "new"))), 1)

    def test_refusals_are_permanent(self):
        p = self.run_cli(["deliver", "nobody"], stdin=sample_message())
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such user", p.stderr.decode())
        for junk in (b"", b"no header block at all\n", bytes(range(256))):
            p = self.deliver(junk)
            self.assertEqual(p.returncode, 1, junk[:20])
            self.assertIn("refusing to deliver", p.stderr.decode())
        new = os.path.join(self.maildir, "new")
        self.assertEqual(os.listdir(new) if os.path.exists(new) else [], [])

    def test_bad_folder_is_a_usage_error(self):
        for folder in ("Trash", "../INBOX", "inbox"):
            p = self.deliver(sample_message(), "--folder", folder)
            self.assertEqual(p.returncode, 2, folder)
            self.assertIn("unknown folder", p.stderr.decode())

    def test_too_large_is_refused(self):
        big = sample_message() + b"x" * (64 * 1024 * 1024 + 8192)
        p = self.deliver(big)
        self.assertEqual(p.returncode, 1)
        self.assertIn("larger than the limit", p.stderr.decode())

    def test_io_trouble_is_temporary(self):
        # A file where the Maildir should be: the delivery cannot write, the MTA retries.
        os.makedirs(os.path.dirname(self.maildir))
        with open(self.maildir, "w") as f:
            f.write("in the way")
        p = self.deliver(sample_message())
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr.decode())

    def test_missing_database_is_temporary(self):
        os.remove(os.path.join(self.data, "webmailkey.db"))
        p = self.deliver(sample_message())
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
