#!/usr/bin/env python3
"""Crashes at every step of a sign-and-send (issue 12): the real compose.cgi and
unlock.cgi, run as a web server runs a CGI program, are killed with SIGKILL at random
moments of each step — saving the draft (Sign), unlocking the key and signing, and
Send from the review — many times, and after every kill:

- `PRAGMA integrity_check` is ok;
- the draft is never lost: once saved it stays in Drafts until the message is sent;
- it is never stored in the clear: no file under the instance's directory (data,
  Maildir, logs, scratch homes) holds the text typed;
- the message goes out at most once: the sendmail stand-in records every submission,
  and each one is the reviewed message byte for byte (SHA-256 = the review's digest),
  never a truncated one;
- retrying the step completes the send, or says truthfully that it may have gone out
  (the draft kept, nothing sent twice).

WMK_KILL_ROUNDS (default 6) kills per step, WMK_KILL_SEED the random moments.
Outside checks only: Python's sqlite3, hashlib and email, the files on disk."""

import glob
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CGI_BIN, Instance, Response, encode_multipart  # noqa: E402

ROUNDS = int(os.environ.get("WMK_KILL_ROUNDS", "6"))
PASSWORD = "Login-Password-Compose-Kill"
KEY_PASS = "Key-Passphrase-Compose-Kill"


class CgiClient:
    """One browser's cookies, talking to the CGI programs directly (HTTPS=on, as the
    server passes it), so that each request is one process that can be killed."""

    def __init__(self, wmk):
        self.wmk = wmk
        self.cookies = {}

    def _env(self, program, method, query, body, content_type):
        e = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "WEBMAILKEY_CONFIG": self.wmk.config_path,
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "REQUEST_URI": "/%s%s" % (program, "?" + query if query else ""),
            "SCRIPT_NAME": "/" + program,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTPS": "on",
            "HTTP_USER_AGENT": "wmk-kill/1",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        if self.cookies:
            e["HTTP_COOKIE"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if method == "POST":
            e["CONTENT_LENGTH"] = str(len(body))
            e["CONTENT_TYPE"] = content_type
            e["HTTP_SEC_FETCH_SITE"] = "same-origin"
        return e

    def _request(self, program, method, query, fields, files):
        if files is not None:
            body, ctype = encode_multipart(fields, files)
        else:
            body = urllib.parse.urlencode(fields or {}).encode()
            ctype = "application/x-www-form-urlencoded"
        argv = [os.path.join(CGI_BIN, program + ".cgi")]
        return argv, self._env(program, method, query, body if method == "POST" else b"",
                               ctype), body if method == "POST" else b""

    def run(self, program, method="GET", query="", fields=None, files=None):
        argv, env, body = self._request(program, method, query, fields, files)
        p = subprocess.run(argv, input=body, env=env, capture_output=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("%s exited %d: %s" % (program, p.returncode, p.stderr))
        r = Response.from_cgi(p.stdout, p.stderr.decode("utf-8", "replace"))
        for name, attrs in r.set_cookies().items():
            if attrs.get("max-age") == "0" or attrs["value"] == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = attrs["value"]
        return r

    def killed(self, program, delay, method="POST", query="", fields=None, files=None):
        """Starts the request and kills its process after delay seconds (its answer,
        and any cookie it would have set, are lost as with a dropped connection)."""
        argv, env, body = self._request(program, method, query, fields, files)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        try:
            p.stdin.write(body)
            p.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(delay)
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        return p.wait()


class ComposeKillTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        # A KDF with a real cost, so that kills land inside the unlock.
        cls.outbox = cls.wmk.capture_sendmail(kdf_memory_kib=16384, kdf_iterations=2)
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.add_user("bob", PASSWORD, "bob@example.org")
        for login in ("alice", "bob"):
            cls.wmk.cli("key", "generate", login, "--type", "openpgp", "--passphrase-stdin",
                        input=KEY_PASS + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def setUp(self):
        self.rng = random.Random(int(os.environ.get("WMK_KILL_SEED", "1212")))

    # ---- helpers

    def client(self):
        """A fresh session of alice, with no grant anywhere."""
        self.wmk.cli("grant", "revoke", "--login", "alice")
        c = CgiClient(self.wmk)
        form = c.run("login")
        r = c.run("login", "POST", fields={"csrf": form.hidden("csrf", form_action="/login"),
                                           "user": "alice", "password": PASSWORD})
        self.assertEqual(r.status, 303, r.text)
        return c

    def compose_fields(self, c, marker):
        token = c.run("compose").hidden("csrf", form_action="/compose")
        return [("csrf", token), ("to", "bob@example.org"), ("subject", "kill test"),  # headers stay readable by design
                ("body", "The text typed: %s\n" % marker), ("sign", "1"), ("encrypt", "1"),
                ("kind", "openpgp"), ("action", "sign")]

    def unlock_fields(self, page):
        return {"csrf": page.hidden("csrf", form_action="/unlock"),
                "draft": page.hidden("draft", form_action="/unlock"),
                "then": page.hidden("then", form_action="/unlock"),
                "passphrase": KEY_PASS, "confirm": KEY_PASS}

    def send_fields(self, review):
        return {"csrf": review.hidden("csrf", form_action="/compose"),
                "draft": review.hidden("draft", form_action="/compose"),
                "digest": review.hidden("digest", form_action="/compose"),
                "action": "send"}

    def folder(self, name):
        base = self.wmk.maildir_path("alice")
        d = base if name == "INBOX" else os.path.join(base, "." + name)
        out = {}
        for sub in ("new", "cur"):
            for f in glob.glob(os.path.join(d, sub, "*")):
                with open(f, "rb") as fh:
                    out[os.path.basename(f).split(":")[0]] = fh.read()
        return out

    def submissions(self):
        """Every message sendmail took (an .args file is written after the message)."""
        out = []
        for args in sorted(glob.glob(os.path.join(self.outbox, "*.args"))):
            with open(args[:-len(".args")] + ".message", "rb") as f:
                out.append(f.read())
        return out

    def clear(self):
        for f in glob.glob(os.path.join(self.outbox, "*")):
            os.remove(f)

    def check_store(self, marker, what):
        db = sqlite3.connect(os.path.join(self.wmk.data_dir, "webmailkey.db"), timeout=30)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", what)
        finally:
            db.close()
        needle = marker.encode()
        for root, _, files in os.walk(self.wmk.tmp):
            if root.startswith(self.outbox):
                continue  # what went out (encrypted) is checked below
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue  # a socket, or gone meanwhile
                self.assertNotIn(needle, data, "%s: the text in the clear in %s" % (what, path))

    def check_sent(self, digests, what):
        """At most one submission per reviewed message, each exactly as reviewed."""
        subs = self.submissions()
        for m in subs:
            self.assertNotIn(b"The text typed", m, what)
            d = hashlib.sha256(m).hexdigest()
            self.assertIn(d, digests, "%s: a submission that is not a reviewed message "
                          "(truncated?)" % what)
        per = [hashlib.sha256(m).hexdigest() for m in subs]
        for d in set(per):
            self.assertEqual(per.count(d), 1, "%s: sent twice" % what)
        return subs

    def full_flow(self, c, marker):
        """Sign → unlock → review. Returns (unlock page, review)."""
        page = c.run("compose", "POST", fields=self.compose_fields(c, marker),
                     files=[("attachment", "", "application/octet-stream", b"")])
        self.assertEqual(page.page, "unlock", page.text)
        review = c.run("unlock", "POST", fields=self.unlock_fields(page))
        self.assertEqual(review.page, "signed", review.text)
        return page, review

    # ---- the steps

    def test_sign_and_send_killed_at_random_moments(self):
        # How long each step takes whole, to spread the kills over it.
        self.clear()
        c = self.client()
        start = time.monotonic()
        page = c.run("compose", "POST", fields=self.compose_fields(c, "timing-0"),
                     files=[("attachment", "", "application/octet-stream", b"")])
        t_save = time.monotonic() - start
        start = time.monotonic()
        review = c.run("unlock", "POST", fields=self.unlock_fields(page))
        t_unlock = time.monotonic() - start
        start = time.monotonic()
        sent = c.run("compose", "POST", fields=self.send_fields(review))
        t_send = time.monotonic() - start
        self.assertEqual(sent.page, "sent", sent.text)
        self.assertEqual(len(self.submissions()), 1)

        outcomes = {"save": [], "unlock": [], "send": []}
        for n in range(ROUNDS):
            marker = "Kill-Marker-%d-%06d" % (n, self.rng.randrange(10 ** 6))
            drafts_before = set(self.folder("Drafts"))

            # 1. Sign: the draft is saved (encrypted to alice), then the unlock page.
            self.clear()
            c = self.client()
            fields = self.compose_fields(c, marker)
            c.killed("compose", self.rng.uniform(0, t_save * 1.2), fields=fields,
                     files=[("attachment", "", "application/octet-stream", b"")])
            what = "round %d, save" % n
            self.check_store(marker, what)
            self.assertEqual(self.submissions(), [], what)
            new = set(self.folder("Drafts")) - drafts_before
            self.assertLessEqual(len(new), 1, what)
            outcomes["save"].append("saved" if new else "none")
            for uid in new:  # a draft saved before the kill: not lost, reopens later
                self.assertNotIn(marker.encode(), self.folder("Drafts")[uid], what)
            # The browser still has the form: it is posted again.
            page, review = self.full_flow(c, marker)
            draft = review.hidden("draft", form_action="/compose")
            self.assertIn(draft, self.folder("Drafts"), what)
            # A draft the killed Sign had saved stays too (the browser never learnt its
            # name, so the form made a second one): kept, not lost.
            drafts_before = set(self.folder("Drafts")) - {draft}

            # 2. Unlock and sign, killed: the draft stays, the retry signs.
            c = self.client()
            page = c.run("compose", "GET", query="draft=" + draft)
            self.assertEqual(page.page, "unlock", page.text)
            page_fields = self.unlock_fields(page)
            c.killed("unlock", self.rng.uniform(0, t_unlock * 1.2), fields=page_fields)
            what = "round %d, unlock" % n
            self.check_store(marker, what)
            self.assertEqual(self.submissions(), [], what)
            drafts = self.folder("Drafts")
            # Signing replaces the draft by the prepared message under a new name:
            # one of the two is there.
            mine = [u for u in drafts if u not in drafts_before]
            self.assertEqual(len(mine), 1, "%s: drafts %r" % (what, mine))
            draft = mine[0]
            c = self.client()
            # The retry: open the draft (the key unlocks to open it), sign again.
            page = c.run("compose", "GET", query="draft=" + draft)
            steps = [page.page]
            if page.page == "unlock":
                page = c.run("unlock", "POST", fields=self.unlock_fields(page))
                steps.append(page.page)
            if page.page == "compose":
                fields = self.compose_fields(c, marker) + [
                    ("draft", page.hidden("draft", form_action="/compose"))]
                page = c.run("compose", "POST", fields=fields,
                             files=[("attachment", "", "application/octet-stream", b"")])
                steps.append(page.page)
            outcomes["unlock"].append("->".join(steps))
            review = page
            self.assertEqual(review.page, "signed", "%s: %s" % (what, review.text))
            digest = review.hidden("digest", form_action="/compose")
            draft = review.hidden("draft", form_action="/compose")

            # 3. Send from the review, killed: at most once, the draft never lost.
            send_fields = self.send_fields(review)
            c.killed("compose", self.rng.uniform(0, t_send * 1.5), fields=send_fields)
            what = "round %d, send" % n
            self.check_store(marker, what)
            subs = self.check_sent({digest}, what)
            in_drafts = draft in self.folder("Drafts")
            self.assertTrue(subs or in_drafts, "%s: neither sent nor in Drafts" % what)
            again = c.run("compose", "POST", fields=send_fields)
            subs = self.check_sent({digest}, what + " and its retry")
            if again.status == 200:
                self.assertEqual(again.page, "sent", again.text)
                self.assertEqual(len(subs), 1, what)
                self.assertNotIn(draft, self.folder("Drafts"), what)
                outcomes["send"].append("sent by the retry")
            elif again.status == 404:  # the killed Send had finished
                self.assertEqual(len(subs), 1, what)
                self.assertNotIn(draft, self.folder("Drafts"), what)
                outcomes["send"].append("sent before the kill")
            else:  # killed while handing over: maybe sent, never twice, draft kept
                self.assertEqual(again.status, 409, again.text)
                self.assertIn("may have gone out", again.text)
                self.assertIn(draft, self.folder("Drafts"), what)
                outcomes["send"].append("maybe (%d submitted)" % len(subs))
                # Remove it, as the user would after looking (tidy for the next round).
                base = self.wmk.maildir_path("alice")
                for f in glob.glob(os.path.join(base, ".Drafts", "cur", draft + ":*")):
                    os.remove(f)
            self.check_store(marker, what + " and its retry")
        print("sign-and-send kills: %r" % outcomes)


if __name__ == "__main__":
    unittest.main()
