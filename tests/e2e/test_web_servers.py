"""The examples for other web servers, run on the real Debian servers on loopback:
examples/apache-webmailkey.conf (Apache httpd, mod_cgid) and
examples/nginx-webmailkey.conf (nginx with fcgiwrap running the CGI programs).

Each server serves an install made by `cmake --install` into a temporary prefix (the
layout the examples name), with the example file itself: Apache reads it through
Include after Define lines set the paths; for nginx the test replaces the example's
documented paths (/usr/local, the config, the certificate, the socket, port 443).
Through each: the login page, a login (POST), the inbox with a delivered message,
a message page, the static stylesheet and the favicon, and a too-large upload answered
by webmailkey's page (the server's limit sits above the programs').

Both servers start as root and run the programs as an unprivileged account (nobody),
which then owns the data directory; without root, or without the packages (apache2,
nginx, fcgiwrap: scripts/setup installs them), the suite is skipped with the reason."""

import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import BUILD_DIR, SOURCE_DIR, Instance, free_port  # noqa: E402

PASSWORD = "correct horse battery staple"
RUN_AS = ("nobody", "nogroup")
APACHE = "/usr/sbin/apache2"
NGINX = "/usr/sbin/nginx"
FCGIWRAP = "/usr/sbin/fcgiwrap"
MODULES = "/usr/lib/apache2/modules"
_PREFIX = {}


def install_prefix():
    """`cmake --install` of this build into a temporary prefix, once per run."""
    if "dir" not in _PREFIX:
        import tempfile
        d = tempfile.mkdtemp(prefix="wmk-prefix-")
        os.chmod(d, 0o755)
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", d], check=True,
                       capture_output=True, timeout=300)
        _PREFIX["dir"] = d
    return _PREFIX["dir"]


def login(client):
    token = client.get("/login").hidden("csrf", form_action="/login")
    return client.post("/login", {"csrf": token, "user": "alice", "password": PASSWORD})


class ServerExample:
    """Mixin: an instance owned by RUN_AS, a certificate, a server started by start_server()."""

    @classmethod
    def setUpClass(cls):
        cls.prefix = install_prefix()
        cls.wmk = Instance(config={"attachment_max_bytes": 100000})
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.deliver("alice", b"From: Bob <bob@example.org>\nTo: alice@example.org\n"
                                 b"Subject: Served by another server\n\nHello from afar.\n")
        os.makedirs(os.path.dirname(cls.wmk.cert_path), exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", cls.key_path(),
                        "-out", cls.wmk.cert_path, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(cls.wmk.tmp, 0o711)
        subprocess.run(["chown", "-R", ":".join(RUN_AS), cls.wmk.data_dir, cls.wmk.config_path],
                       check=True)
        cls.run_dir = os.path.join(cls.wmk.tmp, "run")
        os.mkdir(cls.run_dir)
        shutil.chown(cls.run_dir, *RUN_AS)
        cls.procs = []
        cls.wmk.port = free_port()
        cls.start_server()
        deadline = time.monotonic() + 30
        while True:
            try:
                if cls.wmk.client().get("/static/style.css").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                logs = cls.server_logs()
                cls.tearDownClass()
                raise AssertionError("the server did not answer:\n" + logs)
            time.sleep(0.2)

    @classmethod
    def key_path(cls):
        return os.path.join(cls.wmk.tmp, "tls-key.pem")

    @classmethod
    def spawn(cls, argv, log):
        with open(log, "ab") as out:
            cls.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        cls.wmk.close()

    @classmethod
    def server_logs(cls):
        out = []
        for name in sorted(os.listdir(cls.wmk.tmp)):
            if name.endswith(".log"):
                with open(os.path.join(cls.wmk.tmp, name), "rb") as f:
                    out.append("==> %s <==\n%s" % (name, f.read().decode("utf-8", "replace")[-3000:]))
        return "\n".join(out)

    # ---- the tests both servers share

    def test_login_inbox_message_and_static(self):
        c = self.wmk.client()
        r = c.get("/inbox")
        self.assertEqual(r.status, 303, self.server_logs())
        self.assertTrue(r.location.startswith("/login"))
        r = c.get("/login")
        self.assertEqual((r.status, r.page), (200, "login"), self.server_logs())
        r = login(c)
        self.assertEqual(r.status, 303, r.text[r.text.find("<main"):] + self.server_logs())
        self.assertEqual(r.location, "/inbox")
        inbox = c.get("/inbox")
        self.assertEqual((inbox.status, inbox.page), (200, "inbox"))
        self.assertIn("Served by another server", inbox.text)
        uid = inbox.text.split("/message?id=")[1].split("&")[0].split('"')[0]
        m = c.get("/message", {"id": uid})
        self.assertEqual((m.status, m.page), (200, "message"))
        self.assertIn("Hello from afar.", m.text)
        css = c.get("/static/style.css")
        self.assertEqual(css.status, 200)
        self.assertIn("text/css", css.header("Content-Type"))
        self.assertEqual(css.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(c.get("/favicon.ico").status, 200)
        r = c.get("/")
        self.assertEqual(r.status, 303)
        self.assertIn(r.location, ("/inbox", "https://127.0.0.1:%d/inbox" % self.wmk.port))

    def test_too_large_upload_gets_the_products_page(self):
        c = self.wmk.client()
        self.assertEqual(login(c).status, 303)
        token = c.get("/compose").hidden("csrf", form_action="/compose")
        r = c.post("/compose", [("csrf", token), ("to", "bob@example.org"), ("subject", "big"),
                                ("body", "kept text"), ("action", "save")],
                   files=[("attachment", "big.bin", "application/octet-stream",
                           b"x" * (4 * 100000 + 3 * 1024 * 1024))])
        self.assertEqual((r.status, r.page), (413, "error"), r.text[:300])
        r = c.post("/compose", [("csrf", token), ("to", "bob@example.org"), ("subject", "big"),
                                ("body", "kept text"), ("action", "save")],
                   files=[("attachment", "big.bin", "application/octet-stream", b"x" * 200000)])
        self.assertEqual((r.status, r.page), (400, "compose"), r.text[:300])
        self.assertIn("kept text", r.text)


@unittest.skipUnless(os.geteuid() == 0, "Apache starts as root and runs the programs as nobody")
@unittest.skipUnless(os.access(APACHE, os.X_OK), "apache2 is not installed")
class ApacheCgid(ServerExample, unittest.TestCase):
    @classmethod
    def start_server(cls):
        t = cls.wmk.tmp
        mods = ["mpm_event", "authz_core", "cgid", "ssl", "socache_shmcb", "headers", "alias",
                "env", "mime"]
        conf = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULES, m) for m in mods)
        conf += """ServerRoot {t}
PidFile {t}/apache.pid
ErrorLog {t}/apache-error.log
DefaultRuntimeDir {run}
ScriptSock {run}/cgid.sock
Mutex file:{run}
User {user}
Group {group}
ServerName localhost
Listen 127.0.0.1:{port}
TypesConfig /etc/mime.types
Define WMK_PREFIX {prefix}
Define WMK_CONFIG {config}
Define WMK_PORT {port}
Define WMK_CERT {cert}
Define WMK_KEY {key}
Include {example}
""".format(t=t, run=cls.run_dir, user=RUN_AS[0], group=RUN_AS[1], port=cls.wmk.port,
           prefix=cls.prefix, config=cls.wmk.config_path, cert=cls.wmk.cert_path,
           key=cls.key_path(), example=os.path.join(SOURCE_DIR, "examples", "apache-webmailkey.conf"))
        path = os.path.join(t, "apache.conf")
        with open(path, "w") as f:
            f.write(conf)
        check = subprocess.run([APACHE, "-f", path, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        cls.spawn([APACHE, "-f", path, "-DFOREGROUND"], os.path.join(t, "apache-run.log"))


@unittest.skipUnless(os.geteuid() == 0, "nginx starts as root and fcgiwrap runs as nobody")
@unittest.skipUnless(os.access(NGINX, os.X_OK) and os.access(FCGIWRAP, os.X_OK),
                     "nginx or fcgiwrap is not installed")
class NginxFcgiwrap(ServerExample, unittest.TestCase):
    @classmethod
    def start_server(cls):
        t = cls.wmk.tmp
        sock = os.path.join(cls.run_dir, "fcgiwrap.sock")
        cls.spawn(["runuser", "-u", RUN_AS[0], "--", FCGIWRAP, "-c", "4", "-s", "unix:" + sock],
                  os.path.join(t, "fcgiwrap.log"))
        with open(os.path.join(SOURCE_DIR, "examples", "nginx-webmailkey.conf")) as f:
            site = f.read()
        for old, new in (("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % cls.wmk.port),
                         ("/usr/local/", cls.prefix + "/"),
                         ("/etc/webmailkey/webmailkey.conf", cls.wmk.config_path),
                         ("/etc/letsencrypt/live/mail.example.org/fullchain.pem", cls.wmk.cert_path),
                         ("/etc/letsencrypt/live/mail.example.org/privkey.pem", cls.key_path()),
                         ("/run/webmailkey/fcgiwrap.sock", sock)):
            assert old in site, old
            site = site.replace(old, new)
        with open(os.path.join(t, "nginx-site.conf"), "w") as f:
            f.write(site)
        # `include fastcgi_params` is relative to the main config's directory.
        os.symlink("/etc/nginx/fastcgi_params", os.path.join(t, "fastcgi_params"))
        temp = os.path.join(cls.run_dir, "nginx-temp")
        os.mkdir(temp)
        shutil.chown(temp, *RUN_AS)
        conf = """user {user} {group};
pid {t}/nginx.pid;
error_log {t}/nginx-error.log;
events {{}}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  include {t}/nginx-site.conf;
}}
""".format(user=RUN_AS[0], group=RUN_AS[1], t=t, temp=temp)
        path = os.path.join(t, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.1)
        check = subprocess.run([NGINX, "-c", path, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        cls.spawn([NGINX, "-c", path, "-g", "daemon off;"], os.path.join(t, "nginx-run.log"))


if __name__ == "__main__":
    unittest.main()
