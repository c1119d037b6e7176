"""The FastCGI workers (docs/architecture.md, docs/security.md "FastCGI workers"): what a
long-lived worker must never do that a CGI process could not, through a real lighttpd
that starts one worker per program (so every request of a program reaches the same
process):

- two users alternate on one warm worker, one holding a grant and the other not:
  decrypted text and grant state never cross, and a grant revoked from the CLI is
  refused by the warm worker at its next request;
- a core image (`gcore`) of the warm decrypt worker, taken after a decrypt, holds no
  decrypted text and none of the request's cookie values;
- a worker killed with a request in hand costs that request only: lighttpd starts a
  new one and the next request succeeds;
- a worker recycles itself (a fresh image by exec) after worker_max_requests without
  losing a request, and a config change takes effect at the recycle.

Fixtures come from outside tools: keys made by real gpg and imported with the CLI,
messages encrypted by real gpg and delivered with `webmailkey deliver`. FastCGI only:
CTest registers no CGI-mode twin of this suite.
"""

import email.message
import email.utils
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import SANITIZED, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = {"alice": "alice key passphrase 1", "bob": "bob key passphrase 2"}
# Random per run, so a hit in a core image can only come from this run's requests.
MARKER = {"alice": "ALICE-PLAIN-" + secrets.token_hex(12),
          "bob": "BOB-PLAIN-" + secrets.token_hex(12)}
SESSION_COOKIE = "__Host-wmk-session"
GRANT_COOKIE = "__Host-wmk-grant"


def run(argv, input=None, check=True, timeout=120):
    r = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0:3], r.returncode,
                                                   r.stderr.decode("utf-8", "replace")))
    return r


class Gpg:
    """An outside GnuPG home: the correspondent's side."""

    def __init__(self, home):
        self.home = home
        os.makedirs(home, mode=0o700, exist_ok=True)

    def __call__(self, *args, input=None):
        return run(["gpg", "--homedir", self.home, "--batch", "--no-tty"] + list(args),
                   input=input)

    def make_key(self, uid):
        self("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid,
             "future-default", "default", "never")
        out = self("--with-colons", "--list-keys", uid).stdout.decode()
        return re.search(r"^fpr:+([0-9A-F]{40,64}):", out, re.M).group(1)

    def export_secret(self, fpr, path):
        r = self("--pinentry-mode", "loopback", "--passphrase", "", "--armor",
                 "--export-secret-keys", fpr)
        with open(path, "wb") as f:
            f.write(r.stdout)

    def encrypt(self, fpr, data):
        return self("--trust-model", "always", "--armor", "-r", fpr, "-e", input=data).stdout

    def stop(self):
        run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"], check=False)


def pgp_mime(gpg, fpr, to, body, subject):
    inner = email.message.EmailMessage()
    inner.set_content(body)
    m = email.message.EmailMessage()
    m["From"] = "Erin <erin@example.net>"
    m["To"] = to
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
    payload.set_content(gpg.encrypt(fpr, inner.as_bytes()), maintype="application",
                        subtype="octet-stream", cte="7bit", filename="encrypted.asc")
    m.attach(control)
    m.attach(payload)
    return m.as_bytes()


@unittest.skipIf(os.environ.get("WMK_E2E_MODE", "fastcgi") != "fastcgi",
                 "FastCGI workers only")
class FastCgiWorkers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(mode="fastcgi", workers=1, config={"worker_max_requests": 100000})
        cls.tmp = tempfile.mkdtemp(prefix="wmk-fastcgi-")
        cls.gpgs = []
        try:
            cls.ids = {}
            for user in ("alice", "bob"):
                email_addr = user + "@example.org"
                cls.wmk.add_user(user, PASSWORD, email_addr)
                gpg = Gpg(os.path.join(cls.tmp, "gpg-" + user))
                cls.gpgs.append(gpg)
                fpr = gpg.make_key("%s <%s>" % (user.title(), email_addr))
                exported = os.path.join(cls.tmp, user + "-secret.asc")
                gpg.export_secret(fpr, exported)
                cls.wmk.cli("key", "import", user, "--type", "openpgp", exported,
                            "--passphrase-stdin", input="%s\n\n" % KEY_PASS[user])
                md = cls.wmk.maildir_path(user)
                cls.wmk.deliver(user, pgp_mime(gpg, fpr, email_addr, MARKER[user] + "\n",
                                               "Secret for " + user))
                names = os.listdir(os.path.join(md, "new")) + os.listdir(os.path.join(md, "cur"))
                assert len(names) == 1, names
                cls.ids[user] = names[0].split(":")[0]
            cls.wmk.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for gpg in cls.gpgs:
            gpg.stop()
        cls.wmk.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.wmk.cli("grant", "revoke", "--all")

    # ---- helpers

    def browser(self, user):
        c = self.wmk.client(user_agent=user + " (wmk-e2e)")
        form = c.get("/login")
        r = c.post("/login", {"csrf": form.hidden("csrf", form_action="/login"), "user": user,
                              "password": PASSWORD})
        self.assertEqual(r.status, 303, r.text)
        c.csrf = c.get("/inbox").hidden("csrf", form_action="/logout")
        c.user = user
        return c

    def decrypt(self, c):
        return c.post("/decrypt", {"id": self.ids[c.user], "folder": "INBOX", "csrf": c.csrf})

    def unlock(self, c):
        r = self.decrypt(c)
        self.assertEqual(r.page, "unlock", r.text)
        r = c.post("/unlock", {"id": self.ids[c.user], "folder": "INBOX", "csrf": c.csrf,
                               "passphrase": KEY_PASS[c.user], "confirm": KEY_PASS[c.user],
                               "ok": "1"})
        self.assertEqual((r.status, r.page), (200, "decrypted"), r.text)
        self.assertIn(MARKER[c.user], r.text)
        return r

    def one_worker(self, program):
        pids = self.wmk.worker_pids(program)
        self.assertEqual(len(pids), 1, "expected one %s worker: %r" % (program, pids))
        return pids[0]

    # ---- tests

    def test_two_users_alternating_on_one_worker_never_see_each_others_state(self):
        alice = self.browser("alice")
        bob = self.browser("bob")
        self.unlock(alice)
        worker = self.one_worker("decrypt")
        for _ in range(3):
            r = self.decrypt(alice)
            self.assertEqual(r.page, "decrypted", r.text)
            self.assertIn(MARKER["alice"], r.text)
            self.assertNotEqual(r.text_of("key-banner"), "")

            # Bob, on the same process right after: no grant, so the unlock page; nothing
            # of Alice's text or grant.
            r = self.decrypt(bob)
            self.assertEqual(r.page, "unlock", r.text)
            self.assertNotIn(MARKER["alice"], r.text)
            self.assertNotIn(MARKER["bob"], r.text)
            self.assertEqual(r.text_of("key-banner"), "")
            # Alice's message id is not Bob's to open, warm worker or not.
            r = bob.post("/decrypt", {"id": self.ids["alice"], "folder": "INBOX",
                                      "csrf": bob.csrf})
            self.assertNotIn(MARKER["alice"], r.text)
            self.assertNotEqual(r.page, "decrypted")
        # Alice's grant cookie in Bob's browser opens nothing: grants are bound to the
        # session that made them.
        bob.cookies[GRANT_COOKIE] = alice.cookies[GRANT_COOKIE]
        r = self.decrypt(bob)
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(MARKER["alice"], r.text)
        del bob.cookies[GRANT_COOKIE]

        # Bob unlocks his own key: each sees only their own text.
        self.unlock(bob)
        for c, other in ((alice, bob), (bob, alice), (alice, bob)):
            r = self.decrypt(c)
            self.assertEqual(r.page, "decrypted", r.text)
            self.assertIn(MARKER[c.user], r.text)
            self.assertNotIn(MARKER[other.user], r.text)

        # Revoked from the CLI: the warm worker refuses the grant at its next request.
        grants = self.wmk.cli("grant", "list", "--login", "alice", json_output=True)
        self.assertEqual(len(grants), 1, grants)
        self.wmk.cli("grant", "revoke", grants[0]["id"])
        r = self.decrypt(alice)
        self.assertEqual(r.page, "unlock", r.text)
        self.assertNotIn(MARKER["alice"], r.text)
        r = self.decrypt(bob)
        self.assertEqual(r.page, "decrypted", r.text)
        self.assertEqual(self.one_worker("decrypt"), worker, "the same warm worker throughout")

    @unittest.skipUnless(shutil.which("gcore") and os.geteuid() == 0,
                         "needs gcore (package gdb) and root to attach to an undumpable process")
    @unittest.skipIf(SANITIZED, "a sanitizer build: its programs lack wipe_on_free.cc (ASan "
                     "owns free()) and the image of an ASan worker is too large to read "
                     "(MemoryError); this check runs in the normal build")
    def test_core_image_of_a_warm_worker_holds_no_plaintext_and_no_cookie(self):
        alice = self.browser("alice")
        self.unlock(alice)
        for _ in range(2):
            r = self.decrypt(alice)
            self.assertIn(MARKER["alice"], r.text)
        worker = self.one_worker("decrypt")
        core = os.path.join(self.tmp, "decrypt-core")
        # The worker made itself undumpable (PR_SET_DUMPABLE 0); root may still attach.
        run(["gcore", "-o", core, str(worker)], timeout=120)
        path = "%s.%d" % (core, worker)
        with open(path, "rb") as f:
            image = f.read()
        os.unlink(path)
        # The image is real and searchable: the worker keeps its config's path.
        self.assertTrue(self.wmk.config_path.encode() in image, "no config path in the image")
        self.assertGreater(len(image), 1 << 20)
        self.assertEqual(self.one_worker("decrypt"), worker, "gcore must not kill the worker")
        for what, value in (("decrypted text", MARKER["alice"]),
                            ("session cookie", alice.cookies[SESSION_COOKIE]),
                            ("grant cookie", alice.cookies[GRANT_COOKIE])):
            # (assertFalse: assertNotIn would print the whole image)
            self.assertFalse(value.encode() in image, "%s found in the core image" % what)

    def test_a_killed_worker_costs_one_request_and_the_next_succeeds(self):
        alice = self.browser("alice")
        worker = self.one_worker("inbox")
        # Stop the worker, so that the next request is in its hands (on its socket) when
        # it dies; then kill it.
        os.kill(worker, signal.SIGSTOP)
        result = {}

        def in_flight():
            try:
                result["response"] = alice.get("/inbox")
            except Exception as e:  # noqa: BLE001 — any failure is what we expect
                result["error"] = e

        t = threading.Thread(target=in_flight)
        t.start()
        time.sleep(1.0)
        self.assertTrue(t.is_alive(), "the request must wait for the stopped worker")
        os.kill(worker, signal.SIGKILL)
        t.join(timeout=60)
        self.assertFalse(t.is_alive())
        failed = result.get("response")
        self.assertTrue(failed is None or failed.status >= 500,
                        "the killed worker's request must fail: %r" % (failed,))
        r = alice.get("/inbox")
        self.assertEqual((r.status, r.page), (200, "inbox"), r.text)
        new = self.one_worker("inbox")
        self.assertNotEqual(new, worker)

    def test_a_worker_is_recycled_after_worker_max_requests_without_losing_a_request(self):
        alice = self.browser("alice")
        self.wmk.write_config(worker_max_requests=2)  # recycles the workers (SIGHUP)
        try:
            workers = {p: self.one_worker(p) for p in ("inbox", "lock")}
            generations = {p: [] for p in workers}
            for _ in range(7):
                r = alice.get("/inbox")
                self.assertEqual((r.status, r.page), (200, "inbox"), r.text)
                # POSTs too: their bodies must reach the fresh image.
                r = alice.post("/lock", {"csrf": alice.csrf})
                self.assertEqual(r.status, 303, r.text)
                for p, pid in workers.items():
                    # Every image here was recycled at least once (write_config), so a 0
                    # is /proc read in the instant of the exec: read again.
                    gen = 0
                    for _ in range(40):
                        gen = self.wmk.worker_generation(pid)
                        if gen:
                            break
                        time.sleep(0.05)
                    generations[p].append(gen)
            for p, pid in workers.items():
                self.assertEqual(self.one_worker(p), pid, "recycled in place, by exec")
                # One request per round, two per image: a new image every other round.
                self.assertEqual(len(set(generations[p])), 4, generations)
        finally:
            self.wmk.write_config(worker_max_requests=100000)

    def test_config_changes_take_effect_at_recycle(self):
        alice = self.browser("alice")
        worker = self.one_worker("compose")
        for _ in range(3):
            alice.get("/compose")
        # Written behind the workers' backs: the warm worker keeps its config...
        path = self.wmk.config_path
        with open(path) as f:
            text = f.read()
        try:
            with open(path, "a") as f:
                f.write("bogus_key_for_the_test = 1\n")
            r = alice.get("/compose")
            self.assertEqual(r.status, 200, r.text)
            # ...until it is recycled: the fresh image reads the broken file and says so.
            before = self.wmk.worker_generation(worker)
            os.kill(worker, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while self.wmk.worker_generation(worker) == before and time.monotonic() < deadline:
                time.sleep(0.02)
            r = alice.get("/compose")
            self.assertEqual(r.status, 503, r.text)
        finally:
            with open(path, "w") as f:
                f.write(text)
        r = alice.get("/compose")
        self.assertEqual(r.status, 200, r.text)

if __name__ == "__main__":
    unittest.main()
