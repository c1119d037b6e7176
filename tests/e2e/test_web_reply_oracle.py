"""Reply and forward cannot be turned into a decryption oracle (docs/security.md,
"Replying and forwarding"), through a real lighttpd over HTTPS.

The attack: Mallory, a second user of the same server (so the server knows Mallory's
key), captured a ciphertext that Bob encrypted to Alice. Mallory wraps it in a mail of
his own with clear text beside it ("What's up?") and waits for Alice to reply or
forward, hoping that the decrypted text is quoted and encrypted to him.

Fixtures come from outside tools: keys from the real CLI, exported; the ciphertexts
from real gpg in an outside GnuPG home; the messages from Python's email package.
After every flow no decrypted marker is found anywhere under the data directory (the
Maildir and its Drafts included).

CTest runs the suite twice: on a Maildir (e2e.test_web_reply_oracle) and with the mail
on a Dovecot over IMAP (e2e.imap.test_web_reply_oracle, WMK_E2E_MAILBOX=imap), where the
mail is appended by Python's imaplib and the Dovecot's directory is searched for markers
too."""

import email
import email.message
import email.policy
import email.utils
import glob
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CLI, Instance, multipart_encrypted  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "key passphrase for tests"
EXPORT_PASS = "export passphrase"
CAPTURED_SECRET = "MARKER-captured-7d41c2"  # Bob to Alice, captured by Mallory
SIGNED_SECRET = "MARKER-signed-9be03f"      # Bob to Alice, signed and encrypted


def run(argv, stdin=None, check=True):
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (argv, r.returncode, r.stderr.decode()))
    return r


def headers(m, sender, subject):
    m["From"] = sender
    m["To"] = "Alice <alice@example.org>"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(time.time())
    m["Message-ID"] = email.utils.make_msgid(domain="example.org")


class ReplyOracle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.tmp = cls.wmk.tmp
        cls.outbox = cls.wmk.capture_sendmail()
        cls.fpr = {}
        for login_, name in (("alice", "Alice"), ("bob", "Bob"), ("mallory", "Mallory")):
            cls.wmk.add_user(login_, PASSWORD, login_ + "@example.org", name=name)
            info = cls.wmk.cli("key", "generate", login_, "--type", "openpgp",
                               "--passphrase-stdin", input=KEY_PASS + "\n", json_output=True)
            cls.fpr[login_] = info["fingerprint"]
        # The outside world: Bob's and Mallory's secret keys, Alice's public key.
        cls.gnupg = os.path.join(cls.tmp, "outside-gpg")
        os.mkdir(cls.gnupg, 0o700)
        for login_ in ("alice", "bob", "mallory"):
            sec = run([CLI, "--config", cls.wmk.config_path, "key", "export", cls.fpr[login_],
                       "--secret", "--passphrase-stdin"],
                      stdin=(KEY_PASS + "\n" + EXPORT_PASS + "\n").encode()).stdout
            cls.gpg("--import", stdin=sec)

        # Bob's mail to Alice, encrypted (not signed), which Mallory captured and wraps
        # in his own mail with clear text beside it.
        inner = email.message.EmailMessage()
        inner.set_content("Alice, the code is %s.\n" % CAPTURED_SECRET)
        captured = cls.gpg("--armor", "--encrypt", "-r", cls.fpr["alice"],
                           stdin=inner.as_bytes()).stdout
        wrapper = email.message.EmailMessage()
        headers(wrapper, "Mallory <mallory@example.org>", "What's up Johnny?")
        wrapper.make_mixed()
        clear = email.message.EmailMessage()
        clear.set_content("Hi Alice, what's up? Just reply, quoting is fine.\n")
        wrapper.attach(clear)
        wrapper.attach(multipart_encrypted(captured))
        cls.wrapped = cls.wmk.deliver_with_python("alice", wrapper)

        # A proper message: Bob signs and encrypts to Alice, From Bob.
        inner = email.message.EmailMessage()
        inner.set_content("Alice, the other code is %s.\n" % SIGNED_SECRET)
        signed = cls.gpg("--armor", "--sign", "-u", cls.fpr["bob"], "--encrypt", "-r",
                         cls.fpr["alice"], stdin=inner.as_bytes()).stdout
        proper = multipart_encrypted(signed)
        headers(proper, "Bob <bob@example.org>", "The other code")
        cls.signed = cls.wmk.deliver_with_python("alice", proper)
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["gpgconf", "--homedir", cls.gnupg, "--kill", "gpg-agent"],
                       capture_output=True)
        cls.wmk.close()

    @classmethod
    def gpg(cls, *args, stdin=None, check=True):
        return run(["gpg", "--homedir", cls.gnupg, "--batch", "--no-tty", "--trust-model",
                    "always", "--pinentry-mode", "loopback", "--passphrase", EXPORT_PASS]
                   + list(args), stdin=stdin, check=check)

    # ---- helpers

    def setUp(self):
        self.wmk.cli("grant", "revoke", "--login", "alice")
        self.c = self.wmk.client()
        form = self.c.get("/login")
        r = self.c.post("/login", {"csrf": form.hidden("csrf", form_action="/login"),
                                   "user": "alice", "password": PASSWORD})
        self.assertEqual(r.status, 303, r)
        # Alice unlocks her key on the message (flow 3 and 4): the grant then lets
        # compose decrypt.
        page = self.c.get("/message", {"id": self.signed, "folder": "INBOX"})
        token = page.hidden("csrf", form_action="/decrypt")
        unlock = self.c.post("/decrypt", {"csrf": token, "id": self.signed, "folder": "INBOX"})
        self.assertEqual(unlock.page, "unlock", unlock.text)
        shown = self.c.post("/unlock", {"csrf": token, "id": self.signed, "folder": "INBOX",
                                        "passphrase": KEY_PASS, "confirm": KEY_PASS})
        self.assertEqual(shown.page, "decrypted", shown.text)
        self.assertIn(SIGNED_SECRET, shown.text)

    def tearDown(self):
        self.assert_no_marker_at_rest()

    def assert_no_marker_at_rest(self):
        for path in self.wmk.files_at_rest():
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for marker in (CAPTURED_SECRET, SIGNED_SECRET):
                self.assertNotIn(marker.encode(), data,
                                 "decrypted text stored in the clear: " + path)

    def token(self):
        return self.c.get("/compose").hidden("csrf", form_action="/compose")

    def post(self, fields):
        files = [("attachment", "", "application/octet-stream", b"")]
        return self.c.post("/compose", [("csrf", self.token())] + list(fields), files=files)

    def form_fields(self, page):
        return {i.get("name"): i for f in page.forms() for i in f["inputs"]}

    def textarea(self, page):
        start = page.text.find('<textarea id="body"')
        end = page.text.find("</textarea>", start)
        return page.text[start:end]

    def send_reviewed(self, review):
        """Send from the review page (data-page="signed"), as its Send button does."""
        self.assertEqual(review.page, "signed", review.text)
        done = self.c.post("/compose", {"csrf": review.hidden("csrf", form_action="/compose"),
                                        "draft": review.hidden("draft", form_action="/compose"),
                                        "digest": review.hidden("digest", form_action="/compose"),
                                        "action": "send"})
        self.assertEqual(done.page, "sent", done.text)

    def submissions(self):
        return len(glob.glob(os.path.join(self.outbox, "*.args")))

    def last_submission(self):
        with open(os.path.join(self.outbox, "%d.message" % self.submissions()), "rb") as f:
            return f.read()

    def drafts(self):
        return self.wmk.folder_messages("alice", "Drafts")

    # ---- the attack

    def test_reply_to_wrapped_ciphertext_asks_first_and_quotes_nothing_without_yes(self):
        before = self.submissions()
        page = self.c.get("/compose", {"reply": self.wrapped, "folder": "INBOX"})
        self.assertEqual(page.page, "confirm-quote", page.text)
        # The page names what would be quoted and who would receive it.
        self.assertIn(CAPTURED_SECRET, page.text_of("quote-preview"))
        self.assertIn("mallory@example.org", page.text_of("quote-recipients"))
        self.assertIn("clear", page.text_of("quote-reasons"))
        self.assertEqual(page.header("Cache-Control"), "no-store")
        # No draft yet, and a GET never quotes.
        self.assertEqual(self.drafts(), [])

        # No: the draft starts without the decrypted text, and says why.
        no = self.post([("reply", self.wrapped), ("folder", "INBOX"), ("action", "noquote")])
        self.assertEqual(no.page, "compose", no.text)
        self.assertNotIn(CAPTURED_SECRET, no.text)
        self.assertIn("without the decrypted text", no.text_of("notice"))
        fields = self.form_fields(no)
        self.assertEqual(fields["quote"]["value"], "none")
        self.assertIn("mallory@example.org", fields["to"]["value"])

        # The reply goes out encrypted to Mallory (the server knows his key) and holds
        # nothing of the captured text.
        review = self.post([("to", fields["to"]["value"]), ("subject", "Re: What's up Johnny?"),
                            ("body", "Nothing much."), ("original_encrypted", "1"),
                            ("encrypt", "1"), ("kind", "openpgp"), ("action", "encrypt")])
        self.send_reviewed(review)
        self.assertEqual(self.submissions(), before + 1)
        plain = self.gpg("--decrypt", "--local-user", self.fpr["mallory"],
                         stdin=self.last_submission()).stdout
        self.assertIn(b"Nothing much.", plain)
        self.assertNotIn(CAPTURED_SECRET.encode(), plain)

    def test_forward_of_wrapped_ciphertext_asks_first(self):
        page = self.c.get("/compose", {"forward": self.wrapped, "folder": "INBOX"})
        self.assertEqual(page.page, "confirm-quote", page.text)
        self.assertIn("nobody yet", page.text_of("quote-recipients"))
        no = self.post([("forward", self.wrapped), ("folder", "INBOX"), ("action", "noquote")])
        self.assertEqual(no.page, "compose", no.text)
        self.assertNotIn(CAPTURED_SECRET, self.textarea(no))

    def test_quote_needs_a_post_with_the_csrf_token(self):
        # A GET naming the answer, or a POST without the token, never quotes.
        got = self.c.get("/compose", {"reply": self.wrapped, "folder": "INBOX",
                                      "action": "quote"})
        self.assertEqual(got.page, "confirm-quote", got.text)
        forged = self.c.post("/compose", [("reply", self.wrapped), ("folder", "INBOX"),
                                          ("action", "quote")],
                             files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual(forged.status, 403, forged.text)
        self.assertNotIn(CAPTURED_SECRET, forged.text)

    def test_yes_quotes_and_the_draft_stays_encrypted_even_when_a_clear_send_is_refused(self):
        yes = self.post([("reply", self.wrapped), ("folder", "INBOX"), ("action", "quote")])
        self.assertEqual(yes.page, "compose", yes.text)
        self.assertIn(CAPTURED_SECRET, self.textarea(yes))
        fields = self.form_fields(yes)
        self.assertEqual(fields["quote"]["value"], "confirmed")
        body = "I asked.\n\n> Alice, the code is %s.\n" % CAPTURED_SECRET
        before = self.submissions()
        # Unencrypted without the explicit choice: refused; the draft is kept, encrypted.
        refused = self.post([("to", "mallory@example.org"), ("subject", "Re: What's up"),
                             ("body", body), ("original_encrypted", "1"), ("quote", "confirmed"),
                             ("action", "send")])
        self.assertEqual(refused.status, 400, refused.text)
        self.assertEqual(self.submissions(), before)
        drafts = self.drafts()
        self.assertEqual(len(drafts), 1)
        self.assertIn(b"multipart/encrypted", drafts[0])
        self.assertIn(b"quote=confirmed", drafts[0])
        # Saved on its own: encrypted too.
        saved = self.post([("to", "mallory@example.org"), ("subject", "Re: What's up"),
                           ("body", body), ("original_encrypted", "1"), ("quote", "confirmed"),
                           ("draft", refused.hidden("draft", form_action="/compose")),
                           ("action", "save")])
        self.assertEqual(saved.page, "compose", saved.text)
        self.assertIn("encrypted to your key", saved.text_of("notice"))
        # With the explicit choice it goes in the clear (the user's decision), and its
        # copy in Sent is kept encrypted.
        sent = self.post([("to", "mallory@example.org"), ("subject", "Re: What's up"),
                          ("body", body), ("original_encrypted", "1"), ("quote", "confirmed"),
                          ("plain_ok", "1"),
                          ("draft", saved.hidden("draft", form_action="/compose")),
                          ("action", "send")])
        self.assertEqual(sent.page, "sent", sent.text)
        self.assertIn(CAPTURED_SECRET.encode(), self.last_submission())
        self.assertEqual(self.drafts(), [])

    def test_a_failed_clear_send_keeps_the_draft_encrypted(self):
        self.wmk.write_config(sendmail="/bin/false")
        try:
            yes = self.post([("reply", self.wrapped), ("folder", "INBOX"), ("action", "quote")])
            body = "> %s\n" % CAPTURED_SECRET
            failed = self.post([("to", "mallory@example.org"), ("subject", "Re"),
                                ("body", body), ("original_encrypted", "1"),
                                ("quote", self.form_fields(yes)["quote"]["value"]),
                                ("plain_ok", "1"), ("action", "send")])
            self.assertEqual(failed.status, 502, failed.text)
            self.assertEqual(len(self.drafts()), 1)
        finally:
            self.wmk.write_config(sendmail=self.wmk.capturing_sendmail)
        self.wmk.clear_folder("alice", "Drafts")

    # ---- the proper case

    def test_reply_to_signed_and_encrypted_message_quotes_without_asking(self):
        page = self.c.get("/compose", {"reply": self.signed, "folder": "INBOX"})
        self.assertEqual(page.page, "compose", page.text)
        self.assertIn(SIGNED_SECRET, self.textarea(page))
        fields = self.form_fields(page)
        self.assertEqual(fields["quote"]["value"], "signer")
        self.assertEqual(fields["quote_signer"]["value"], "bob@example.org")
        self.assertEqual(page.header("Cache-Control"), "no-store")
        body = "Thanks.\n\n> Alice, the other code is %s.\n" % SIGNED_SECRET
        common = [("subject", "Re: The other code"), ("body", body), ("original_encrypted", "1"),
                  ("quote", "signer"), ("quote_signer", "bob@example.org"), ("encrypt", "1"),
                  ("kind", "openpgp")]
        before = self.submissions()
        # An address added later counts as a recipient: Mallory may not get it unasked.
        added = self.post([("to", "bob@example.org"), ("cc", "mallory@example.org"),
                           ("action", "encrypt")] + common)
        self.assertEqual(added.status, 409, added.text)
        self.assertIn("mallory@example.org", added.text_of("notice-error"))
        self.assertEqual(self.submissions(), before)
        # To the signer alone it goes.
        review = self.post([("to", "bob@example.org"),
                            ("draft", added.hidden("draft", form_action="/compose")),
                            ("action", "encrypt")] + common)
        self.send_reviewed(review)
        plain = self.gpg("--decrypt", "--local-user", self.fpr["bob"],
                         stdin=self.last_submission()).stdout
        self.assertIn(SIGNED_SECRET.encode(), plain)


if __name__ == "__main__":
    unittest.main()
