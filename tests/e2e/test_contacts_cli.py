#!/usr/bin/env python3
"""End-to-end tests of `webmailkey contact ...` and WKD lookups.

Keys come from real `gpg`, certificates from real `openssl`. WKD is served by a real
lighttpd over HTTPS with a test CA (openssl), reached through `wkd_resolve` and
trusted through `wkd_ca_file`; a Python socket that accepts and never answers plays
the hanging server.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import Instance  # noqa: E402

WKS_CLIENT = "/usr/lib/gnupg/gpg-wks-client"


def run(argv, stdin=b"", check=True):
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    return r


def openpgp_packets(data):
    """The packets of binary OpenPGP data (RFC 4880 §4.2, both header formats), each
    as (tag, its bytes with the header)."""
    out, i = [], 0
    while i < len(data):
        ctb = data[i]
        assert ctb & 0x80, "not an OpenPGP packet at %d" % i
        if ctb & 0x40:
            tag, first = ctb & 0x3F, data[i + 1]
            if first < 192:
                header, length = 2, first
            elif first < 224:
                header, length = 3, ((first - 192) << 8) + data[i + 2] + 192
            elif first == 255:
                header, length = 6, int.from_bytes(data[i + 2:i + 6], "big")
            else:
                raise AssertionError("partial body lengths are not expected in a key")
        else:
            tag, kind = (ctb >> 2) & 0x0F, ctb & 0x03
            assert kind != 3, "indeterminate length in a key"
            header = 1 + (1, 2, 4)[kind]
            length = int.from_bytes(data[i + 1:i + header], "big")
        out.append((tag, data[i:i + header + length]))
        i += header + length
    return out


def with_unsigned_user_id(key, user_id):
    """Binary key data with a user id packet (tag 13) that no self-signature covers,
    right after the primary key: an address the key's owner never bound."""
    assert len(user_id) < 192
    packets = openpgp_packets(key)
    uid = bytes([0xC0 | 13, len(user_id)]) + user_id
    return packets[0][1] + uid + b"".join(p for _, p in packets[1:])


class OutsideGpg:
    """A correspondent's own GnuPG home."""

    def __init__(self, path):
        self.home = path
        os.makedirs(path, mode=0o700)
        with open(os.path.join(path, "gpg-agent.conf"), "w") as f:
            f.write("s2k-count 65536\n")

    def gpg(self, *args, stdin=b""):
        return run(["gpg", "--homedir", self.home, "--batch", "--no-tty", "--pinentry-mode",
                    "loopback", "--passphrase", ""] + list(args), stdin=stdin)

    def make_key(self, uid):
        self.gpg("--quick-gen-key", uid, "future-default", "default", "never")
        out = self.gpg("--with-colons", "--list-keys", uid).stdout.decode()
        return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]

    def export(self, fpr, armor=True, secret=False):
        args = (["--armor"] if armor else []) + [
            "--export-secret-keys" if secret else "--export", fpr]
        return self.gpg(*args).stdout

    def close(self):
        run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"], check=False)


class ContactCli(unittest.TestCase):
    def setUp(self):
        self.wmk = Instance()
        self.wmk.add_user("alice", "Login-Password-1234", "alice@example.org")
        self.wmk.add_user("bob", "Login-Password-1234", "bob@example.org")
        self.outside = OutsideGpg(os.path.join(self.wmk.tmp, "og"))

    def tearDown(self):
        self.outside.close()
        run(["gpgconf", "--homedir", os.path.join(self.wmk.data_dir, "gnupg"), "--kill",
             "gpg-agent"], check=False)
        self.wmk.close()

    def write(self, name, data):
        path = os.path.join(self.wmk.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_import_list_show_delete(self):
        fpr = self.outside.make_key("Carol Outside <carol@remote.example>")
        path = self.write("carol.asc", self.outside.export(fpr))
        k = self.wmk.cli("contact", "import", "alice", path, json_output=True)
        self.assertEqual(k["fingerprint"], fpr)
        self.assertEqual(k["login"], "alice")
        self.assertEqual(k["state"], "usable")
        self.assertEqual([(b["email"], b["source"]) for b in k["bindings"]],
                         [("carol@remote.example", "user")])
        # The public key is in the server's GnuPG home, usable for verifying.
        listed = run(["gpg", "--homedir", os.path.join(self.wmk.data_dir, "gnupg"), "--batch",
                      "--list-keys", fpr], check=False)
        self.assertEqual(listed.returncode, 0)

        # Binary from stdin, for bob, with an explicit address.
        k2 = self.wmk.cli("contact", "import", "bob", "-", "--email", "c.alias@remote.example",
                          input=self.outside.export(fpr, armor=False), json_output=True)
        self.assertEqual([b["email"] for b in k2["bindings"]], ["c.alias@remote.example"])

        everyone = self.wmk.cli("contact", "list", json_output=True)
        self.assertEqual(sorted(c["login"] for c in everyone), ["alice", "bob"])
        mine = self.wmk.cli("contact", "list", "alice", json_output=True)
        self.assertEqual([c["id"] for c in mine], [k["id"]])
        text = self.wmk.cli("contact", "list", "alice").stdout
        self.assertIn(fpr, text)
        self.assertIn("carol@remote.example (user)", text)
        shown = self.wmk.cli("contact", "show", k["id"]).stdout
        self.assertIn("binds nothing", shown)
        self.assertIn("you accepted this key", shown)

        d = self.wmk.cli("contact", "delete", k["id"], json_output=True)
        self.assertEqual(d["deleted"], k["id"])
        r = self.wmk.cli("contact", "show", k["id"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no contact key", r.stderr)
        r = self.wmk.cli("contact", "show", "abc", check=False)
        self.assertEqual(r.returncode, 2)

    def test_refusals(self):
        fpr = self.outside.make_key("Two <two@remote.example>")
        self.outside.gpg("--quick-add-uid", fpr, "Boss <boss@example.org>")
        two = self.write("two.asc", self.outside.export(fpr))
        r = self.wmk.cli("--json", "contact", "import", "alice", two, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("several addresses", r.stderr)
        self.assertIn('"code":"invalid_argument"', r.stdout)

        secret = self.write("secret.asc", self.outside.export(fpr, secret=True))
        r = self.wmk.cli("contact", "import", "alice", secret, "--email", "two@remote.example",
                         check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("secret key", r.stderr)
        home = os.path.join(self.wmk.data_dir, "gnupg")
        self.assertNotEqual(run(["gpg", "--homedir", home, "--batch", "--list-keys", fpr],
                                check=False).returncode, 0)

        big = self.write("big.asc", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" +
                         b"A" * (1100 * 1024) + b"\n-----END PGP PUBLIC KEY BLOCK-----\n")
        r = self.wmk.cli("contact", "import", "alice", big, "--email", "x@remote.example",
                         check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("larger than", r.stderr)
        junk = self.write("junk", b"this is no key\n")
        r = self.wmk.cli("contact", "import", "alice", junk, "--email", "x@remote.example",
                         check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("neither an OpenPGP public key nor an X.509 certificate", r.stderr)
        self.assertEqual(self.wmk.cli("contact", "list", json_output=True), [])

    def test_autocrypt_header_at_delivery(self):
        import base64
        import email.message
        import email.utils
        fpr = self.outside.make_key("Peer <peer@remote.example>")
        keydata = base64.b64encode(self.outside.export(fpr, armor=False)).decode()

        def message(sender, addr, subject):
            m = email.message.EmailMessage()
            m["From"] = sender
            m["To"] = "alice@example.org"
            m["Subject"] = subject
            m["Date"] = email.utils.formatdate(1700000000)
            m.set_content("hello\n")
            # Python's email would turn a long header into encoded words: the
            # header goes in as a mail client writes it, folded by hand.
            folded = "\n ".join(keydata[i:i + 76] for i in range(0, len(keydata), 76))
            header = "Autocrypt: addr=%s; prefer-encrypt=mutual; keydata=\n %s\n" % (addr, folded)
            return header.encode() + m.as_bytes()

        # A header for another address than From is ignored.
        self.wmk.deliver("alice", message("Mallory <mallory@remote.example>",
                                          "peer@remote.example", "not mine"))
        self.assertEqual(self.wmk.cli("contact", "list", "alice", json_output=True), [])
        self.wmk.deliver("alice", message("Peer <peer@remote.example>", "peer@remote.example",
                                          "first"))
        (k,) = self.wmk.cli("contact", "list", "alice", json_output=True)
        self.assertEqual(k["fingerprint"], fpr)
        (b,) = k["bindings"]
        self.assertEqual((b["email"], b["source"]), ("peer@remote.example", "autocrypt"))
        self.assertEqual(b["first_seen"], 1700000000)
        # Bob got nothing.
        self.assertEqual(self.wmk.cli("contact", "list", "bob", json_output=True), [])

    def test_certificate(self):
        key, crt = os.path.join(self.wmk.tmp, "d.key"), os.path.join(self.wmk.tmp, "d.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
             crt, "-days", "30", "-subj", "/CN=Dave/emailAddress=dave@remote.example"])
        der = run(["openssl", "x509", "-in", crt, "-outform", "DER"]).stdout
        k = self.wmk.cli("contact", "import", "alice", "-", input=der, json_output=True)
        self.assertEqual(k["type"], "smime")
        self.assertEqual(k["bindings"][0]["email"], "dave@remote.example")


# ---- WKD against a real HTTPS server


def make_ca_and_server_cert(d, hosts):
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=WKD Test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
         "keyUsage=critical,keyCertSign,cRLSign"])
    key, csr, crt = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=" + hosts[0]])
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + h for h in hosts) + "\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    return ca_crt, crt, key


def wkd_hash(address):
    out = run([WKS_CLIENT, "--print-wkd-hash", address]).stdout.decode()
    return out.split()[0]


def loopback_address():
    return "127.%d.%d.%d" % (random.randint(1, 250), random.randint(1, 250),
                             random.randint(2, 250))


class WkdServers:
    """A WKD server (a real lighttpd over HTTPS, certificate from a test CA for hosts)
    serving the directory www on port 443 of a loopback address of its own (curl's
    --resolve keeps the URL's port), and beside it a server that accepts and never
    answers, on another. resolve() gives the config's wkd_resolve; ca the CA file."""

    def __init__(self, d, hosts, www):
        self.addr, self.hang_addr = loopback_address(), loopback_address()
        while self.hang_addr == self.addr:
            self.hang_addr = loopback_address()
        self.ca, crt, key = make_ca_and_server_cert(d, hosts)
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.modules += ( "mod_openssl" )\n'
                    'server.bind = "%s"\nserver.port = 443\n'
                    'server.document-root = "%s"\n'
                    'server.errorlog = "%s/error.log"\n'
                    'ssl.engine = "enable"\nssl.pemfile = "%s"\nssl.privkey = "%s"\n'
                    % (self.addr, www, d, crt, key))
        self.server = subprocess.Popen(["lighttpd", "-D", "-f", conf])
        self.hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.hang.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.hang.bind((self.hang_addr, 443))
        self.hang.listen(16)
        self.held = []

        def accept_forever():
            while True:
                try:
                    conn, _ = self.hang.accept()
                except OSError:
                    return
                self.held.append(conn)

        threading.Thread(target=accept_forever, daemon=True).start()
        for _ in range(100):
            try:
                socket.create_connection((self.addr, 443), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def resolve(self, hosts, hanging_hosts):
        return " ".join(["%s:443:%s" % (h, self.addr) for h in hosts] +
                        ["%s:443:%s" % (h, self.hang_addr) for h in hanging_hosts])

    def close(self):
        self.server.terminate()
        self.server.wait(timeout=10)
        self.hang.close()
        for c in self.held:
            c.close()


@unittest.skipUnless(os.path.exists(WKS_CLIENT) and shutil.which("lighttpd"),
                     "needs gpg-wks-client and lighttpd")
class WkdLookup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wmk-wkd-")
        cls.outside = OutsideGpg(os.path.join(cls.tmp, "og"))
        www = os.path.join(cls.tmp, "www")
        adv = os.path.join(www, ".well-known", "openpgpkey", "remote.example", "hu")
        direct = os.path.join(www, ".well-known", "openpgpkey", "hu")
        os.makedirs(adv)
        os.makedirs(direct)
        cls.good = cls.outside.make_key("Good <good@remote.example>")
        with open(os.path.join(adv, wkd_hash("good@remote.example")), "wb") as f:
            f.write(cls.outside.export(cls.good, armor=False))
        cls.other = cls.outside.make_key("Other <other@remote.example>")
        with open(os.path.join(adv, wkd_hash("wrong@remote.example")), "wb") as f:
            f.write(cls.outside.export(cls.other, armor=False))
        # direct.example has no openpgpkey. host: the direct method serves it.
        cls.direct_key = cls.outside.make_key("Direct <d@direct.example>")
        with open(os.path.join(direct, wkd_hash("d@direct.example")), "wb") as f:
            f.write(cls.outside.export(cls.direct_key, armor=False))
        # held@ serves a key alice already holds (bound to its own address), with an
        # extra user id held@ that its owner never signed: check_wkd_answer finds the
        # address, gpg drops the user id on import.
        cls.held = cls.outside.make_key("Held <held-own@remote.example>")
        with open(os.path.join(adv, wkd_hash("held@remote.example")), "wb") as f:
            f.write(with_unsigned_user_id(cls.outside.export(cls.held, armor=False),
                                          b"Held <held@remote.example>"))
        hosts = ["remote.example", "openpgpkey.remote.example", "direct.example"]
        cls.servers = WkdServers(cls.tmp, hosts, www)
        cls.ca = cls.servers.ca
        cls.addr = cls.servers.addr
        resolve = cls.servers.resolve(hosts, ["hang.example", "openpgpkey.hang.example"])
        cls.wmk = Instance(config={"wkd_ca_file": cls.ca, "wkd_resolve": resolve})
        cls.wmk.add_user("alice", "Login-Password-1234", "alice@example.org")

    @classmethod
    def tearDownClass(cls):
        cls.servers.close()
        cls.outside.close()
        run(["gpgconf", "--homedir", os.path.join(cls.wmk.data_dir, "gnupg"), "--kill",
             "gpg-agent"], check=False)
        cls.wmk.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_good_key_advanced_method(self):
        k = self.wmk.cli("contact", "lookup", "alice", "Good@Remote.Example", json_output=True)
        self.assertEqual(k["fingerprint"], self.good)
        self.assertEqual([(b["email"], b["source"]) for b in k["bindings"]],
                         [("good@remote.example", "wkd")])

    def test_direct_method_when_there_is_no_openpgpkey_host(self):
        k = self.wmk.cli("contact", "lookup", "alice", "d@direct.example", json_output=True)
        self.assertEqual(k["fingerprint"], self.direct_key)
        self.assertEqual(k["bindings"][0]["source"], "wkd")

    def test_wrong_address_key_is_refused(self):
        r = self.wmk.cli("contact", "lookup", "alice", "wrong@remote.example", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not carry the address wrong@remote.example", r.stderr)
        listed = self.wmk.cli("contact", "list", "alice", json_output=True)
        self.assertNotIn(self.other, [c["fingerprint"] for c in listed])

    def test_key_held_before_keeps_its_bindings_when_the_answer_does_not_validly_carry_it(self):
        held_pub = os.path.join(self.tmp, "held.asc")
        with open(held_pub, "wb") as f:
            f.write(self.outside.export(self.held))
        self.wmk.cli("contact", "import", "alice", held_pub)

        def alices_held():
            (k,) = [k for k in self.wmk.cli("contact", "list", "alice", json_output=True)
                    if k["fingerprint"] == self.held]
            return k

        before = alices_held()
        self.assertEqual([(b["email"], b["source"]) for b in before["bindings"]],
                         [("held-own@remote.example", "user")])
        r = self.wmk.cli("contact", "lookup", "alice", "held@remote.example", check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("does not validly carry held@remote.example", r.stderr)
        # Only the lookup's own binding was taken back: the key and the binding alice
        # had stay as they were.
        after = alices_held()
        self.assertEqual(after["bindings"], before["bindings"])
        self.assertEqual(after["id"], before["id"])
        self.assertNotIn("held@remote.example", " ".join(after["user_ids"]))
        # The same answer for a user who did not hold the key: nothing of it stays.
        self.wmk.add_user("hal", "Login-Password-1234", "hal@example.org")
        r = self.wmk.cli("contact", "lookup", "hal", "held@remote.example", check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("does not validly carry held@remote.example", r.stderr)
        self.assertEqual(self.wmk.cli("contact", "list", "hal", json_output=True), [])
        self.assertEqual(alices_held()["bindings"], before["bindings"])
        audit = self.wmk.cli("audit", "--login", "alice", "--key", self.held, json_output=True)
        # The refused lookup names the key it refused.
        self.assertEqual([(a["event"], a["outcome"]) for a in audit
                          if a["event"].startswith("contact.")],
                         [("contact.lookup", "fail"), ("contact.import", "ok")])
        self.assertIn("held@remote.example", audit[0]["detail"])

    def test_key_bound_by_wkd_before_is_looked_up_again(self):
        self.wmk.add_user("gil", "Login-Password-1234", "gil@example.org")
        first = self.wmk.cli("contact", "lookup", "gil", "good@remote.example", json_output=True)
        again = self.wmk.cli("contact", "lookup", "gil", "good@remote.example", json_output=True)
        self.assertEqual(again["id"], first["id"])
        self.assertEqual([(b["email"], b["source"]) for b in again["bindings"]],
                         [("good@remote.example", "wkd")])
        self.assertEqual(again["bindings"][0]["first_seen"], first["bindings"][0]["first_seen"])
        self.assertEqual(len(self.wmk.cli("contact", "list", "gil", json_output=True)), 1)

    def test_404(self):
        r = self.wmk.cli("--json", "contact", "lookup", "alice", "nobody@remote.example",
                         check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)
        self.assertIn('"code":"not_found"', r.stdout)

    def test_hanging_server_costs_at_most_the_timeout(self):
        start = time.monotonic()
        r = self.wmk.cli("contact", "lookup", "alice", "x@hang.example", check=False)
        took = time.monotonic() - start
        self.assertEqual(r.returncode, 1)
        self.assertIn("no answer within", r.stderr)
        # 5 s for both methods together, plus the CLI's own start-up.
        self.assertLess(took, 6.5)
        self.assertGreater(took, 4.5)

    def test_untrusted_certificate_is_refused(self):
        # Without the test CA the server's certificate does not verify.
        other = Instance(config={"wkd_resolve": "remote.example:443:%s "
                                                "openpgpkey.remote.example:443:%s"
                                                % (self.addr, self.addr)})
        try:
            other.add_user("alice", "Login-Password-1234", "alice@example.org")
            r = other.cli("contact", "lookup", "alice", "good@remote.example", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("certificate", r.stderr.lower())
        finally:
            other.close()


if __name__ == "__main__":
    unittest.main()
