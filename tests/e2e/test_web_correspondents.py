#!/usr/bin/env python3
"""Writing to correspondents outside the server, through a real lighttpd over HTTPS
(issue 10): encryption to their keys and certificates, the compose page naming who has
no usable key and looking keys up by WKD, and the Autocrypt header of outgoing mail.

Correspondents are outsiders with their own tools: keys from real `gpg` in homes of
their own, certificates from real `openssl`. What the server sent is what the
sendmail stand-in (tests/fixtures/sendmail-capture.sh) captured, read by Python's
`email` and opened by the outsiders' own `gpg -d` and `openssl cms -decrypt`. WKD is a
real lighttpd over HTTPS with a test CA on a loopback address (as in
test_contacts_cli.py), and a socket that accepts and never answers plays a hanging
server.
"""

import base64
import email
import email.message
import email.policy
import email.utils
import glob
import os
import random
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_contacts_cli import WKS_CLIENT, OutsideGpg, WkdServers, run, wkd_hash  # noqa: E402
from wmk_e2e import Instance, multipart_encrypted  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "key passphrase for tests"


def login(client, user="alice", password=PASSWORD):
    form = client.get("/login")
    token = form.hidden("csrf", form_action="/login")
    r = client.post("/login", {"csrf": token, "user": user, "password": password})
    assert r.status == 303, r
    return r


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


@unittest.skipUnless(os.path.exists(WKS_CLIENT) and shutil.which("lighttpd"),
                     "needs gpg-wks-client and lighttpd")
class Correspondents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp_root = None
        # ---- the WKD server: remote.example publishes good@ (advanced method);
        # nobody@ is a 404; hang.example never answers.
        cls.wkd_dir = os.path.join("/tmp", "wmk-wkdc-%d" % os.getpid())
        os.makedirs(cls.wkd_dir)
        cls.wkd_owner = OutsideGpg(os.path.join(cls.wkd_dir, "good-gpg"))
        cls.good = cls.wkd_owner.make_key("Good <good@remote.example>")
        www = os.path.join(cls.wkd_dir, "www")
        adv = os.path.join(www, ".well-known", "openpgpkey", "remote.example", "hu")
        os.makedirs(adv)
        with open(os.path.join(adv, wkd_hash("good@remote.example")), "wb") as f:
            f.write(cls.wkd_owner.export(cls.good, armor=False))
        hosts = ["remote.example", "openpgpkey.remote.example"]
        cls.wkd_servers = WkdServers(cls.wkd_dir, hosts, www)
        ca = cls.wkd_servers.ca
        resolve = cls.wkd_servers.resolve(hosts, ["hang.example", "openpgpkey.hang.example"])

        cls.wmk = Instance(config={"wkd_ca_file": ca, "wkd_resolve": resolve})
        cls.tmp = cls.wmk.tmp
        cls.outbox = cls.wmk.capture_sendmail()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org", name="Alice")
        cls.alice_pgp = cls.wmk.cli("key", "generate", "alice", "--type", "openpgp",
                                    "--passphrase-stdin", input=KEY_PASS + "\n",
                                    json_output=True)["fingerprint"]
        cls.wmk.cli("key", "generate", "alice", "--type", "smime", "--passphrase-stdin",
                    input=KEY_PASS + "\n", json_output=True)

        # ---- the outsiders: Carol (OpenPGP, her own gpg), Dave (S/MIME, openssl)
        cls.carol = OutsideGpg(os.path.join(cls.tmp, "carol-gpg"))
        cls.carol_fpr = cls.carol.make_key("Carol Outside <carol@remote.example>")
        carol_pub = os.path.join(cls.tmp, "carol.asc")
        with open(carol_pub, "wb") as f:
            f.write(cls.carol.export(cls.carol_fpr))
        cls.wmk.cli("contact", "import", "alice", carol_pub)
        cls.dave_key = os.path.join(cls.tmp, "dave.key")
        cls.dave_crt = os.path.join(cls.tmp, "dave.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             cls.dave_key, "-out", cls.dave_crt, "-days", "30", "-subj",
             "/CN=Dave Outside/emailAddress=dave@remote.example"])
        cls.wmk.cli("contact", "import", "alice", cls.dave_crt)
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wkd_servers.close()
        for og in (cls.wkd_owner, cls.carol):
            og.close()
        subprocess.run(["gpgconf", "--homedir", os.path.join(cls.wmk.data_dir, "gnupg"),
                        "--kill", "gpg-agent"], capture_output=True)
        cls.wmk.close()
        shutil.rmtree(cls.wkd_dir, ignore_errors=True)

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

    def post_compose(self, client, fields):
        token = client.get("/compose").hidden("csrf", form_action="/compose")
        return client.post("/compose", [("csrf", token)] + list(fields),
                           files=[("attachment", "", "application/octet-stream", b"")])

    def send_reviewed(self, client, review):
        self.assertEqual(review.page, "signed", review.text)
        sent = client.post("/compose", {
            "csrf": review.hidden("csrf", form_action="/compose"),
            "draft": review.hidden("draft", form_action="/compose"),
            "digest": review.hidden("digest", form_action="/compose"),
            "action": "send",
        })
        self.assertEqual(sent.page, "sent", sent.text)
        return sent

    def carol_decrypts(self, raw):
        """The PGP/MIME message raw, decrypted by Carol's own gpg: the inner entity."""
        msg = parse(raw)
        self.assertEqual(msg.get_content_type(), "multipart/encrypted")
        payload = msg.get_payload()[1].get_payload(decode=True)
        return self.carol.gpg("-d", stdin=payload).stdout

    @staticmethod
    def autocrypt_of(raw):
        """addr and keydata (bytes) of the message's Autocrypt header, as Python's email
        reads it; None when there is none."""
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        values = msg.get_all("Autocrypt") or []
        if not values:
            return None
        assert len(values) == 1, values
        attrs = dict(a.strip().split("=", 1)
                     for a in re.sub(r"\s+", " ", values[0]).split(";") if a.strip())
        return attrs["addr"], base64.b64decode(attrs["keydata"].replace(" ", ""))

    def outside_import(self, keydata):
        """The fingerprints and user ids an outside gpg imports from keydata."""
        home = OutsideGpg(os.path.join(self.tmp, "reader-%d" % random.randint(0, 1 << 30)))
        try:
            home.gpg("--import", stdin=keydata)
            out = home.gpg("--with-colons", "--list-keys").stdout.decode()
        finally:
            home.close()
        fprs = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")]
        uids = [l.split(":")[9] for l in out.splitlines() if l.startswith("uid:")]
        return fprs, uids

    # ---- encryption to correspondents

    def test_reply_encrypted_to_an_outside_contact_is_decrypted_by_their_own_gpg(self):
        m = email.message.EmailMessage()
        m["From"] = "Carol Outside <carol@remote.example>"
        m["To"] = "alice@example.org"
        m["Subject"] = "Plans"
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = email.utils.make_msgid(domain="remote.example")
        m.set_content("Shall we meet?\n")
        uid = self.wmk.deliver_with_python("alice", m)
        c = self.wmk.client()
        login(c)
        form = c.get("/compose", params={"reply": uid, "folder": "INBOX"})
        self.assertEqual(form.page, "compose", form.text)
        inputs = {i.get("name"): i for f in form.forms() for i in f["inputs"]}
        self.assertIn("carol@remote.example", inputs["to"]["value"])
        review = self.post_compose(c, [
            ("to", inputs["to"]["value"]), ("subject", inputs["subject"]["value"]),
            ("in_reply_to", inputs["in_reply_to"]["value"]),
            ("references", inputs["references"]["value"]),
            ("body", "Yes, at noon by the old oak.\n"), ("kind", "openpgp"),
            ("action", "encrypt")])
        self.assertEqual(review.page, "signed", review.text)
        self.assertIn("carol@remote.example", review.text_of("protection"))
        self.send_reviewed(c, review)
        args, raw = self.last_submission()
        self.assertEqual(args, ["-i", "-f", "alice@example.org", "--", "carol@remote.example"])
        self.assertNotIn(b"old oak", raw)
        self.assertEqual(parse(raw)["In-Reply-To"], m["Message-ID"])
        inner = self.carol_decrypts(raw)
        self.assertIn(b"old oak", inner)

    def reply_form(self, client, sender, subject):
        """The compose form of a reply to a plain message from sender: its fields."""
        m = email.message.EmailMessage()
        m["From"] = sender
        m["To"] = "alice@example.org"
        m["Subject"] = subject
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = email.utils.make_msgid(domain="remote.example")
        m.set_content("Shall we meet?\n")
        uid = self.wmk.deliver_with_python("alice", m)
        form = client.get("/compose", params={"reply": uid, "folder": "INBOX"})
        self.assertEqual(form.page, "compose", form.text)
        inputs = {i.get("name"): i for f in form.forms() for i in f["inputs"]}
        return m, [(name, inputs[name]["value"])
                   for name in ("to", "subject", "in_reply_to", "references")]

    def test_smime_reply_to_an_outside_certificate_is_decrypted_by_openssl(self):
        c = self.wmk.client()
        login(c)
        original, fields = self.reply_form(c, "Dave Outside <dave@remote.example>", "Contract")
        self.assertIn("dave@remote.example", dict(fields)["to"])
        review = self.post_compose(c, fields + [
            ("body", "The signed contract is attached in spirit.\n"),
            ("kind", "smime"), ("action", "encrypt")])
        self.assertEqual(review.page, "signed", review.text)
        self.send_reviewed(c, review)
        _, raw = self.last_submission()
        self.assertNotIn(b"in spirit", raw)
        self.assertEqual(parse(raw)["In-Reply-To"], original["Message-ID"])
        path = os.path.join(self.tmp, "to-dave.eml")
        with open(path, "wb") as f:
            f.write(raw)
        d = run(["openssl", "cms", "-decrypt", "-binary", "-in", path, "-inform", "SMIME",
                 "-recip", self.dave_crt, "-inkey", self.dave_key])
        self.assertIn(b"in spirit", d.stdout)

    # ---- a key attached inside an encrypted message (/decrypt)

    def open_decrypted(self, c, uid, passphrase=KEY_PASS):
        """The decrypted page of message uid: POST /decrypt, unlocking if asked."""
        csrf = c.get("/inbox").hidden("csrf", form_action="/logout")
        fields = {"id": uid, "folder": "INBOX", "csrf": csrf}
        r = c.post("/decrypt", fields)
        if r.page == "unlock":
            r = c.post("/unlock", dict(fields, passphrase=passphrase, confirm=passphrase, ok="1"))
        self.assertEqual(r.page, "decrypted", r.text[-2000:])
        return r

    def decrypt_offer_fields(self, page):
        forms = [f for f in page.forms() if f["action"] == "/decrypt" and any(
            i.get("name") == "action" and i.get("value") == "import-key" for i in f["inputs"])]
        self.assertEqual(len(forms), 1, "the decrypted page offers no key import")
        return {i["name"]: i.get("value", "") for i in forms[0]["inputs"] if i.get("name")}

    def contact(self, fpr):
        found = [k for k in self.wmk.cli("contact", "list", "alice", json_output=True)
                 if k["fingerprint"] == fpr]
        return found[0] if found else None

    @staticmethod
    def with_key_inside(key):
        """The inner entity of an encrypted message: text and an attached key."""
        inner = email.message.EmailMessage()
        inner.set_content("My key is attached; keep it.\n")
        inner.add_attachment(key, maintype="application", subtype="pgp-keys",
                             filename="key.asc")
        return inner

    @staticmethod
    def outer_headers(m, sender, subject):
        m["From"] = sender
        m["To"] = "alice@example.org"
        m["Subject"] = subject
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = email.utils.make_msgid(domain="remote.example")
        return m

    def test_key_attached_inside_an_openpgp_message_is_offered_and_imported_on_decrypt(self):
        ivy = OutsideGpg(os.path.join(self.tmp, "ivy-gpg"))
        try:
            ivy_fpr = ivy.make_key("Ivy Outside <ivy@remote.example>")
            ivy.gpg("--import", stdin=self.wmk.cli("key", "export", self.alice_pgp).stdout
                    .encode())
            inner = self.with_key_inside(ivy.export(ivy_fpr))
            cipher = ivy.gpg("--armor", "--trust-model", "always", "-e", "-r", self.alice_pgp,
                             stdin=inner.as_bytes()).stdout
        finally:
            ivy.close()
        outer = self.outer_headers(multipart_encrypted(cipher), "Ivy Outside <ivy@remote.example>",
                                   "My key, sealed")
        uid = self.wmk.deliver_with_python("alice", outer)
        self.wmk.cli("grant", "revoke", "--all")
        c = self.wmk.client()
        login(c)
        # The stored message holds only ciphertext: its own page offers no key.
        page = c.get("/message", {"id": uid})
        self.assertNotIn('data-offer="attached"', page.text)

        page = self.open_decrypted(c, uid)
        self.assertIn('data-offer="attached" data-offer-state="offered" data-fingerprint="%s"'
                      % ivy_fpr, page.text)
        self.assertIn("ivy@remote.example", page.text_of("key-offer"))
        self.assertIsNone(self.contact(ivy_fpr))  # shown, not imported
        fields = self.decrypt_offer_fields(page)
        self.assertEqual(fields["fingerprint"], ivy_fpr)
        self.assertEqual(fields["kind"], "attached")
        # The form names the part; it never carries the key.
        self.assertFalse([v for v in fields.values() if "PGP PUBLIC KEY" in v])

        # Without the token, or for another fingerprint than shown: nothing stored.
        self.assertEqual(c.post("/decrypt", {k: v for k, v in fields.items() if k != "csrf"})
                         .status, 403)
        self.assertEqual(c.post("/decrypt", dict(fields, fingerprint="0" * 40)).status, 409)
        self.assertIsNone(self.contact(ivy_fpr))
        # Once the key is locked, the import asks for the unlock first.
        self.wmk.cli("grant", "revoke", "--all")
        r = c.post("/decrypt", fields)
        self.assertEqual(r.page, "unlock", r.text[-2000:])
        self.assertIsNone(self.contact(ivy_fpr))

        page = self.open_decrypted(c, uid)
        r = c.post("/decrypt", self.decrypt_offer_fields(page))
        self.assertEqual(r.status, 303, r.text[-2000:])
        after = c.follow(r)
        self.assertEqual(after.page, "decrypted")
        self.assertIn("Imported key %s for ivy@remote.example" % ivy_fpr, after.text)
        self.assertIn('data-offer-state="bound"', after.text)
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(ivy_fpr)["bindings"]],
                         [("ivy@remote.example", "user")])
        audit = self.wmk.cli("audit", "--login", "alice", "--key", ivy_fpr, json_output=True)
        self.assertEqual([(a["event"], a["outcome"]) for a in audit],
                         [("contact.import", "ok")])

    def test_key_attached_inside_smime_is_offered_only_with_integrity_protection(self):
        cert = os.path.join(self.tmp, "alice-smime.pem")
        (smime_key,) = [k for k in self.wmk.cli("key", "list", "--login", "alice",
                                                json_output=True) if k["type"] == "smime"]
        with open(cert, "w") as f:
            f.write(self.wmk.cli("key", "export", smime_key["fingerprint"]).stdout)
        jay = OutsideGpg(os.path.join(self.tmp, "jay-gpg"))
        try:
            jay_fpr = jay.make_key("Jay Outside <jay@remote.example>")
            key = jay.export(jay_fpr)
        finally:
            jay.close()
        inner_path = os.path.join(self.tmp, "jay-inner.eml")
        with open(inner_path, "wb") as f:
            f.write(self.with_key_inside(key).as_bytes())
        uids = {}
        for cipher in ("-aes-256-gcm", "-aes-256-cbc"):
            body = run(["openssl", "cms", "-encrypt", cipher, "-in", inner_path, cert]).stdout
            head = ("From: Jay Outside <jay@remote.example>\nTo: alice@example.org\n"
                    "Subject: Key %s\nDate: %s\n" % (cipher, email.utils.formatdate()))
            uids[cipher] = self.wmk.deliver_with_python("alice", head.encode() + body)
        self.wmk.cli("grant", "revoke", "--all")
        c = self.wmk.client()
        login(c)
        page = self.open_decrypted(c, uids["-aes-256-gcm"])
        self.assertIn('data-offer="attached" data-offer-state="offered" data-fingerprint="%s"'
                      % jay_fpr, page.text)
        # CBC has no integrity protection: its bytes could have been altered, so it offers
        # no key (as it releases no attachment).
        page = self.open_decrypted(c, uids["-aes-256-cbc"])
        self.assertIn('data-integrity="none"', page.text)
        self.assertNotIn("data-offer=", page.text)

        page = self.open_decrypted(c, uids["-aes-256-gcm"])
        r = c.post("/decrypt", self.decrypt_offer_fields(page))
        self.assertEqual(r.status, 303, r.text[-2000:])
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(jay_fpr)["bindings"]],
                         [("jay@remote.example", "user")])

    # ---- recipients without a key, and the lookup

    def test_recipient_without_key_is_named_and_a_lookup_finds_the_key_by_wkd(self):
        c = self.wmk.client()
        login(c)
        before = self.submissions()
        fields = [("to", "Good <good@remote.example>, carol@remote.example"),
                  ("subject", "Hello from Alice"), ("body", "Meet me by the river.\n"),
                  ("encrypt", "1"), ("kind", "openpgp")]
        r = self.post_compose(c, fields + [("action", "encrypt")])
        self.assertEqual(r.status, 400)
        self.assertEqual(r.page, "compose")
        self.assertEqual(self.submissions(), before)
        # Named, with the reason; Carol (whose key is bound) is not.
        self.assertRegex(r.text, r'data-address="good@remote.example" data-reason="none"')
        self.assertNotIn('data-address="carol@remote.example"', r.text)
        self.assertIn("no OpenPGP key is known", r.text_of("missing-keys"))
        buttons = [b for f in r.forms() for b in f["buttons"] if b.get("value") == "lookup"]
        self.assertEqual(len(buttons), 1, r.text)
        draft = r.hidden("draft", form_action="/compose")
        self.assertTrue(draft)

        # The lookup: a POST with the draft as the form holds it.
        looked = c.post("/compose", [("csrf", r.hidden("csrf", form_action="/compose")),
                                     ("draft", draft)] + fields + [("action", "lookup")],
                        files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual(looked.status, 200, looked.text)
        self.assertEqual(looked.page, "compose")
        self.assertRegex(looked.text, r'data-address="good@remote.example" data-result="found"')
        self.assertIn(self.good, looked.text_of("key-lookup"))
        self.assertNotIn('class="missing-keys"', looked.text)
        # The draft is intact.
        inputs = {i.get("name"): i for f in looked.forms() for i in f["inputs"]}
        self.assertEqual(inputs["subject"]["value"], "Hello from Alice")
        self.assertIn("good@remote.example", inputs["to"]["value"])
        self.assertIn("Meet me by the river.", looked.text)
        self.assertEqual(self.submissions(), before)
        # Stored as a contact key bound by WKD.
        keys = self.wmk.cli("contact", "list", "alice", json_output=True)
        (k,) = [k for k in keys if k["fingerprint"] == self.good]
        self.assertEqual([(b["email"], b["source"]) for b in k["bindings"]],
                         [("good@remote.example", "wkd")])

        # Now it encrypts, and the outsider's own gpg opens it.
        review = c.post("/compose", [("csrf", looked.hidden("csrf", form_action="/compose")),
                                     ("draft", looked.hidden("draft", form_action="/compose"))]
                        + fields + [("action", "encrypt")],
                        files=[("attachment", "", "application/octet-stream", b"")])
        self.send_reviewed(c, review)
        args, raw = self.last_submission()
        self.assertEqual(args[-2:], ["good@remote.example", "carol@remote.example"])
        payload = parse(raw).get_payload()[1].get_payload(decode=True)
        self.assertIn(b"by the river", self.wkd_owner.gpg("-d", stdin=payload).stdout)
        self.assertIn(b"by the river", self.carol.gpg("-d", stdin=payload).stdout)

    def test_lookup_says_not_found_and_error_and_a_hanging_server_costs_the_timeout_once(self):
        c = self.wmk.client()
        login(c)
        before = self.submissions()
        fields = [("to", "nobody@remote.example, x@hang.example, y@hang.example"),
                  ("subject", "Anyone?"), ("body", "Hello?\n"), ("encrypt", "1"),
                  ("kind", "openpgp")]
        r = self.post_compose(c, fields + [("action", "save")])
        self.assertEqual(r.status, 200, r.text)
        for a in ("nobody@remote.example", "x@hang.example", "y@hang.example"):
            self.assertIn('data-address="%s" data-reason="none"' % a, r.text)
        start = time.monotonic()
        looked = c.post("/compose", [("csrf", r.hidden("csrf", form_action="/compose")),
                                     ("draft", r.hidden("draft", form_action="/compose"))]
                        + fields + [("action", "lookup")],
                        files=[("attachment", "", "application/octet-stream", b"")])
        took = time.monotonic() - start
        self.assertEqual(looked.page, "compose", looked.text)
        self.assertIn('data-address="nobody@remote.example" data-result="not-found"', looked.text)
        self.assertIn('data-address="x@hang.example" data-result="error"', looked.text)
        self.assertIn('data-address="y@hang.example" data-result="error"', looked.text)
        self.assertIn("404", looked.text_of("key-lookup"))
        self.assertIn("no answer within", looked.text_of("key-lookup"))
        # Two hanging addresses are looked up at once: one timeout (5 s), not two.
        self.assertGreater(took, 4.5)
        self.assertLess(took, 8.5)
        # Still named, nothing sent, nothing in clear.
        self.assertIn('data-address="x@hang.example" data-reason="none"', looked.text)
        self.assertEqual(self.submissions(), before)

    def test_smime_compose_offers_no_wkd_lookup(self):
        c = self.wmk.client()
        login(c)
        r = self.post_compose(c, [("to", "erin@remote.example"), ("subject", "x"),
                                  ("body", "y"), ("kind", "smime"), ("action", "encrypt")])
        self.assertEqual(r.status, 400)
        self.assertIn('data-address="erin@remote.example" data-reason="none"', r.text)
        self.assertIn("no S/MIME certificate is known", r.text_of("missing-keys"))
        self.assertFalse([b for f in r.forms() for b in f["buttons"]
                          if b.get("value") == "lookup"])

    # ---- Autocrypt out

    def test_outgoing_mail_carries_the_senders_autocrypt_header_unless_switched_off(self):
        c = self.wmk.client()
        login(c)
        sent = self.post_compose(c, [("to", "carol@remote.example"), ("subject", "Plain"),
                                     ("body", "In the clear, by choice.\n"), ("action", "send")])
        self.assertEqual(sent.page, "sent", sent.text)
        _, raw = self.last_submission()
        addr, keydata = self.autocrypt_of(raw)
        self.assertEqual(addr, "alice@example.org")
        fprs, uids = self.outside_import(keydata)
        self.assertEqual(fprs[0], self.alice_pgp)
        self.assertEqual(len([u for u in uids if u]), 1, uids)
        self.assertIn("alice@example.org", uids[0])

        # Encrypted mail carries it in its outer headers too, as reviewed.
        review = self.post_compose(c, [("to", "carol@remote.example"), ("subject", "Sealed"),
                                       ("body", "Sealed.\n"), ("kind", "openpgp"),
                                       ("action", "encrypt")])
        self.assertIn("Autocrypt: addr=alice@example.org;", review.text_of("raw"))
        self.send_reviewed(c, review)
        _, raw = self.last_submission()
        self.assertEqual(self.autocrypt_of(raw)[1], keydata)

        # Switched off: no header.
        self.wmk.write_config(autocrypt=False)
        try:
            sent = self.post_compose(c, [("to", "carol@remote.example"), ("subject", "Plain 2"),
                                         ("body", "Again.\n"), ("action", "send")])
            self.assertEqual(sent.page, "sent", sent.text)
            _, raw = self.last_submission()
            self.assertIsNone(self.autocrypt_of(raw))
            self.assertNotIn(b"Autocrypt", raw)
        finally:
            self.wmk.write_config(autocrypt=True)


if __name__ == "__main__":
    unittest.main()
