#!/usr/bin/env python3
"""Correspondents' keys added from the web, through the real server.

Keys come from a real outside `gpg` home, certificates and their CA from real
`openssl`, mail from Python's email. Covers the /keys import form (upload and paste,
refusals that store nothing, CSRF), the message page's offer of an attached key and of
an Autocrypt header (shown first, imported only on an explicit POST for the From
address), and S/MIME certificates collected at delivery from validly signed mail
whose CA names the sender (and not from self-signed ones).
"""

import base64
import email.message
import email.policy
import email.utils
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_contacts_cli import OutsideGpg, run  # noqa: E402
from test_contacts_verdicts import content_entity, multipart_signed  # noqa: E402
from wmk_e2e import Instance  # noqa: E402

PASSWORD = "Login-Password-1234"
POLICY = email.policy.SMTP


def login(client):
    return client.login("alice", PASSWORD)


def attr(body, element_re, name):
    """The value of attribute name on the first tag matching element_re."""
    m = re.search(element_re, body)
    if not m:
        return None
    a = re.search(r'\b%s="([^"]*)"' % name, m.group(0))
    return a.group(1) if a else None


class WebContacts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.outside = OutsideGpg(os.path.join(cls.wmk.tmp, "og"))
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.outside.close()
        run(["gpgconf", "--homedir", os.path.join(cls.wmk.data_dir, "gnupg"), "--kill",
             "gpg-agent"], check=False)
        cls.wmk.close()

    def setUp(self):
        self.c = self.wmk.client()
        login(self.c)

    # ---- helpers

    def contacts(self):
        return self.wmk.cli("contact", "list", "alice", json_output=True)

    def contact(self, fpr):
        found = [k for k in self.contacts() if k["fingerprint"] == fpr]
        return found[0] if found else None

    def import_form(self, fields, files=None, csrf=True):
        page = self.c.get("/keys")
        self.assertEqual(page.page, "keys")
        form = [f for f in page.forms() if f["action"] == "/keys"]
        self.assertEqual(len(form), 1, "the /keys page has no import form")
        self.assertEqual(form[0]["enctype"], "multipart/form-data")
        data = {"action": "import"}
        if csrf:
            data["csrf"] = page.hidden("csrf", form_action="/keys")
        data.update(fields)
        return self.c.post("/keys", data, files=files or [("key", "", "application/octet-stream",
                                                            b"")])

    def deliver(self, raw):
        before = set(self.uids())
        self.wmk.deliver("alice", raw)
        (uid,) = set(self.uids()) - before
        return uid

    def uids(self):
        names = []
        for d in ("new", "cur"):
            p = os.path.join(self.wmk.maildir_path("alice"), d)
            if os.path.isdir(p):
                names += [n.split(":2,")[0] for n in os.listdir(p)]
        return names

    def signed_by(self, fpr, sender, text):
        content = content_entity(text)
        sig = self.outside.gpg("--armor", "--detach-sign", "--local-user", fpr,
                               stdin=content).stdout
        return multipart_signed(sender, "Signed", content, sig, "application/pgp-signature",
                                "pgp-sha256", "application/pgp-signature", "signature.asc")

    def with_key_attached(self, sender, key):
        m = email.message.EmailMessage(policy=POLICY)
        m["From"] = sender
        m["To"] = "alice@example.org"
        m["Subject"] = "My key"
        m["Date"] = email.utils.formatdate()
        m["Message-ID"] = email.utils.make_msgid()
        m.set_content("Here is my key.\n")
        m.add_attachment(key, maintype="application", subtype="pgp-keys", filename="key.asc")
        return m.as_bytes(policy=POLICY)

    def verdict(self, uid):
        r = self.c.get("/message", {"id": uid})
        self.assertEqual(r.status, 200)
        return attr(r.text, r'data-signature-state="[^"]*"', "data-signature-state")

    def offer_fields(self, page):
        forms = [f for f in page.forms() if f["action"] == "/message" and any(
            i.get("name") == "action" and i.get("value") == "import-key" for i in f["inputs"])]
        self.assertEqual(len(forms), 1, "the message page offers no key import")
        return {i["name"]: i.get("value", "") for i in forms[0]["inputs"] if i.get("name")}

    # ---- /keys import

    def test_upload_import_shows_fingerprint_and_bindings(self):
        fpr = self.outside.make_key("Carol <carol@remote.example>")
        r = self.import_form({"emails": ""}, files=[
            ("key", "carol.asc", "application/pgp-keys", self.outside.export(fpr))])
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "contact-imported")
        self.assertEqual(attr(r.text, r'<code[^>]*data-fingerprint="[^"]*"', "data-fingerprint"), fpr)
        self.assertIn('data-source="user" data-email="carol@remote.example"', r.text)
        k = self.contact(fpr)
        self.assertEqual([(b["email"], b["source"]) for b in k["bindings"]],
                         [("carol@remote.example", "user")])
        # /keys lists it now.
        self.assertIn('data-contact="%s"' % fpr, self.c.get("/keys").text)

    def test_paste_import_binary_cert_and_named_addresses(self):
        fpr = self.outside.make_key("Dan <dan@remote.example>")
        r = self.import_form({"key_text": self.outside.export(fpr).decode(),
                              "emails": "dan@remote.example, Daniel@Other.Example"})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(sorted((b["email"], b["source"]) for b in self.contact(fpr)["bindings"]),
                         [("dan@remote.example", "user"), ("daniel@other.example", "user")])
        # The address the key does not carry is bound, and the page says why.
        self.assertIn('class="binding-note" data-email="daniel@other.example"', r.text)
        self.assertNotIn('class="binding-note" data-email="dan@remote.example"', r.text)
        # A binary key by upload, a DER certificate by upload.
        fpr2 = self.outside.make_key("Bin <bin@remote.example>")
        r = self.import_form({}, files=[("key", "bin.gpg", "application/octet-stream",
                                         self.outside.export(fpr2, armor=False))])
        self.assertEqual(r.status, 200, r.text)
        self.assertIsNotNone(self.contact(fpr2))
        key, crt = os.path.join(self.wmk.tmp, "der.key"), os.path.join(self.wmk.tmp, "der.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=Der",
             "-addext", "subjectAltName=email:der@remote.example"])
        der = run(["openssl", "x509", "-in", crt, "-outform", "DER"]).stdout
        r = self.import_form({}, files=[("key", "der.cer", "application/pkix-cert", der)])
        self.assertEqual(r.status, 200, r.text)
        self.assertIn('data-email="der@remote.example"', r.text)

    def test_refusals_store_nothing(self):
        fpr = self.outside.make_key("Careless <careless@remote.example>")
        before = len(self.contacts())
        r = self.import_form({"key_text": self.outside.export(fpr, secret=True).decode()})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.page, "keys")
        self.assertIn("secret key", r.text_of("notice-error"))
        self.assertNotIn("PRIVATE KEY BLOCK", r.text, "the refused secret key came back")
        home = os.path.join(self.wmk.data_dir, "gnupg")
        self.assertNotEqual(run(["gpg", "--homedir", home, "--batch", "--list-secret-keys", fpr],
                                check=False).returncode, 0)
        self.assertNotEqual(run(["gpg", "--homedir", home, "--batch", "--list-keys", fpr],
                                check=False).returncode, 0)

        r = self.import_form({"key_text": "hello, not a key"})
        self.assertEqual(r.status, 400)
        self.assertIn("neither an OpenPGP public key nor", r.text_of("notice-error"))
        # Pasted text is never shown again: it may have been a private key.
        self.assertNotIn("hello, not a key", r.text)

        r = self.import_form({}, files=[("key", "big.asc", "text/plain",
                                         b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n" +
                                         b"A" * (1 << 20) + b"\n")])
        self.assertEqual(r.status, 400)
        self.assertIn("larger than", r.text_of("notice-error"))

        two = self.outside.make_key("Two <two@remote.example>")
        self.outside.gpg("--quick-add-uid", two, "Second <second@remote.example>")
        r = self.import_form({"key_text": self.outside.export(two).decode()})
        self.assertEqual(r.status, 400)
        self.assertIn("several addresses", r.text_of("notice-error"))
        noaddr = self.outside.make_key("No Address At All")
        r = self.import_form({"key_text": self.outside.export(noaddr).decode()})
        self.assertEqual(r.status, 400)
        self.assertIn("carries no address", r.text_of("notice-error"))
        r = self.import_form({"key_text": self.outside.export(two).decode(),
                              "emails": "not-an-address"})
        self.assertEqual(r.status, 400)
        self.assertIn("not an address", r.text_of("notice-error"))

        r = self.import_form({})
        self.assertEqual(r.status, 400)
        self.assertIn("choose a key file or paste", r.text_of("notice-error"))
        self.assertEqual(len(self.contacts()), before)

    def test_import_needs_the_csrf_token(self):
        fpr = self.outside.make_key("Forged <forged@remote.example>")
        r = self.import_form({"key_text": self.outside.export(fpr).decode()}, csrf=False)
        self.assertEqual(r.status, 403)
        self.assertIsNone(self.contact(fpr))

    # ---- keys offered by a message

    def test_attached_key_imported_then_signed_mail_is_valid(self):
        fpr = self.outside.make_key("Erin <erin@remote.example>")
        signed_uid = self.deliver(self.signed_by(fpr, "Erin <erin@remote.example>",
                                                 "Signed by Erin.\n"))
        self.assertEqual(self.verdict(signed_uid), "unknown_key")
        uid = self.deliver(self.with_key_attached("Erin <erin@remote.example>",
                                                  self.outside.export(fpr)))
        page = self.c.get("/message", {"id": uid})
        self.assertEqual(page.status, 200)
        # Shown first: the fingerprint and the address; nothing imported by the GET.
        self.assertIn('data-offer="attached" data-offer-state="offered" data-fingerprint="%s"'
                      % fpr, page.text)
        self.assertIn("erin@remote.example", page.text)
        self.assertIsNone(self.contact(fpr))
        fields = self.offer_fields(page)
        self.assertEqual(fields["fingerprint"], fpr)

        # Without the token: refused, nothing stored.
        bad = dict(fields)
        del bad["csrf"]
        self.assertEqual(self.c.post("/message", bad).status, 403)
        self.assertIsNone(self.contact(fpr))
        # A fingerprint other than the one shown: refused.
        other = dict(fields, fingerprint="0" * 40)
        r = self.c.post("/message", other)
        self.assertEqual(r.status, 409)
        self.assertIsNone(self.contact(fpr))

        r = self.c.post("/message", fields)
        self.assertEqual(r.status, 303)
        after = self.c.follow(r)
        self.assertIn("Imported key %s for erin@remote.example" % fpr, after.text)
        self.assertIn('data-offer-state="bound"', after.text)
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(fpr)["bindings"]],
                         [("erin@remote.example", "user")])
        self.assertEqual(self.verdict(signed_uid), "valid")

    def test_attached_key_for_another_address_is_said_so(self):
        fpr = self.outside.make_key("Frank <frank@remote.example>")
        uid = self.deliver(self.with_key_attached("Mallory <mallory@remote.example>",
                                                  self.outside.export(fpr)))
        page = self.c.get("/message", {"id": uid})
        self.assertIn('data-offer-state="mismatch"', page.text)
        self.assertIn("does not carry the sender's address mallory@remote.example",
                      page.text_of("key-offer-mismatch"))
        self.assertIn("frank@remote.example", page.text_of("key-offer-mismatch"))
        # Taken only as the user chose: bound to the From address, never to frank's.
        r = self.c.post("/message", self.offer_fields(page))
        self.assertEqual(r.status, 303)
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(fpr)["bindings"]],
                         [("mallory@remote.example", "user")])

    def folded_keydata(self, fpr):
        """The outside key fpr as an Autocrypt header's keydata: base64, folded."""
        b64 = base64.b64encode(self.outside.export(fpr, armor=False)).decode()
        return "\r\n ".join(b64[i:i + 72] for i in range(0, len(b64), 72))

    def test_autocrypt_header_offered_and_imported_as_autocrypt(self):
        fpr = self.outside.make_key("Gina <gina@remote.example>")
        folded = self.folded_keydata(fpr)
        raw = ("From: Gina <gina@remote.example>\r\nTo: alice@example.org\r\n"
               "Subject: Hi\r\nDate: %s\r\nMessage-ID: %s\r\n"
               "Autocrypt: addr=gina@remote.example; keydata=\r\n %s\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
               % (email.utils.formatdate(), email.utils.make_msgid(), folded)).encode()
        # Put there as another delivery agent would: the delivery hook did not run.
        uid = self.wmk.deliver_with_python("alice", raw)
        self.assertIsNone(self.contact(fpr))
        page = self.c.get("/message", {"id": uid})
        self.assertIn('data-offer="autocrypt" data-offer-state="offered" data-fingerprint="%s"'
                      % fpr, page.text)
        fields = self.offer_fields(page)
        self.assertEqual(fields["kind"], "autocrypt")
        r = self.c.post("/message", fields)
        self.assertEqual(r.status, 303)
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(fpr)["bindings"]],
                         [("gina@remote.example", "autocrypt")])

    def test_encrypted_message_offers_its_autocrypt_header_only(self):
        fpr = self.outside.make_key("Hank <hank@remote.example>")
        folded = self.folded_keydata(fpr)
        # The ciphertext is made by gpg for the outside key (not alice's): the page shows
        # it as encrypted without decrypting anything.
        cipher = self.outside.gpg("--armor", "--trust-model", "always", "-e", "-r", fpr,
                                  stdin=b"secret\n").stdout.decode()
        raw = ("From: Hank <hank@remote.example>\r\nTo: alice@example.org\r\n"
               "Subject: Sealed\r\nDate: %s\r\nMessage-ID: %s\r\n"
               "Autocrypt: addr=hank@remote.example; keydata=\r\n %s\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
               "protocol=\"application/pgp-encrypted\"; boundary=\"b1\"\r\n\r\n"
               "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
               "--b1\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n--b1--\r\n"
               % (email.utils.formatdate(), email.utils.make_msgid(), folded,
                  cipher.replace("\n", "\r\n"))).encode()
        uid = self.wmk.deliver_with_python("alice", raw)
        page = self.c.get("/message", {"id": uid})
        self.assertIn('data-offer="autocrypt" data-offer-state="offered" data-fingerprint="%s"'
                      % fpr, page.text)
        self.assertNotIn('data-offer="attached"', page.text)
        r = self.c.post("/message", self.offer_fields(page))
        self.assertEqual(r.status, 303)
        self.assertEqual([(b["email"], b["source"]) for b in self.contact(fpr)["bindings"]],
                         [("hank@remote.example", "autocrypt")])

    # ---- S/MIME certificates collected at delivery

    def make_ca(self):
        d = os.path.join(self.wmk.tmp, "smime-ca")
        os.makedirs(d, exist_ok=True)
        ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "30", "-subj", "/CN=Test Mail CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return d, ca_key, ca_crt

    def leaf(self, d, ca_key, ca_crt, name, address):
        key, csr, crt = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".pem"))
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name])
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=emailProtection\nsubjectAltName=email:%s\n" % address)
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
             "-CAcreateserial", "-out", crt, "-days", "30", "-extfile", ext])
        return key, crt

    def smime_signed(self, key, crt, sender, text):
        content = content_entity(text)
        path = crt + ".content"
        with open(path, "wb") as f:
            f.write(content)
        sig = run(["openssl", "cms", "-sign", "-binary", "-in", path, "-signer", crt, "-inkey",
                   key, "-outform", "DER"]).stdout
        return multipart_signed(sender, "S/MIME", content, sig, "application/pkcs7-signature",
                                "sha-256", "application/pkcs7-signature", "smime.p7s")

    def fingerprint(self, crt):
        out = run(["openssl", "x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).stdout
        return out.decode().split("=", 1)[1].strip().replace(":", "")

    def test_smime_certificate_collected_at_delivery_only_from_a_trusted_ca(self):
        d, ca_key, ca_crt = self.make_ca()
        key, crt = self.leaf(d, ca_key, ca_crt, "Hugo", "hugo@remote.example")
        fpr = self.fingerprint(crt)
        # Self-signed, same address: never collected.
        self_key = os.path.join(d, "self.key")
        self_crt = os.path.join(d, "self.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self_key, "-out", self_crt, "-days", "30", "-subj", "/CN=Ivy",
             "-addext", "subjectAltName=email:ivy@remote.example"])
        old = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = ca_crt  # the CLI's trust store at delivery
        try:
            self.deliver(self.smime_signed(self_key, self_crt, "Ivy <ivy@remote.example>",
                                           "Self-signed.\n"))
            # A CA-signed certificate for another address than From: not collected.
            self.deliver(self.smime_signed(key, crt, "Jo <jo@remote.example>", "Not Hugo.\n"))
            self.assertIsNone(self.contact(fpr))
            self.assertIsNone(self.contact(self.fingerprint(self_crt)))
            uid = self.deliver(self.smime_signed(key, crt, "Hugo <hugo@remote.example>",
                                                 "Signed by Hugo.\n"))
        finally:
            if old is None:
                del os.environ["SSL_CERT_FILE"]
            else:
                os.environ["SSL_CERT_FILE"] = old
        k = self.contact(fpr)
        self.assertIsNotNone(k, "the CA-signed certificate was not collected")
        self.assertEqual(k["type"], "smime")
        self.assertEqual([(b["email"], b["source"]) for b in k["bindings"]],
                         [("hugo@remote.example", "ca")])
        keys_page = self.c.get("/keys").text
        self.assertRegex(keys_page, r'data-contact="%s"[\s\S]*?data-source="ca"' % fpr)
        # The binding makes the sender known on the message page too.
        self.assertEqual(self.verdict(uid), "valid")


if __name__ == "__main__":
    unittest.main()
