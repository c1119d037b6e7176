"""Reply, Reply all and Reply to list (RFC 5322 §3.6.3, RFC 2369), through a real
lighttpd over HTTPS: each draft's recipients and thread headers, a Reply-To that
points away from the signer asks before any decrypted text is quoted, the mangled
Exchange shape decrypts, and a failed decryption says why.

Fixtures come from outside tools: keys from the real CLI, exported; ciphertexts from
real gpg in an outside GnuPG home; the messages from Python's email package in the
shapes providers give them (tests/fixtures/provider_shapes.py)."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CLI, SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "key passphrase for tests"
EXPORT_PASS = "export passphrase"
SHAPES = os.path.join(SOURCE_DIR, "tests", "fixtures", "provider_shapes.py")
LIST_SECRET = "MARKER-list-51c0aa"
SIGNED_SECRET = "MARKER-signed-2e77d1"
EXCHANGE_SECRET = "MARKER-exchange-90fe3b"


def run(argv, stdin=None, check=True):
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (argv, r.returncode, r.stderr.decode()))
    return r


class ReplyAll(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.tmp = cls.wmk.tmp
        cls.fpr = {}
        for login_, name in (("alice", "Alice"), ("bob", "Bob")):
            cls.wmk.add_user(login_, PASSWORD, login_ + "@example.org", name=name)
            info = cls.wmk.cli("key", "generate", login_, "--type", "openpgp",
                               "--passphrase-stdin", input=KEY_PASS + "\n", json_output=True)
            cls.fpr[login_] = info["fingerprint"]
        cls.gnupg = os.path.join(cls.tmp, "outside-gpg")
        os.mkdir(cls.gnupg, 0o700)
        for login_ in ("alice", "bob"):
            sec = run([CLI, "--config", cls.wmk.config_path, "key", "export", cls.fpr[login_],
                       "--secret", "--passphrase-stdin"],
                      stdin=(KEY_PASS + "\n" + EXPORT_PASS + "\n").encode()).stdout
            cls.gpg("--import", stdin=sec)

        # A clear thread message: Reply-To, To and Cc with Alice among them, two
        # Message-ID headers, References.
        cls.clear = cls.shaped("gmail", None, "--from", "Sam <sam@example.net>",
                               "--reply-to", "Sam at home <sam@home.example>",
                               "--to", "Alice <alice@example.org>, carol@example.com",
                               "--cc", "Dave <dave@example.com>, alice@example.org",
                               "--message-id", "<first@example.net>",
                               "--message-id", "<second@example.net>",
                               "--references", "<r1@example.net> <r2@example.net>",
                               "--subject", "Thread")
        # Bob signs and encrypts to Alice; a list manager passes it on with a footer,
        # List-Post and Reply-To munged to the list.
        cls.list_msg = cls.shaped("list", cls.encrypt(LIST_SECRET, sign=True),
                                  "--from", "Bob <bob@example.org>",
                                  "--to", "team@lists.example.com",
                                  "--message-id", "<list1@example.org>", "--subject", "Team")
        # Bob signs and encrypts to Alice, Cc Carol; no Reply-To.
        cls.signed = cls.shaped("thunderbird", cls.encrypt(SIGNED_SECRET, sign=True),
                                "--from", "Bob <bob@example.org>",
                                "--to", "alice@example.org", "--cc", "carol@example.com",
                                "--message-id", "<signed1@example.org>", "--subject", "Code")
        # The same kind of mail as Exchange re-wraps it.
        cls.exchange = cls.shaped("exchange", cls.encrypt(EXCHANGE_SECRET, sign=True),
                                  "--from", "Bob <bob@example.org>", "--to", "alice@example.org",
                                  "--message-id", "<ex1@example.org>", "--subject", "Mangled")
        # Encrypted to Bob only: not for any of Alice's keys.
        cls.not_for_alice = cls.shaped("gmail", cls.encrypt("x", to="bob"),
                                       "--from", "Bob <bob@example.org>",
                                       "--to", "alice@example.org", "--subject", "Not yours")
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["gpgconf", "--homedir", cls.gnupg, "--kill", "gpg-agent"],
                       capture_output=True)
        cls.wmk.close()

    @classmethod
    def gpg(cls, *args, stdin=None):
        return run(["gpg", "--homedir", cls.gnupg, "--batch", "--no-tty", "--trust-model",
                    "always", "--pinentry-mode", "loopback", "--passphrase", EXPORT_PASS]
                   + list(args), stdin=stdin)

    @classmethod
    def encrypt(cls, text, sign=False, to="alice"):
        entity = ("Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % text).encode()
        args = ["--armor"] + (["--sign", "-u", cls.fpr["bob"]] if sign else [])
        ct = cls.gpg(*(args + ["--encrypt", "-r", cls.fpr[to]]), stdin=entity).stdout
        path = os.path.join(cls.tmp, "ct-%d.asc" % len(os.listdir(cls.tmp)))
        with open(path, "wb") as f:
            f.write(ct)
        return path

    @classmethod
    def shaped(cls, shape, ciphertext, *args):
        raw = run([sys.executable, SHAPES, shape, ciphertext or "-"] + list(args)).stdout
        return cls.wmk.deliver_with_python("alice", raw)

    def setUp(self):
        self.wmk.cli("grant", "revoke", "--login", "alice")
        self.c = self.wmk.client()
        form = self.c.get("/login")
        r = self.c.post("/login", {"csrf": form.hidden("csrf", form_action="/login"),
                                   "user": "alice", "password": PASSWORD})
        self.assertEqual(r.status, 303, r)

    def unlock_on(self, uid):
        page = self.c.get("/message", {"id": uid, "folder": "INBOX"})
        token = page.hidden("csrf", form_action="/decrypt")
        unlock = self.c.post("/decrypt", {"csrf": token, "id": uid, "folder": "INBOX"})
        self.assertEqual(unlock.page, "unlock", unlock.text)
        return self.c.post("/unlock", {"csrf": token, "id": uid, "folder": "INBOX",
                                       "passphrase": KEY_PASS, "confirm": KEY_PASS})

    def fields(self, page):
        return {i.get("name"): i.get("value", "") for f in page.forms() for i in f["inputs"]}

    def answer_links(self, page):
        return {kind: [l for l in page.links() if l.startswith("/compose?%s=" % kind)]
                for kind in ("reply", "reply_all", "reply_list", "forward")}

    # ---- recipients and thread headers

    def test_reply_and_reply_all_of_a_clear_message(self):
        page = self.c.get("/message", {"id": self.clear, "folder": "INBOX"})
        self.assertEqual(page.page, "message", page.text)
        links = self.answer_links(page)
        self.assertEqual(len(links["reply"]), 1, page.links())
        self.assertEqual(len(links["reply_all"]), 1, page.links())
        self.assertEqual(links["reply_list"], [], "no List-Post, no Reply to list")

        reply = self.c.get(links["reply"][0])
        self.assertEqual(reply.page, "compose", reply.text)
        f = self.fields(reply)
        self.assertIn("sam@home.example", f["to"])  # Reply-To, not From
        self.assertNotIn("sam@example.net", f["to"])
        self.assertEqual(f["cc"], "")
        self.assertEqual(f["in_reply_to"], "first@example.net")  # the first Message-ID
        self.assertEqual(f["references"], "r1@example.net r2@example.net first@example.net")
        self.assertEqual(f["subject"], "Re: Thread")

        everyone = self.c.get(links["reply_all"][0])
        self.assertEqual(everyone.page, "compose", everyone.text)
        f = self.fields(everyone)
        self.assertIn("sam@home.example", f["to"])
        self.assertNotIn("sam@example.net", f["to"])
        self.assertIn("carol@example.com", f["cc"])
        self.assertIn("dave@example.com", f["cc"])
        self.assertNotIn("alice@example.org", f["cc"] + f["to"])  # her own address
        self.assertEqual(f["in_reply_to"], "first@example.net")

    def test_reply_to_list_and_a_munged_reply_to_ask_before_quoting(self):
        shown = self.unlock_on(self.list_msg)
        self.assertEqual(shown.page, "decrypted", shown.text)
        self.assertIn(LIST_SECRET, shown.text)
        links = self.answer_links(shown)
        self.assertEqual(len(links["reply_list"]), 1, shown.links())
        for kind in ("reply_list", "reply", "reply_all"):
            with self.subTest(kind=kind):
                ask = self.c.get("/compose", {kind: self.list_msg, "folder": "INBOX"})
                # The list is not the signer: the user sees whom it would go to, and the
                # decrypted text is not in any draft yet.
                self.assertEqual(ask.page, "confirm-quote", ask.text)
                self.assertIn("team@lists.example.com", ask.text_of("quote-recipients"))
                self.assertNotIn('<textarea id="body"', ask.text)
                no = self.c.post("/compose", [
                    ("csrf", ask.hidden("csrf", form_action="/compose")),
                    (kind, self.list_msg), ("folder", "INBOX"), ("action", "noquote")],
                    files=[("attachment", "", "application/octet-stream", b"")])
                self.assertEqual(no.page, "compose", no.text)
                f = self.fields(no)
                self.assertEqual(f["to"], "team@lists.example.com")
                self.assertEqual(f["in_reply_to"], "list1@example.org")
                self.assertNotIn(LIST_SECRET, no.text)

    def test_reply_to_the_signer_quotes_and_reply_all_asks(self):
        shown = self.unlock_on(self.signed)
        self.assertEqual(shown.page, "decrypted", shown.text)
        reply = self.c.get("/compose", {"reply": self.signed, "folder": "INBOX"})
        self.assertEqual(reply.page, "compose", reply.text)
        f = self.fields(reply)
        self.assertIn("bob@example.org", f["to"])
        self.assertEqual(f["cc"], "")
        self.assertEqual(f["references"], "signed1@example.org")
        self.assertIn(SIGNED_SECRET, reply.text)
        everyone = self.c.get("/compose", {"reply_all": self.signed, "folder": "INBOX"})
        self.assertEqual(everyone.page, "confirm-quote", everyone.text)
        self.assertIn("carol@example.com", everyone.text_of("quote-recipients"))

    # ---- reading what providers send, and saying why it did not work

    def test_exchange_mangled_message_decrypts(self):
        page = self.c.get("/message", {"id": self.exchange, "folder": "INBOX"})
        self.assertEqual(page.page, "message", page.text)
        self.assertNotIn("encrypted.asc", page.text)  # no attachment: a Decrypt button
        shown = self.unlock_on(self.exchange)
        self.assertEqual(shown.page, "decrypted", shown.text)
        self.assertIn(EXCHANGE_SECRET, shown.text)

    def test_failed_decryption_says_why_and_the_reply_repeats_only_that(self):
        self.unlock_on(self.signed)
        page = self.c.get("/message", {"id": self.not_for_alice, "folder": "INBOX"})
        token = page.hidden("csrf", form_action="/decrypt")
        failed = self.c.post("/decrypt", {"csrf": token, "id": self.not_for_alice,
                                          "folder": "INBOX"})
        self.assertEqual(failed.status, 400, failed.text)
        self.assertIn("not encrypted for any of your keys", failed.text)
        reply = self.c.get("/compose", {"reply": self.not_for_alice, "folder": "INBOX"})
        self.assertEqual(reply.page, "compose", reply.text)
        self.assertIn("not encrypted for any of your keys", reply.text)
        self.assertNotIn("locked", reply.text_of("notice"))


if __name__ == "__main__":
    unittest.main()
