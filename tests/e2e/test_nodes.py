#!/usr/bin/env python3
"""Two webmailkey nodes behind one name, without sticky sessions (issue 14, "Nodes").

Each node is its own data directory (its own GnuPG home, TLS certificate, lighttpd and
FastCGI workers); both share one PostgreSQL (a throwaway cluster, tests/e2e/wmk_pg.py).
A browser here is one cookie jar that may send any request to either node, as a load
balancer would: the cookies are host cookies of 127.0.0.1, so the same ones reach both.

The mail source: one IMAP server for both nodes, the suite's Dovecot (loopback, IMAPS
with a test CA, `build/test_dovecot`), logged in to as a master user; the webmailkey
user (alice@example.org) has the login of a Dovecot user, `user7`.

Fixtures come from outside tools: the OpenPGP key is made by real gpg and imported
with node A's `webmailkey key import`; the message is encrypted by real gpg, built as
PGP/MIME by Python's email package and appended to the INBOX by Python's imaplib."""

import email.policy
import imaplib
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import Instance, start_dovecot, stop_dovecot  # noqa: E402
from wmk_pg import PgCluster, pg_missing  # noqa: E402
from test_web_grants import Gpg, pgp_mime  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "alice key passphrase 1"
NEW_KEY_PASS = "alice key passphrase 2"
SECRET_TEXT = "The launch code is 4711-NODES"
# Dovecot's users are user0..user63 with password pw-N-secret (tests/unit/dovecot_server.h).
IMAP_USER = LOGIN = "user7"
IMAP_PASSWORD = "pw-7-secret"
RACERS = 50


def home_has_secret(data_dir, fpr):
    """Whether a node's GnuPG home holds the key's secret, asked of real gpg."""
    r = subprocess.run(["gpg", "--homedir", os.path.join(data_dir, "gnupg"), "--batch",
                        "--with-colons", "--list-secret-keys", fpr],
                       capture_output=True, timeout=60)
    return r.returncode == 0 and b"\nsec:" in b"\n" + r.stdout


@unittest.skipIf(pg_missing(), pg_missing() or "")
class TwoNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start_dovecot(cls)
        cls.pg = PgCluster()
        cls.tmp = tempfile.mkdtemp(prefix="wmk-nodes-")
        cls.nodes = []
        try:
            conninfo = cls.pg.create_database("wmk_nodes")
            master_file = os.path.join(cls.tmp, "imap-master")
            with open(master_file, "w") as f:
                f.write(cls.info["master_password"] + "\n")
            os.chmod(master_file, 0o600)
            shared = {"store": "postgresql",
                      "store_postgresql": '"%s"' % conninfo,
                      "mailbox": "imap", "imap_host": "localhost",
                      "imap_port": cls.info["imaps_port"], "imap_tls": "imaps",
                      "imap_ca_file": cls.info["ca_file"], "imap_login": "master",
                      "imap_master_user": cls.info["master"],
                      "imap_master_password_file": master_file}
            cls.a = Instance(config=shared)
            cls.nodes.append(cls.a)
            cls.b = Instance(config=shared)
            cls.nodes.append(cls.b)
            cls._make_fixtures()
            for n in cls.nodes:
                n.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _make_fixtures(cls):
        a = cls.a
        a.add_user(LOGIN, PASSWORD, "alice@example.org")
        cls.gpg = Gpg(os.path.join(cls.tmp, "gpg-alice"))
        cls.fpr = cls.gpg.make_key("Alice <alice@example.org>", "")
        exported = os.path.join(cls.tmp, "alice-secret.asc")
        cls.gpg.export_secret(cls.fpr, "", exported)
        a.cli("key", "import", LOGIN, "--type", "openpgp", exported, "--passphrase-stdin",
              input="%s\n\n" % KEY_PASS)
        raw = pgp_mime(cls.gpg, cls.fpr, SECRET_TEXT + "\n", "Secret plans").as_bytes(
            policy=email.policy.SMTP)
        ctx = ssl.create_default_context(cafile=cls.info["ca_file"])
        with imaplib.IMAP4_SSL("localhost", cls.info["imaps_port"], ssl_context=ctx) as c:
            c.login(IMAP_USER, IMAP_PASSWORD)
            typ, data = c.append("INBOX", None, None, raw)
            assert typ == "OK", data
            validity, uid = re.search(rb"APPENDUID (\d+) (\d+)", data[0]).groups()
        cls.msg = "%s.%s" % (validity.decode(), uid.decode())

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "gpg", None):
            cls.gpg.stop()
        for n in cls.nodes:
            n.close()
        cls.pg.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        stop_dovecot(cls)

    def setUp(self):
        self.a.cli("grant", "revoke", "--all")

    # ---- a browser that the "load balancer" sends to either node

    def browser(self, node, name):
        c = node.client(user_agent=name + " (wmk-e2e)")
        c.login(LOGIN, PASSWORD)
        c.csrf = c.get("/inbox").hidden("csrf", form_action="/logout")
        return c

    @staticmethod
    def to(c, node):
        """The next requests of browser c go to node, with the same cookies."""
        c.instance = node
        return c

    def decrypt(self, c):
        return c.post("/decrypt", {"id": self.msg, "folder": "INBOX", "csrf": c.csrf})

    def unlock(self, c, passphrase=KEY_PASS):
        return c.post("/unlock", {"id": self.msg, "folder": "INBOX", "csrf": c.csrf,
                                  "passphrase": passphrase, "confirm": passphrase, "ok": "1"})

    def live_grants(self, node=None):
        return (node or self.a).cli("grant", "list", "--login", LOGIN, json_output=True)

    # ---- the four scenarios

    def test_unlock_on_node_a_then_decrypt_on_node_b(self):
        c = self.browser(self.a, "Browser-One")
        r = self.decrypt(c)
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        r = self.unlock(c)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(SECRET_TEXT, r.text)

        self.to(c, self.b)
        r = c.get("/inbox")
        self.assertEqual(r.page, "inbox", r.text)
        self.assertIn("Secret plans", r.text)
        self.assertNotEqual(r.text_of("key-banner"), "", "node B does not show the grant")
        r = self.decrypt(c)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(SECRET_TEXT, r.text)
        # Node B's GnuPG home took the key from the store at that use.
        self.assertTrue(home_has_secret(self.b.data_dir, self.fpr))
        self.assertEqual(len(self.live_grants(self.b)), 1)

        # Lock on node B ends the grant node A made: A asks for the passphrase again.
        r = c.post("/lock", {"csrf": c.csrf})
        self.assertIn(r.status, (200, 303), r.text)
        self.assertEqual(self.live_grants(), [])
        self.to(c, self.a)
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)

    def test_second_session_starting_on_node_b_stops_node_a_grant(self):
        one = self.browser(self.a, "Browser-One")
        self.decrypt(one)
        r = self.unlock(one)
        self.assertEqual(r.page, "decrypted", r.text)

        two = self.browser(self.b, "Browser-Two")
        r = self.decrypt(two)
        self.assertEqual((r.status, r.page), (409, "in-use"), r.text)
        self.assertIn("Browser-One", r.text_of("grant-agent"))
        self.assertNotIn(SECRET_TEXT, r.text)
        r = two.post("/stop-other", {"id": self.msg, "folder": "INBOX", "csrf": two.csrf})
        self.assertEqual((r.status, r.page), (200, "confirm-stop"), r.text)
        grant_id = r.hidden("grant", form_action="/stop-other")
        self.assertEqual(grant_id, self.live_grants()[0]["id"])
        r = two.post("/stop-other", {"id": self.msg, "folder": "INBOX", "csrf": two.csrf,
                                     "grant": grant_id, "ok": "1"})
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        self.assertEqual(self.live_grants(), [])

        # Node A tells the first browser at its next request, and it must unlock again.
        r = one.get("/inbox")
        self.assertIn("was stopped", r.text_of("notice"))
        self.assertEqual(r.text_of("key-banner"), "")
        r = self.decrypt(one)
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)
        # The second browser unlocks on node B and reads on node A.
        r = self.unlock(two)
        self.assertEqual(r.page, "decrypted", r.text)
        r = self.decrypt(self.to(two, self.a))
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertIn(SECRET_TEXT, r.text)

    def test_grant_revoke_on_node_a_is_seen_on_node_b(self):
        c = self.browser(self.b, "Browser-One")
        self.decrypt(c)
        r = self.unlock(c)
        self.assertEqual(r.page, "decrypted", r.text)
        grant = self.live_grants(self.b)[0]["id"]
        self.a.cli("grant", "revoke", grant)
        r = c.get("/inbox")
        self.assertIn("administrator", r.text_of("notice"))
        self.assertEqual(r.text_of("key-banner"), "")
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)

    def test_racing_unlocks_across_both_nodes_give_exactly_one_grant(self):
        racers = [self.browser(self.a if i % 2 == 0 else self.b, "Racer-%02d" % i)
                  for i in range(RACERS)]
        for c in racers:
            r = self.decrypt(c)
            self.assertEqual(r.page, "unlock", r.text)
        barrier = threading.Barrier(RACERS)
        results = [None] * RACERS

        def race(i):
            barrier.wait()
            try:
                results[i] = self.unlock(racers[i])
            except Exception as e:  # noqa: BLE001 - reported below as that racer's result
                results[i] = e

        threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [])
        winners = [i for i, r in enumerate(results) if r.page == "decrypted"]
        self.assertEqual(len(winners), 1, [(r.status, r.page) for r in results])
        self.assertIn(SECRET_TEXT, results[winners[0]].text)
        for i, r in enumerate(results):
            if i in winners:
                continue
            # Each loser is told the key is in use in another session (and by which
            # browser), and sees nothing of the message.
            self.assertEqual((r.status, r.page), (409, "in-use"), r.text)
            self.assertIn("Racer-%02d" % winners[0], r.text_of("grant-agent"))
            self.assertNotIn(SECRET_TEXT, r.text)
        grants = self.live_grants()
        self.assertEqual(len(grants), 1, grants)
        # Both nodes' CLIs read the same one from the store.
        self.assertEqual([g["id"] for g in self.live_grants(self.b)], [grants[0]["id"]])
        self.assertIn("Racer-%02d" % winners[0], grants[0]["user_agent"])

    def test_grant_idle_limit_holds_on_the_other_node(self):
        for n in self.nodes:
            n.write_config(grant_idle_timeout=5)
        try:
            c = self.browser(self.a, "Browser-One")
            self.decrypt(c)
            r = self.unlock(c)
            self.assertEqual(r.page, "decrypted", r.text)
            time.sleep(6)
            r = self.decrypt(self.to(c, self.b))
            self.assertEqual(r.page, "unlock", r.text)
            self.assertIn("ended", r.text_of("notice"))
            self.assertNotIn(SECRET_TEXT, r.text)
        finally:
            for n in self.nodes:
                n.write_config(grant_idle_timeout=600)

    def test_key_older_than_stored_material_is_refused_on_b_until_fsck_on_a(self):
        # As a key imported before the store held OpenPGP key material: only node A's
        # GnuPG home has it. (psql and gpg are outside tools.)
        r = subprocess.run(["gpg", "--homedir", os.path.join(self.b.data_dir, "gnupg"), "--batch",
                            "--yes", "--delete-secret-and-public-key", self.fpr],
                           capture_output=True, timeout=60)
        self.assertFalse(home_has_secret(self.b.data_dir, self.fpr), r.stderr)
        self.pg.psql("wmk_nodes", "UPDATE keys SET openpgp_secret = NULL, material_digest = NULL")
        c = self.browser(self.b, "Browser-One")
        self.decrypt(c)
        r = self.unlock(c)
        self.assertEqual(r.status, 403, r.text)
        self.assertIn("Your key cannot be used", r.text_of("notice"))
        self.assertIn("webmailkey fsck", r.text_of("notice"))
        self.assertNotIn(SECRET_TEXT, r.text)
        self.assertEqual(self.live_grants(), [])

        out = self.b.cli("fsck", json_output=True)
        self.assertEqual(out["key_material_missing"], [self.fpr])
        out = self.a.cli("fsck", json_output=True)
        self.assertEqual(out["key_material_filled"], [self.fpr])
        self.assertEqual(self.pg.psql("wmk_nodes", "SELECT count(*) FROM keys "
                                      "WHERE openpgp_secret IS NOT NULL"), "1")
        r = self.unlock(c)
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertIn(SECRET_TEXT, r.text)

    # ---- a key changed on one node is seen by the other at its next use

    def test_key_passphrase_changed_on_node_a_applies_on_node_b(self):
        try:
            self.a.cli("key", "passwd", self.fpr, "--passphrase-stdin",
                       input="%s\n%s\n" % (KEY_PASS, NEW_KEY_PASS))
            c = self.browser(self.b, "Browser-One")
            self.decrypt(c)
            r = self.unlock(c, KEY_PASS)
            self.assertEqual(r.status, 403, r.text)
            self.assertIn("Wrong passphrase", r.text_of("notice"))
            self.assertNotIn(SECRET_TEXT, r.text)
            r = self.unlock(c, NEW_KEY_PASS)
            self.assertEqual(r.page, "decrypted", r.text)
            self.assertIn(SECRET_TEXT, r.text)
        finally:
            self.a.cli("grant", "revoke", "--all")
            self.a.cli("key", "passwd", self.fpr, "--passphrase-stdin",
                       input="%s\n%s\n" % (NEW_KEY_PASS, KEY_PASS))


if __name__ == "__main__":
    unittest.main()
