"""Compose, sign, encrypt and send through a real lighttpd over HTTPS (DESIGN flow 5).

The config's `sendmail` is a stand-in (tests/fixtures/sendmail-capture.sh) that records
its argv and the message. Keys are made with the real CLI; what we send is checked by
outside tools only: Python's `email` package, `gpg --verify`, `openssl cms -verify`,
`gpg -d` with the recipient's exported key."""

import email
import email.message
import email.policy
import email.utils
import glob
import mailbox
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CLI, SOURCE_DIR, Instance, multipart_encrypted  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "key passphrase for tests"
EXPORT_PASS = "export passphrase"
CAPTURE = os.path.join(SOURCE_DIR, "tests", "fixtures", "sendmail-capture.sh")
SPLIT_SIGNED = os.path.join(SOURCE_DIR, "tests", "fixtures", "split_signed.py")

BINARY = bytes(range(256)) * 4
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
       b"\x00\x00\x00\x90wS\xde" + bytes(range(200)))
# Typed in a browser textarea: CRLF line ends, non-ASCII, lines transports mangle.
BODY = ("Hallo Bob,\r\nFrom the garden: Äpfel, Birnen – 日本語 ✓   \r\n.\r\n"
        "Bcc: eve@evil.example\r\n\r\n-- \r\nAlice")
BODY_LF = BODY.replace("\r\n", "\n")
# Literally typed; as an encoded-word it would decode to CR LF "Bcc: eve@evil.example".
SUBJECT = "Grüße ✓ =?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?= done"


def run(argv, stdin=None, check=True):
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (argv, r.returncode, r.stderr.decode()))
    return r


def login(client, user="alice", password=PASSWORD):
    return client.login(user, password)


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def leaf_parts(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.tmp = cls.wmk.tmp
        cls.outbox = os.path.join(cls.tmp, "outbox")
        os.mkdir(cls.outbox)
        cls.good_sendmail = cls.stand_in("sendmail-ok", "")
        cls.bad_sendmail = cls.stand_in(
            "sendmail-bad",
            "SENDMAIL_CAPTURE_EXIT=69 SENDMAIL_CAPTURE_STDERR='mail system down for maintenance'")
        cls.wmk.write_config(sendmail=cls.good_sendmail)
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org", name="Alice Exämple")
        cls.wmk.add_user("bob", PASSWORD, "bob@example.org", name="Bob")
        cls.fpr = {}
        for login_, kind in (("alice", "openpgp"), ("alice", "smime"), ("bob", "openpgp"),
                             ("bob", "smime")):
            info = cls.wmk.cli("key", "generate", login_, "--type", kind, "--passphrase-stdin",
                               input=KEY_PASS + "\n", json_output=True)
            cls.fpr[(login_, kind)] = info["fingerprint"]
        # An outside GnuPG home that knows Alice's public key and Bob's and Alice's secret
        # keys (exported from the server with an export passphrase).
        cls.gnupg = os.path.join(cls.tmp, "outside-gpg")
        os.mkdir(cls.gnupg, 0o700)
        with open(os.path.join(cls.gnupg, "gpg-agent.conf"), "w") as f:
            f.write("s2k-count 65536\n")
        for login_ in ("alice", "bob"):
            sec = cls.export_secret(cls.fpr[(login_, "openpgp")])
            cls.gpg("--pinentry-mode", "loopback", "--passphrase", EXPORT_PASS, "--import",
                    stdin=sec)
        # Alice's S/MIME certificate and Bob's S/MIME key as PEM for openssl.
        cls.alice_cert = os.path.join(cls.tmp, "alice-cert.pem")
        with open(cls.alice_cert, "w") as f:
            f.write(cls.wmk.cli("key", "export", cls.fpr[("alice", "smime")]).stdout)
        p12 = os.path.join(cls.tmp, "bob.p12")
        with open(p12, "wb") as f:
            f.write(cls.export_secret(cls.fpr[("bob", "smime")]))
        cls.bob_key = os.path.join(cls.tmp, "bob-key.pem")
        cls.bob_cert = os.path.join(cls.tmp, "bob-cert.pem")
        run(["openssl", "pkcs12", "-in", p12, "-passin", "pass:" + EXPORT_PASS, "-nocerts",
             "-nodes", "-out", cls.bob_key])
        run(["openssl", "pkcs12", "-in", p12, "-passin", "pass:" + EXPORT_PASS, "-nokeys",
             "-clcerts", "-out", cls.bob_cert])
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["gpgconf", "--homedir", cls.gnupg, "--kill", "gpg-agent"],
                       capture_output=True)
        cls.wmk.close()

    @classmethod
    def stand_in(cls, name, settings):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nSENDMAIL_CAPTURE_DIR=%s %s exec %s \"$@\"\n"
                    % (cls.outbox, settings, CAPTURE))
        os.chmod(path, 0o700)
        return path

    @classmethod
    def export_secret(cls, fpr):
        """The secret key as the CLI exports it (bytes: PKCS#12 is binary)."""
        r = run([CLI, "--config", cls.wmk.config_path, "key", "export", fpr, "--secret",
                 "--passphrase-stdin"], stdin=(KEY_PASS + "\n" + EXPORT_PASS + "\n").encode())
        return r.stdout

    @classmethod
    def gpg(cls, *args, stdin=None, check=True):
        return run(["gpg", "--homedir", cls.gnupg, "--batch", "--no-tty", "--trust-model",
                    "always"] + list(args), stdin=stdin, check=check)

    # ---- helpers

    def submissions(self):
        return len(glob.glob(os.path.join(self.outbox, "*.args")))

    def last_submission(self):
        n = self.submissions()
        with open(os.path.join(self.outbox, "%d.args" % n), "rb") as f:
            args = f.read().split(b"\0")[:-1]
        with open(os.path.join(self.outbox, "%d.message" % n), "rb") as f:
            message = f.read()
        return [a.decode() for a in args], message

    def folder(self, login_, name):
        md = mailbox.Maildir(self.wmk.maildir_path(login_), factory=None, create=False)
        return md if name == "INBOX" else md.get_folder(name)

    def folder_bytes(self, login_, name):
        try:
            f = self.folder(login_, name)
        except mailbox.NoSuchMailboxError:
            return {}
        return {key: f.get_bytes(key) for key in f.keys()}

    def compose_form(self, client, **query):
        r = client.get("/compose", params=query or None)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "compose")
        return r

    def post_compose(self, client, fields, files=()):
        token = client.get("/compose").hidden("csrf", form_action="/compose")
        pairs = [("csrf", token)] + list(fields)
        # Always multipart/form-data, as the compose form sends it.
        files = list(files) or [("attachment", "", "application/octet-stream", b"")]
        return client.post("/compose", pairs, files=files)

    def no_grants(self):
        """Ends every grant of alice (as an admin would): one key has at most one live
        grant, and each test unlocks in a session of its own."""
        self.wmk.cli("grant", "revoke", "--login", "alice")

    def unlock(self, client, page, passphrase=KEY_PASS, confirm=None):
        return client.post("/unlock", {
            "csrf": page.hidden("csrf", form_action="/unlock"),
            "draft": page.hidden("draft", form_action="/unlock"),
            "then": page.hidden("then", form_action="/unlock"),
            "passphrase": passphrase,
            "confirm": passphrase if confirm is None else confirm,
        })

    def send_reviewed(self, client, review):
        self.assertEqual(review.page, "signed", review.text)
        return client.post("/compose", {
            "csrf": review.hidden("csrf", form_action="/compose"),
            "draft": review.hidden("draft", form_action="/compose"),
            "digest": review.hidden("digest", form_action="/compose"),
            "action": "send",
        })

    def assert_content(self, msg, body=BODY_LF, attachments=(("Daten äöü.bin", BINARY),)):
        """msg (an email.message) carries exactly the text and attachments typed."""
        texts = [p for p in leaf_parts(msg)
                 if p.get_content_type() == "text/plain" and not p.get_filename()]
        self.assertEqual(texts[0].get_content(), body)
        got = [(p.get_filename(), p.get_payload(decode=True)) for p in leaf_parts(msg)
               if p.get_content_disposition() == "attachment"
               and p.get_content_type() not in ("application/pgp-signature",
                                                "application/pkcs7-signature")]
        self.assertEqual(got, list(attachments))

    # ---- plain mail

    def test_plain_message_with_non_ascii_and_attachments_is_sent_exactly(self):
        c = self.wmk.client()
        login(c)
        self.compose_form(c)
        before = self.submissions()
        drafts_before = self.folder_bytes("alice", "Drafts")
        r = self.post_compose(c, [
            ("from", "alice@example.org"),
            ("to", "Bøb Ünlaut <bob@example.org>, carol@example.net"),
            ("cc", '"Müller, Jörg" <j@example.de>'),
            ("subject", SUBJECT),
            ("body", BODY),
            ("action", "send"),
        ], files=[("attachment", "Daten äöü.bin", "text/html", BINARY),
                  ("attachment", "../../etc/bild.png", "application/x-evil", PNG)])
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "sent", r.text)
        self.assertEqual(self.submissions(), before + 1)
        args, raw = self.last_submission()
        self.assertEqual(args, ["-i", "-f", "alice@example.org", "--", "bob@example.org",
                                "carol@example.net", "j@example.de"])
        msg = parse(raw)
        # Autocrypt: Alice's OpenPGP key (config `autocrypt`, on by default).
        self.assertEqual(sorted(k.lower() for k in msg.keys()),
                         ["autocrypt", "cc", "content-type", "date", "from", "message-id",
                          "mime-version", "subject", "to"])
        self.assertEqual(str(msg["subject"]), SUBJECT)
        self.assertEqual([(a.display_name, a.addr_spec) for a in msg["to"].addresses],
                         [("Bøb Ünlaut", "bob@example.org"), ("", "carol@example.net")])
        self.assertEqual([(a.display_name, a.addr_spec) for a in msg["cc"].addresses],
                         [("Müller, Jörg", "j@example.de")])
        self.assertEqual([(a.display_name, a.addr_spec) for a in msg["from"].addresses],
                         [("Alice Exämple", "alice@example.org")])
        for name, value in msg.items():
            self.assertNotIn("\n", str(value))
            self.assertNotIn("\r", str(value))
        self.assertEqual([p.defects for p in msg.walk() if p.defects], [])
        self.assert_content(msg, attachments=(("Daten äöü.bin", BINARY), ("bild.png", PNG)))
        # The type is sniffed, never the browser's claim.
        types = [p.get_content_type() for p in leaf_parts(msg)]
        self.assertIn("image/png", types)
        self.assertNotIn("text/html", types)
        self.assertNotIn("application/x-evil", types)
        # The copy in Sent is the same message; no draft is left.
        self.assertIn(raw, self.folder_bytes("alice", "Sent").values())
        self.assertEqual(self.folder_bytes("alice", "Drafts"), drafts_before)

    def test_injection_through_any_field_is_refused_and_nothing_is_sent(self):
        c = self.wmk.client()
        login(c)
        before = self.submissions()
        evil = [
            ("to", "bob@example.org\r\nBcc: eve@evil.example"),
            ("to", "bob@example.org\nBcc: eve@evil.example"),
            ("to", "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?= <bob@example.org>"),
            ("to", "-oQ/tmp/x@example.org"),
            ("to", "bob@example.org -X/tmp/log"),
            ("cc", "--@example.org"),
            ("subject", "Hi\r\nBcc: eve@evil.example"),
            ("subject", "Hi\nBcc: eve@evil.example"),
            ("from", "eve@evil.example"),
        ]
        for field, value in evil:
            fields = {"to": "bob@example.org", "subject": "x", "body": "x", "action": "send"}
            fields[field] = value
            r = self.post_compose(c, list(fields.items()))
            self.assertEqual(r.status, 400, "%s=%r: %r" % (field, value, r))
            self.assertEqual(r.page, "compose")
            self.assertTrue(r.text_of("notice-error"), r.text)
        self.assertEqual(self.submissions(), before)

    def test_post_without_csrf_is_refused(self):
        c = self.wmk.client()
        login(c)
        before = self.submissions()
        r = c.post("/compose", {"to": "bob@example.org", "subject": "x", "body": "x",
                                "action": "send"})
        self.assertEqual(r.status, 403)
        r = c.post("/compose", {"csrf": "0" * 43, "to": "bob@example.org", "action": "send"})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.submissions(), before)

    def test_attachments_come_only_from_uploads(self):
        c = self.wmk.client()
        login(c)
        r = self.post_compose(c, [("to", "bob@example.org"), ("subject", "paths"),
                                  ("body", "no files"), ("attachment", "/etc/passwd"),
                                  ("keep", "0"), ("action", "send")])
        self.assertEqual(r.page, "sent", r.text)
        _, raw = self.last_submission()
        msg = parse(raw)
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertNotIn(b"root:", raw)

    # ---- signing

    def test_pgp_sign_through_unlock_keeps_the_draft_and_verifies_with_gpg(self):
        c = self.wmk.client()
        self.no_grants()
        login(c)
        before = self.submissions()
        drafts_before = self.folder_bytes("alice", "Drafts")
        r = self.post_compose(c, [
            ("to", "Bob <bob@example.org>"), ("subject", SUBJECT), ("body", BODY),
            ("kind", "openpgp"), ("action", "sign"),
        ], files=[("attachment", "Daten äöü.bin", "application/octet-stream", BINARY)])
        # No grant yet: the unlock page, and the draft waits in Drafts exactly.
        self.assertEqual(r.page, "unlock", r.text)
        draft_id = r.hidden("draft", form_action="/unlock")
        self.assertTrue(draft_id)
        drafts = self.folder_bytes("alice", "Drafts")
        self.assertEqual(set(drafts) - set(drafts_before), {draft_id})
        stored = parse(drafts[draft_id])
        self.assertEqual(str(stored["subject"]), SUBJECT)
        self.assert_content(stored)

        # A wrong passphrase: 403, the unlock page again, the draft still there.
        wrong = self.unlock(c, r, passphrase="not the passphrase")
        self.assertEqual(wrong.status, 403)
        self.assertEqual(wrong.page, "unlock")
        self.assertIn(draft_id, self.folder_bytes("alice", "Drafts"))
        differ = self.unlock(c, r, confirm="something else")
        self.assertEqual(differ.status, 400)

        review = self.unlock(c, r)
        self.assertEqual(review.status, 200, review.text)
        self.assertEqual(review.page, "signed", review.text)
        self.assertIn("Birnen", review.text_of("signed-text"))
        self.assertEqual(self.submissions(), before)  # nothing sent before Send
        sent = self.send_reviewed(c, review)
        self.assertEqual(sent.page, "sent", sent.text)
        self.assertEqual(self.submissions(), before + 1)
        args, raw = self.last_submission()
        self.assertEqual(args, ["-i", "-f", "alice@example.org", "--", "bob@example.org"])

        msg = parse(raw)
        self.assertEqual(msg.get_content_type(), "multipart/signed")
        self.assertEqual(msg.get_param("protocol"), "application/pgp-signature")
        self.assertEqual(str(msg["subject"]), SUBJECT)
        self.assert_content(msg)
        path = os.path.join(self.tmp, "pgp-signed.eml")
        with open(path, "wb") as f:
            f.write(raw)
        split = run([sys.executable, SPLIT_SIGNED, path, path + ".signed", path + ".sig"])
        self.assertIn(b"micalg=pgp-sha256", split.stdout)
        v = self.gpg("--verify", path + ".sig", path + ".signed", check=False)
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn(b"Good signature", v.stderr)
        self.assertIn(raw, self.folder_bytes("alice", "Sent").values())
        self.assertEqual(self.folder_bytes("alice", "Drafts"), drafts_before)

        # The grant is live now: signing again goes straight to the review.
        again = self.post_compose(c, [("to", "bob@example.org"), ("subject", "again"),
                                      ("body", "second"), ("kind", "openpgp"),
                                      ("action", "sign")])
        self.assertEqual(again.page, "signed", again.text)
        # Send with a digest that is not the one shown: refused.
        forged = c.post("/compose", {"csrf": again.hidden("csrf", form_action="/compose"),
                                     "draft": again.hidden("draft", form_action="/compose"),
                                     "digest": "0" * 64, "action": "send"})
        self.assertEqual(forged.status, 409)
        self.assertEqual(self.submissions(), before + 1)

    def test_smime_signature_verifies_with_openssl_cms(self):
        c = self.wmk.client()
        self.no_grants()
        login(c)
        r = self.post_compose(c, [("to", "bob@example.org"), ("subject", SUBJECT),
                                  ("body", BODY), ("kind", "smime"), ("action", "sign")],
                              files=[("attachment", "Daten äöü.bin", "x/y", BINARY)])
        self.assertEqual(r.page, "unlock", r.text)
        review = self.unlock(c, r)
        self.assertEqual(review.page, "signed", review.text)
        self.assertEqual(self.send_reviewed(c, review).page, "sent")
        _, raw = self.last_submission()
        path = os.path.join(self.tmp, "smime-signed.eml")
        with open(path, "wb") as f:
            f.write(raw)
        v = run(["openssl", "cms", "-verify", "-in", path, "-inform", "SMIME", "-CAfile",
                 self.alice_cert, "-purpose", "any", "-out", path + ".content"], check=False)
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn(b"Verification successful", v.stderr)
        msg = parse(raw)
        self.assertEqual(msg.get_param("protocol"), "application/pkcs7-signature")
        self.assertEqual(msg.get_param("micalg"), "sha-256")
        self.assert_content(msg)

    # ---- encryption

    def test_encrypted_message_decrypts_for_recipient_and_sent_copy_for_sender(self):
        c = self.wmk.client()
        login(c)
        review = self.post_compose(c, [("to", "Bob <bob@example.org>"), ("subject", SUBJECT),
                                       ("body", BODY), ("kind", "openpgp"),
                                       ("action", "encrypt")],
                                   files=[("attachment", "Daten äöü.bin", "x/y", BINARY)])
        self.assertEqual(review.page, "signed", review.text)
        self.assertIn("bob@example.org", review.text)
        # The draft of the encrypted message is encrypted at rest.
        for raw in self.folder_bytes("alice", "Drafts").values():
            self.assertNotIn(b"Birnen", raw)
        self.assertEqual(self.send_reviewed(c, review).page, "sent")
        args, raw = self.last_submission()
        self.assertEqual(args, ["-i", "-f", "alice@example.org", "--", "bob@example.org"])
        self.assertNotIn(b"Birnen", raw)
        msg = parse(raw)
        self.assertEqual(msg.get_content_type(), "multipart/encrypted")
        payload = msg.get_payload()[1].get_payload(decode=True)
        dec = self.gpg("--pinentry-mode", "loopback", "--passphrase", EXPORT_PASS, "-d",
                       stdin=payload)
        inner = parse(b"MIME-Version: 1.0\n" + dec.stdout.replace(b"\r\n", b"\n"))
        self.assert_content(inner)
        # Bob's key alone opens it: decrypt in a home holding only Bob's secret key.
        bob_only = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(bob_only, 0o700)
        run(["gpg", "--homedir", bob_only, "--batch", "--pinentry-mode", "loopback",
             "--passphrase", EXPORT_PASS, "--import"],
            stdin=self.export_secret(self.fpr[("bob", "openpgp")]))
        dec_bob = run(["gpg", "--homedir", bob_only, "--batch", "--pinentry-mode", "loopback",
                       "--passphrase", EXPORT_PASS, "-d"], stdin=payload)
        self.assertEqual(dec_bob.stdout, dec.stdout)
        subprocess.run(["gpgconf", "--homedir", bob_only, "--kill", "gpg-agent"],
                       capture_output=True)
        # The Sent copy is the same message, and Alice's key opens it.
        self.assertIn(raw, self.folder_bytes("alice", "Sent").values())
        alice_only = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(alice_only, 0o700)
        run(["gpg", "--homedir", alice_only, "--batch", "--pinentry-mode", "loopback",
             "--passphrase", EXPORT_PASS, "--import"],
            stdin=self.export_secret(self.fpr[("alice", "openpgp")]))
        dec_alice = run(["gpg", "--homedir", alice_only, "--batch", "--pinentry-mode",
                         "loopback", "--passphrase", EXPORT_PASS, "-d"], stdin=payload)
        self.assertEqual(dec_alice.stdout, dec.stdout)
        subprocess.run(["gpgconf", "--homedir", alice_only, "--kill", "gpg-agent"],
                       capture_output=True)

    def test_smime_encrypted_message_decrypts_with_openssl(self):
        c = self.wmk.client()
        login(c)
        review = self.post_compose(c, [("to", "bob@example.org"), ("subject", SUBJECT),
                                       ("body", BODY), ("kind", "smime"),
                                       ("action", "encrypt")],
                                   files=[("attachment", "Daten äöü.bin", "x/y", BINARY)])
        self.assertEqual(review.page, "signed", review.text)
        self.assertEqual(self.send_reviewed(c, review).page, "sent")
        _, raw = self.last_submission()
        path = os.path.join(self.tmp, "smime-enc.eml")
        with open(path, "wb") as f:
            f.write(raw)
        d = run(["openssl", "cms", "-decrypt", "-binary", "-in", path, "-inform", "SMIME",
                 "-recip", self.bob_cert, "-inkey", self.bob_key])
        self.assert_content(parse(b"MIME-Version: 1.0\n" + d.stdout.replace(b"\r\n", b"\n")))

    def test_missing_recipient_key_is_named_before_anything_is_sent(self):
        c = self.wmk.client()
        login(c)
        before = self.submissions()
        r = self.post_compose(c, [("to", "bob@example.org, carol@elsewhere.example"),
                                  ("subject", "x"), ("body", "secret"), ("kind", "openpgp"),
                                  ("action", "encrypt")])
        self.assertEqual(r.status, 400)
        self.assertEqual(r.page, "compose")
        self.assertIn("carol@elsewhere.example", r.text_of("notice-error"))
        self.assertNotIn("bob@example.org", r.text_of("notice-error"))
        self.assertEqual(self.submissions(), before)

    # ---- failures and replies

    def test_failed_send_keeps_the_draft_and_says_why(self):
        c = self.wmk.client()
        login(c)
        self.wmk.write_config(sendmail=self.bad_sendmail)
        try:
            r = self.post_compose(c, [("to", "bob@example.org"), ("subject", "will fail"),
                                      ("body", "kept"), ("action", "send")])
        finally:
            self.wmk.write_config(sendmail=self.good_sendmail)
        self.assertEqual(r.status, 502)
        self.assertEqual(r.page, "compose")
        self.assertIn("mail system down for maintenance", r.text_of("notice-error"))
        self.assertIn("69", r.text_of("notice-error"))
        drafts = [parse(b) for b in self.folder_bytes("alice", "Drafts").values()]
        self.assertIn("will fail", [str(m["subject"]) for m in drafts])
        # Sending again from the form it shows works and empties Drafts of it.
        draft_id = r.hidden("draft", form_action="/compose")
        again = self.post_compose(c, [("draft", draft_id), ("to", "bob@example.org"),
                                      ("subject", "will fail"), ("body", "kept"),
                                      ("action", "send")])
        self.assertEqual(again.page, "sent", again.text)
        self.assertNotIn(draft_id, self.folder_bytes("alice", "Drafts"))

    def deliver_encrypted_to_alice(self, secret_text):
        """A PGP/MIME message to Alice made by outside gpg with her exported public key."""
        inner = email.message.EmailMessage()
        inner.set_content(secret_text)
        enc = self.gpg("--armor", "--encrypt", "-r", self.fpr[("alice", "openpgp")],
                       stdin=inner.as_bytes()).stdout
        m = multipart_encrypted(enc)
        m["From"] = "Erin <erin@example.net>"
        m["To"] = "alice@example.org"
        m["Subject"] = "Secret plans"
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = email.utils.make_msgid(domain="example.net")
        return self.wmk.deliver_with_python("alice", m)

    def test_message_page_links_to_reply_and_forward(self):
        m = email.message.EmailMessage()
        m["From"] = "Carol <carol@example.net>"
        m["To"] = "alice@example.org"
        m["Subject"] = "Lunch?"
        m.set_content("Shall we meet at noon?\n")
        uid = self.wmk.deliver_with_python("alice", m)
        c = self.wmk.client()
        login(c)
        page = c.get("/message", {"id": uid, "folder": "INBOX"})
        self.assertEqual(page.page, "message", page.text)
        links = page.links()
        reply = [l for l in links if l.startswith("/compose?reply=")]
        forward = [l for l in links if l.startswith("/compose?forward=")]
        self.assertEqual(len(reply), 1, links)
        self.assertEqual(len(forward), 1, links)
        r = c.get(reply[0])
        self.assertEqual(r.page, "compose", r.text)
        inputs = {i.get("name"): i for f in r.forms() for i in f["inputs"]}
        self.assertEqual(inputs["subject"]["value"], "Re: Lunch?")
        self.assertIn("carol@example.net", inputs["to"]["value"])
        f = c.get(forward[0])
        self.assertEqual(f.page, "compose", f.text)
        self.assertIn("noon", f.text)

    def test_without_the_grant_cookie_every_key_path_is_the_unlock_page(self):
        """A live grant opens only with the browser's grant cookie: without it, signing
        from /compose, quoting a reply and /decrypt all take the one key path's answer
        (the unlock page, nothing decrypted), and the draft is kept."""
        uid = self.deliver_encrypted_to_alice("The vault code is 0815.\n")
        c = self.wmk.client()
        self.no_grants()
        login(c)
        s = self.post_compose(c, [("to", "bob@example.org"), ("subject", "unlock me"),
                                  ("body", "x"), ("kind", "openpgp"), ("action", "sign")])
        self.assertEqual(self.unlock(c, s).page, "signed")
        self.assertIn("__Host-wmk-grant", c.cookies)
        del c.cookies["__Host-wmk-grant"]

        drafts_before = self.folder_bytes("alice", "Drafts")
        r = self.post_compose(c, [("to", "bob@example.org"), ("subject", "no cookie"),
                                  ("body", "kept"), ("kind", "openpgp"), ("action", "sign")])
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        draft_id = r.hidden("draft", form_action="/unlock")
        self.assertEqual(set(self.folder_bytes("alice", "Drafts")) - set(drafts_before),
                         {draft_id})

        reply = self.compose_form(c, reply=uid)
        self.assertNotIn("vault code is 0815", reply.text)
        d = c.post("/decrypt", {"id": uid, "folder": "INBOX",
                                "csrf": reply.hidden("csrf", form_action="/compose")})
        self.assertEqual((d.status, d.page), (200, "unlock"), d.text)
        self.assertNotIn("vault code is 0815", d.text)
        g = c.get("/decrypt", {"id": uid, "folder": "INBOX"})
        self.assertEqual((g.status, g.page), (200, "unlock"), g.text)

        # Unlocking again (the draft's own unlock form) gives a new cookie and the review.
        review = self.unlock(c, r)
        self.assertEqual(review.page, "signed", review.text)
        self.assertIn("__Host-wmk-grant", c.cookies)

    def test_reply_to_encrypted_message_is_encrypted_and_never_quoted_in_clear(self):
        uid = self.deliver_encrypted_to_alice("The launch code is 4711.\n")
        c = self.wmk.client()
        self.no_grants()
        login(c)
        form = self.compose_form(c, reply=uid)
        inputs = {i.get("name"): i for f in form.forms() for i in f["inputs"]}
        self.assertIn("checked", inputs["encrypt"])
        self.assertEqual(inputs["original_encrypted"]["value"], "1")
        # Locked key: nothing quoted (the whole sentence: a random Message-ID on the page
        # may hold the digits).
        self.assertNotIn("launch code is 4711", form.text)
        before = self.submissions()
        # Unencrypted without the explicit choice: refused, nothing sent.
        r = self.post_compose(c, [("to", "erin@example.net"), ("subject", "Re: Secret plans"),
                                  ("body", "> The launch code is 4711."),
                                  ("original_encrypted", "1"), ("action", "send")])
        self.assertEqual(r.status, 400)
        self.assertIn("encrypted", r.text_of("notice-error"))
        self.assertEqual(self.submissions(), before)

        # With the key unlocked (a grant from signing): the original is not signed by
        # its sender, so the user is asked first (docs/security.md, "Replying and
        # forwarding"); after Yes (a POST) the reply quotes the decrypted text, and
        # stays encrypted by default.
        s = self.post_compose(c, [("to", "bob@example.org"), ("subject", "unlock me"),
                                  ("body", "x"), ("kind", "openpgp"), ("action", "sign")])
        self.assertEqual(self.unlock(c, s).page, "signed")
        ask = c.get("/compose", params={"reply": uid})
        self.assertEqual(ask.page, "confirm-quote", ask.text)
        self.assertIn("The launch code is 4711.", ask.text_of("quote-preview"))
        form = self.post_compose(c, [("reply", uid), ("folder", "INBOX"), ("action", "quote")])
        self.assertEqual(form.page, "compose", form.text)
        self.assertIn("&gt; The launch code is 4711.", form.text)
        inputs = {i.get("name"): i for f in form.forms() for i in f["inputs"]}
        self.assertIn("checked", inputs["encrypt"])

        # The explicit choice lets it go unencrypted.
        r = self.post_compose(c, [("to", "bob@example.org"), ("subject", "Re: Secret plans"),
                                  ("body", "ok in clear"), ("original_encrypted", "1"),
                                  ("plain_ok", "1"), ("action", "send")])
        self.assertEqual(r.page, "sent", r.text)


if __name__ == "__main__":
    unittest.main()
