"""Runs a browser suite (tests/browser/SUITE.mjs, node + playwright-core driving Debian's
Chromium) against a provisioned webmailkey Instance. Not a test itself; the
tests/e2e/test_browser_*.py suites use it.

The Python side makes everything the browser needs with outside tools (the real CLI for
users and keys, gpg for encrypted mail, Python's `email` package for messages) and
writes it to a scenario file (JSON); the node side reads it and drives Chromium.

Environment given to node:
  WMK_URL         https://127.0.0.1:PORT (the instance's origin)
  WMK_SCENARIO    the scenario JSON file
  WMK_ARTIFACTS   BUILD/test-artifacts/browser/SUITE (emptied first; screenshots go here)
  WMK_CLI, WMK_CONFIG  the CLI and the instance's config (to check server state)
"""

import email.message
import email.utils
import json
import os
import shutil
import subprocess
import tempfile
import time

from wmk_e2e import BUILD_DIR, CLI, SOURCE_DIR

BROWSER_DIR = os.path.join(SOURCE_DIR, "tests", "browser")
BROWSER_SETUP = os.path.join(SOURCE_DIR, "scripts", "browser-setup")
CHROMIUM = os.environ.get("WEBMAILKEY_CHROMIUM", "/usr/bin/chromium")


def skip_reason():
    """Why browser suites cannot run here, or None. WEBMAILKEY_BROWSER_TESTS=0 turns them
    off (scripts/setup then installs no Chromium either)."""
    if os.environ.get("WEBMAILKEY_BROWSER_TESTS", "1") == "0":
        return "WEBMAILKEY_BROWSER_TESTS=0"
    return None


def artifacts_dir(suite):
    path = os.path.join(BUILD_DIR, "test-artifacts", "browser", suite)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run_suite(suite, instance, scenario, timeout=600):
    """Runs `node tests/browser/SUITE.mjs` with the scenario; returns the CompletedProcess
    (stdout and stderr merged, text). Installs playwright-core first if needed."""
    subprocess.run([BROWSER_SETUP], check=True, timeout=600)
    scenario_path = os.path.join(instance.tmp, "scenario-%s.json" % suite)
    with open(scenario_path, "w") as f:
        json.dump(scenario, f, indent=1)
    env = dict(os.environ)
    env.update({
        "WMK_URL": instance.origin,
        "WMK_SCENARIO": scenario_path,
        "WMK_ARTIFACTS": artifacts_dir(suite),
        "WMK_CLI": CLI,
        "WMK_CONFIG": instance.config_path,
        "WEBMAILKEY_CHROMIUM": CHROMIUM,
    })
    return subprocess.run(["node", os.path.join(BROWSER_DIR, suite + ".mjs")], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


# ---- fixtures made with outside tools


def message(subject, body, sender="Carol Example <carol@example.net>", to="someone@example.org",
            age=0):
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(time.time() - age)
    m["Message-ID"] = email.utils.make_msgid(domain="example.net")
    m.set_content(body)
    return m


class OutsideGpg:
    """A GnuPG home of the sender's side, outside the server: it imports a user's public
    key as `webmailkey key export` gives it and encrypts to it."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="wmk-browser-gpg-")
        os.chmod(self.home, 0o700)

    def gpg(self, *args, stdin=None):
        r = subprocess.run(["gpg", "--homedir", self.home, "--batch", "--no-tty",
                            "--trust-model", "always"] + list(args),
                           input=stdin, capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("gpg %s failed: %s" % (args, r.stderr.decode("utf-8", "replace")))
        return r.stdout

    def import_public(self, armored):
        self.gpg("--import", stdin=armored.encode() if isinstance(armored, str) else armored)

    def pgp_mime(self, recipient_fpr, inner, subject, sender="Erin <erin@example.net>",
                 to="someone@example.org", age=0):
        """A PGP/MIME (RFC 3156) message whose encrypted part is inner (an
        email.message.Message), encrypted by gpg to recipient_fpr."""
        armored = self.gpg("--armor", "--encrypt", "--recipient", recipient_fpr,
                           stdin=inner.as_bytes())
        m = email.message.EmailMessage()
        m["From"] = sender
        m["To"] = to
        m["Subject"] = subject
        m["Date"] = email.utils.formatdate(time.time() - age)
        m["Message-ID"] = email.utils.make_msgid(domain="example.net")
        m.make_mixed()
        m.set_type("multipart/encrypted")
        m.set_param("protocol", "application/pgp-encrypted")
        control = email.message.EmailMessage()
        control.set_content(b"Version: 1\n", maintype="application", subtype="pgp-encrypted",
                            cte="7bit")
        payload = email.message.EmailMessage()
        payload.set_content(armored, maintype="application", subtype="octet-stream", cte="7bit",
                            filename="encrypted.asc")
        m.attach(control)
        m.attach(payload)
        return m

    def close(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"],
                       capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
