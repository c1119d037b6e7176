#!/usr/bin/env python3
"""A user whose mail lives on an IMAP server (`mailbox = imap`): a real Dovecot that
the suite starts on loopback with TLS from a test CA (the unit tests' fixture,
tests/unit/dovecot_server.h, run as build/test_dovecot), reached over IMAPS with its
certificate verified and logged in to as a Dovecot master user.

The user reads the inbox, decrypts an encrypted message (made by an outside gpg and
appended by Python's imaplib logged in as the user, as the MDA would store it),
replies, and the reply is found in Sent on the IMAP server (read back by imaplib).
A draft saved twice is one message in Drafts on the server. Without the test CA the
inbox is a clear 503 page, and it works again once the CA is back.
"""

import email
import email.policy
import email.utils
import glob
import imaplib
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import (Instance, multipart_encrypted, start_dovecot,  # noqa: E402
                     stop_dovecot, OutsideGpg as Gpg)

PASSWORD = "correct horse battery staple"
SECRET = "The IMAP secret: meet at the old mill at nine."
# Dovecot's users are user0..user63 with password pw-N-secret (tests/unit/dovecot_server.h).
LOGIN = "user3"
IMAP_PASSWORD = "pw-3-secret"


def decrypted_page(test, c, msg_id):
    """The /decrypt page of INBOX message msg_id, through the unlock page if it asks."""
    page = c.get("/message", {"id": msg_id, "folder": "INBOX"})
    test.assertEqual(page.status, 200, page.text)
    fields = {"csrf": page.hidden("csrf", form_action="/decrypt"), "id": msg_id,
              "folder": "INBOX"}
    r = c.post("/decrypt", fields)
    if r.page == "unlock":
        r = c.post("/unlock", dict(fields, passphrase="key passphrase for tests",
                                   confirm="key passphrase for tests", ok="1"))
    test.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
    return r


class WebImap(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start_dovecot(cls)
        cls.tmp = tempfile.mkdtemp(prefix="wmk-imap-")
        cls.wmk = None
        try:
            cls._setup()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _setup(cls):
        d = cls.tmp
        master_file = os.path.join(d, "imap-master")
        with open(master_file, "w") as f:
            f.write(cls.info["master_password"] + "\n")
        os.chmod(master_file, 0o600)
        cls.wmk = Instance(config={
            "mailbox": "imap",
            "imap_host": "localhost",
            "imap_port": cls.info["imaps_port"],
            "imap_tls": "imaps",
            "imap_ca_file": cls.info["ca_file"],
            "imap_login": "master",
            "imap_master_user": cls.info["master"],
            "imap_master_password_file": master_file,
        })
        cls.outbox = cls.wmk.capture_sendmail()
        cls.wmk.add_user(LOGIN, PASSWORD, "%s@example.org" % LOGIN)
        check = cls.wmk.cli("config", "check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr

        # The user's key by an outside gpg, imported; the sender's key signs.
        cls.gpg = Gpg(os.path.join(d, "gpg"))
        cls.fpr = cls.gpg.make_key("User Three <%s@example.org>" % LOGIN)
        with open(d + "/user.asc", "wb") as f:
            f.write(cls.gpg("--armor", "--export-secret-keys", cls.fpr))
        cls.wmk.cli("key", "import", LOGIN, "--type", "openpgp", d + "/user.asc",
                    "--passphrase-stdin", input="%s\n\n" % "key passphrase for tests")

        # The encrypted message, appended by Python's imaplib as the user (CRLF bytes).
        m = multipart_encrypted(cls.gpg("--armor", "-e", "-r", cls.fpr,
                                        input=(SECRET + "\n").encode()))
        m["From"] = "Bob <bob@example.net>"
        m["To"] = "%s@example.org" % LOGIN
        m["Subject"] = "Encrypted over IMAP"
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = "<imap-1@example.net>"
        raw = m.as_bytes(policy=email.policy.SMTP)
        with cls.imap() as c:
            typ, data = c.append("INBOX", None, None, raw)
            assert typ == "OK", data
            cls.uid = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "gpg", None):
            cls.gpg.stop()
        if cls.wmk:
            cls.wmk.close()
        stop_dovecot(cls)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def imap(cls):
        ctx = ssl.create_default_context(cafile=cls.info["ca_file"])
        c = imaplib.IMAP4_SSL("localhost", cls.info["imaps_port"], ssl_context=ctx)
        c.login(LOGIN, IMAP_PASSWORD)
        return c

    def browser(self):
        c = self.wmk.client()
        c.login(LOGIN, PASSWORD)
        return c

    def test_read_decrypt_reply_and_find_it_in_sent_on_the_server(self):
        c = self.browser()
        inbox = c.get("/inbox")
        self.assertEqual((inbox.status, inbox.page), (200, "inbox"), inbox.text)
        self.assertIn("Encrypted over IMAP", inbox.text)
        uidvalidity, uid = (int(x) for x in self.uid.groups())
        msg_id = "%d.%d" % (uidvalidity, uid)
        self.assertIn(msg_id, inbox.text)

        r = decrypted_page(self, c, msg_id)
        self.assertIn(SECRET, r.text)

        # Opening the message marked it seen on the server.
        with self.imap() as s:
            s.select("INBOX")
            typ, data = s.uid("FETCH", str(uid), "(FLAGS)")
            self.assertIn(b"\\Seen", data[0])

        ask = c.get("/compose", {"reply": msg_id, "folder": "INBOX"})
        # Unsigned, so the reply asks before quoting decrypted text: start without it.
        self.assertEqual((ask.status, ask.page), (200, "confirm-quote"), ask.text)
        self.assertIn(SECRET, ask.text)  # the preview, from the one reading over IMAP
        reply = c.post("/compose", {"csrf": ask.hidden("csrf", form_action="/compose"),
                                    "reply": msg_id, "folder": "INBOX", "action": "noquote"})
        self.assertEqual((reply.status, reply.page), (200, "compose"), reply.text)
        f = {i.get("name"): i.get("value", "") for form in reply.forms()
             for i in form["inputs"]}
        self.assertEqual(f.get("to"), "Bob <bob@example.net>")
        self.assertEqual(f.get("in_reply_to"), "imap-1@example.net")
        answer = "Agreed, nine it is.\n"
        sent = c.post("/compose", [
            ("csrf", reply.hidden("csrf", form_action="/compose")),
            ("from", "%s@example.org" % LOGIN),
            ("to", f["to"]), ("subject", f.get("subject", "")),
            ("in_reply_to", f["in_reply_to"]), ("references", f.get("references", "")),
            ("body", answer), ("action", "send"),
        ], files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual((sent.status, sent.page), (200, "sent"), sent.text)
        self.assertEqual(len(glob.glob(os.path.join(self.outbox, "*.args"))), 1)

        # The copy is in Sent on the IMAP server, seen, with the same bytes as sent.
        with open(os.path.join(self.outbox, "1.message"), "rb") as fh:
            handed = fh.read()
        with self.imap() as s:
            typ, _ = s.select("Sent")
            self.assertEqual(typ, "OK")
            typ, data = s.uid("SEARCH", None, "ALL")
            uids = data[0].split()
            self.assertEqual(len(uids), 1, data)
            typ, data = s.uid("FETCH", uids[0], "(FLAGS BODY.PEEK[])")
            self.assertIn(b"\\Seen", data[0][0])
            stored = data[0][1]
        self.assertEqual(stored.replace(b"\r\n", b"\n"), handed)
        copy = email.message_from_bytes(stored, policy=email.policy.default)
        self.assertEqual(copy["In-Reply-To"], "<imap-1@example.net>")
        self.assertIn("Agreed, nine it is.", copy.get_body(("plain",)).get_content())

        # And the Sent page lists it, from the index over IMAP.
        listing = c.get("/inbox", {"folder": "Sent"})
        self.assertEqual(listing.status, 200, listing.text)
        self.assertIn(f.get("subject", "Re: Encrypted over IMAP"), listing.text)

    def folder_on_server(self, folder):
        """[(flags, bytes)] of every message in folder, read by imaplib as the user;
        None if the server has no such folder."""
        out = []
        with self.imap() as s:
            typ, _ = s.select(folder)
            if typ != "OK":
                return None
            typ, data = s.uid("SEARCH", None, "ALL")
            for uid in data[0].split():
                typ, got = s.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                out.append((got[0][0], got[0][1]))
        return out

    def test_drafts_are_saved_replaced_and_removed_on_the_server(self):
        c = self.browser()
        before = len(self.folder_on_server("Drafts") or [])
        form = c.get("/compose")
        fields = [("from", "%s@example.org" % LOGIN), ("to", "carol@example.net"),
                  ("subject", "Draft over IMAP"), ("body", "first words\n"), ("action", "save")]
        files = [("attachment", "", "application/octet-stream", b"")]
        saved = c.post("/compose", [("csrf", form.hidden("csrf", form_action="/compose"))] +
                       fields, files=files)
        self.assertEqual((saved.status, saved.page), (200, "compose"), saved.text)
        draft = saved.hidden("draft", form_action="/compose")
        self.assertRegex(draft, r"^\d+\.\d+$")  # UIDVALIDITY.UID
        drafts = self.folder_on_server("Drafts")
        self.assertEqual(len(drafts), before + 1)
        self.assertIn(b"\\Draft", drafts[-1][0])
        self.assertIn(b"first words", drafts[-1][1])

        fields[3] = ("body", "second words\n")
        again = c.post("/compose", [("csrf", form.hidden("csrf", form_action="/compose")),
                                    ("draft", draft)] + fields, files=files)
        self.assertEqual((again.status, again.page), (200, "compose"), again.text)
        drafts = self.folder_on_server("Drafts")
        self.assertEqual(len(drafts), before + 1)  # the old one was removed
        self.assertIn(b"second words", drafts[-1][1])
        self.assertNotEqual(again.hidden("draft", form_action="/compose"), draft)

        listing = c.get("/inbox", {"folder": "Drafts"})
        self.assertEqual(listing.status, 200, listing.text)
        self.assertIn("Draft over IMAP", listing.text)

    def test_deliver_refuses_so_the_mta_keeps_the_message(self):
        r = self.wmk.cli("deliver", LOGIN, input=b"Subject: x\n\nbody\n", check=False)
        self.assertEqual(r.returncode, 75, r.stdout + r.stderr)
        self.assertIn("mailbox = imap", r.stderr)
        self.assertFalse(os.path.exists(self.wmk.maildir_path(LOGIN)))

    def test_a_server_whose_certificate_does_not_verify_is_a_clear_error(self):
        c = self.browser()
        try:
            self.wmk.write_config(imap_ca_file="")  # the test CA is not in the system store
            r = c.get("/inbox")
            self.assertEqual(r.status, 503, r.text)
            self.assertIn("cannot be reached just now", r.text)
            self.assertNotIn(self.info["master_password"], r.text)
        finally:
            self.wmk.write_config(imap_ca_file=self.info["ca_file"])
        r = c.get("/inbox")
        self.assertEqual((r.status, r.page), (200, "inbox"), r.text)
        self.assertIn("Encrypted over IMAP", r.text)

    def dovecot_command(self, command):
        self.dovecot.stdin.write(command + "\n")
        self.dovecot.stdin.flush()
        self.assertEqual(self.dovecot.stdout.readline().strip(),
                         {"stop": "stopped", "start": "started"}[command])

    def imap_logins(self, settle=0.5):
        """How many IMAP logins as LOGIN Dovecot has logged (master-user logins included),
        after waiting for its log process to catch up."""
        time.sleep(settle)
        with open(os.path.join(self.info["dir"], "dovecot.log"), errors="replace") as f:
            return f.read().count("Login: user=<%s>" % LOGIN)

    def test_one_imap_login_per_request_and_a_warm_worker_keeps_it(self):
        # docs/security.md, "The IMAP connection a worker keeps".
        c = self.browser()
        uidvalidity, uid = (int(x) for x in self.uid.groups())
        msg_id = "%d.%d" % (uidvalidity, uid)
        page = c.get("/message", {"id": msg_id, "folder": "INBOX"})
        self.assertEqual(page.status, 200, page.text)
        token = page.hidden("csrf", form_action="/decrypt")
        fields = {"csrf": token, "id": msg_id, "folder": "INBOX"}
        # POST /decrypt reads the message for the page and for KeySession: one login.
        # (No unlock: the page asks for it, or says the key is in use elsewhere.)
        before = self.imap_logins()
        for _ in range(4):
            r = c.post("/decrypt", fields)
            self.assertEqual(r.status, 200, r.text[-1500:])
        decrypt_logins = self.imap_logins() - before
        before = self.imap_logins(settle=0)
        for _ in range(6):
            r = c.get("/inbox")
            self.assertEqual((r.status, r.page), (200, "inbox"), r.text[-1500:])
        inbox_logins = self.imap_logins() - before
        if self.wmk.mode == "cgi":
            # A CGI process keeps nothing: exactly one login per request, never two.
            self.assertEqual((decrypt_logins, inbox_logins), (4, 6))
        else:
            # Each program's workers (scripts/serve: 2) log in at most once each.
            self.assertLessEqual(decrypt_logins, 2)
            self.assertLessEqual(inbox_logins, 2)
        # Dovecot restarted: the kept connections are dead; the next pages notice by NOOP
        # and log in again, with no error page.
        self.dovecot_command("stop")
        self.dovecot_command("start")
        for _ in range(3):
            r = c.get("/inbox")
            self.assertEqual((r.status, r.page), (200, "inbox"), r.text[-1500:])
            self.assertIn("Encrypted over IMAP", r.text)
        r = c.post("/decrypt", fields)
        self.assertEqual(r.status, 200, r.text[-1500:])

    def test_the_imap_server_stopping_mid_flow_loses_nothing_and_recovers(self):
        c = self.browser()
        form = c.get("/compose")
        self.assertEqual(form.status, 200, form.text)
        csrf = form.hidden("csrf", form_action="/compose")
        drafts_before = len(self.folder_on_server("Drafts") or [])
        fields = [("csrf", csrf), ("from", "%s@example.org" % LOGIN), ("to", "carol@example.net"),
                  ("subject", "Written while the server was down"),
                  ("body", "Words typed while the IMAP server was down.\n"), ("action", "save")]
        files = [("attachment", "", "application/octet-stream", b"")]
        sent_before = len(glob.glob(os.path.join(self.outbox, "*.args")))
        self.dovecot_command("stop")
        try:
            r = c.get("/inbox")
            self.assertEqual(r.status, 503, r.text)
            self.assertIn("cannot be reached just now", r.text)
            for action in ("save", "send"):
                fields[-1] = ("action", action)
                r = c.post("/compose", fields, files=files)
                self.assertEqual(r.status, 503, (action, r.text[-1500:]))
                self.assertIn("nothing was sent, saved or changed", r.text)
                self.assertIn("Try again", r.text)
                # What the user wrote comes back to them.
                self.assertIn("Words typed while the IMAP server was down.", r.text)
                self.assertIn("Written while the server was down", r.text)
            # Nothing went to the MTA.
            self.assertEqual(len(glob.glob(os.path.join(self.outbox, "*.args"))), sent_before)
        finally:
            self.dovecot_command("start")
        # The same browser session works again, without restarting anything.
        r = c.get("/inbox")
        self.assertEqual((r.status, r.page), (200, "inbox"), r.text[-1500:])
        self.assertIn("Encrypted over IMAP", r.text)
        fields[-1] = ("action", "save")
        saved = c.post("/compose", fields, files=files)
        self.assertEqual((saved.status, saved.page), (200, "compose"), saved.text[-1500:])
        self.assertEqual(len(self.folder_on_server("Drafts")), drafts_before + 1)


class ImapServerShape:
    """One IMAP server shape, end to end (subclasses name it): the user reads the inbox,
    a message delivered afterwards (appended by imaplib as the user, as the MDA would)
    shows at the next inbox view, a flag set by another client shows too, and the new
    message decrypts. The server's shape is checked from outside first, so a test
    cannot pass on the wrong shape."""

    TLS = "imaps"
    CONDSTORE = True
    LOGIN = None

    @classmethod
    def setUpClass(cls):
        start_dovecot(cls, condstore=cls.CONDSTORE)
        cls.tmp = tempfile.mkdtemp(prefix="wmk-imap-shape-")
        cls.wmk = None
        cls.gpg = None
        try:
            info = cls.info
            master_file = os.path.join(cls.tmp, "imap-master")
            with open(master_file, "w") as f:
                f.write(info["master_password"] + "\n")
            os.chmod(master_file, 0o600)
            cls.wmk = Instance(mailbox="maildir", config={
                "mailbox": "imap",
                "imap_host": "localhost",
                "imap_port": info["imap_port"] if cls.TLS == "starttls" else info["imaps_port"],
                "imap_tls": cls.TLS,
                "imap_ca_file": info["ca_file"],
                "imap_login": "master",
                "imap_master_user": info["master"],
                "imap_master_password_file": master_file,
            })
            cls.wmk.add_user(cls.LOGIN, PASSWORD, "%s@example.org" % cls.LOGIN)
            cls.gpg = Gpg(os.path.join(cls.tmp, "gpg"))
            cls.fpr = cls.gpg.make_key("User <%s@example.org>" % cls.LOGIN)
            with open(cls.tmp + "/user.asc", "wb") as f:
                f.write(cls.gpg("--armor", "--export-secret-keys", cls.fpr))
            cls.wmk.cli("key", "import", cls.LOGIN, "--type", "openpgp", cls.tmp + "/user.asc",
                        "--passphrase-stdin", input="%s\n\n" % "key passphrase for tests")
            cls.append(b"From: Bob <bob@example.net>\r\nTo: %s@example.org\r\n"
                       b"Subject: Before the first look\r\nMessage-ID: <shape-0@example.net>"
                       b"\r\n\r\nHello.\r\n" % cls.LOGIN.encode())
            cls.wmk.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.gpg:
            cls.gpg.stop()
        if cls.wmk:
            cls.wmk.close()
        stop_dovecot(cls)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def imap(cls):
        """imaplib logged in as the user, over IMAPS."""
        ctx = ssl.create_default_context(cafile=cls.info["ca_file"])
        c = imaplib.IMAP4_SSL("localhost", cls.info["imaps_port"], ssl_context=ctx)
        c.login("%s*%s" % (cls.LOGIN, cls.info["master"]), cls.info["master_password"])
        return c

    @classmethod
    def append(cls, raw):
        with cls.imap() as c:
            typ, data = c.append("INBOX", None, None, raw)
            assert typ == "OK", data
            found = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
            return found.group(1).decode(), found.group(2).decode()

    def check_shape(self):
        raise NotImplementedError

    def test_reads_sees_new_mail_and_flags_after_a_refresh_and_decrypts(self):
        self.check_shape()
        c = self.wmk.client()
        c.login(self.LOGIN, PASSWORD)
        inbox = c.get("/inbox")
        self.assertEqual((inbox.status, inbox.page), (200, "inbox"), inbox.text)
        self.assertIn("Before the first look", inbox.text)
        self.assertNotIn("Arrived later", inbox.text)

        secret = "Shape %s/%s: the key is under the mat." % (self.TLS, self.CONDSTORE)
        m = multipart_encrypted(self.gpg("--armor", "-e", "-r", self.fpr,
                                         input=(secret + "\n").encode()))
        m["From"] = "Bob <bob@example.net>"
        m["To"] = "%s@example.org" % self.LOGIN
        m["Subject"] = "Arrived later"
        m["Date"] = email.utils.formatdate(time.time())
        m["Message-ID"] = "<shape-1@example.net>"
        uidvalidity, uid = self.append(m.as_bytes(policy=email.policy.SMTP))
        msg_id = "%s.%s" % (uidvalidity, uid)

        def row(page, subject):
            found = re.search(r'<tr class="(seen|unread)">((?:(?!</tr>).)*%s)' % re.escape(subject),
                              page.text, re.S)
            self.assertIsNotNone(found, page.text)
            return found.group(1)

        inbox = c.get("/inbox")
        self.assertEqual(inbox.status, 200, inbox.text)
        self.assertEqual(row(inbox, "Arrived later"), "unread")
        self.assertIn(msg_id, inbox.text)
        self.assertEqual(row(inbox, "Before the first look"), "unread")

        # Another client marks the first message seen: the next view shows it.
        with self.imap() as s:
            s.select("INBOX")
            typ, data = s.uid("SEARCH", None, "HEADER", "Message-ID", "shape-0@example.net")
            first = data[0].split()[0]
            typ, _ = s.uid("STORE", first, "+FLAGS", "(\\Seen)")
            self.assertEqual(typ, "OK")
        inbox = c.get("/inbox")
        self.assertEqual(row(inbox, "Before the first look"), "seen")
        self.assertEqual(row(inbox, "Arrived later"), "unread")

        r = decrypted_page(self, c, msg_id)
        self.assertIn(secret, r.text)
        self.check_logins()

    def check_logins(self):
        pass


class WebImapStartTls(ImapServerShape, unittest.TestCase):
    """`imap_tls = starttls` on the plain IMAP port (143 in production): the server
    refuses LOGIN before TLS (ssl = required), so a working inbox means STARTTLS ran and
    the certificate verified."""

    TLS = "starttls"
    LOGIN = "user6"

    def check_logins(self):
        # Dovecot counts loopback as secure and would take LOGIN in the clear there, so
        # its log says how the product came in: every login on the plain port had TLS.
        with open(os.path.join(self.info["dir"], "dovecot.log")) as f:
            log = f.read()
        logins = [line for line in log.splitlines()
                  if "Login: user=<%s>" % self.LOGIN in line
                  and "lport=%d," % self.info["imap_port"] in line]
        self.assertGreater(len(logins), 0, log[-3000:])
        for line in logins:
            self.assertIn(" TLS", line)

    def check_shape(self):
        with imaplib.IMAP4("localhost", self.info["imap_port"]) as c:
            self.assertIn("STARTTLS", c.capabilities)
        # The same config with implicit TLS on that port cannot work: the inbox is a
        # clear error page, and works again with STARTTLS.
        c = self.wmk.client()
        c.login(self.LOGIN, PASSWORD)
        try:
            self.wmk.write_config(imap_tls="imaps")
            r = c.get("/inbox")
            self.assertEqual(r.status, 503, r.text)
        finally:
            self.wmk.write_config(imap_tls="starttls")


class WebImapWithoutCondstore(ImapServerShape, unittest.TestCase):
    """A server that advertises neither CONDSTORE nor QRESYNC: the index falls back to
    comparing UID and flag lists (tests/unit/mailbox_test.cc has the counts)."""

    CONDSTORE = False
    LOGIN = "user7"

    def check_shape(self):
        with self.imap() as c:
            typ, data = c.capability()  # after login: what the product sees
            caps = data[0].decode().split()
            self.assertNotIn("CONDSTORE", caps)
            self.assertNotIn("QRESYNC", caps)
            self.assertIn("UIDPLUS", caps)


OWN_LOGIN = "user4"
OWN_PASSWORD = "pw-4-secret"  # the user's IMAP password is their webmailkey password


class WebImapOwnPassword(unittest.TestCase):
    """`imap_login = user`: no master user; the server logs in to IMAP with the password
    the user logged in with, kept for the session sealed under a secret that only the
    browser's `__Host-wmk-mail` cookie holds (docs/security.md, "Mail-server login")."""

    @classmethod
    def setUpClass(cls):
        start_dovecot(cls)
        info = cls.info
        cls.wmk = None
        try:
            cls.wmk = Instance(config={
                "mailbox": "imap",
                "imap_host": "localhost",
                "imap_port": info["imaps_port"],
                "imap_tls": "imaps",
                "imap_ca_file": info["ca_file"],
                "imap_login": "user",
            })
            cls.wmk.add_user(OWN_LOGIN, OWN_PASSWORD, "%s@example.org" % OWN_LOGIN)
            check = cls.wmk.cli("config", "check", check=False)
            assert check.returncode == 0, check.stdout + check.stderr
            ctx = ssl.create_default_context(cafile=info["ca_file"])
            with imaplib.IMAP4_SSL("localhost", info["imaps_port"], ssl_context=ctx) as c:
                c.login(OWN_LOGIN, OWN_PASSWORD)
                raw = (b"From: Bob <bob@example.net>\r\nTo: user4@example.org\r\n"
                       b"Subject: Read with her own password\r\nMessage-ID: <own-1@example.net>"
                       b"\r\n\r\nHello over IMAP.\r\n")
                typ, data = c.append("INBOX", None, None, raw)
                assert typ == "OK", data
            cls.wmk.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.wmk:
            cls.wmk.close()
        stop_dovecot(cls)

    def test_the_login_password_opens_the_mailbox_and_is_kept_only_sealed(self):
        c = self.wmk.client()
        c.login(OWN_LOGIN, OWN_PASSWORD)
        self.assertIn("__Host-wmk-mail", c.cookies)
        cookie = c.cookies["__Host-wmk-mail"]
        inbox = c.get("/inbox")
        self.assertEqual((inbox.status, inbox.page), (200, "inbox"), inbox.text)
        self.assertIn("Read with her own password", inbox.text)

        # Neither the password nor the cookie's secret is stored anywhere on disk.
        for root, _, files in os.walk(self.wmk.data_dir):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue  # the FastCGI workers' sockets
                with open(path, "rb") as f:
                    data = f.read()
                self.assertNotIn(OWN_PASSWORD.encode(), data, name)
                self.assertNotIn(cookie.encode(), data, name)
        with open(self.wmk.config_path, "rb") as f:
            self.assertNotIn(OWN_PASSWORD.encode(), f.read())

        # Without the mail cookie, or with another one, the session cannot reach the
        # mailbox: a clear page, never another user's mail or a crash.
        for value in (None, "A" * 43):
            if value is None:
                del c.cookies["__Host-wmk-mail"]
            else:
                c.cookies["__Host-wmk-mail"] = value
            r = c.get("/inbox")
            self.assertEqual(r.status, 401, r.text)
            self.assertIn("Log out and log in again", r.text)
            self.assertNotIn("Read with her own password", r.text)
        c.cookies["__Host-wmk-mail"] = cookie
        self.assertEqual(c.get("/inbox").status, 200)

        # Logout ends it: the old cookie opens nothing in a new session.
        r = c.post("/logout", {"csrf": inbox.hidden("csrf", form_action="/logout")})
        self.assertNotIn("__Host-wmk-mail", c.cookies)
        d = self.wmk.client()
        d.login(OWN_LOGIN, OWN_PASSWORD)
        d.cookies["__Host-wmk-mail"] = cookie
        self.assertEqual(d.get("/inbox").status, 401)

    def test_a_password_the_mail_server_refuses_is_a_clear_page(self):
        # The webmailkey password differs from the IMAP one: the login works, the
        # mailbox says what to do.
        self.wmk.cli("user", "add", "user5", "--email", "user5@example.org", "--password-stdin",
                     input="not the imap password\n")
        c = self.wmk.client()
        c.login("user5", "not the imap password")
        r = c.get("/inbox")
        self.assertEqual(r.status, 401, r.text)
        self.assertIn("did not accept your password", r.text)


if __name__ == "__main__":
    unittest.main()
