"""Every flow of DESIGN §2 in a real headless Chromium (tests/browser/flows.mjs), in a
desktop window, a phone window and a desktop window with JavaScript off; screenshots of
each step go to BUILD/test-artifacts/browser/flows/<window>/. Those the user guide shows
(DOC_SHOTS) are copied to BUILD/test-artifacts/docs-img/ under the names the guide
uses; `scripts/docs-screenshots` puts them into docs/img/.

This file provisions the instance with outside tools: users and OpenPGP keys with the
real CLI, mail built with Python's `email` package and encrypted with gpg to the key
the server exported, and a sendmail stand-in that records what is sent."""

import hashlib
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wmk_browser  # noqa: E402
from wmk_browser import OutsideGpg, message  # noqa: E402
from test_contacts_cli import WkdServers, wkd_hash  # noqa: E402
from wmk_e2e import SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "tulips in the rain"
# One user per window, so that the runs' grants and failures do not meet.
USERS = {"desktop": "desk", "phone": "phone", "nojs": "nojs"}
# A small real PDF: libmagic must call it application/pdf whatever the sender claims.
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n" + bytes(range(256)))
# The screenshots docs/user-guide.md shows: docs/img/NAME -> (window, step of flows.mjs).
DOC_SHOTS = {
    "desktop-inbox.png": ("desktop", "inbox"),
    "desktop-message-encrypted.png": ("desktop", "message-encrypted"),
    "desktop-unlock.png": ("desktop", "unlock"),
    "desktop-decrypted.png": ("desktop", "decrypted"),
    "desktop-compose.png": ("desktop", "compose"),
    "desktop-signed-review.png": ("desktop", "signed-review"),
    "desktop-second-in-use.png": ("desktop", "second-in-use"),
    "desktop-keys-import-form.png": ("desktop", "keys-import-form"),
    "desktop-contact-imported.png": ("desktop", "contact-imported"),
    "desktop-compose-missing-key.png": ("desktop", "compose-missing-key"),
    "desktop-compose-lookup.png": ("desktop", "compose-lookup"),
    "phone-inbox.png": ("phone", "inbox"),
    "phone-compose.png": ("phone", "compose"),
    "phone-decrypted.png": ("phone", "decrypted"),
}
USER_GUIDE = os.path.join(SOURCE_DIR, "docs", "user-guide.md")


@unittest.skipIf(wmk_browser.skip_reason(), wmk_browser.skip_reason())
class BrowserFlows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A WKD server (lighttpd over HTTPS with a test CA, as in test_contacts_cli.py)
        # that publishes the key of a correspondent nobody has a key of yet.
        cls.gpg = OutsideGpg()
        wkd_fpr = cls.make_outside_key("Gwen Outside <gwen@remote.example>")
        cls.wkd_dir = tempfile.mkdtemp(prefix="wmk-browser-wkd-")
        www = os.path.join(cls.wkd_dir, "www")
        adv = os.path.join(www, ".well-known", "openpgpkey", "remote.example", "hu")
        os.makedirs(adv)
        with open(os.path.join(adv, wkd_hash("gwen@remote.example")), "wb") as f:
            f.write(cls.gpg.gpg("--export", wkd_fpr))
        hosts = ["remote.example", "openpgpkey.remote.example"]
        cls.wkd_servers = WkdServers(cls.wkd_dir, hosts, www)
        cls.wmk = Instance(config={"grant_idle_timeout": 600, "unlock_confirmation": True,
                                   "wkd_ca_file": cls.wkd_servers.ca,
                                   "wkd_resolve": cls.wkd_servers.resolve(hosts, [])})
        cls.outbox = cls.wmk.capture_sendmail()
        cls.scenario = {
            "password": PASSWORD,
            "key_passphrase": KEY_PASS,
            "users": USERS,
            "recipient": "bob@example.org",
        }
        for login in USERS.values():
            cls.provision(login)
        # A correspondent outside the server, whose public key each user imports on /keys.
        fpr = cls.make_outside_key("Frieda Outside <frieda@remote.example>")
        cls.scenario["contact"] = {
            "armored": cls.gpg.gpg("--armor", "--export", fpr).decode(),
            "fingerprint": fpr,
            "email": "frieda@remote.example",
        }
        cls.scenario["wkd"] = {"address": "gwen@remote.example", "fingerprint": wkd_fpr}
        cls.wmk.start()

    @classmethod
    def make_outside_key(cls, uid):
        """A key without passphrase in the outside home; its fingerprint."""
        cls.gpg.gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid,
                    "future-default", "default", "never")
        listing = cls.gpg.gpg("--with-colons", "--list-keys", uid).decode()
        return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]

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
        cls.wkd_servers.close()
        cls.gpg.close()
        cls.wmk.close()
        shutil.rmtree(cls.wkd_dir, ignore_errors=True)

    def test_flows_in_chromium(self):
        r = wmk_browser.run_suite("flows", self.wmk, self.scenario)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(self.wmk.logs()[-20000:])
        self.assertEqual(r.returncode, 0, "the browser suite failed (its output is above)")
        sent = [f for f in os.listdir(self.outbox) if f.endswith(".message")]
        self.assertEqual(len(sent), len(USERS), "one signed message sent per window")
        self.collect_doc_shots()

    def collect_doc_shots(self):
        """The user guide's screenshots, from this run, under their docs/img/ names."""
        shots = os.path.join(wmk_browser.BUILD_DIR, "test-artifacts", "browser", "flows")
        out = os.path.join(wmk_browser.BUILD_DIR, "test-artifacts", "docs-img")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for name, (window, step) in DOC_SHOTS.items():
            made = [f for f in os.listdir(os.path.join(shots, window))
                    if re.fullmatch(r"\d+-%s\.png" % re.escape(step), f)]
            self.assertEqual(len(made), 1, "%s: no single screenshot of %s/%s" % (name, window, step))
            shutil.copyfile(os.path.join(shots, window, made[0]), os.path.join(out, name))

    def test_user_guide_shows_only_screenshots_this_suite_makes(self):
        with open(USER_GUIDE) as f:
            shown = set(re.findall(r"\]\(img/([^)]+)\)", f.read()))
        self.assertTrue(shown, "the user guide shows no screenshots")
        self.assertEqual(shown - set(DOC_SHOTS), set(), "images the browser suite does not make")
        for name in shown:
            self.assertTrue(os.path.isfile(os.path.join(SOURCE_DIR, "docs", "img", name)),
                            "docs/img/%s is missing: run the suite, then scripts/docs-screenshots"
                            % name)


if __name__ == "__main__":
    unittest.main()
