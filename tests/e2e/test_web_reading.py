"""Reading protected mail that a reviewer would try to turn against the user (issue 9,
the reading rules), through a real lighttpd over HTTPS:

- S/MIME EnvelopedData (AES-CBC) altered with the EFAIL CBC gadget: shown as text in a
  segment marked data-integrity="none", never as HTML; `smime_unprotected = refuse`
  refuses it;
- two encrypted parts in one message: each decrypted into its own segment;
- clearsigned text inside encryption: a verdict like any other signature;
- a key of alice that also carries the user id `Boss <boss@example.org>` (boss being
  another user): mail From boss signed by it is never "valid, by the sender";
- an own S/MIME certificate that expired (issued by `openssl ca` for January 2020):
  it still decrypts, with a note.

After each flow, no decrypted marker text is anywhere under the data directory.

Fixtures come from outside tools: keys by gpg and openssl (imported with the CLI),
ciphertexts by gpg and `openssl cms`, the CBC gadget by tests/fixtures/wrap_mime.py,
messages by Python's email package, delivered with `webmailkey deliver`.

CTest runs the suite twice: on a Maildir (e2e.test_web_reading) and with the mail on a
Dovecot over IMAP (e2e.imap.test_web_reading, WMK_E2E_MAILBOX=imap), where Python's
imaplib appends the messages (`webmailkey deliver` is the Maildir's delivery agent) and
the Dovecot's directory is searched for markers too."""

import email.message
import email.utils
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import SOURCE_DIR, Instance, multipart_encrypted, OutsideGpg as Gpg  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "alice key passphrase 1"
SMIME_PASS = "alice smime passphrase 2"
OLGA_PASS = "olga smime passphrase 3"
FILE_PASS = "export file passphrase"
WRAP = os.path.join(SOURCE_DIR, "tests", "fixtures", "wrap_mime.py")

# Decrypted marker texts: none may ever be found under the data directory.
GADGET_SECRET = "GADGET-SECRET-7391"
CBC_HTML_SECRET = "CBC-HTML-SECRET-2210"
FIRST_SECRET = "TWO-FIRST-SECRET-5150"
SECOND_SECRET = "TWO-SECOND-SECRET-8086"
CLEARSIGNED_SECRET = "CLEARSIGNED-SECRET-6624"
BOSS_SECRET = "BOSS-ORDER-SECRET-4433"
EXPIRED_SECRET = "EXPIRED-CERT-SECRET-9182"
MARKERS = [GADGET_SECRET, CBC_HTML_SECRET, FIRST_SECRET, SECOND_SECRET, CLEARSIGNED_SECRET,
           BOSS_SECRET, EXPIRED_SECRET]


def run(argv, input=None):
    r = subprocess.run(argv, input=input, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0:3], r.returncode,
                                                   r.stderr.decode("utf-8", "replace")))
    return r.stdout


def headers(m, sender, subject):
    m["From"] = sender
    m["To"] = "alice@example.org"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(time.time())
    m["Message-ID"] = email.utils.make_msgid(domain="example.net")
    return m


def text_entity(body, subtype="plain"):
    m = email.message.EmailMessage()
    m.set_content(body, subtype=subtype)
    return m


def smime_message(smime_bytes, sender, subject):
    head = "From: %s\nTo: alice@example.org\nSubject: %s\nDate: %s\n" % (
        sender, subject, email.utils.formatdate(time.time()))
    return head.encode() + smime_bytes


class WebReading(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.tmp = tempfile.mkdtemp(prefix="wmk-reading-")
        try:
            cls._make_fixtures()
            cls.wmk.start()
        except BaseException:
            cls.wmk.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.gpg.stop()
        cls.wmk.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _make_fixtures(cls):
        wmk, d = cls.wmk, cls.tmp
        wmk.add_user("alice", PASSWORD, "alice@example.org")
        wmk.add_user("boss", PASSWORD, "boss@example.org")
        wmk.add_user("olga", PASSWORD, "olga@example.org")

        # Alice's OpenPGP key by gpg, which also carries boss's address as a user id.
        cls.gpg = Gpg(os.path.join(d, "gpg-alice"))
        cls.fpr = cls.gpg.make_key("Alice <alice@example.org>")
        cls.gpg("--quick-add-uid", cls.fpr, "Boss <boss@example.org>")
        with open(d + "/alice.asc", "wb") as f:
            f.write(cls.gpg("--armor", "--export-secret-keys", cls.fpr))
        wmk.cli("key", "import", "alice", "--type", "openpgp", d + "/alice.asc",
                "--passphrase-stdin", input="%s\n\n" % KEY_PASS)

        # Alice's S/MIME key and self-signed certificate by openssl.
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", d + "/smime.key", "-out", d + "/smime.pem", "-days", "30",
             "-subj", "/CN=Alice/emailAddress=alice@example.org",
             "-addext", "subjectAltName=email:alice@example.org"])
        run(["openssl", "pkcs12", "-export", "-inkey", d + "/smime.key", "-in",
             d + "/smime.pem", "-out", d + "/alice.p12", "-passout", "pass:" + FILE_PASS])
        wmk.cli("key", "import", "alice", "--type", "smime", d + "/alice.p12",
                "--passphrase-stdin", input="%s\n%s\n" % (SMIME_PASS, FILE_PASS))

        # Olga's certificate, issued by a test CA for January 2020 only (`openssl ca`
        # with explicit dates: no faked clock).
        ca = d + "/ca"
        os.makedirs(ca + "/new")
        open(ca + "/index.txt", "w").close()
        with open(ca + "/serial", "w") as f:
            f.write("1000\n")
        with open(ca + "/ca.cnf", "w") as f:
            f.write("[ca]\ndefault_ca = test\n[test]\ndir = %s\ndatabase = $dir/index.txt\n"
                    "serial = $dir/serial\nnew_certs_dir = $dir/new\ndefault_md = sha256\n"
                    "policy = any\nunique_subject = no\n[any]\ncommonName = supplied\n"
                    "emailAddress = optional\n[ext]\nsubjectAltName = email:olga@example.org\n"
                    "basicConstraints = CA:FALSE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment,keyAgreement\n"
                    "extendedKeyUsage = emailProtection\n" % ca)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", ca + "/ca.key", "-out", ca + "/ca.pem", "-subj",
             "/CN=Reading Test CA", "-days", "30", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", d + "/olga.key", "-out", d + "/olga.csr", "-subj",
             "/CN=Olga/emailAddress=olga@example.org"])
        run(["openssl", "ca", "-batch", "-config", ca + "/ca.cnf", "-cert", ca + "/ca.pem",
             "-keyfile", ca + "/ca.key", "-in", d + "/olga.csr", "-out", d + "/olga.pem",
             "-extensions", "ext", "-startdate", "20200101000000Z", "-enddate",
             "20200201000000Z"])
        run(["openssl", "pkcs12", "-export", "-inkey", d + "/olga.key", "-in", d + "/olga.pem",
             "-out", d + "/olga.p12", "-passout", "pass:" + FILE_PASS])
        wmk.cli("key", "import", "olga", "--type", "smime", d + "/olga.p12",
                "--passphrase-stdin", input="%s\n%s\n" % (OLGA_PASS, FILE_PASS))

        cls.ids = {}
        # The CBC gadget: an HTML entity encrypted with AES-CBC, then the IV changed so
        # that the first block ("Content-Type: te", known to anyone) reads as an image.
        with open(d + "/gadget.eml", "wb") as f:
            f.write(b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>" +
                    GADGET_SECRET.encode() + b"</p>\r\n")
        run(["openssl", "cms", "-encrypt", "-binary", "-aes-256-cbc", "-outform", "DER", "-in",
             d + "/gadget.eml", "-out", d + "/gadget.der", d + "/smime.pem"])
        with open(d + "/gadget-altered.der", "wb") as f:
            f.write(run(["python3", WRAP, "cbc-gadget", d + "/gadget.der", "Content-Type: te",
                         "<img src=http://"]))
        smime = run(["openssl", "cms", "-cmsout", "-inform", "DER", "-in",
                     d + "/gadget-altered.der", "-outform", "SMIME"])
        cls.deliver("gadget", smime_message(smime, "mallory@example.net", "CBC gadget"))

        # CBC, unaltered, with an HTML body full of links and images.
        with open(d + "/html.eml", "wb") as f:
            f.write(text_entity('<p>%s <a href="https://evil.example/a">click</a>'
                                '<img src="https://evil.example/i.png"></p>' % CBC_HTML_SECRET,
                                "html").as_bytes())
        smime = run(["openssl", "cms", "-encrypt", "-aes-256-cbc", "-in", d + "/html.eml",
                     d + "/smime.pem"])
        cls.deliver("cbc_html", smime_message(smime, "carol@example.net", "CBC HTML"))

        # Two encrypted parts with a plain part between them.
        outer = headers(email.message.EmailMessage(), "Erin <erin@example.net>", "Two parts")
        outer.make_mixed()
        outer.attach(multipart_encrypted(cls.gpg("--armor", "-e", "-r", cls.fpr,
                                           input=text_entity(FIRST_SECRET + "\n").as_bytes())))
        between = text_entity("Plain words between the two.\n")
        del between["MIME-Version"]
        outer.attach(between)
        outer.attach(multipart_encrypted(cls.gpg("--armor", "-e", "-r", cls.fpr,
                                           input=text_entity(SECOND_SECRET + "\n").as_bytes())))
        cls.deliver("two", outer.as_bytes())

        # Clearsigned by alice's key, then encrypted: From alice (the server knows that
        # address for her key).
        clearsigned = cls.gpg("--clearsign", "-u", cls.fpr, input=(CLEARSIGNED_SECRET + "\n")
                              .encode())
        m = headers(email.message.EmailMessage(), "Alice <alice@example.org>", "Clearsigned")
        m.set_content(cls.gpg("--armor", "-e", "-r", cls.fpr, input=clearsigned).decode())
        cls.deliver("clearsigned", m.as_bytes())

        # Signed and encrypted by alice's key, From boss: the key names boss, but boss's
        # address is not alice's.
        signed = cls.gpg("--armor", "-se", "-u", cls.fpr, "-r", cls.fpr,
                         input=text_entity("Transfer the money. " + BOSS_SECRET + "\n")
                         .as_bytes())
        m = headers(multipart_encrypted(signed), "Boss <boss@example.org>", "From the boss")
        cls.deliver("boss", m.as_bytes())
        # The same signature From alice: valid.
        m = headers(multipart_encrypted(signed), "Alice <alice@example.org>", "From alice")
        cls.deliver("alice_signed", m.as_bytes())

        # Mail sent to olga's certificate while it was valid.
        with open(d + "/expired.eml", "wb") as f:
            f.write(text_entity(EXPIRED_SECRET + "\n").as_bytes())
        smime = run(["openssl", "cms", "-encrypt", "-aes-256-gcm", "-in", d + "/expired.eml",
                     d + "/olga.pem"])
        head = ("From: carol@example.net\nTo: olga@example.org\nSubject: Old mail\n").encode()
        cls.deliver("expired", head + smime, login="olga")

    @classmethod
    def deliver(cls, name, message, login="alice"):
        if cls.wmk.mailbox == "imap":
            cls.ids[name] = cls.wmk.deliver_with_python(login, message)
            return
        md = cls.wmk.maildir_path(login)

        def uids():
            out = set()
            for sub in ("new", "cur"):
                p = os.path.join(md, sub)
                if os.path.isdir(p):
                    out |= {n.split(":")[0] for n in os.listdir(p)}
            return out

        before = uids()
        cls.wmk.deliver(login, message)
        new = uids() - before
        assert len(new) == 1, new
        cls.ids[name] = new.pop()

    # ---- helpers

    def browser(self, user="alice"):
        c = self.wmk.client()
        form = c.get("/login")
        r = c.post("/login", {"csrf": form.hidden("csrf", form_action="/login"), "user": user,
                              "password": PASSWORD})
        self.assertEqual(r.status, 303, r)
        c.csrf = c.get("/inbox").hidden("csrf", form_action="/logout")
        return c

    def open(self, c, name, passphrase):
        fields = {"id": self.ids[name], "folder": "INBOX", "csrf": c.csrf}
        r = c.post("/decrypt", fields)
        if r.page == "unlock":
            r = c.post("/unlock", dict(fields, passphrase=passphrase, confirm=passphrase,
                                       ok="1"))
        return r

    def segments(self, r):
        """(kind, data-integrity, inner HTML) of each segment, in page order."""
        return re.findall(r'<section class="segment (plain|decrypted)" data-part="[^"]*" '
                          r'data-integrity="([a-z-]+)">(.*?)</section>', r.text, re.S)

    def assert_no_marker_under_data_dir(self):
        for path in self.wmk.files_at_rest():
            with open(path, "rb") as f:
                blob = f.read()
            for marker in MARKERS:
                self.assertNotIn(marker.encode(), blob, path)

    def setUp(self):
        # Every test starts with no grant anywhere (one live grant per key).
        self.wmk.cli("grant", "revoke", "--all")

    def tearDown(self):
        # After each flow: nothing decrypted was written anywhere.
        self.assert_no_marker_under_data_dir()

    # ---- S/MIME without integrity protection

    def test_cbc_gadget_is_shown_as_text_in_an_unprotected_segment(self):
        c = self.browser()
        r = self.open(c, "gadget", SMIME_PASS)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        segs = self.segments(r)
        self.assertEqual([(k, i) for k, i, _ in segs], [("decrypted", "none")], r.text)
        body = segs[0][2]
        # The gadget block is escaped text; the secret is there; nothing is markup.
        self.assertIn("&lt;img src=http://", body)
        self.assertIn(GADGET_SECRET, body)
        self.assertNotIn("<img", body)
        self.assertNotIn("<iframe", r.text)
        self.assertIn("may have been altered", body)
        self.assertIn("NOT integrity-protected", r.text_of("indicators"))
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_cbc_html_becomes_text_without_links(self):
        c = self.browser()
        r = self.open(c, "cbc_html", SMIME_PASS)
        self.assertEqual(r.page, "decrypted", r.text)
        segs = self.segments(r)
        self.assertEqual(len(segs), 1)
        kind, integrity, body = segs[0]
        self.assertEqual(integrity, "none")
        self.assertIn(CBC_HTML_SECRET, body)
        for bad in ("<a ", "<img", "<iframe", "srcdoc"):
            self.assertNotIn(bad, body)
        self.assertEqual([h for h in r.links() if "evil.example" in h], [])

    def test_smime_unprotected_refuse_refuses_it(self):
        c = self.browser()
        self.wmk.write_config(smime_unprotected="refuse")
        try:
            r = self.open(c, "gadget", SMIME_PASS)
            self.assertEqual((r.status, r.page), (400, "message"), r.text)
            self.assertIn("integrity", r.text_of("notice"))
            self.assertNotIn(GADGET_SECRET, r.text)
        finally:
            self.wmk.write_config(smime_unprotected="text")

    # ---- several encrypted parts, clearsigned inside

    def test_two_encrypted_parts_each_in_its_own_segment(self):
        c = self.browser()
        r = self.open(c, "two", KEY_PASS)
        self.assertEqual(r.page, "decrypted", r.text)
        segs = self.segments(r)
        self.assertEqual([(k, i) for k, i, _ in segs],
                         [("decrypted", "checked"), ("plain", "not-encrypted"),
                          ("decrypted", "checked")], r.text)
        self.assertIn(FIRST_SECRET, segs[0][2])
        self.assertNotIn(SECOND_SECRET, segs[0][2])
        self.assertIn("Plain words between", segs[1][2])
        self.assertIn(SECOND_SECRET, segs[2][2])
        self.assertNotIn(FIRST_SECRET, segs[2][2])
        self.assertIn("integrity checked", r.text_of("indicators"))

    def test_clearsigned_inside_encryption_gets_a_verdict(self):
        c = self.browser()
        r = self.open(c, "clearsigned", KEY_PASS)
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertIn('data-signature-state="valid"', r.text)
        self.assertIn("a user of this server", r.text_of("indicators"))
        segs = self.segments(r)
        self.assertEqual(len(segs), 1)
        self.assertIn(CLEARSIGNED_SECRET, segs[0][2])
        self.assertNotIn("BEGIN PGP SIGNED MESSAGE", segs[0][2])

    # ---- the sender as the server knows it

    def test_extra_user_id_naming_another_user_is_not_the_sender(self):
        c = self.browser()
        r = self.open(c, "boss", KEY_PASS)
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertIn(BOSS_SECRET, r.text)
        self.assertNotIn('data-signature-state="valid"', r.text)
        self.assertIn('data-signature-state="sender_unverified"', r.text)
        self.assertNotIn("the sender (", r.text_of("indicators"))
        self.assertNotIn("Valid signature", r.text)
        # The same signature on mail From alice: valid, and says how it is known.
        r = self.open(c, "alice_signed", KEY_PASS)
        self.assertIn('data-signature-state="valid"', r.text)
        self.assertIn("Valid signature", r.text_of("indicators"))
        self.assertIn("a user of this server", r.text_of("indicators"))

    # ---- own keys past expiry

    def test_expired_own_certificate_still_decrypts_with_a_note(self):
        c = self.browser("olga")
        r = self.open(c, "expired", OLGA_PASS)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(EXPIRED_SECRET, r.text)
        self.assertIn("has expired", r.text_of("key-expired"))
        self.assertIn("can no longer sign", r.text_of("key-expired"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
