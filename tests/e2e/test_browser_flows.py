"""Every flow of DESIGN §2 in a real headless Chromium (tests/browser/flows.mjs), in a
desktop window, a phone window and a desktop window with JavaScript off; screenshots of
each step go to BUILD/test-artifacts/browser/flows/<window>/.

This file provisions the instance with outside tools: users and OpenPGP keys with the
real CLI, mail built with Python's `email` package and encrypted with gpg to the key
the server exported, and a sendmail stand-in that records what is sent."""

import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wmk_browser  # noqa: E402
from wmk_browser import OutsideGpg, message  # noqa: E402
from wmk_e2e import SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "tulips in the rain"
# One user per window, so that the runs' grants and failures do not meet.
USERS = {"desktop": "desk", "phone": "phone", "nojs": "nojs"}
# A small real PDF: libmagic must call it application/pdf whatever the sender claims.
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n" + bytes(range(256)))
CAPTURE = os.path.join(SOURCE_DIR, "tests", "fixtures", "sendmail-capture.sh")


@unittest.skipIf(wmk_browser.skip_reason(), wmk_browser.skip_reason())
class BrowserFlows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(config={"grant_idle_timeout": 600, "unlock_confirmation": True})
        cls.outbox = os.path.join(cls.wmk.tmp, "outbox")
        os.mkdir(cls.outbox)
        sendmail = os.path.join(cls.wmk.tmp, "sendmail")
        with open(sendmail, "w") as f:
            f.write("#!/bin/sh\nSENDMAIL_CAPTURE_DIR=%s exec %s \"$@\"\n" % (cls.outbox, CAPTURE))
        os.chmod(sendmail, 0o700)
        cls.wmk.write_config(sendmail=sendmail)
        cls.gpg = OutsideGpg()
        cls.scenario = {
            "password": PASSWORD,
            "key_passphrase": KEY_PASS,
            "users": USERS,
            "recipient": "bob@example.org",
        }
        for login in USERS.values():
            cls.provision(login)
        # A correspondent outside the server, whose public key each user imports on /keys.
        uid = "Frieda Outside <frieda@remote.example>"
        cls.gpg.gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid,
                    "future-default", "default", "never")
        listing = cls.gpg.gpg("--with-colons", "--list-keys", uid).decode()
        fpr = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]
        cls.scenario["contact"] = {
            "armored": cls.gpg.gpg("--armor", "--export", fpr).decode(),
            "fingerprint": fpr,
            "email": "frieda@remote.example",
        }
        cls.wmk.start()

    @classmethod
    def provision(cls, login):
        address = "%s@example.org" % login
        cls.wmk.add_user(login, PASSWORD, address, name=login.capitalize() + " Example")
        key = cls.wmk.cli("key", "generate", login, "--type", "openpgp", "--passphrase-stdin",
                          input=KEY_PASS + "\n", json_output=True)
        cls.gpg.import_public(cls.wmk.cli("key", "export", key["fingerprint"]).stdout)

        plain = message("Lunch on Friday?", "Hi,\n\nshall we have lunch on Friday at noon?\n\n"
                        "Carol\n", to=address, age=3600)
        with_file = message("Report attached", "The report is attached.\n",
                            sender="Dave <dave@example.net>", to=address, age=1800)
        # The sender claims HTML and a hostile name; neither may be trusted.
        with_file.add_attachment(PDF, maintype="text", subtype="html",
                                 filename='../../Bericht "Q3".pdf')
        secret = message("", "The meeting moves to the boathouse at 7.\n")
        encrypted = cls.gpg.pgp_mime(key["fingerprint"], secret, "Secret plans", to=address,
                                     age=600)
        for m in (plain, with_file, encrypted):
            cls.wmk.deliver(login, m.as_bytes())
        cls.scenario.setdefault("messages", {
            "plain": {"subject": "Lunch on Friday?", "text": "shall we have lunch on Friday"},
            "attachment": {"subject": "Report attached", "sha256": hashlib.sha256(PDF).hexdigest(),
                           "size": len(PDF)},
            "encrypted": {"subject": "Secret plans", "text": "boathouse at 7"},
        })

    @classmethod
    def tearDownClass(cls):
        cls.gpg.close()
        cls.wmk.close()

    def test_flows_in_chromium(self):
        r = wmk_browser.run_suite("flows", self.wmk, self.scenario)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(self.wmk.logs()[-20000:])
        self.assertEqual(r.returncode, 0, "the browser suite failed (its output is above)")
        sent = [f for f in os.listdir(self.outbox) if f.endswith(".message")]
        self.assertEqual(len(sent), len(USERS), "one signed message sent per window")


if __name__ == "__main__":
    unittest.main()
