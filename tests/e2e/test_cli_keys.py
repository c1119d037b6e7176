#!/usr/bin/env python3
"""End-to-end tests of `webmailkey key ...` against a real data directory.

Runs the built CLI ($WEBMAILKEY_BUILD_DIR/webmailkey). Key fixtures come from real
`gpg` and `openssl`; what the CLI exports is checked with them too.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

BUILD_DIR = os.environ.get("WEBMAILKEY_BUILD_DIR",
                           os.path.join(os.path.dirname(__file__), "..", "..", "build"))
WEBMAILKEY = os.path.join(BUILD_DIR, "webmailkey")

LOGIN_PASSWORD = "Login-Password-1234"
KEY_PASS = "Key-Passphrase-Marker-5521"
NEW_PASS = "New-Key-Passphrase-9034"
FILE_PASS = "File-Passphrase-Marker-7310"


def run(argv, stdin=b"", env=None, pass_fds=()):
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=300,
                          pass_fds=pass_fds)


class KeyCli(unittest.TestCase):
    def setUp(self):
        # A short path: gpg-agent's socket lives in the GnuPG home.
        self.tmp = tempfile.mkdtemp(prefix="wmk-k-", dir="/tmp")
        self.data = os.path.join(self.tmp, "d")
        self.conf = os.path.join(self.tmp, "w.conf")
        self.gnupg = os.path.join(self.data, "gnupg")
        self.homes = [self.gnupg]
        self.env = {k: v for k, v in os.environ.items() if k not in ("WEBMAILKEY_CONFIG", "GNUPGHOME")}
        r = self.wmk("init", "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Cheap KDF for the tests; the default costs ~250 ms per unlock by design.
        with open(self.conf) as f:
            text = f.read()
        lines = [l for l in text.splitlines() if not l.startswith(("kdf_memory_kib", "kdf_iterations"))]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\nkdf_memory_kib = 256\nkdf_iterations = 1\n")
        for login, email in (("alice", "alice@example.org"), ("bob", "bob@example.org")):
            r = self.wmk("user", "add", login, "--email", email, "--password-stdin",
                         stdin=LOGIN_PASSWORD + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        for h in self.homes:
            run(["gpgconf", "--homedir", h, "--kill", "gpg-agent"])
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers

    def wmk(self, *args, stdin="", json_out=False, pass_fds=()):
        argv = [WEBMAILKEY, "--config", self.conf] + (["--json"] if json_out else []) + list(args)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        r = run(argv, stdin=data, env=self.env, pass_fds=pass_fds)
        r.stdout_text = r.stdout.decode(errors="replace")
        r.stderr_text = r.stderr.decode(errors="replace")
        return r

    def wmk_json(self, *args, stdin=""):
        r = self.wmk(*args, stdin=stdin, json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        return json.loads(r.stdout_text)

    def home(self, name):
        h = os.path.join(self.tmp, name)
        os.mkdir(h, 0o700)
        with open(os.path.join(h, "gpg-agent.conf"), "w") as f:
            f.write("s2k-count 65536\n")  # fixture speed only
        self.homes.append(h)
        return h

    def gpg(self, home, *args, stdin=b""):
        return run(["gpg", "--homedir", home, "--batch", "--no-tty"] + list(args),
                   stdin=stdin.encode() if isinstance(stdin, str) else stdin)

    def gpg_key(self, home, uid, passphrase):
        r = self.gpg(home, "--pinentry-mode", "loopback", "--passphrase-fd", "0",
                     "--quick-gen-key", uid, "future-default", "default", "never",
                     stdin=passphrase + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
        return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]

    def openssl(self, *args):
        r = run(["openssl"] + list(args))
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def path(self, name):
        return os.path.join(self.tmp, name)

    # ---- OpenPGP

    def test_generated_key_interoperates_with_gpg(self):
        key = self.wmk_json("key", "generate", "alice", "--type", "openpgp", "--passphrase-stdin",
                            stdin=KEY_PASS + "\n")
        fpr = key["fingerprint"]
        self.assertEqual(key["algorithm"], "ed25519/cv25519")
        self.assertEqual(key["emails"], ["alice@example.org"])
        self.assertEqual(key["default_for"], ["alice@example.org"])
        self.assertIsNone(key["expires"])

        # The exported public key is what gpg sees in our home, and gpg can use it.
        pub = self.wmk("key", "export", fpr[:12])
        self.assertEqual(pub.returncode, 0, pub.stderr_text)
        sender = self.home("sender")
        r = self.gpg(sender, "--import", stdin=pub.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gpg(sender, "--trust-model", "always", "--armor", "-e", "-r", fpr, stdin="hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("msg.asc"), "wb") as f:
            f.write(r.stdout)

        # gpg-agent of our home never decrypts without the key secret.
        r = self.gpg(self.gnupg, "--pinentry-mode", "error", "-d", self.path("msg.asc"))
        self.assertNotEqual(r.returncode, 0)
        r = self.gpg(self.gnupg, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d",
                     self.path("msg.asc"), stdin=KEY_PASS + "\n")
        self.assertNotEqual(r.returncode, 0)

        # Secret export: protected by the export passphrase, which gpg elsewhere needs.
        r = self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                     stdin=KEY_PASS + "\nExport-Passphrase-1\n")
        self.assertEqual(r.returncode, 0, r.stderr_text)
        self.assertIn(b"BEGIN PGP PRIVATE KEY BLOCK", r.stdout)
        with open(self.path("sec.asc"), "wb") as f:
            f.write(r.stdout)
        elsewhere = self.home("elsewhere")
        r = self.gpg(elsewhere, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import",
                     self.path("sec.asc"), stdin="Export-Passphrase-1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gpg(elsewhere, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d",
                     self.path("msg.asc"), stdin="Export-Passphrase-1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello")

        # Without --passphrase-stdin: a usage error, nothing read.
        r = self.wmk("key", "export", fpr, "--secret")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--passphrase-stdin", r.stderr_text)

    def test_import_gpg_key_from_stdin_and_from_file_with_fd(self):
        user = self.home("user")
        fpr = self.gpg_key(user, "Alice <alice@example.org>", FILE_PASS)
        sec = self.gpg(user, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                       "--export-secret-keys", fpr, stdin=FILE_PASS + "\n").stdout
        # Key file on stdin after the two passphrase lines.
        r = self.wmk("key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin",
                     stdin=(KEY_PASS + "\n" + FILE_PASS + "\n").encode() + sec)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        self.assertIn(fpr, r.stdout_text)
        shown = self.wmk_json("key", "show", fpr)
        self.assertEqual(shown["fingerprint"], fpr)
        self.assertEqual(shown["login"], "alice")
        # Importing it again is refused.
        r = self.wmk("key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin",
                     stdin=(KEY_PASS + "\n" + FILE_PASS + "\n").encode() + sec)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already held", r.stderr_text)
        self.assertEqual(self.wmk("key", "delete", fpr, "--yes").returncode, 0)
        listed = self.gpg(self.gnupg, "--with-colons", "--list-keys").stdout.decode()
        self.assertNotIn(fpr, listed)

        # Key file by path, its passphrase from another file descriptor.
        with open(self.path("sec.asc"), "wb") as f:
            f.write(sec)
        rfd, wfd = os.pipe()
        os.write(wfd, (FILE_PASS + "\n").encode())
        os.close(wfd)
        try:
            r = self.wmk("key", "import", "alice", "--type", "openpgp", self.path("sec.asc"),
                         "--file-passphrase-fd", str(rfd), "--passphrase-stdin",
                         stdin=KEY_PASS + "\n", pass_fds=(rfd,))
        finally:
            os.close(rfd)
        self.assertEqual(r.returncode, 0, r.stderr_text)

    def test_wrong_file_passphrase_and_bad_files_change_nothing(self):
        user = self.home("user")
        fpr = self.gpg_key(user, "Alice <alice@example.org>", FILE_PASS)
        sec = self.gpg(user, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                       "--export-secret-keys", fpr, stdin=FILE_PASS + "\n").stdout
        with open(self.path("sec.asc"), "wb") as f:
            f.write(sec)
        r = self.wmk("key", "import", "alice", "--type", "openpgp", self.path("sec.asc"),
                     "--passphrase-stdin", stdin=KEY_PASS + "\nwrong passphrase\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("passphrase", r.stderr_text)
        with open(self.path("junk.txt"), "w") as f:
            f.write("this is not a key\n")
        r = self.wmk("key", "import", "alice", "--type", "openpgp", self.path("junk.txt"),
                     "--passphrase-stdin", stdin=KEY_PASS + "\n\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("webmailkey:", r.stderr_text)
        r = self.wmk("key", "import", "alice", "--type", "openpgp", self.path("missing.asc"),
                     "--passphrase-stdin", stdin=KEY_PASS + "\n\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.asc", r.stderr_text)
        self.assertEqual(self.wmk_json("key", "list"), [])
        listed = self.gpg(self.gnupg, "--with-colons", "--list-keys").stdout.decode()
        self.assertNotIn("pub:", listed)

    def test_truncated_key_file_is_reported_as_truncated(self):
        user = self.home("user")
        fpr = self.gpg_key(user, "Alice <alice@example.org>", FILE_PASS)
        sec = self.gpg(user, "--pinentry-mode", "loopback", "--passphrase-fd", "0",
                       "--export-secret-keys", fpr, stdin=FILE_PASS + "\n").stdout
        armored = self.gpg(user, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                           "--export-secret-keys", fpr, stdin=FILE_PASS + "\n").stdout
        for name, data in (("cut.gpg", sec[:len(sec) // 3]), ("cut.asc", armored[:len(armored) // 2])):
            with self.subTest(name=name):
                with open(self.path(name), "wb") as f:
                    f.write(data)
                r = self.wmk("key", "import", "alice", "--type", "openpgp", self.path(name),
                             "--passphrase-stdin", stdin=KEY_PASS + "\n" + FILE_PASS + "\n")
                self.assertEqual(r.returncode, 1, r.stderr_text)
                self.assertIn("truncated", r.stderr_text)
                self.assertNotIn("for no address", r.stderr_text)
        self.assertEqual(self.wmk_json("key", "list"), [])

    def test_prefixes_any_case_audit_key_and_delete_needs_yes(self):
        key = self.wmk_json("key", "generate", "alice", "--type", "openpgp", "--passphrase-stdin",
                            stdin=KEY_PASS + "\n")
        fpr = key["fingerprint"]
        for spelling in (fpr.lower(), fpr[:10], fpr[:10].lower(), "0x" + fpr[:12].lower()):
            with self.subTest(spelling=spelling):
                self.assertEqual(self.wmk_json("key", "show", spelling)["fingerprint"], fpr)
                events = self.wmk_json("audit", "--key", spelling)
                self.assertTrue(events)
                self.assertTrue(all(e["key_fpr"] == fpr for e in events))
        self.assertEqual([k["fingerprint"] for k in self.wmk_json("key", "list", "--login", "alice")],
                         [fpr])
        self.assertEqual(self.wmk_json("key", "list", "--login", "bob"), [])
        # An unknown key: exit 1 and the reason, not an empty list.
        r = self.wmk("audit", "--key", "DEADBEEFDEADBEEF")
        self.assertEqual(r.returncode, 1, r.stdout_text)
        self.assertIn("DEADBEEFDEADBEEF", r.stderr_text)
        r = self.wmk("audit", "--key", "abc")
        self.assertEqual(r.returncode, 2)
        # delete: --yes when stdin is not a terminal.
        r = self.wmk("key", "delete", fpr[:10].lower())
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes", r.stderr_text)
        self.assertEqual(len(self.wmk_json("key", "list")), 1)
        self.assertEqual(self.wmk("key", "delete", fpr[:10].lower(), "--yes").returncode, 0)
        # The deleted key's history is still found by its prefix.
        events = self.wmk_json("audit", "--key", fpr[:10].lower())
        self.assertTrue(any(e["event"] == "key.delete" or e["key_fpr"] == fpr for e in events))

    def test_passwd_changes_only_the_passphrase(self):
        key = self.wmk_json("key", "generate", "bob", "--type", "openpgp", "--passphrase-stdin",
                            stdin=KEY_PASS + "\n")
        fpr = key["fingerprint"]
        r = self.wmk("key", "passwd", fpr, stdin="not it at all\n" + NEW_PASS + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("wrong passphrase", r.stderr_text)
        r = self.wmk("key", "passwd", fpr, "--passphrase-stdin", stdin=KEY_PASS + "\nshort\n")
        self.assertEqual(r.returncode, 2)
        r = self.wmk("key", "passwd", fpr, "--passphrase-stdin", stdin=KEY_PASS + "\n" + NEW_PASS + "\n")
        self.assertEqual(r.returncode, 0, r.stderr_text)
        old = self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                       stdin=KEY_PASS + "\nExport-Passphrase-1\n")
        self.assertEqual(old.returncode, 1)
        new = self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                       stdin=NEW_PASS + "\nExport-Passphrase-1\n")
        self.assertEqual(new.returncode, 0, new.stderr_text)
        events = [(e, o) for (e, o) in self.sql(
            "SELECT event, outcome FROM audit WHERE key_fpr = ? ORDER BY id", (fpr,))]
        self.assertIn(("key.passwd", "fail"), events)
        self.assertIn(("key.passwd", "ok"), events)
        self.assertIn(("key.export", "ok"), events)

    def set_config(self, key, value):
        """Sets key (which init wrote, at its default) to value."""
        with open(self.conf) as f:
            lines = f.read().splitlines()
        hits = [i for i, l in enumerate(lines) if l.split("=")[0].strip() == key]
        self.assertEqual(len(hits), 1, key)
        lines[hits[0]] = "%s = %s" % (key, value)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def test_key_passphrase_minimum_length(self):
        def refused(r, have, minimum):
            self.assertEqual(r.returncode, 2, r.stderr_text)
            self.assertIn("key passphrase is too short: it has %d characters, the minimum is %d"
                          % (have, minimum), r.stderr_text)
            self.assertIn("key_passphrase_min_length", r.stderr_text)

        # generate: nothing is made from a 7-character passphrase.
        refused(self.wmk("key", "generate", "alice", "--type", "openpgp", "--passphrase-stdin",
                         stdin="seven77\n"), 7, 8)
        self.assertEqual(self.wmk_json("key", "list"), [])
        # import: the new passphrase counts, not the file's (here 3 characters, accepted).
        user = self.home("user")
        fpr = self.gpg_key(user, "Alice <alice@example.org>", "abc")
        sec = self.gpg(user, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor",
                       "--export-secret-keys", fpr, stdin="abc\n").stdout
        refused(self.wmk("key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin",
                         stdin=b"short\nabc\n" + sec), 5, 8)
        self.assertEqual(self.wmk_json("key", "list"), [])
        r = self.wmk("key", "import", "alice", "--type", "openpgp", "-", "--passphrase-stdin",
                     stdin=(KEY_PASS + "\nabc\n").encode() + sec)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        # passwd: the old passphrase stays.
        refused(self.wmk("key", "passwd", fpr, "--passphrase-stdin",
                         stdin=KEY_PASS + "\n1234567\n"), 7, 8)

        # The config raises the minimum; keys made before keep opening with theirs.
        self.set_config("key_passphrase_min_length", "30")
        refused(self.wmk("key", "generate", "bob", "--type", "openpgp", "--passphrase-stdin",
                         stdin=NEW_PASS + "\n"), len(NEW_PASS), 30)
        refused(self.wmk("key", "passwd", fpr, "--passphrase-stdin",
                         stdin=KEY_PASS + "\n" + NEW_PASS + "\n"), len(NEW_PASS), 30)
        long_pass = "a passphrase of more than thirty characters"
        self.assertGreaterEqual(len(long_pass), 30)
        r = self.wmk("key", "passwd", fpr, "--passphrase-stdin",
                     stdin=KEY_PASS + "\n" + long_pass + "\n")
        self.assertEqual(r.returncode, 0, r.stderr_text)
        r = self.wmk("key", "export", fpr, "--secret", "--passphrase-stdin",
                     stdin=long_pass + "\nExport-Passphrase-1\n")
        self.assertEqual(r.returncode, 2, r.stderr_text)
        self.assertIn("export passphrase is too short", r.stderr_text)
        # The config cannot lower the floor of 8.
        self.set_config("key_passphrase_min_length", "4")
        r = self.wmk("key", "list")
        self.assertEqual(r.returncode, 1, r.stderr_text)
        self.assertIn("key_passphrase_min_length", r.stderr_text)

    # ---- S/MIME

    def make_cert(self, name, email, ec=False):
        key, crt = self.path(name + ".key"), self.path(name + ".crt")
        if ec:
            self.openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        else:
            self.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                         "-out", key)
        self.openssl("req", "-x509", "-key", key, "-out", crt, "-days", "30", "-subj",
                     "/CN=" + name + "/emailAddress=" + email,
                     "-addext", "subjectAltName=email:" + email)
        return key, crt

    def test_pkcs12_import_show_export(self):
        key, crt = self.make_cert("Alice Cert", "alice@example.org")
        p12 = self.path("a.p12")
        self.openssl("pkcs12", "-export", "-inkey", key, "-in", crt, "-out", p12,
                     "-passout", "pass:" + FILE_PASS)
        r = self.wmk("key", "import", "alice", "--type", "smime", p12, "--passphrase-stdin",
                     stdin=KEY_PASS + "\nwrong\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("password is wrong", r.stderr_text)
        with open(p12, "rb") as f:
            whole = f.read()
        with open(self.path("cut.p12"), "wb") as f:
            f.write(whole[: len(whole) // 2])
        r = self.wmk("key", "import", "alice", "--type", "smime", self.path("cut.p12"),
                     "--passphrase-stdin", stdin=KEY_PASS + "\n" + FILE_PASS + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("truncated", r.stderr_text)
        self.assertEqual(self.wmk_json("key", "list"), [])

        r = self.wmk("key", "import", "alice", "--type", "smime", p12, "--passphrase-stdin",
                     stdin=KEY_PASS + "\n" + FILE_PASS + "\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        info = json.loads(r.stdout_text)
        self.assertEqual(info["type"], "smime")
        self.assertIn("CN=Alice Cert", info["subject"])
        self.assertEqual(info["subject"], info["issuer"])
        self.assertEqual(info["expires"], info["not_after"])
        text = self.wmk("key", "show", info["fingerprint"][:10]).stdout_text
        for label in ("subject", "issuer", "valid from", "valid until", "alice@example.org (default)"):
            self.assertIn(label, text)
        cert = self.wmk("key", "export", info["fingerprint"]).stdout_text
        with open(crt) as f:
            self.assertEqual(cert, f.read())
        out = self.path("out.p12")
        r = self.wmk("key", "export", info["fingerprint"], "--secret", "--out", out,
                     "--passphrase-stdin", stdin=KEY_PASS + "\nExport-Passphrase-1\n")
        self.assertEqual(r.returncode, 0, r.stderr_text)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        self.openssl("pkcs12", "-in", out, "-nodes", "-passin", "pass:Export-Passphrase-1")

    def test_generate_smime_with_csr(self):
        r = self.wmk("key", "generate", "alice", "--type", "smime", "--algo", "p256", "--days", "90",
                     "--csr", self.path("a.csr"), "--passphrase-stdin", stdin=KEY_PASS + "\n",
                     json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        info = json.loads(r.stdout_text)
        self.assertEqual(info["algorithm"], "EC P-256")
        self.assertEqual(info["not_after"] - info["not_before"], 90 * 86400)
        self.openssl("req", "-in", self.path("a.csr"), "-noout", "-verify")

    def test_usage_errors(self):
        r = self.wmk("key", "generate", "alice", "--type", "openpgp", stdin=KEY_PASS + "\n")
        self.assertEqual(r.returncode, 2)
        r = self.wmk("key", "generate", "alice", "--type", "x509", "--passphrase-stdin",
                     stdin=KEY_PASS + "\n")
        self.assertEqual(r.returncode, 2)
        r = self.wmk("key", "generate", "alice", "--type", "smime", "--email", "bob@example.org",
                     "--passphrase-stdin", stdin=KEY_PASS + "\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not an address of user alice", r.stderr_text)
        r = self.wmk("key", "generate", "nobody", "--type", "smime", "--passphrase-stdin",
                     stdin=KEY_PASS + "\n")
        self.assertEqual(r.returncode, 1)
        r = self.wmk("key", "show", "ABCD")
        self.assertEqual(r.returncode, 2)
        r = self.wmk("key", "show", "ABCDEF0123", json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout_text)["code"], "not_found")
        r = self.wmk("key", "list", "nobody")
        self.assertEqual(r.returncode, 1)

    def test_nothing_usable_at_rest_after_cli_use(self):
        key = self.wmk_json("key", "generate", "alice", "--type", "openpgp", "--passphrase-stdin",
                            stdin=KEY_PASS + "\n")
        k, crt = self.make_cert("Alice", "alice@example.org", ec=True)
        with open(k) as f1, open(crt) as f2:
            pem = f1.read() + f2.read()
        r = self.wmk("key", "import", "alice", "--type", "smime", "-", "--passphrase-stdin",
                     stdin=KEY_PASS + "\n\n" + pem)
        self.assertEqual(r.returncode, 0, r.stderr_text)
        r = self.wmk("key", "export", key["fingerprint"], "--secret", "--passphrase-stdin",
                     stdin=KEY_PASS + "\nExport-Passphrase-1\n")
        self.assertEqual(r.returncode, 0, r.stderr_text)
        der = self.openssl("pkey", "-in", k, "-outform", "DER").stdout
        needles = [KEY_PASS.encode(), b"Export-Passphrase-1", der, b"BEGIN PRIVATE KEY",
                   b"BEGIN EC PRIVATE KEY", b"(private-key"]
        stolen = self.path("stolen")
        shutil.copytree(self.data, stolen, ignore=shutil.ignore_patterns("S.*"))
        checked = 0
        for root, _, files in os.walk(stolen):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                checked += 1
                for n in needles:
                    self.assertNotIn(n, data, os.path.join(root, name))
        self.assertGreater(checked, 5)

    def sql(self, query, params=()):
        con = sqlite3.connect(os.path.join(self.data, "webmailkey.db"), timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


if __name__ == "__main__":
    unittest.main()
