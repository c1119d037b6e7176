"""Session grants in the browser: Decrypt, unlock, one live grant per key, time limits,
stopping another session's use, lock, logout, admin revoke — through a real lighttpd
over HTTPS with two independent browsers (cookie jars).

Fixtures come from outside tools: the OpenPGP key is made by real gpg and imported
with `webmailkey key import`; messages are encrypted by real gpg (PGP/MIME built with
Python's email package) and by `openssl cms -encrypt` (S/MIME, key and certificate
made by openssl and imported from PKCS#12), and delivered with `webmailkey deliver`."""

import email.message
import email.utils
import html
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "alice key passphrase 1"
SMIME_PASS = "alice smime passphrase 2"
CAROL_KEY_PASS = "carol key passphrase 3"
FILE_PASS = "export file passphrase"  # the PKCS#12 file's
# The correspondents' OpenPGP keys are made and exported without protection: gpg-agent
# under a loaded machine sometimes fails to export a protected key it just made
# ("Corrupted protection"); what the server does with the key does not depend on it.
GPG_FILE_PASS = ""
SECRET_TEXT = "The launch code is 4711-SECRET"
SMIME_TEXT = "S/MIME secret: blue heron at dawn"
GRANT_COOKIE = "__Host-wmk-grant"
SESSION_COOKIE = "__Host-wmk-session"


def run(argv, input=None, check=True):
    r = subprocess.run(argv, input=input, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0:3], r.returncode,
                                                   r.stderr.decode("utf-8", "replace")))
    return r


class Gpg:
    """An outside GnuPG home: the correspondent's side."""

    def __init__(self, home):
        self.home = home
        os.makedirs(home, mode=0o700, exist_ok=True)
        with open(os.path.join(home, "gpg-agent.conf"), "w") as f:
            f.write("s2k-count 65536\n")

    def __call__(self, *args, input=None, check=True):
        return run(["gpg", "--homedir", self.home, "--batch", "--no-tty"] + list(args),
                   input=input, check=check)

    def make_key(self, uid, passphrase):
        self("--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-gen-key", uid,
             "future-default", "default", "never")
        out = self("--with-colons", "--list-keys", uid).stdout.decode()
        return re.search(r"^fpr:+([0-9A-F]{40,64}):", out, re.M).group(1)

    def export_secret(self, fpr, passphrase, path):
        r = self("--pinentry-mode", "loopback", "--passphrase", passphrase, "--armor",
                 "--export-secret-keys", fpr)
        with open(path, "wb") as f:
            f.write(r.stdout)

    def encrypt(self, fpr, data):
        return self("--trust-model", "always", "--armor", "-r", fpr, "-e", input=data).stdout

    def stop(self):
        run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"], check=False)


HOSTILE_HTML = ('<p onclick="steal()">Hello <b>HTML-BODY-TEXT</b></p>'
                '<script>alert("xss")</script><img src="https://evil.example/track.png">'
                '<a href="javascript:alert(1)">click</a>')
ATTACHMENT = bytes(range(256)) * 3


def inner_entity(body):
    m = email.message.EmailMessage()
    m.set_content(body)
    return m.as_bytes()


def pgp_mime(gpg, fpr, body, subject, sender="Erin <erin@example.net>"):
    """A PGP/MIME message (RFC 3156) around gpg's ciphertext of a text/plain entity."""
    return pgp_mime_entity(gpg, fpr, inner_entity(body), subject, sender)


def pgp_mime_entity(gpg, fpr, entity, subject, sender="Erin <erin@example.net>"):
    """A PGP/MIME message (RFC 3156) around gpg's ciphertext of the MIME entity."""
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = "alice@example.org"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(time.time())
    m["Message-ID"] = email.utils.make_msgid()
    m.make_mixed()
    m.set_type("multipart/encrypted")
    m.set_param("protocol", "application/pgp-encrypted")
    control = email.message.EmailMessage()
    control.set_content(b"Version: 1\n", maintype="application", subtype="pgp-encrypted",
                        cte="7bit")
    payload = email.message.EmailMessage()
    payload.set_content(gpg.encrypt(fpr, entity), maintype="application",
                        subtype="octet-stream", cte="7bit", filename="encrypted.asc")
    m.attach(control)
    m.attach(payload)
    return m


def mixed_plain_and_encrypted(gpg, fpr):
    """multipart/mixed: a plain text part beside a PGP/MIME encrypted part."""
    outer = email.message.EmailMessage()
    outer["From"] = "Mallory <mallory@example.net>"
    outer["To"] = "alice@example.org"
    outer["Subject"] = "Mixed plain and encrypted"
    outer["Date"] = email.utils.formatdate(time.time())
    outer.make_mixed()
    plain = email.message.EmailMessage()
    plain.set_content("PLAIN-INTRO: this part was not encrypted.\n")
    outer.attach(plain)
    enc = pgp_mime(gpg, fpr, "ENCRYPTED-BODY: only this was encrypted.\n", "inner")
    for h in ("From", "To", "Subject", "Date", "Message-ID"):
        del enc[h]
    outer.attach(enc)
    return outer.as_bytes()


def login(client, user="alice", password=PASSWORD):
    return client.login(user, password)


def csrf_of(client):
    page = client.get("/inbox")
    return page.hidden("csrf", form_action="/logout")


class WebGrants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(config={"max_failures": 3, "lockout": 60})
        cls.tmp = tempfile.mkdtemp(prefix="wmk-grants-")
        try:
            cls._make_fixtures()
            cls.wmk.start()
        except BaseException:
            cls.wmk.close()
            raise

    @classmethod
    def _make_fixtures(cls):
        wmk = cls.wmk
        wmk.add_user("alice", PASSWORD, "alice@example.org")
        wmk.add_user("bob", PASSWORD, "bob@example.org")
        wmk.add_user("carol", PASSWORD, "carol@example.org")

        # OpenPGP: a key made by real gpg, exported protected, imported by the CLI.
        cls.gpg = Gpg(os.path.join(cls.tmp, "gpg-alice"))
        cls.fpr = cls.gpg.make_key("Alice <alice@example.org>", GPG_FILE_PASS)
        exported = os.path.join(cls.tmp, "alice-secret.asc")
        cls.gpg.export_secret(cls.fpr, GPG_FILE_PASS, exported)
        key = wmk.cli("key", "import", "alice", "--type", "openpgp", exported,
                      "--passphrase-stdin", input="%s\n%s\n" % (KEY_PASS, GPG_FILE_PASS),
                      json_output=True)
        assert key["fingerprint"] == cls.fpr, key

        cls.carol_gpg = Gpg(os.path.join(cls.tmp, "gpg-carol"))
        cls.carol_fpr = cls.carol_gpg.make_key("Carol <carol@example.org>", GPG_FILE_PASS)
        exported = os.path.join(cls.tmp, "carol-secret.asc")
        cls.carol_gpg.export_secret(cls.carol_fpr, GPG_FILE_PASS, exported)
        wmk.cli("key", "import", "carol", "--type", "openpgp", exported, "--passphrase-stdin",
                input="%s\n%s\n" % (CAROL_KEY_PASS, GPG_FILE_PASS))

        # S/MIME: key and self-signed certificate by openssl, as PKCS#12.
        d = cls.tmp
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", d + "/smime-key.pem", "-out", d + "/smime-cert.pem", "-days", "30",
             "-subj", "/CN=Alice/emailAddress=alice@example.org",
             "-addext", "subjectAltName=email:alice@example.org"])
        run(["openssl", "pkcs12", "-export", "-inkey", d + "/smime-key.pem",
             "-in", d + "/smime-cert.pem", "-out", d + "/alice.p12", "-passout",
             "pass:" + FILE_PASS])
        smime = wmk.cli("key", "import", "alice", "--type", "smime", d + "/alice.p12",
                        "--passphrase-stdin", input="%s\n%s\n" % (SMIME_PASS, FILE_PASS),
                        json_output=True)
        cls.smime_fpr = smime["fingerprint"]

        # Messages, delivered by the CLI's delivery agent.
        cls.ids = {}
        cls.deliver("pgp", pgp_mime(cls.gpg, cls.fpr, SECRET_TEXT + "\n", "Secret plans")
                    .as_bytes())
        cls.deliver("carol", pgp_mime(cls.carol_gpg, cls.carol_fpr, "for carol only\n",
                                      "Carol's secret").as_bytes(), login="carol")
        with open(d + "/inner.eml", "wb") as f:
            f.write(inner_entity(SMIME_TEXT + "\n"))
        for name, cipher in (("smime", "-aes-256-gcm"), ("smime_cbc", "-aes256")):
            r = run(["openssl", "cms", "-encrypt", cipher, "-in", d + "/inner.eml",
                     "-recip", d + "/smime-cert.pem", "-from", "carol@example.net",
                     "-to", "alice@example.org", "-subject", "S/MIME " + name])
            cls.deliver(name, r.stdout)
        cls.deliver("mixed", mixed_plain_and_encrypted(cls.gpg, cls.fpr))
        html_msg = email.message.EmailMessage()
        html_msg.set_content(HOSTILE_HTML, subtype="html")
        cls.deliver("html", pgp_mime_entity(cls.gpg, cls.fpr, html_msg.as_bytes(),
                                            "HTML inside").as_bytes())
        with_file = email.message.EmailMessage()
        with_file.set_content("The plan is attached.\n")
        with_file.add_attachment(ATTACHMENT, maintype="application", subtype="octet-stream",
                                 filename="plan.bin")
        cls.deliver("attachment", pgp_mime_entity(cls.gpg, cls.fpr, with_file.as_bytes(),
                                                  "File inside").as_bytes())
        plain = email.message.EmailMessage()
        plain["From"] = "carol@example.net"
        plain["To"] = "alice@example.org"
        plain["Subject"] = "Plain hello"
        plain.set_content("just plain text\n")
        cls.deliver("plain", plain.as_bytes())

    @classmethod
    def deliver(cls, name, message, login="alice"):
        before = set(cls._uids(login))
        cls.wmk.deliver(login, message)
        new = set(cls._uids(login)) - before
        assert len(new) == 1, new
        cls.ids[name] = new.pop()

    @classmethod
    def _uids(cls, login):
        md = cls.wmk.maildir_path(login)
        out = []
        for sub in ("new", "cur"):
            p = os.path.join(md, sub)
            if os.path.isdir(p):
                out += [n.split(":")[0] for n in os.listdir(p)]
        return out

    @classmethod
    def tearDownClass(cls):
        cls.gpg.stop()
        cls.carol_gpg.stop()
        cls.wmk.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # Every test starts with no grant anywhere.
        self.wmk.cli("grant", "revoke", "--all")

    # ---- helpers

    def browser(self, name="Browser-One", user="alice"):
        c = self.wmk.client(user_agent=name + " (wmk-e2e)")
        login(c, user)
        c.csrf = csrf_of(c)
        return c

    def decrypt(self, c, name="pgp"):
        return c.post("/decrypt", {"id": self.ids[name], "folder": "INBOX", "csrf": c.csrf})

    def unlock(self, c, passphrase=KEY_PASS, confirm=None, name="pgp"):
        fields = {"id": self.ids[name], "folder": "INBOX", "csrf": c.csrf,
                  "passphrase": passphrase, "ok": "1"}
        fields["confirm"] = passphrase if confirm is None else confirm
        return c.post("/unlock", fields)

    def open_with_unlock(self, c, name="pgp", passphrase=KEY_PASS):
        r = self.decrypt(c, name)
        self.assertEqual(r.page, "unlock", r.text)
        r = self.unlock(c, passphrase, name=name)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        return r

    def grants(self, login="alice"):
        return self.wmk.cli("grant", "list", "--login", login, json_output=True)

    def live_grants(self, login="alice"):
        now = time.time()
        out = []
        for g in self.grants(login):
            deadline = min(g.get("expires", 0), g.get("idle_deadline", g.get("expires", 0)))
            if deadline == 0 or deadline > now:
                out.append(g)
        return out

    def banner(self, r):
        return r.text_of("key-banner")

    def seconds_left(self, r):
        m = re.search(r'data-seconds-left="(\d+)"', r.text)
        return int(m.group(1)) if m else None

    def message_button(self, c, name="pgp"):
        r = c.get("/message", {"id": self.ids[name], "folder": "INBOX"})
        self.assertEqual(r.page, "message")
        for form in r.forms():
            if form["action"] == "/decrypt":
                return form["buttons"][0]
        self.fail("no Decrypt button on the message page")

    # ---- flows 2-4

    def test_flow_2_encrypted_message_shows_decrypt_button(self):
        c = self.browser()
        r = c.get("/message", {"id": self.ids["pgp"], "folder": "INBOX"})
        self.assertEqual((r.status, r.page), (200, "message"))
        self.assertIn("encrypted", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)
        button = self.message_button(c)
        self.assertEqual(button.get("data-key-state"), "locked")
        self.assertEqual(self.banner(r), "")

    def test_flow_3_4_unlock_then_decrypted_with_banner_everywhere(self):
        c = self.browser()
        r = self.decrypt(c)
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        form = [f for f in r.forms() if f["action"] == "/unlock"][0]
        names = {i.get("name"): i.get("type") for i in form["inputs"]}
        self.assertEqual(names.get("passphrase"), "password")
        self.assertEqual(names.get("confirm"), "password")
        types = sorted(b.get("type") for b in form["buttons"])
        self.assertEqual(types, ["reset", "submit"])
        self.assertIn("Clear", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)

        # Wrong passphrase: 403, a clear message, back on the message (before Decrypt).
        r = self.unlock(c, "not the passphrase")
        self.assertEqual((r.status, r.page), (403, "message"), r.text)
        self.assertIn("Wrong passphrase", r.text_of("notice"))
        self.assertNotIn(SECRET_TEXT, r.text)
        self.assertNotIn(GRANT_COOKIE, c.cookies)
        self.assertEqual(self.live_grants(), [])

        # Passphrase and confirmation differ: said so, nothing tried.
        r = self.unlock(c, KEY_PASS, confirm=KEY_PASS + "x")
        self.assertEqual((r.status, r.page), (400, "unlock"), r.text)
        self.assertIn("differ", r.text_of("notice"))
        self.assertEqual(self.live_grants(), [])

        # Right passphrase: the decrypted message, a grant, the grant cookie.
        before = c.cookies[SESSION_COOKIE]
        r = self.unlock(c)
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(SECRET_TEXT, r.text)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        cookie = r.set_cookies()[GRANT_COOKIE]
        for attr in ("secure", "httponly"):
            self.assertIn(attr, cookie)
        self.assertEqual(cookie.get("samesite"), "Strict")
        self.assertEqual(cookie.get("path"), "/")
        self.assertNotIn("max-age", cookie)
        self.assertIn("unlocked", self.banner(r))
        self.assertIn("min left", self.banner(r))
        self.assertGreater(self.seconds_left(r), 590)
        self.assertEqual(len(self.live_grants()), 1)
        # The unlock gave the session a new token; the one from before is dead.
        self.assertIn(SESSION_COOKIE, r.set_cookies())
        self.assertNotEqual(c.cookies[SESSION_COOKIE], before)
        stale = self.wmk.client()
        stale.cookies[SESSION_COOKIE] = before
        self.assertEqual(stale.get("/inbox").status, 303)

        # Every page now shows the key state; the Decrypt button changes look.
        for path in ("/inbox", "/keys", "/inbox?folder=Sent"):
            page = c.get(path)
            self.assertEqual(page.status, 200, path)
            self.assertIn("min left", self.banner(page), path)
            self.assertTrue(any(f["action"] == "/lock" for f in page.forms()), path)
        self.assertEqual(self.message_button(c).get("data-key-state"), "unlocked")
        keys = c.get("/keys")
        self.assertIn("Unlocked in this session", keys.text_of("key-grant-state"))

        # Decrypt again: no passphrase asked while the grant lives.
        r = self.decrypt(c)
        self.assertEqual(r.page, "decrypted")
        self.assertIn(SECRET_TEXT, r.text)

    def test_unlock_without_confirmation_field_when_config_says_so(self):
        self.wmk.write_config(unlock_confirmation=False)
        try:
            c = self.browser()
            r = self.decrypt(c)
            self.assertEqual(r.page, "unlock")
            self.assertNotIn('name="confirm"', r.text)
            r = c.post("/unlock", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": c.csrf,
                                   "passphrase": KEY_PASS})
            self.assertEqual(r.page, "decrypted", r.text)
        finally:
            self.wmk.write_config(unlock_confirmation=True)

    def test_smime_authenveloped_decrypts_after_unlock(self):
        c = self.browser()
        r = self.decrypt(c, "smime")
        self.assertEqual(r.page, "unlock")
        self.assertIn("S/MIME", r.text)
        r = self.unlock(c, KEY_PASS, name="smime")  # the OpenPGP key's passphrase
        self.assertEqual((r.status, r.page), (403, "message"))
        r = self.unlock(c, SMIME_PASS, name="smime")
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertIn(SMIME_TEXT, r.text)
        self.assertIn("S/MIME", self.banner(r))

    def test_message_without_integrity_protection_is_text_only_or_refused(self):
        c = self.browser()
        r = self.decrypt(c, "smime_cbc")
        self.assertEqual(r.page, "unlock")
        r = self.unlock(c, SMIME_PASS, name="smime_cbc")
        # smime_unprotected = text (the default): shown, as text, marked.
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(SMIME_TEXT, r.text)
        self.assertIn('data-integrity="none"', r.text)
        self.assertIn("NOT integrity-protected", r.text_of("indicators"))
        self.assertIn("may have been altered", r.text)
        # smime_unprotected = refuse: nothing of it is shown.
        self.wmk.write_config(smime_unprotected="refuse")
        try:
            r = self.decrypt(c, "smime_cbc")
            self.assertEqual((r.status, r.page), (400, "message"), r.text)
            self.assertIn("integrity", r.text_of("notice"))
            self.assertNotIn(SMIME_TEXT, r.text)
        finally:
            self.wmk.write_config(smime_unprotected="text")

    @unittest.skipUnless(os.path.exists(os.path.join(SOURCE_DIR, "core", "reader", "reader.h")),
                         "needs core/reader (segments)")
    def test_mixed_plain_and_encrypted_parts_are_shown_apart(self):
        c = self.browser()
        r = self.decrypt(c, "mixed")
        self.assertEqual(r.page, "unlock", r.text)
        r = self.unlock(c, name="mixed")
        self.assertEqual(r.page, "decrypted", r.text)
        segments = re.findall(r'<section class="segment (plain|decrypted)"[^>]*>(.*?)</section>',
                              r.text, re.S)
        kinds = [k for k, _ in segments]
        self.assertEqual(sorted(kinds), ["decrypted", "plain"], r.text)
        for kind, body in segments:
            if kind == "plain":
                self.assertIn("PLAIN-INTRO", body)
                self.assertNotIn("ENCRYPTED-BODY", body)
            else:
                self.assertIn("ENCRYPTED-BODY", body)
                self.assertNotIn("PLAIN-INTRO", body)

    def test_decrypted_html_is_sanitized_in_a_sandboxed_frame(self):
        c = self.browser()
        r = self.open_with_unlock(c, "html")
        frames = re.findall(r"<iframe([^>]*)></iframe>", r.text)
        self.assertEqual(len(frames), 1, r.text)
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', frames[0]))
        self.assertIn("sandbox", attrs)
        self.assertNotIn("allow-scripts", attrs["sandbox"])
        self.assertNotIn("allow-same-origin", attrs["sandbox"])
        srcdoc = html.unescape(attrs["srcdoc"])
        self.assertIn("HTML-BODY-TEXT", srcdoc)
        for bad in ("<script", "onclick", "evil.example", "javascript:"):
            self.assertNotIn(bad, srcdoc)
        # The indicators are the page's own, outside the frame.
        self.assertIn("integrity checked", r.text_of("indicators"))
        self.assertNotIn("integrity checked", srcdoc)
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_decrypted_attachment_downloads_through_the_grant(self):
        c = self.browser()
        r = self.open_with_unlock(c, "attachment")
        # The decrypted attachment is a link of its own (GET /decrypt with the part).
        links = [html.unescape(h) for h in re.findall(r'href="(/decrypt\?[^"]*part=[^"]*)"', r.text)]
        self.assertEqual(len(links), 1, r.text)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(links[0]).query)
        part = query["part"][0]
        self.assertEqual(query["id"], [self.ids["attachment"]])
        self.assertIn("plan.bin", r.text)
        d = c.get(links[0])
        self.assertEqual(d.status, 200)
        self.assertEqual(d.body, ATTACHMENT)
        # POST with the part still works.
        d = c.post("/decrypt", {"id": self.ids["attachment"], "folder": "INBOX",
                                "part": part, "csrf": c.csrf})
        self.assertEqual(d.status, 200)
        self.assertEqual(d.body, ATTACHMENT)
        self.assertTrue(d.header("Content-Disposition").startswith("attachment"))
        self.assertIn("plan.bin", d.header("Content-Disposition"))
        self.assertEqual(d.header("Cache-Control"), "no-store")
        # Without the grant: the unlock page, nothing of the file.
        c.post("/lock", {"csrf": c.csrf})
        d = c.post("/decrypt", {"id": self.ids["attachment"], "folder": "INBOX",
                                "part": part, "csrf": c.csrf})
        self.assertEqual(d.page, "unlock")
        self.assertNotIn(ATTACHMENT, d.body)
        d = c.get(links[0])
        self.assertEqual(d.page, "unlock")
        self.assertNotIn(ATTACHMENT, d.body)

    def test_plain_message_is_not_decryptable(self):
        c = self.browser()
        r = self.decrypt(c, "plain")
        self.assertEqual((r.status, r.page), (400, "message"))
        self.assertIn("not encrypted", r.text_of("notice"))

    def test_only_own_mailbox_messages_are_decrypted(self):
        bob = self.browser("Bob-Browser", user="bob")
        r = self.decrypt(bob, "pgp")  # alice's message id, in bob's session
        self.assertEqual(r.status, 404)
        self.assertNotIn(SECRET_TEXT, r.text)
        r = bob.post("/decrypt", {"id": "../../alice/Maildir/new/" + self.ids["pgp"],
                                  "folder": "INBOX", "csrf": bob.csrf})
        self.assertEqual(r.status, 404)
        r = bob.post("/decrypt", {"id": self.ids["pgp"], "folder": "../alice", "csrf": bob.csrf})
        self.assertEqual(r.status, 404)

    def test_decrypt_post_needs_csrf_and_get_without_grant_is_the_unlock_page(self):
        c = self.browser()
        r = c.post("/decrypt", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": "wrong"})
        self.assertEqual(r.status, 403)
        # GET is the decrypted message's address: without a grant it leads to the unlock
        # page and shows nothing decrypted.
        r = c.get("/decrypt", {"id": self.ids["pgp"], "folder": "INBOX"})
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        self.assertNotIn(SECRET_TEXT, r.text)
        r = c.post("/unlock", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": "wrong",
                               "passphrase": KEY_PASS, "confirm": KEY_PASS})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.live_grants(), [])

    def test_decrypted_message_address_survives_reload_while_the_grant_lives(self):
        a = self.browser("Reload-Alice")
        self.open_with_unlock(a)
        address = {"id": self.ids["pgp"], "folder": "INBOX"}
        for _ in range(2):  # reload, and again (as the back button would)
            r = a.get("/decrypt", address)
            self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
            self.assertIn(SECRET_TEXT, r.text)
            self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertIn('href="/compose?reply=%s&amp;folder=INBOX"' % self.ids["pgp"], r.text)
        self.assertIn('href="/compose?forward=%s&amp;folder=INBOX"' % self.ids["pgp"], r.text)
        a.post("/lock", {"csrf": a.csrf})
        self.assertIn("keys are locked", a.get("/inbox").text_of("notice"))
        r = a.get("/decrypt", address)
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        self.assertNotIn(SECRET_TEXT, r.text)

    def test_wrong_passphrases_lock_the_key_out_for_a_while(self):
        c = self.browser("Carol-Browser", user="carol")
        for _ in range(3):
            r = self.unlock(c, "guess", name="carol")
            self.assertEqual(r.status, 403)
        r = self.unlock(c, CAROL_KEY_PASS, name="carol")  # right, but locked out now
        self.assertEqual((r.status, r.page), (429, "message"), r.text)
        self.assertIn("try again in", r.text_of("notice"))
        self.assertEqual(self.live_grants("carol"), [])
        history = c.get("/keys")
        self.assertIn('data-event="key.unlock" data-outcome="locked_out"', history.text)
        self.assertIn('data-event="key.unlock" data-outcome="fail"', history.text)

    # ---- flow 6: a second browser

    def test_flow_6_in_use_elsewhere_stop_other_and_notice(self):
        one = self.browser("Browser-One")
        self.open_with_unlock(one)
        two = self.browser("Browser-Two")

        r = self.decrypt(two)
        self.assertEqual((r.status, r.page), (409, "in-use"), r.text)
        self.assertIn("Browser-One", r.text_of("grant-agent"))
        self.assertEqual(r.text_of("grant-addr"), "127.0.0.1")
        self.assertRegex(r.text_of("grant-created"), r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
        self.assertNotIn(SECRET_TEXT, r.text)

        # Decrypt again → the confirmation naming the other grant.
        r = two.post("/stop-other", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": two.csrf})
        self.assertEqual((r.status, r.page), (200, "confirm-stop"), r.text)
        grant_id = r.hidden("grant", form_action="/stop-other")
        self.assertEqual(grant_id, self.live_grants()[0]["id"])
        self.assertEqual(len(self.live_grants()), 1)  # nothing stopped before OK

        # OK → revoked → the unlock page.
        r = two.post("/stop-other", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": two.csrf,
                                     "grant": grant_id, "ok": "1"})
        self.assertEqual((r.status, r.page), (200, "unlock"), r.text)
        self.assertEqual(self.live_grants(), [])

        # The first browser learns at its next request, once, and must unlock again.
        r = one.get("/inbox")
        self.assertIn("was stopped", r.text_of("notice"))
        self.assertIn("by a sign-in from 127.0.0.1", r.text_of("notice"))
        self.assertEqual(self.banner(r), "")
        self.assertNotIn("was stopped", one.get("/inbox").text_of("notice"))
        r = self.decrypt(one)
        self.assertEqual(r.page, "unlock")
        self.assertNotIn(SECRET_TEXT, r.text)

        # The second browser unlocks; now the first one sees the key in use.
        r = self.unlock(two)
        self.assertEqual(r.page, "decrypted")
        self.assertIn(SECRET_TEXT, r.text)
        r = self.decrypt(one)
        self.assertEqual((r.status, r.page), (409, "in-use"))
        self.assertIn("Browser-Two", r.text_of("grant-agent"))
        # Unlocking anyway does not steal it either.
        r = self.unlock(one)
        self.assertEqual((r.status, r.page), (409, "in-use"))
        self.assertEqual(len(self.live_grants()), 1)

    def test_stop_other_never_stops_a_grant_it_did_not_show(self):
        one = self.browser("Browser-One")
        self.open_with_unlock(one)
        two = self.browser("Browser-Two")
        r = two.post("/stop-other", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": two.csrf})
        shown = r.hidden("grant", form_action="/stop-other")
        # Meanwhile the first browser locks and unlocks again: a new grant.
        one.post("/lock", {"csrf": one.csrf})
        self.open_with_unlock(one)
        current = self.live_grants()[0]["id"]
        self.assertNotEqual(current, shown)
        r = two.post("/stop-other", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": two.csrf,
                                     "grant": shown, "ok": "1"})
        self.assertEqual(r.page, "confirm-stop", r.text)
        self.assertEqual(r.hidden("grant", form_action="/stop-other"), current)
        self.assertEqual([g["id"] for g in self.live_grants()], [current])
        # A forged grant id does nothing either.
        r = two.post("/stop-other", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": two.csrf,
                                     "grant": "0000000000", "ok": "1"})
        self.assertEqual(r.page, "confirm-stop")
        self.assertEqual([g["id"] for g in self.live_grants()], [current])

    def test_two_sessions_racing_to_unlock_never_both_get_a_grant(self):
        one = self.browser("Racer-One")
        two = self.browser("Racer-Two")
        rounds = 8
        for n in range(rounds):
            barrier = threading.Barrier(2)
            results = {}

            def race(c, label):
                barrier.wait()
                results[label] = self.unlock(c)

            threads = [threading.Thread(target=race, args=(one, "one")),
                       threading.Thread(target=race, args=(two, "two"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            pages = sorted((r.page, r.status) for r in results.values())
            self.assertEqual(pages, [("decrypted", 200), ("in-use", 409)],
                             "round %d: %r" % (n, results))
            self.assertEqual(len(self.live_grants()), 1, "round %d" % n)
            winner = one if results["one"].page == "decrypted" else two
            winner.post("/lock", {"csrf": winner.csrf})
            self.assertEqual(self.live_grants(), [])

    # ---- flow 7, lock, expiry, admin revoke

    def test_flow_7_logout_ends_grants_and_a_replayed_cookie_gives_nothing(self):
        c = self.browser()
        self.open_with_unlock(c)
        stolen = dict(c.cookies)
        self.assertIn(GRANT_COOKIE, stolen)
        (grant,) = self.live_grants()
        r = c.post("/logout", {"csrf": c.csrf})
        self.assertEqual(r.status, 303)
        self.assertNotIn(GRANT_COOKIE, c.cookies)
        self.assertEqual(self.grants(), [])
        # Each grant ended at logout is in the user's key history as stopped by its owner.
        audit = self.wmk.cli("audit", "--login", "alice", json_output=True)
        ended = [e for e in audit if e["event"] == "grant.revoke" and grant["id"] in e["detail"]]
        self.assertEqual(len(ended), 1, audit[:5])
        self.assertIn("owner", ended[0]["detail"])

        # The old session cookie is dead.
        replay = self.wmk.client(user_agent="Replayer")
        replay.cookies = dict(stolen)
        r = replay.post("/decrypt", {"id": self.ids["pgp"], "folder": "INBOX", "csrf": c.csrf})
        self.assertEqual(r.status, 303)
        self.assertTrue(r.location.startswith("/login"))

        # A new login with the old grant cookie replayed: nothing opens.
        login(c)
        c.csrf = csrf_of(c)
        c.cookies[GRANT_COOKIE] = stolen[GRANT_COOKIE]
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock")
        self.assertNotIn(SECRET_TEXT, r.text)

    def test_lock_ends_this_sessions_grants_and_returns(self):
        c = self.browser()
        self.open_with_unlock(c)
        self.open_with_unlock(c, "smime", SMIME_PASS)
        self.assertEqual(len(self.live_grants()), 2)
        page = c.get("/inbox")
        self.assertEqual(self.banner(page).count("unlocked"), 2)
        back = "/message?id=%s&folder=INBOX" % self.ids["pgp"]
        r = c.post("/lock", {"csrf": c.csrf, "back": back})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.location, back)
        self.assertNotIn(GRANT_COOKIE, c.cookies)
        self.assertEqual(self.live_grants(), [])
        self.assertEqual(self.banner(c.get("/inbox")), "")
        self.assertEqual(self.message_button(c).get("data-key-state"), "locked")
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock")
        # Lock never redirects off the site.
        r = c.post("/lock", {"csrf": c.csrf, "back": "//evil.example/x"})
        self.assertEqual(r.location, "/inbox")
        r = c.post("/lock", {"csrf": "nope"})
        self.assertEqual(r.status, 403)

    def test_grant_idle_timeout(self):
        self.wmk.write_config(grant_idle_timeout=5)
        try:
            c = self.browser()
            r = self.open_with_unlock(c)
            self.assertLessEqual(self.seconds_left(r), 5)
            time.sleep(6)
            r = c.get("/inbox")
            self.assertEqual(self.banner(r), "")
            r = self.decrypt(c)
            self.assertEqual(r.page, "unlock")
            self.assertIn("ended", r.text_of("notice"))
            self.assertNotIn(SECRET_TEXT, r.text)
        finally:
            self.wmk.write_config(grant_idle_timeout=600)

    def test_grant_absolute_timeout_even_when_used(self):
        self.wmk.write_config(grant_idle_timeout=5, grant_absolute_timeout=7)
        try:
            c = self.browser()
            self.open_with_unlock(c)
            created = self.live_grants()[0]["created"]  # the server's clock, this machine's
            self.assertLessEqual(self.live_grants()[0]["expires"], created + 7)
            # Used: the idle limit moves, the absolute one does not. A use is certain to
            # be in time when its answer came before both limits (the idle one counted
            # from the start of the previous use, the first use being the unlock); on a
            # loaded machine a late answer proves nothing either way and is not judged.
            previous_start = created
            for _ in range(2):
                time.sleep(3)
                start = time.time()
                r = self.decrypt(c)
                if time.time() < min(previous_start + 5, created + 7) - 0.3:
                    self.assertEqual(r.page, "decrypted")
                previous_start = start
            time.sleep(max(0, created + 7.5 - time.time()))
            r = self.decrypt(c)
            self.assertEqual(r.page, "unlock", r.text)
            self.assertNotIn(SECRET_TEXT, r.text)
        finally:
            self.wmk.write_config(grant_idle_timeout=600, grant_absolute_timeout=7200)

    def test_admin_revoke_is_seen_at_the_next_request(self):
        c = self.browser()
        self.open_with_unlock(c)
        grant = self.live_grants()[0]["id"]
        self.wmk.cli("grant", "revoke", grant)
        r = c.get("/inbox")
        self.assertIn("administrator", r.text_of("notice"))
        self.assertEqual(self.banner(r), "")
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock")

    def test_keys_page_shows_state_and_history(self):
        c = self.browser()
        self.open_with_unlock(c)
        c.post("/lock", {"csrf": c.csrf})
        other = self.browser("Browser-Two")
        self.open_with_unlock(other)
        r = c.get("/keys")
        self.assertEqual(r.page, "keys")
        self.assertIn(self.fpr, r.text)
        self.assertIn(self.smime_fpr, r.text)
        self.assertIn("Unlocked in another session", r.text_of("key-grant-state"))
        for event in ("key.unlock", "key.decrypt", "grant.revoke"):
            self.assertIn('data-event="%s"' % event, r.text)
        # One row per event a user cares about, in plain words: the grant made at an
        # unlock and the public-key reads behind each signature are not rows, and no
        # internal word (grant ids, revoker names, ciphers, user agents) shows.
        self.assertNotIn('data-event="grant.create"', r.text)
        self.assertNotIn('data-event="key.export"', r.text)
        history = r.text[r.text.index("Key use history"):]
        for word in ("other_session", "owner", "AES", "grant ", "Browser-One", "(wmk-e2e)", "web:"):
            self.assertNotIn(word, history)
        self.assertIn("Unlocked the key", history)
        self.assertIn("Decrypted a message", history)
        self.assertIn("Locked by you", history)
        # The fingerprint in groups of four, as on every page.
        grouped = " ".join(self.fpr[i:i + 4] for i in range(0, len(self.fpr), 4))
        self.assertIn(grouped, r.text)
        self.assertNotIn(KEY_PASS, r.text)

    # ---- a copy of the server's data without the browser's cookie

    def test_database_and_gnupg_home_copied_without_the_cookie_cannot_decrypt(self):
        c = self.browser()
        self.open_with_unlock(c)
        grant_cookie = c.cookies[GRANT_COOKIE]
        copy = os.path.join(self.tmp, "stolen")
        shutil.rmtree(copy, ignore_errors=True)
        os.makedirs(copy)
        data = os.path.join(copy, "data")
        shutil.copytree(self.wmk.data_dir, data, symlinks=True,
                        ignore=shutil.ignore_patterns("S.*", "*.lock", "log", "tls", "run"))
        # A consistent copy of the database, WAL included.
        os.remove(os.path.join(data, "webmailkey.db"))
        for suffix in ("-wal", "-shm"):
            p = os.path.join(data, "webmailkey.db" + suffix)
            if os.path.exists(p):
                os.remove(p)
        src = sqlite3.connect(os.path.join(self.wmk.data_dir, "webmailkey.db"))
        dst = sqlite3.connect(os.path.join(data, "webmailkey.db"))
        src.backup(dst)
        src.close()

        # The grant row holds only the sealed key secret: version, nonce, 32 bytes, tag.
        rows = dst.execute("SELECT wrapped FROM grants").fetchall()
        dst.close()
        self.assertEqual(len(rows), 1)
        self.assertEqual(len(rows[0][0]), 1 + 12 + 32 + 16)
        # Neither the cookie nor any passphrase is anywhere in the server's files.
        needles = [grant_cookie.encode(), KEY_PASS.encode(), PASSWORD.encode()]
        for root in (self.wmk.data_dir, data):
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    path = os.path.join(dirpath, name)
                    if not os.path.isfile(path) or os.path.islink(path):
                        continue
                    with open(path, "rb") as f:
                        blob = f.read()
                    for n in needles:
                        self.assertNotIn(n, blob, path)

        # gpg on the copied home cannot decrypt: not without a passphrase, not with the
        # user's key passphrase (gpg-agent's is the key secret only a grant opens).
        enc = self.gpg.encrypt(self.fpr, b"copied home test\n")
        home = os.path.join(data, "gnupg")
        for passphrase in ("", KEY_PASS):
            r = run(["gpg", "--homedir", home, "--batch", "--no-tty", "--pinentry-mode",
                     "loopback", "--passphrase", passphrase, "-d"], input=enc, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn(b"copied home test", r.stdout)
        run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)

        # The copied service, asked with the session cookie but without the grant
        # cookie, can only ask for the passphrase.
        config = os.path.join(copy, "webmailkey.conf")
        with open(self.wmk.config_path) as f:
            text = f.read().replace(self.wmk.data_dir, data)
        with open(config, "w") as f:
            f.write(text)
        os.chmod(config, 0o600)
        body = "id=%s&folder=INBOX&csrf=%s" % (self.ids["pgp"], c.csrf)
        r = self.wmk.run_cgi("decrypt", method="POST", body=body, https=True,
                             headers={"Cookie": "%s=%s" % (SESSION_COOKIE,
                                                          c.cookies[SESSION_COOKIE])},
                             env={"WEBMAILKEY_CONFIG": config})
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(SECRET_TEXT, r.text)
        run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)

        # The real browser still has its grant: the copy changed nothing here.
        r = self.decrypt(c)
        self.assertEqual(r.page, "decrypted")


if __name__ == "__main__":
    unittest.main(verbosity=2)
