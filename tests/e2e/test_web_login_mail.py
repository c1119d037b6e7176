"""Login, inbox, message, attachment and logout through a real lighttpd over HTTPS.

Users are made with the real CLI; mail is put into the Maildir by Python's own
`mailbox` module from messages built with the `email` package, so the fixtures do
not come from the code under test."""

import email.message
import email.utils
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
# A small but real PDF: libmagic must call it application/pdf whatever the sender says.
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n" + bytes(range(256)))


def plain_message(subject, body, sender="Carol Example <carol@example.net>", date=None):
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = "alice@example.org"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(date or time.time())
    m["Message-ID"] = email.utils.make_msgid()
    m.set_content(body)
    return m.as_bytes()


def message_with_attachment():
    m = email.message.EmailMessage()
    m["From"] = "Dave <dave@example.net>"
    m["To"] = "alice@example.org"
    m["Subject"] = "Report attached"
    m["Date"] = email.utils.formatdate(time.time() - 60)
    m.set_content("The report is attached.\n")
    # The sender claims HTML and a hostile name; neither may be trusted.
    m.add_attachment(PDF, maintype="text", subtype="html", filename='../../Bericht "Q3".pdf')
    return m.as_bytes()


def pgp_mime_message():
    m = email.message.EmailMessage()
    m["From"] = "Erin <erin@example.net>"
    m["To"] = "alice@example.org"
    m["Subject"] = "Secret plans"
    m["Date"] = email.utils.formatdate(time.time() - 120)
    m.make_mixed()
    m.set_type("multipart/encrypted")
    m.set_param("protocol", "application/pgp-encrypted")
    control = email.message.EmailMessage()
    control.set_content(b"Version: 1\n", maintype="application", subtype="pgp-encrypted",
                        cte="7bit")
    payload = email.message.EmailMessage()
    payload.set_content(b"-----BEGIN PGP MESSAGE-----\n\nhQEMA1234567890=\n=abcd\n"
                        b"-----END PGP MESSAGE-----\n",
                        maintype="application", subtype="octet-stream", cte="7bit",
                        filename="encrypted.asc")
    m.attach(control)
    m.attach(payload)
    return m.as_bytes()


def login(client, user="alice", password=PASSWORD):
    return client.login(user, password, expect=None)


class LoginAndMail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(config={"page_size": 5})
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.add_user("bob", "bob's password", "bob@example.org")
        cls.plain_uid = cls.wmk.deliver_with_python(
            "alice", plain_message("Grüße <b>aus</b> Köln",
                                   "Hallo Alice,\n<script>alert('x')</script>\nBis bald.\n",
                                   date=time.time() - 3600))
        cls.attachment_uid = cls.wmk.deliver_with_python("alice", message_with_attachment())
        cls.encrypted_uid = cls.wmk.deliver_with_python("alice", pgp_mime_message())
        # And one through webmailkey's own delivery agent, as Postfix would run it.
        cls.wmk.deliver("alice", plain_message("Delivered by the CLI", "via deliver\n",
                                               date=time.time() - 7200))
        # Bob has enough mail for two pages.
        for i in range(7):
            cls.wmk.deliver_with_python("bob", plain_message("Bob message %d" % i, "x\n",
                                                             date=time.time() - 1000 * i))
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def logged_in(self, user="alice", password=PASSWORD):
        c = self.wmk.client()
        r = login(c, user, password)
        self.assertEqual(r.status, 303, r.text)
        return c

    # ---- login

    def test_right_password_logs_in_with_a_secure_session_cookie(self):
        c = self.wmk.client()
        r = login(c)
        self.assertEqual(r.status, 303, r.text)
        self.assertEqual(r.location, "/inbox")
        cookies = r.set_cookies()
        s = cookies["__Host-wmk-session"]
        self.assertGreaterEqual(len(s["value"]), 43)
        for attr in ("secure", "httponly"):
            self.assertIs(s.get(attr), True)
        self.assertEqual(s.get("samesite"), "Strict")
        self.assertEqual(s.get("path"), "/")
        self.assertNotIn("domain", s)
        self.assertEqual(cookies["__Host-wmk-login-csrf"].get("max-age"), "0")
        inbox = c.follow(r)
        self.assertEqual(inbox.status, 200)
        self.assertEqual(inbox.page, "inbox")
        self.assertIn("alice", inbox.text_of("who"))

    def test_wrong_password_gives_401_login_page(self):
        for user, password in (("alice", "wrong"), ("nobody", PASSWORD)):
            c = self.wmk.client()
            r = login(c, user, password)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.page, "login")
            self.assertIn("Wrong user name or password", r.text_of("notice-error"))
            self.assertNotIn("__Host-wmk-session", c.cookies)
            self.assertNotIn(password, r.text)
            # The form is offered again with the name kept and a fresh token.
            self.assertTrue(r.hidden("csrf"))
            self.assertIn('value="%s"' % user, r.text)
            self.assertEqual(c.get("/inbox").status, 303)

    def test_login_refuses_missing_or_wrong_csrf_and_cross_site_posts(self):
        c = self.wmk.client()
        token = c.get("/login").hidden("csrf")
        for fields in ({"user": "alice", "password": PASSWORD},
                       {"user": "alice", "password": PASSWORD, "csrf": "x" + token[1:]}):
            r = c.post("/login", fields)
            self.assertEqual(r.status, 403)
            self.assertEqual(r.page, "login")
            self.assertNotIn("__Host-wmk-session", c.cookies)
        # The field without the cookie (another browser) is refused too.
        other = self.wmk.client()
        r = other.post("/login", {"user": "alice", "password": PASSWORD, "csrf": token})
        self.assertEqual(r.status, 403)
        # A post from another site is refused whatever it carries.
        c2 = self.wmk.client()
        token2 = c2.get("/login").hidden("csrf")
        r = c2.post("/login", {"user": "alice", "password": PASSWORD, "csrf": token2},
                    same_origin=False, headers={"Origin": "https://evil.example",
                                                "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(r.status, 403)
        self.assertNotIn("__Host-wmk-session", c2.cookies)

    def test_each_login_gets_a_new_session_id_never_a_planted_one(self):
        planted = "A" * 43
        c = self.wmk.client()
        c.cookies["__Host-wmk-session"] = planted
        r = login(c)
        self.assertEqual(r.status, 303)
        first = c.cookies["__Host-wmk-session"]
        self.assertNotEqual(first, planted)
        second = self.logged_in().cookies["__Host-wmk-session"]
        self.assertNotEqual(first, second)

    def test_login_page_redirects_a_logged_in_user(self):
        c = self.logged_in()
        r = c.get("/login")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.location, "/inbox")

    # ---- inbox

    def test_inbox_lists_delivered_mail_escaped_with_links_and_badges(self):
        c = self.logged_in()
        r = c.get("/inbox")
        self.assertEqual(r.page, "inbox")
        self.assertIn("Grüße &lt;b&gt;aus&lt;/b&gt; Köln", r.text)
        self.assertNotIn("<b>aus</b>", r.text)
        self.assertIn("Report attached", r.text)
        self.assertIn("Secret plans", r.text)
        self.assertIn("Delivered by the CLI", r.text)
        for uid in (self.plain_uid, self.attachment_uid, self.encrypted_uid):
            self.assertIn("/message?" + urllib.parse.urlencode({"id": uid, "folder": "INBOX"}),
                          [l.replace("&amp;", "&") for l in r.links()])
        # The encrypted message carries a badge in its row.
        row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Secret plans(?:(?!</tr>).)*</tr>", r.text, re.S)
        self.assertIsNotNone(row)
        self.assertIn("badge encrypted", row.group(0))
        # Newest first: the encrypted one (2 min old) before the plain one (1 h old).
        self.assertLess(r.text.index("Secret plans"), r.text.index("Köln"))
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_inbox_pages_and_folders(self):
        c = self.logged_in("bob", "bob's password")
        p1 = c.get("/inbox")
        self.assertIn("Bob message 0", p1.text)
        self.assertNotIn("Bob message 6", p1.text)
        self.assertIn("Page 1 of 2", p1.text)
        p2 = c.get("/inbox", {"page": "2"})
        self.assertEqual(p2.status, 200)
        self.assertIn("Bob message 6", p2.text)
        self.assertNotIn("Bob message 0", p2.text)
        sent = c.get("/inbox", {"folder": "Sent"})
        self.assertEqual(sent.status, 200)
        self.assertEqual(sent.page, "inbox")
        self.assertIn("No messages", sent.text)
        self.assertEqual(c.get("/inbox", {"folder": "../../etc"}).status, 404)
        self.assertEqual(c.get("/inbox", {"page": "0"}).status, 400)
        self.assertEqual(c.get("/inbox", {"page": "x"}).status, 400)
        # Bob sees none of Alice's mail.
        self.assertNotIn("Secret plans", p1.text + p2.text)

    # ---- message

    def test_plain_message_opens_escaped_and_is_marked_seen(self):
        c = self.logged_in()
        row_before = self._row(c.get("/inbox").text, "Köln")
        r = c.get("/message", {"id": self.plain_uid, "folder": "INBOX"})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "message")
        self.assertIn("Grüße &lt;b&gt;aus&lt;/b&gt; Köln", r.text)
        self.assertIn("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", r.text)
        self.assertNotIn("<script>", r.text)
        self.assertIn("Carol Example", r.text)
        self.assertIn("carol@example.net", r.text)
        self.assertIn("unread", row_before)
        self.assertNotIn("unread", self._row(c.get("/inbox").text, "Köln"))

    def test_encrypted_message_shows_decrypt_button(self):
        c = self.logged_in()
        r = c.get("/message", {"id": self.encrypted_uid})
        self.assertEqual(r.page, "message")
        self.assertIn("This message is encrypted", r.text)
        self.assertNotIn("BEGIN PGP MESSAGE", r.text)
        forms = [f for f in r.forms() if f["action"] == "/decrypt"]
        self.assertEqual(len(forms), 1)
        self.assertEqual(forms[0]["method"], "post")
        fields = {i["name"]: i.get("value") for i in forms[0]["inputs"]}
        self.assertEqual(fields["id"], self.encrypted_uid)
        self.assertEqual(fields["csrf"], r.hidden("csrf", form_action="/logout"))
        self.assertTrue(fields["csrf"])

    def test_unknown_or_hostile_message_ids_are_not_found(self):
        c = self.logged_in()
        for params in ({"id": "nope"}, {"id": "../../../etc/passwd"}, {"id": ""},
                       {"id": self.plain_uid, "folder": "Nope"}, {}):
            r = c.get("/message", params)
            self.assertEqual(r.status, 404, params)
            self.assertEqual(r.page, "error")
        # Bob cannot open Alice's message by its id.
        bob = self.logged_in("bob", "bob's password")
        self.assertEqual(bob.get("/message", {"id": self.plain_uid}).status, 404)

    # ---- attachment

    def test_attachment_downloads_identical_bytes_as_attachment(self):
        c = self.logged_in()
        r = c.get("/message", {"id": self.attachment_uid})
        links = [l.replace("&amp;", "&") for l in r.links() if l.startswith("/attachment?")]
        self.assertEqual(len(links), 1, r.text)
        self.assertIn("Bericht &quot;Q3&quot;.pdf", r.text)  # shown escaped
        a = c.get(links[0])
        self.assertEqual(a.status, 200)
        self.assertEqual(a.body, PDF)
        self.assertEqual(a.header("Content-Type"), "application/pdf")
        cd = a.header("Content-Disposition")
        self.assertTrue(cd.startswith("attachment;"), cd)
        self.assertIn('filename="Bericht _Q3_.pdf"', cd)
        self.assertNotIn("..", cd)
        self.assertEqual(a.header("X-Content-Type-Options"), "nosniff")
        self.assertIn("sandbox", a.header("Content-Security-Policy"))
        self.assertEqual(a.header("Cache-Control"), "no-store")

    def test_attachment_of_unknown_part_or_message_is_not_found(self):
        c = self.logged_in()
        for params in ({"id": self.attachment_uid, "part": "9"},
                       {"id": self.attachment_uid, "part": "x/../1"},
                       {"id": "nope", "part": "1"}, {"id": self.attachment_uid}):
            self.assertEqual(c.get("/attachment", params).status, 404, params)
        self.assertEqual(self.wmk.client().get(
            "/attachment", {"id": self.attachment_uid, "part": "2"}).status, 303)

    # ---- logout

    def test_logout_ends_the_session_and_the_old_cookie_is_useless(self):
        c = self.logged_in()
        inbox = c.get("/inbox")
        token = inbox.hidden("csrf", form_action="/logout")
        old_cookie = c.cookies["__Host-wmk-session"]
        r = c.post("/logout", {"csrf": token})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.location, "/login?ended=logout")
        self.assertIn("You have logged out", c.follow(r).text_of("notice"))
        self.assertEqual(r.set_cookies()["__Host-wmk-session"].get("max-age"), "0")
        self.assertEqual(r.set_cookies()["__Host-wmk-grant"].get("max-age"), "0")
        self.assertNotIn("__Host-wmk-session", c.cookies)
        replay = self.wmk.client()
        replay.cookies["__Host-wmk-session"] = old_cookie
        r = replay.get("/inbox")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.location.split("?")[0], "/login")
        self.assertEqual(replay.get("/message", {"id": self.plain_uid}).status, 303)

    def test_logout_needs_the_sessions_csrf_token(self):
        c = self.logged_in()
        other = self.logged_in()
        other_token = other.get("/inbox").hidden("csrf", form_action="/logout")
        for fields in ({}, {"csrf": "forged"}, {"csrf": other_token}):
            r = c.post("/logout", fields)
            self.assertEqual(r.status, 403, fields)
            self.assertEqual(r.page, "error")
        token = c.get("/inbox").hidden("csrf", form_action="/logout")
        r = c.post("/logout", {"csrf": token}, same_origin=False,
                   headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 403)
        self.assertEqual(c.get("/inbox").status, 200, "the session survived")
        self.assertEqual(c.get("/logout").status, 405)

    def test_plain_http_refused_even_with_a_session(self):
        c = self.logged_in()
        cookie = "__Host-wmk-session=" + c.cookies["__Host-wmk-session"]
        r = self.wmk.run_cgi("inbox", headers={"Cookie": cookie})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.page, "error")
        self.assertNotIn("Köln", r.text)
        r = self.wmk.run_cgi("login", method="POST",
                             body="user=alice&password=x&csrf=y")
        self.assertEqual(r.status, 403)
        r = self.wmk.run_cgi("inbox", https=True, headers={"Cookie": cookie})
        self.assertEqual(r.status, 200)

    def _row(self, page, needle):
        m = re.search(r"<tr[^>]*>(?:(?!</tr>).)*%s(?:(?!</tr>).)*</tr>" % re.escape(needle),
                      page, re.S)
        self.assertIsNotNone(m, needle)
        return m.group(0)


class SessionTimeout(unittest.TestCase):
    """The idle limit is checked on every request (core/session), not only by cron."""

    def test_idle_session_ends_and_login_says_so(self):
        with Instance(config={"session_idle_timeout": 10}) as wmk:
            wmk.add_user("alice", PASSWORD)
            wmk.start()
            c = wmk.client()
            self.assertEqual(login(c).status, 303)
            self.assertEqual(c.get("/inbox").status, 200)
            time.sleep(6)
            self.assertEqual(c.get("/inbox").status, 200, "use keeps it alive")
            time.sleep(6)
            self.assertEqual(c.get("/inbox").status, 200, "12 s after login, 6 s idle")
            time.sleep(11)
            r = c.get("/inbox")
            self.assertEqual(r.status, 303)
            self.assertEqual(r.location, "/login?ended=expired")
            self.assertNotIn("__Host-wmk-session", c.cookies)
            r = c.follow(r)
            self.assertEqual(r.page, "login")
            self.assertIn("session has ended", r.text)
            self.assertIn("timed out", r.text_of("notice"))
            out = wmk.cli("audit", "--login", "alice").stdout
            self.assertIn("session.expire", out)

    def test_admin_kill_and_disable_are_explained_on_the_login_page(self):
        with Instance() as wmk:
            wmk.add_user("alice", PASSWORD)
            wmk.start()
            c = wmk.client()
            login(c)
            wmk.cli("session", "kill", "--login", "alice")
            r = c.get("/inbox")
            self.assertEqual(r.location, "/login?ended=gone")
            self.assertIn("administrator may have ended it", c.follow(r).text_of("notice"))
            login(c)
            wmk.cli("user", "disable", "alice")
            r = c.get("/inbox")
            # disable ends the sessions at once: the server no longer knows this one.
            self.assertEqual(r.location.split("?")[0], "/login")
            self.assertTrue(c.follow(r).text_of("notice"))


if __name__ == "__main__":
    unittest.main()
