#!/usr/bin/env python3
"""PostgreSQL goes down in the middle of a flow (issue 14): a node with `store =
postgresql` behind a real lighttpd running the programs as FastCGI workers.

Each time the database stops, the page says so (503, "the database cannot be
reached", Retry-After), nothing is lost (a message being sent comes back in a form,
nothing reaches the MTA, the session survives), and once the server is back the same
browser session works again without restarting the web server or its workers. The CLI
says "the database at ... is unreachable" and exits 1; `config check` tries the
connection. The password in the connection string appears nowhere. The same suite
runs again with the programs as plain CGI (BackendDownCgi).

The database is a real PostgreSQL (tests/e2e/wmk_pg.py) stopped with a fast shutdown,
as `pg_ctl stop` does, and started again on the same data; the MTA is the capturing
stand-in (tests/fixtures/sendmail-capture.sh); what was sent and saved is read back
with Python's email and mailbox modules.
"""

import email
import email.policy
import glob
import mailbox
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import Instance  # noqa: E402
from wmk_pg import PgCluster, pg_missing  # noqa: E402

PASSWORD = "Zebra-Quartz-7731-first-password"
# In the connection string: trust authentication never asks for it, so the connection
# works, and no message, page or log may show it.
DB_PASSWORD = "Db-Secret-Never-Shown-4471"
BODY = "Dear Bob,\nthe figures for March are attached below.\nÄpfel ✓\n\n-- \nAlice"


def texts_of(msg):
    """The text/plain parts of a message, joined, with LF line ends."""
    return "\n".join(p.get_content().replace("\r\n", "\n") for p in msg.walk()
                     if p.get_content_type() == "text/plain")


@unittest.skipIf(pg_missing(), pg_missing() or "")
class BackendDown(unittest.TestCase):
    MODE = "fastcgi"

    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()
        info = cls.pg.create_database("wmk_down") + " password=" + DB_PASSWORD
        cls.wmk = Instance(config={"store": "postgresql", "store_postgresql": '"%s"' % info},
                           mode=cls.MODE)
        cls.outbox = cls.wmk.capture_sendmail()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.add_user("bob", PASSWORD, "bob@example.org")
        cls.wmk.deliver_with_python("alice", "From: Bob <bob@example.org>\r\n"
                                    "To: alice@example.org\r\nSubject: March figures\r\n"
                                    "Message-ID: <march@example.org>\r\n\r\nHere they are.\r\n")
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()
        cls.pg.stop()

    def tearDown(self):
        self.pg.restart()  # whatever a failed test left, the next one has its server
        # Nothing, anywhere, shows the database password.
        for path in [self.wmk.error_log] + glob.glob(os.path.join(self.wmk.tmp, "**", "*.log"),
                                                     recursive=True):
            if os.path.isfile(path) and not path.startswith(self.pg.dir):
                with open(path, "rb") as f:
                    self.assertNotIn(DB_PASSWORD.encode(), f.read(), path)

    # ---- helpers

    def drafts(self):
        """The text of each message in alice's Drafts (Python's mailbox module)."""
        md = mailbox.Maildir(self.wmk.maildir_path("alice"), create=False)
        if "Drafts" not in md.list_folders():
            return []
        return [texts_of(email.message_from_bytes(m.as_bytes(), policy=email.policy.default))
                for m in md.get_folder("Drafts")]

    def submissions(self):
        return sorted(glob.glob(os.path.join(self.outbox, "*.message")))

    def assert_unavailable(self, r, nothing_done=True):
        self.assertEqual(r.status, 503, r.text[:500])
        self.assertEqual(r.page, "error")
        self.assertEqual(r.header("Retry-After"), "30")
        said = r.text_of("error-message")
        if nothing_done:
            self.assertIn("The database cannot be reached at the moment, so nothing was done",
                          said)
        self.assertIn("recovers by itself", said)
        self.assertNotIn(DB_PASSWORD, r.text)
        self.assertNotIn("wmk_down", r.text)  # no connection details for the browser

    def logged_in(self):
        c = self.wmk.client()
        c.login("alice", PASSWORD)
        inbox = c.get("/inbox")
        self.assertEqual(inbox.status, 200)
        self.assertIn("March figures", inbox.text)
        return c

    def compose_fields(self, c, action):
        form = c.get("/compose")
        self.assertEqual(form.page, "compose")
        return [("csrf", form.hidden("csrf", form_action="/compose")), ("draft", ""),
                ("from", "alice@example.org"), ("to", "bob@example.org"), ("cc", ""),
                ("subject", "March figures, answered"), ("body", BODY), ("kind", "openpgp"),
                ("action", action)]

    @staticmethod
    def kept_form(r):
        """The fields of the 503 page's form, as a browser would send them again."""
        forms = [f for f in r.forms() if f["action"] == "/compose"]
        assert len(forms) == 1, r.forms()
        return forms[0]

    def resend(self, c, form, r):
        # The textarea's text is in the page, not in an attribute; a browser sends it.
        fields = [(i["name"], i.get("value", "")) for i in form["inputs"]
                  if i.get("type") != "textarea"]
        fields.append(("body", BODY))
        return c.post("/compose", fields, files=[("attachment", "", "application/octet-stream",
                                                  b"")])

    # ---- the tests

    def test_send_while_postgresql_is_down_keeps_the_text_and_works_once_it_is_back(self):
        c = self.logged_in()
        workers = self.wmk.worker_pids("compose")
        fields = self.compose_fields(c, "send")
        self.pg.halt()  # between opening compose and sending
        r = c.post("/compose", fields, files=[("attachment", "", "application/octet-stream",
                                               b"")])
        self.assert_unavailable(r)
        self.assertEqual(self.submissions(), [], "nothing reaches the MTA")
        # What was typed comes back in a form that sends it again.
        form = self.kept_form(r)
        by_name = {i["name"]: i for i in form["inputs"]}
        self.assertEqual(by_name["to"]["value"], "bob@example.org")
        self.assertEqual(by_name["subject"]["value"], "March figures, answered")
        self.assertEqual(by_name["action"]["value"], "send")
        self.assertEqual(by_name["body"]["type"], "textarea")
        self.assertIn(BODY, r.text.replace("\r\n", "\n"))
        self.assertIn("What you typed is kept", r.text)
        # Still down: the same again, and no crash loop.
        self.assert_unavailable(c.get("/inbox"))
        self.pg.restart()
        sent = self.resend(c, form, r)
        self.assertEqual(sent.status, 200, sent.text[:800])
        self.assertEqual(sent.page, "sent")
        self.assertEqual(len(self.submissions()), 1)
        with open(self.submissions()[0], "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        self.assertEqual(msg["Subject"], "March figures, answered")
        self.assertIn(BODY, texts_of(msg))
        # The same workers answered throughout: they reconnected by themselves.
        self.assertEqual(self.wmk.worker_pids("compose"), workers)

    def test_save_while_postgresql_is_down_then_the_draft_is_saved(self):
        c = self.logged_in()
        fields = self.compose_fields(c, "save")
        self.pg.halt()
        r = c.post("/compose", fields, files=[("attachment", "", "application/octet-stream",
                                               b"")])
        self.assert_unavailable(r)
        before = self.drafts()
        self.assertFalse(any(BODY in d for d in before), "nothing was saved")
        self.pg.restart()
        saved = self.resend(c, self.kept_form(r), r)
        self.assertIn(saved.status, (200, 303), saved.text[:800])
        drafts = self.drafts()
        self.assertEqual(len(drafts), len(before) + 1)
        self.assertTrue(any(BODY in d for d in drafts), drafts)

    def test_inbox_while_postgresql_is_down_and_after(self):
        c = self.logged_in()
        workers = self.wmk.worker_pids("inbox")
        self.pg.halt()
        for _ in range(3):
            self.assert_unavailable(c.get("/inbox"))
        # The login page needs the database too: the same clear page, not a 500.
        self.assert_unavailable(self.wmk.client().get("/login"))
        self.pg.restart()
        again = c.get("/inbox")
        self.assertEqual(again.status, 200, again.text[:500])
        self.assertIn("March figures", again.text)
        self.assertEqual(self.wmk.worker_pids("inbox"), workers)
        # The server's log says where and why, for the administrator (without the
        # password, which tearDown checks in every log).
        self.assertRegex(self.wmk.logs(), r"webmailkey inbox: (cannot open the service: )?"
                                          r"the database at dbname=wmk_down .* is unreachable: ")

    def test_a_connection_ended_by_the_server_is_replaced_without_an_error(self):
        c = self.logged_in()
        # The server ends every session of ours (as a restart or a failover does) but
        # stays up: the workers notice before their next request and connect again.
        # (Each backend is waited for: its close is what a worker notices.)
        ended = self.pg.psql("postgres", "SELECT count(pg_terminate_backend(pid, 10000)) FROM "
                             "pg_stat_activity WHERE datname = 'wmk_down'")
        if self.MODE == "fastcgi":  # CGI programs hold no connection between requests
            self.assertGreater(int(ended), 0)
        r = c.get("/inbox")
        self.assertEqual(r.status, 200, r.text[:500])
        self.assertIn("March figures", r.text)

    def test_cli_and_config_check_say_the_database_is_unreachable(self):
        self.assertEqual(self.wmk.cli("config", "check").returncode, 0)
        self.pg.halt()
        for args in (("user", "list"), ("config", "check")):
            r = self.wmk.cli(*args, check=False)
            self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
            self.assertIn("the database at dbname=wmk_down user=wmk host=%s" % self.pg.dir,
                          r.stderr)
            self.assertIn("is unreachable:", r.stderr)
            self.assertNotIn(DB_PASSWORD, r.stderr + r.stdout)
        # Delivery: "retry later" for the MTA (EX_TEMPFAIL), so it keeps the message.
        msg = ("From: carol@example.org\r\nTo: alice@example.org\r\nSubject: While down\r\n"
               "Message-ID: <down@example.org>\r\n\r\nkept by the MTA\r\n")
        r = self.wmk.cli("deliver", "alice", input=msg, check=False)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("is unreachable", r.stderr)
        self.pg.restart()
        self.assertIn("alice", self.wmk.cli("user", "list").stdout)
        self.assertEqual(self.wmk.cli("deliver", "alice", input=msg, check=False).returncode, 0)


class BackendDownCgi(BackendDown):
    """The same with the programs as plain CGI, which connect at every request."""
    MODE = "cgi"


if __name__ == "__main__":
    unittest.main()
