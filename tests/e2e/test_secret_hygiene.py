"""Secrets never reach logs, argv, the environment, temp files or the database in the
clear (docs/security.md). A login password, a key passphrase and the two cookies that
are credentials (session token, grant secret) are used through the real CLI and the real
web flow over lighttpd; then every place a secret could leak is searched for them:

- every file under the data directory (database, WAL, GnuPG home, server logs, TLS);
- every file created or changed under the temp directory since the test started;
- the argv and environment of every process on the machine (lighttpd, gpg-agent, ...);
- what the admin CLI prints about users, keys, grants, sessions and the audit log.

The markers are random per run, so a hit can only be a leak.
"""

import base64
import os
import secrets
import tempfile
import time
import unittest

from wmk_e2e import Instance

PASSWORD = "pw-" + secrets.token_hex(12)
KEY_PASS = "kp-" + secrets.token_hex(12)


class SecretHygiene(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.time() - 1
        cls.wmk = Instance()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.add_user("bob", "bob-" + secrets.token_hex(8), "bob@example.org")
        cls.fpr = cls.wmk.cli("key", "generate", "alice", "--type", "openpgp",
                              "--passphrase-stdin", input=KEY_PASS + "\n",
                              json_output=True)["fingerprint"]
        cls.wmk.cli("key", "generate", "bob", "--type", "openpgp", "--passphrase-stdin",
                    input=KEY_PASS + "x\n")
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def unlock_through_the_web(self):
        """Logs in, asks to sign a draft (no grant yet: the unlock page), unlocks with the
        key passphrase. Returns the client, whose jar then holds both credential cookies."""
        c = self.wmk.client()
        form = c.get("/login")
        r = c.post("/login", {"csrf": form.hidden("csrf", form_action="/login"),
                              "user": "alice", "password": PASSWORD})
        self.assertEqual(r.status, 303, r)
        compose = c.get("/compose")
        self.assertEqual(compose.page, "compose", compose.text)
        r = c.post("/compose", [("csrf", compose.hidden("csrf", form_action="/compose")),
                                ("to", "bob@example.org"), ("subject", "hello"),
                                ("body", "a body"), ("kind", "openpgp"), ("action", "sign")],
                   files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual(r.page, "unlock", r.text)
        review = c.post("/unlock", {
            "csrf": r.hidden("csrf", form_action="/unlock"),
            "draft": r.hidden("draft", form_action="/unlock"),
            "then": r.hidden("then", form_action="/unlock"),
            "passphrase": KEY_PASS, "confirm": KEY_PASS})
        self.assertEqual(review.page, "signed", review.text)
        return c

    def markers(self, client):
        found = {"login password": PASSWORD.encode(), "key passphrase": KEY_PASS.encode()}
        for name, value in client.cookies.items():
            if name in ("__Host-wmk-session", "__Host-wmk-grant"):
                found["cookie " + name] = value.encode()
                # The raw bytes too, in case something stores them decoded.
                raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
                found["cookie bytes " + name] = raw
                found["cookie hex " + name] = raw.hex().encode()
        self.assertIn("cookie __Host-wmk-session", found)
        self.assertIn("cookie __Host-wmk-grant", found)
        return found

    def assert_absent(self, where, data, markers):
        for what, needle in markers.items():
            self.assertNotIn(needle, data, "%s found in %s" % (what, where))

    def test_secrets_stay_out_of_files_processes_and_cli_output(self):
        client = self.unlock_through_the_web()
        markers = self.markers(client)
        # The grant is live and usable right now: the secrets are in use, not forgotten.
        grants = self.wmk.cli("grant", "list", json_output=True)
        self.assertEqual(len(grants), 1, grants)

        # The data directory: database (and WAL), GnuPG home, logs, certificates.
        scanned = 0
        for root, _dirs, files in os.walk(self.wmk.data_dir):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    self.assert_absent(path, f.read(), markers)
                scanned += 1
        self.assertGreater(scanned, 5)
        db_files = [n for n in os.listdir(self.wmk.data_dir) if n.startswith("webmailkey.db")]
        self.assertIn("webmailkey.db", db_files)

        # Temp files: anything created or changed since the test began.
        tmp = tempfile.gettempdir()
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                path = os.path.join(root, name)
                try:
                    if os.path.islink(path) or os.path.getmtime(path) < self.started:
                        continue
                    if os.path.getsize(path) > 64 * 1024 * 1024:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue  # vanished, a socket, or not ours to read
                self.assert_absent(path, data, markers)

        # Every process's argv and environment (lighttpd, gpg-agent started by the CGI).
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        seen_agent = False
        for pid in pids:
            for part in ("cmdline", "environ"):
                try:
                    with open("/proc/%s/%s" % (pid, part), "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if part == "cmdline" and b"gpg-agent" in data and \
                        self.wmk.data_dir.encode() in data:
                    seen_agent = True
                self.assert_absent("/proc/%s/%s" % (pid, part), data, markers)
        self.assertTrue(seen_agent, "expected the instance's gpg-agent to be running")

        # What an admin can print.
        for args in (("user", "show", "alice"), ("user", "list"), ("key", "list"),
                     ("key", "show", self.fpr), ("grant", "list"), ("session", "list"),
                     ("audit",)):
            for argv in (args, ("--json",) + args):
                res = self.wmk.cli(*argv)
                self.assert_absent(" ".join(argv), (res.stdout + res.stderr).encode(), markers)

if __name__ == "__main__":
    unittest.main(verbosity=2)
