"""Sending through a real MTA: Debian's Postfix, run by scripts/mta with its own config
and queue under the data directory.

alice sends from the compose page to bob (a user of this server) and to erin (outside).
Postfix hands bob's copy to `webmailkey deliver bob` (a pipe(8) transport), and the test
finds it in bob's Maildir with Python's `mailbox`; erin's copy waits in Postfix's queue
(`postqueue -p`), and the sent page says that outside mail may wait. `config check`
fails when the sendmail program is missing or not executable.

Postfix starts only as root; without root or without Postfix the suite is skipped with
the reason (scripts/setup installs Postfix; CI runs as root)."""

import email
import email.policy
import mailbox
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CLI, SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
MTA = os.path.join(SOURCE_DIR, "scripts", "mta")
# Postfix never delivers as root; nobody owns the instance's data during the test.
DELIVERY_USER = "nobody"


def login(client, user, password=PASSWORD):
    return client.login(user, password)


@unittest.skipUnless(os.geteuid() == 0, "Postfix starts only as root")
@unittest.skipUnless(os.access("/usr/sbin/postfix", os.X_OK), "Postfix is not installed")
class SendThroughPostfix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.add_user("bob", PASSWORD, "bob@example.org")
        # bob's Maildir exists before Postfix delivers (as DELIVERY_USER) into it.
        cls.wmk.deliver("bob", b"From: a@example.org\nTo: bob@example.org\nSubject: first\n\nhi\n")
        # The delivery account must reach and write the database and the Maildirs.
        os.chmod(cls.wmk.tmp, 0o711)
        subprocess.run(["chown", "-R", DELIVERY_USER, cls.wmk.data_dir, cls.wmk.config_path],
                       check=True)
        r = subprocess.run([MTA, "start", "--data-dir", cls.wmk.data_dir, "--config",
                            cls.wmk.config_path, "--cli", CLI, "--user", DELIVERY_USER,
                            "--domain", "example.org"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            cls.wmk.close()
            raise AssertionError("scripts/mta start failed: " + r.stderr)
        cls.sendmail = r.stdout.strip()
        cls.wmk.write_config(sendmail=cls.sendmail)
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        subprocess.run([MTA, "stop", "--data-dir", cls.wmk.data_dir], timeout=60)
        cls.wmk.close()

    def bob_messages(self):
        box = mailbox.Maildir(self.wmk.maildir_path("bob"), factory=None, create=False)
        return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
                for k in box.keys()]

    def queue(self):
        r = subprocess.run([MTA, "queue", "--data-dir", self.wmk.data_dir],
                           capture_output=True, text=True, timeout=30)
        return r.stdout

    def test_send_to_a_user_arrives_and_outside_mail_waits(self):
        c = self.wmk.client()
        login(c, "alice")
        token = c.get("/compose").hidden("csrf", form_action="/compose")
        subject = "through postfix %d" % time.time()
        r = c.post("/compose", [("csrf", token), ("to", "bob@example.org, erin@outside.example"),
                                ("subject", subject), ("body", "Hello Bob, hello Erin.\n"),
                                ("action", "send")],
                   files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "sent", r.text)
        self.assertIn("bob@example.org", r.text_of("sent-to"))
        outside = r.text_of("sent-outside")
        self.assertIn("erin@outside.example", outside)
        self.assertIn("queue", outside)

        # Postfix delivers through `webmailkey deliver bob`: the message appears in bob's
        # Maildir, with the headers the pipe transport adds.
        deadline = time.time() + 60
        got = []
        while time.time() < deadline:
            got = [m for m in self.bob_messages() if m["Subject"] == subject]
            if got:
                break
            time.sleep(0.5)
        self.assertEqual(len(got), 1, "not delivered; queue:\n" + self.queue())
        msg = got[0]
        self.assertEqual(msg["Delivered-To"], "bob@example.org")
        self.assertIn("alice@example.org", msg["Return-Path"])
        self.assertIn("Hello Bob", msg.get_body(("plain",)).get_content())
        # ... and bob sees it in his inbox on the web.
        b = self.wmk.client()
        login(b, "bob")
        self.assertIn(subject, b.get("/inbox").text)

        # erin's copy waits in the queue (defer_transports = smtp): nothing left the host.
        self.assertIn("erin@outside.example", self.queue())


class ConfigCheck(unittest.TestCase):
    """Needs no root: only the sendmail program's presence is checked."""

    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.good = os.path.join(cls.wmk.tmp, "sendmail")
        with open(cls.good, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(cls.good, 0o755)
        cls.wmk.write_config(sendmail=cls.good)

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def test_config_check_fails_without_an_executable_sendmail(self):
        r = self.wmk.cli("config", "check", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(": ok", r.stdout)
        missing = os.path.join(self.wmk.tmp, "no-such-sendmail")
        not_exec = os.path.join(self.wmk.tmp, "not-executable")
        with open(not_exec, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(not_exec, 0o644)
        try:
            for path, words in ((missing, "does not exist"), (not_exec, "not an executable")):
                with self.subTest(path=path):
                    self.wmk.write_config(sendmail=path)
                    r = self.wmk.cli("config", "check", check=False)
                    self.assertEqual(r.returncode, 1, r.stdout)
                    self.assertIn(words, r.stderr)
                    self.assertIn("sendmail", r.stderr)
        finally:
            self.wmk.write_config(sendmail=self.good)


if __name__ == "__main__":
    unittest.main()
