"""examples/mini_httpd.conf and examples/mini_httpd-wrappers.sh map the paths: the login
page and the redirect to it through a real mini_httpd set up as the example says
(loopback, behind a TLS terminator; the terminator is left out here), and the wrappers'
HTTPS rule. Skipped when mini_httpd is not installed (it is optional).

POSTs are not tested here: mini_httpd 1.30 (Debian 12) loses the CGI program's answer
to most POSTs — the child that feeds the body to the program shuts the connection's
write side down (seen with strace) — so a login through it fails more often than not.
docs/admin-guide.md says so and recommends lighttpd."""

import getpass
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import CGI_BIN, SOURCE_DIR, Instance, Response, free_port  # noqa: E402

MINI_HTTPD = shutil.which("mini_httpd") or "/usr/sbin/mini_httpd"


@unittest.skipUnless(os.access(MINI_HTTPD, os.X_OK), "mini_httpd is not installed")
class MiniHttpd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(tls=False)
        cls.wmk.add_user("alice", "pw for alice")
        cls.webroot = os.path.join(cls.wmk.tmp, "www")
        subprocess.run([os.path.join(SOURCE_DIR, "examples", "mini_httpd-wrappers.sh"),
                        cls.webroot, CGI_BIN, os.path.join(SOURCE_DIR, "cgi", "static"),
                        cls.wmk.config_path], check=True, capture_output=True)
        cls.wmk.port = free_port()
        with open(os.path.join(SOURCE_DIR, "examples", "mini_httpd.conf")) as f:
            conf = f.read()
        for key, value in (("port", str(cls.wmk.port)), ("user", getpass.getuser()),
                           ("dir", cls.webroot),
                           ("logfile", os.path.join(cls.wmk.tmp, "mini_httpd.log")),
                           ("pidfile", os.path.join(cls.wmk.tmp, "mini_httpd.pid"))):
            conf, n = re.subn(r"(?m)^%s=.*$" % key, "%s=%s" % (key, value), conf)
            assert n == 1, key
        conf_path = os.path.join(cls.wmk.tmp, "mini_httpd.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        cls.server = subprocess.Popen([MINI_HTTPD, "-C", conf_path, "-D"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if cls.wmk.client().get("/static/style.css").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                cls.tearDownClass()
                raise RuntimeError("mini_httpd did not answer")
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        os.killpg(cls.server.pid, signal.SIGTERM)
        cls.server.wait(timeout=10)
        cls.wmk.close()

    def test_login_page_through_the_wrappers(self):
        r = self.wmk.client().get("/login")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "login")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertEqual(self.wmk.client().get("/inbox").status, 303)

    def test_root_leads_to_the_inbox(self):
        r = self.wmk.client().get("/")
        self.assertEqual(r.status, 200)
        self.assertIn('url=/inbox', r.text)

    def test_wrapper_refuses_requests_not_from_the_terminator(self):
        env = {"REQUEST_METHOD": "GET", "REMOTE_ADDR": "192.0.2.7", "PATH": "/usr/bin:/bin",
               "HTTPS": "on"}  # even if something upstream claims HTTPS
        p = subprocess.run([os.path.join(self.webroot, "login")], env=env,
                           capture_output=True, timeout=30)
        r = Response.from_cgi(p.stdout)
        self.assertEqual(r.status, 403)
        env["REMOTE_ADDR"] = "127.0.0.1"
        p = subprocess.run([os.path.join(self.webroot, "login")], env=env,
                           capture_output=True, timeout=30)
        self.assertEqual(Response.from_cgi(p.stdout).status, 200)


if __name__ == "__main__":
    unittest.main()
