"""docs/admin-guide.md, followed literally: the shell blocks it marks `sh walkthrough`
run in the order the guide gives them, as one bash script (`set -euo pipefail`), as
root, from a fresh directory, with the installed CLI first on PATH:

  install to a prefix, make the directories, init, the alias that runs the CLI as the
  service account, config check, add users, passwd, disable/enable, generate a key,
  import a key made by gpg, deliver a message, a private Postfix (scripts/mta) and a
  message through it, serve as the service account (the `sh walkthrough-serve` block,
  in the background), then the day-to-day commands (session list, grant list/revoke,
  session kill, audit, purge).

Between the serve block and the blocks after it, the test uses the server over HTTPS
as a browser would: alice logs in with the password the guide's passwd set, finds the
delivered message and an encrypted one, and unlocks her key to read it; bob finds the
message the guide sent through Postfix; the guide's `grant revoke --login alice` must
then revoke alice's grant and its `session kill` end her session.

The only changes to the guide's text are the ones a test machine needs, each of which
must be found in the text (so the guide cannot drift away from them): the system paths
go into a temporary directory, `cmake --install build` gets this build and the
temporary prefix, the service account `webmailkey` is `nobody` (group `nogroup`),
`scripts/serve` and `scripts/mta` are the checkout's, and port 8443 a free one; bash
expands the guide's alias (`shopt -s expand_aliases`). The secrets the guide names as
variables ($PASSWORD, $NEW_PASSWORD, $KEY_PASSPHRASE, $FILE_PASSPHRASE) are in the
environment; the files it names (message.eml, bob-secret.asc) are in the current
directory, made by Python's email package and by gpg. WMK_GUIDE_DEBUG=1 prints the
server's error log at the end.
"""

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_browser import OutsideGpg, message  # noqa: E402
from wmk_e2e import BUILD_DIR, SOURCE_DIR, Client, free_port  # noqa: E402

GUIDE = os.path.join(SOURCE_DIR, "docs", "admin-guide.md")
MTA = os.path.join(SOURCE_DIR, "scripts", "mta")
# The guide's service account `webmailkey`, here an account every Debian has.
SERVICE = ("nobody", "nogroup")
# Non-interactive bash expands the guide's alias only with this.
PREAMBLE = "set -euo pipefail\nshopt -s expand_aliases\n"
SECRETS = {
    "PASSWORD": "guide password 1",
    "NEW_PASSWORD": "guide password 2",
    "KEY_PASSPHRASE": "guide key passphrase",
    "FILE_PASSPHRASE": "bob's own file passphrase",
}
MARKER = "walkthrough-secret-%d" % os.getpid()


def blocks(text):
    """[(tag, body)] of the guide's ```sh walkthrough / walkthrough-serve blocks, in order."""
    return re.findall(r"^```sh (walkthrough(?:-serve)?)\n(.*?)^```$", text, re.M | re.S)


@unittest.skipUnless(os.geteuid() == 0, "the guide's commands run as root (install -o, chown, "
                     "runuser, Postfix)")
@unittest.skipUnless(os.access("/usr/sbin/postfix", os.X_OK), "Postfix is not installed")
@unittest.skipUnless(shutil.which("lighttpd") or os.path.exists("/usr/sbin/lighttpd"),
                     "lighttpd is not installed")
class AdminGuideWalkthrough(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wmk-guide-")
        os.chmod(self.tmp, 0o755)
        self.prefix = os.path.join(self.tmp, "prefix")
        self.root = os.path.join(self.tmp, "root")  # stands for /
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.work)
        self.port = free_port()
        self.data = self.root + "/var/lib/webmailkey"
        self.config = self.root + "/etc/webmailkey/webmailkey.conf"
        self.env = dict(SECRETS, PATH=self.prefix + "/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        HOME=self.tmp, BUILD_DIR=BUILD_DIR, LANG="C.UTF-8")
        self.gpgs = []
        self.serve = None

    def tearDown(self):
        if os.environ.get("WMK_GUIDE_DEBUG"):
            for log in ("log/lighttpd-error.log",):
                path = os.path.join(self.data, log)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        sys.stderr.write(f.read()[-3000:])
        if self.serve is not None:
            try:
                os.killpg(self.serve.pid, signal.SIGTERM)
                self.serve.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.serve.pid, signal.SIGKILL)
        subprocess.run([MTA, "stop", "--data-dir", self.data], capture_output=True, timeout=60)
        for g in self.gpgs:
            g.close()
        subprocess.run(["runuser", "-u", SERVICE[0], "--", "gpgconf", "--homedir",
                        self.data + "/gnupg", "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the guide's text, adapted only where a test machine must differ

    def script(self, body):
        for old, new in (
                ("cmake --install build", "cmake --install %s --prefix %s" % (BUILD_DIR, self.prefix)),
                ("-o webmailkey -g webmailkey", "-o %s -g %s" % SERVICE),
                ("chown -R webmailkey:webmailkey", "chown -R %s:%s" % SERVICE),
                ("chown root:webmailkey", "chown root:" + SERVICE[1]),
                ("runuser -u webmailkey", "runuser -u " + SERVICE[0]),
                ("--user webmailkey", "--user " + SERVICE[0]),
                ("/usr/local/bin/webmailkey", self.prefix + "/bin/webmailkey"),
                ("/etc/webmailkey", self.root + "/etc/webmailkey"),
                ("/var/lib/webmailkey", self.data),
                ("/var/log/webmailkey", self.root + "/var/log/webmailkey"),
                ("scripts/serve ", os.path.join(SOURCE_DIR, "scripts", "serve") + " "),
                ("scripts/mta ", MTA + " "),
                ("--port 8443", "--port %d" % self.port)):
            if old in body:
                self.used.add(old)
                body = body.replace(old, new)
        return body

    def run_script(self, body, what):
        r = subprocess.run(["bash", "-c", PREAMBLE + body], cwd=self.work,
                           env=self.env, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, "%s failed:\n--- script\n%s\n--- stdout\n%s\n--- stderr\n%s"
                         % (what, body, r.stdout[-3000:], r.stderr[-3000:]))
        return r.stdout

    def cli(self, *args, stdin=None):
        """The installed CLI as the service account, as the guide runs it."""
        r = subprocess.run(["runuser", "-u", SERVICE[0], "--", self.prefix + "/bin/webmailkey",
                            "--config", self.config] + list(args),
                           input=stdin, capture_output=True, timeout=120, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    # ---- the walkthrough

    def make_files(self):
        """What the guide expects in the current directory."""
        bob = OutsideGpg()
        self.gpgs.append(bob)
        bob.gpg("--pinentry-mode", "loopback", "--passphrase", SECRETS["FILE_PASSPHRASE"],
                "--quick-gen-key", "Bob <bob@example.org>", "future-default", "default", "never")
        with open(os.path.join(self.work, "bob-secret.asc"), "wb") as f:
            f.write(bob.gpg("--pinentry-mode", "loopback", "--passphrase",
                            SECRETS["FILE_PASSPHRASE"], "--armor", "--export-secret-keys",
                            "bob@example.org"))
        with open(os.path.join(self.work, "message.eml"), "wb") as f:
            f.write(message("Walkthrough hello", "Delivered as the admin guide says.\n",
                            to="alice@example.org").as_bytes())

    def deliver_encrypted_for_alice(self):
        """Mail from outside, encrypted with gpg to the key the guide generated."""
        import json
        keys = json.loads(self.cli("--json", "key", "list", "alice"))
        self.assertEqual(len(keys), 1, keys)
        erin = OutsideGpg()
        self.gpgs.append(erin)
        erin.import_public(self.cli("key", "export", keys[0]["fingerprint"]))
        mail = erin.pgp_mime(keys[0]["fingerprint"], message("", MARKER + "\n"), "Secret plans",
                             to="alice@example.org")
        self.cli("deliver", "alice", stdin=mail.as_bytes())

    def start_serving(self, body):
        log_path = os.path.join(self.tmp, "serve.log")
        with open(log_path, "wb") as log:
            self.serve = subprocess.Popen(["bash", "-c", PREAMBLE + body],
                                          cwd=self.work, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.site = types.SimpleNamespace(tls=True, port=self.port,
                                          cert_path=self.data + "/tls/cert.pem",
                                          origin="https://127.0.0.1:%d" % self.port)
        deadline = time.monotonic() + 60
        while True:
            try:
                if Client(self.site).get("/login").status == 200:
                    return
            except OSError:
                pass
            if self.serve.poll() is not None:
                with open(log_path, "rb") as f:
                    self.fail("the guide's serve command ended: "
                              + f.read().decode(errors="replace")[-3000:])
            self.assertLess(time.monotonic(), deadline, "nothing answered on the guide's port")
            time.sleep(0.3)

    def use_as_alice(self):
        c = Client(self.site)
        token = c.get("/login").hidden("csrf", form_action="/login")
        r = c.post("/login", {"csrf": token, "user": "alice", "password": SECRETS["NEW_PASSWORD"]})
        self.assertEqual((r.status, r.location), (303, "/inbox"), r.text[-1500:])
        inbox = c.get("/inbox")
        self.assertEqual((inbox.status, inbox.page), (200, "inbox"))
        self.assertIn("Walkthrough hello", inbox.text)
        self.assertIn("Secret plans", inbox.text)
        csrf = inbox.hidden("csrf", form_action="/logout")
        encrypted = None
        links = sorted(set(html.unescape(h) for h in re.findall(r'href="(/message\?[^"]+)"', inbox.text)))
        self.assertEqual(len(links), 2, links)
        for link in links:
            m = c.get(link)
            self.assertEqual(m.status, 200, link)
            if 'action="/decrypt"' in m.text:
                encrypted = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["id"][0]
        self.assertIsNotNone(encrypted, "no message with a Decrypt button")
        r = c.post("/decrypt", {"id": encrypted, "folder": "INBOX", "csrf": csrf})
        self.assertEqual(r.page, "unlock", r.text[-1500:])
        r = c.post("/unlock", {"id": encrypted, "folder": "INBOX", "csrf": csrf,
                               "passphrase": SECRETS["KEY_PASSPHRASE"],
                               "confirm": SECRETS["KEY_PASSPHRASE"], "ok": "1"})
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text[-1500:])
        self.assertIn(MARKER, r.text)
        return c

    def bob_has_the_mail_sent_through_postfix(self):
        """The guide's sendmail line went through its Postfix and `webmailkey deliver`."""
        bob = Client(self.site)
        token = bob.get("/login").hidden("csrf", form_action="/login")
        r = bob.post("/login", {"csrf": token, "user": "bob", "password": SECRETS["PASSWORD"]})
        self.assertEqual(r.status, 303)
        deadline = time.monotonic() + 60
        while "through Postfix" not in bob.get("/inbox").text:
            queue = subprocess.run([MTA, "queue", "--data-dir", self.data], capture_output=True,
                                   text=True).stdout
            self.assertLess(time.monotonic(), deadline, "not delivered to bob; queue:\n" + queue)
            time.sleep(0.5)

    def test_the_guide_as_written_sets_up_a_working_server(self):
        with open(GUIDE) as f:
            found = blocks(f.read())
        tags = [t for t, _ in found]
        self.assertEqual(tags.count("walkthrough-serve"), 1, tags)
        serve_at = tags.index("walkthrough-serve")
        self.assertGreater(serve_at, 0)
        self.used = set()
        before = "\n".join(self.script(b) for _, b in found[:serve_at])
        serve = self.script(found[serve_at][1])
        after = "\n".join(self.script(b) for _, b in found[serve_at + 1:])
        # Every adaptation met its text: the guide still says what the test adapts.
        self.assertEqual(len(self.used), 13, "adaptations that found no text in the guide")
        exports = "\n".join(l for l in before.splitlines() if l.startswith("export "))
        self.assertIn("WEBMAILKEY_CONFIG", exports)

        self.make_files()
        out = self.run_script(before, "the blocks before serving")
        self.assertTrue(os.access(self.prefix + "/bin/webmailkey", os.X_OK))
        self.assertIn("alice", out)  # user list
        self.deliver_encrypted_for_alice()
        self.start_serving(exports + "\n" + serve)
        client = self.use_as_alice()
        self.bob_has_the_mail_sent_through_postfix()

        out = self.run_script(exports + "\n" + after, "the day-to-day blocks")
        self.assertRegex(out, r"revoked 1 grant")
        self.assertIn("alice", out)  # session list
        # Her session is over: the next page is the login page.
        r = client.get("/inbox")
        self.assertEqual(r.status, 303)
        self.assertTrue(r.location.startswith("/login"), r.location)


if __name__ == "__main__":
    unittest.main()
