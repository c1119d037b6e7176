#!/usr/bin/env python3
"""Correspondents' keys in signature verdicts, through the real server.

Signed-only mail from outside senders (multipart/signed made by real gpg and
openssl, Python's email for the MIME) is shown with its verdict on the message page
with no unlock: unknown before the sender's key is imported, valid after; a key with
an extra user id for another address gives no "by the sender" for mail from that
address, because only the imported binding counts.
"""

import email.message
import email.policy
import email.utils
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_contacts_cli import OutsideGpg, run  # noqa: E402
from wmk_e2e import Instance  # noqa: E402

PASSWORD = "Login-Password-1234"
POLICY = email.policy.SMTP


def login(client):
    return client.login("alice", PASSWORD)


def content_entity(text):
    part = email.message.EmailMessage(policy=POLICY)
    part.set_content(text)
    del part["MIME-Version"]
    return part.as_bytes(policy=POLICY)


def multipart_signed(sender, subject, content, signature, protocol, micalg, sig_type, name):
    boundary = "=-signed-e2e-41c2"
    head = ("From: %s\r\nTo: alice@example.org\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/signed; boundary=\"%s\"; protocol=\"%s\"; micalg=%s\r\n\r\n"
            % (sender, subject, email.utils.formatdate(time.time()), email.utils.make_msgid(),
               boundary, protocol, micalg)).encode()
    sig_head = ("Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; "
                "filename=\"%s\"\r\n" % (sig_type, name, name)).encode()
    if sig_type == "application/pkcs7-signature":
        import base64
        sig_head += b"Content-Transfer-Encoding: base64\r\n"
        signature = base64.encodebytes(signature).replace(b"\n", b"\r\n")
    return (head + b"--" + boundary.encode() + b"\r\n" + content + b"\r\n--" +
            boundary.encode() + b"\r\n" + sig_head + b"\r\n" + signature + b"\r\n--" +
            boundary.encode() + b"--\r\n")


class Verdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.outside = OutsideGpg(os.path.join(cls.wmk.tmp, "og"))
        cls.carol = cls.outside.make_key("Carol <carol@remote.example>")
        cls.two = cls.outside.make_key("Main <main@remote.example>")
        cls.outside.gpg("--quick-add-uid", cls.two, "Boss <boss@remote.example>")
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.outside.close()
        run(["gpgconf", "--homedir", os.path.join(cls.wmk.data_dir, "gnupg"), "--kill",
             "gpg-agent"], check=False)
        cls.wmk.close()

    def pgp_signed(self, fpr, sender, subject, text):
        content = content_entity(text)
        sig = self.outside.gpg("--armor", "--detach-sign", "--local-user", fpr,
                               stdin=content).stdout
        return multipart_signed(sender, subject, content, sig, "application/pgp-signature",
                                "pgp-sha256", "application/pgp-signature", "signature.asc")

    def deliver(self, raw):
        before = set(self.uids())
        self.wmk.deliver("alice", raw)
        (uid,) = set(self.uids()) - before
        return uid

    def uids(self):
        new = os.path.join(self.wmk.maildir_path("alice"), "new")
        cur = os.path.join(self.wmk.maildir_path("alice"), "cur")
        names = []
        for d in (new, cur):
            if os.path.isdir(d):
                names += [n.split(":2,")[0] for n in os.listdir(d)]
        return names

    def state(self, client, uid):
        r = client.get("/message", {"id": uid})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.page, "message")
        body = r.text
        marker = 'data-signature-state="'
        self.assertIn(marker, body, "the message page shows no verdict")
        start = body.index(marker) + len(marker)
        return body[start:body.index('"', start)], body

    def test_signed_only_unknown_then_valid_after_import_without_unlock(self):
        uid = self.deliver(self.pgp_signed(self.carol, "Carol <carol@remote.example>",
                                           "Signed by Carol", "Hello from outside.\n"))
        c = self.wmk.client()
        login(c)
        state, body = self.state(c, uid)
        self.assertEqual(state, "unknown_key")
        self.assertIn("Hello from outside.", body)
        # The signature's line is in plain words, the fingerprint grouped as everywhere
        # on the web pages; the stable name stays in an attribute only.
        grouped = " ".join(self.carol[i:i + 4] for i in range(0, len(self.carol), 4))
        self.assertIn("Unknown key: ", body)
        self.assertIn(grouped, body)
        self.assertNotIn("unknown_key:", body)

        path = os.path.join(self.wmk.tmp, "carol.asc")
        with open(path, "wb") as f:
            f.write(self.outside.export(self.carol))
        self.wmk.cli("contact", "import", "alice", path, "--email", "carol@remote.example")
        state, body = self.state(c, uid)
        self.assertEqual(state, "valid")
        self.assertIn("the sender", body)
        self.assertIn("Good signature: ", body)
        # No key was unlocked: the page carries no key banner and no grant exists.
        self.assertEqual(self.wmk.cli("grant", "list", json_output=True), [])

    def test_extra_user_id_binds_nothing(self):
        path = os.path.join(self.wmk.tmp, "two.asc")
        with open(path, "wb") as f:
            f.write(self.outside.export(self.two))
        self.wmk.cli("contact", "import", "alice", path, "--email", "main@remote.example")
        main_uid = self.deliver(self.pgp_signed(self.two, "Main <main@remote.example>",
                                                "From main", "Main speaking.\n"))
        boss_uid = self.deliver(self.pgp_signed(self.two, "Boss <boss@remote.example>",
                                                "From boss", "Boss speaking (not really).\n"))
        c = self.wmk.client()
        login(c)
        self.assertEqual(self.state(c, main_uid)[0], "valid")
        state, body = self.state(c, boss_uid)
        # Good signature, the key names Boss, but nothing binds Boss to it.
        self.assertEqual(state, "sender_unverified")
        self.assertNotIn("Valid signature", body)

    def test_smime_certificate_bound_by_the_user(self):
        key, crt = os.path.join(self.wmk.tmp, "dave.key"), os.path.join(self.wmk.tmp, "dave.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj",
             "/CN=Dave/emailAddress=dave@remote.example", "-addext",
             "subjectAltName=email:dave@remote.example"])
        content = content_entity("Dave signs with S/MIME.\n")
        cpath = os.path.join(self.wmk.tmp, "dave.content")
        with open(cpath, "wb") as f:
            f.write(content)
        sig = run(["openssl", "cms", "-sign", "-binary", "-in", cpath, "-signer", crt, "-inkey",
                   key, "-outform", "DER"]).stdout
        uid = self.deliver(multipart_signed(
            "Dave <dave@remote.example>", "S/MIME from Dave", content, sig,
            "application/pkcs7-signature", "sha-256", "application/pkcs7-signature",
            "smime.p7s"))
        c = self.wmk.client()
        login(c)
        # Self-signed: no CA vouches for it.
        self.assertEqual(self.state(c, uid)[0], "unknown_key")
        self.wmk.cli("contact", "import", "alice", crt)
        self.assertEqual(self.state(c, uid)[0], "valid")


if __name__ == "__main__":
    unittest.main()
