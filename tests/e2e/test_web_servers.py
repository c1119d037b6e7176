"""The examples for other web servers, run on the real Debian servers on loopback:
examples/apache-webmailkey.conf (Apache httpd, mod_cgid), examples/nginx-webmailkey.conf
(nginx with fcgiwrap running the CGI programs), and the FastCGI workers of
examples/webmailkey-fcgi@.service (spawn-fcgi, one worker per program) behind
examples/apache-webmailkey-fastcgi.conf (mod_proxy_fcgi) and
examples/nginx-webmailkey-fastcgi.conf (nginx's own FastCGI).

Each server serves an install made by `cmake --install` into a temporary prefix (the
layout the examples name), with the example file itself: Apache reads it through
Include after Define lines set the paths; for nginx the test replaces the example's
documented paths (/usr/local, the config, the certificate, the socket, port 443).
Through each: the login page, a login (POST), the inbox with a delivered message,
a message page, the static stylesheet and the favicon, and a too-large upload answered
by webmailkey's page (the server's limit sits above the programs').

For the FastCGI pair the test runs the unit's ExecStart line itself, once per program,
with its own paths. In the FastCGI classes the test also checks that the programs ran
as workers: one process per program serves every request (its pid does not change).

The servers start as root and run the programs as an unprivileged account (nobody),
which then owns the data directory; without root, or without the packages (apache2,
nginx, fcgiwrap, spawn-fcgi: scripts/setup installs them), the suite is skipped with
the reason."""

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
SPAWN_FCGI = "/usr/bin/spawn-fcgi"
PROGRAMS = ("login", "inbox", "message", "decrypt", "unlock", "stop-other", "compose",
            "attachment", "keys", "lock", "logout")
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
    return client.login("alice", PASSWORD, expect=None)


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
    def start_fcgi_workers(cls):
        """examples/webmailkey-fcgi@.service's ExecStart, once per program, as the unit
        would run it, with this test's paths, user and group."""
        with open(os.path.join(SOURCE_DIR, "examples", "webmailkey-fcgi@.service")) as f:
            unit = f.read()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        exec_start = None
        for line in unit.splitlines():
            if line.startswith("Environment="):
                k, v = line[len("Environment="):].split("=", 1)
                env[k] = v
            elif line.startswith("ExecStart="):
                exec_start = line[len("ExecStart="):]
        assert exec_start and env.get("WEBMAILKEY_CONFIG"), "the unit lost its ExecStart"
        assert env["WEBMAILKEY_CONFIG"] == "/etc/webmailkey/webmailkey.conf"
        env["WEBMAILKEY_CONFIG"] = cls.wmk.config_path
        for old, new in (("/usr/bin/spawn-fcgi", SPAWN_FCGI),
                         ("/run/webmailkey/", cls.run_dir + "/"),
                         ("/usr/local/", cls.prefix + "/"),
                         ("-U webmailkey", "-U " + RUN_AS[0]),
                         ("-u webmailkey", "-u " + RUN_AS[0]),
                         ("-G www-data", "-G " + RUN_AS[1])):
            assert old in exec_start, old
            exec_start = exec_start.replace(old, new)
        cls.worker_pids = {}
        for program in PROGRAMS:
            argv = exec_start.replace("%i", program).split()
            with open(os.path.join(cls.wmk.tmp, "fcgi-%s.log" % program), "ab") as out:
                p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
            cls.procs.append(p)
            cls.worker_pids[program] = p.pid  # spawn-fcgi -n execs the program in place
        deadline = time.monotonic() + 10
        socks = [os.path.join(cls.run_dir, p + ".sock") for p in PROGRAMS]
        while not all(map(os.path.exists, socks)) and time.monotonic() < deadline:
            time.sleep(0.1)

    def assert_workers_served(self):
        """Each program is still the one process spawn-fcgi started: a FastCGI worker
        (a CGI program would be a new process per request, and nothing would listen)."""
        for program, pid in self.worker_pids.items():
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
            self.assertTrue(argv0.endswith("/%s.cgi" % program), (program, argv0))
            with open("/proc/%d/status" % pid) as f:
                uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
            self.assertEqual(int(uid), int(subprocess.run(
                ["id", "-u", RUN_AS[0]], capture_output=True, text=True).stdout))

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
        self.assertEqual(r.status, 303, r.text[r.text.find("<main"):][:1500] + self.server_logs())
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
    EXAMPLE = "apache-webmailkey.conf"
    MODULES = ["mpm_event", "authz_core", "cgid", "ssl", "socache_shmcb", "headers", "alias",
               "env", "mime"]

    @classmethod
    def start_server(cls):
        t = cls.wmk.tmp
        mods = cls.MODULES
        conf = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULES, m) for m in mods)
        conf += """ServerRoot {t}
PidFile {t}/apache.pid
ErrorLog {t}/apache-error.log
DefaultRuntimeDir {run}
<IfModule cgid_module>
  ScriptSock {run}/cgid.sock
</IfModule>
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
Define WMK_RUN {run}
Include {example}
""".format(t=t, run=cls.run_dir, user=RUN_AS[0], group=RUN_AS[1], port=cls.wmk.port,
           prefix=cls.prefix, config=cls.wmk.config_path, cert=cls.wmk.cert_path,
           key=cls.key_path(), example=os.path.join(SOURCE_DIR, "examples", cls.EXAMPLE))
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
    EXAMPLE = "nginx-webmailkey.conf"

    @classmethod
    def start_backends(cls):
        """fcgiwrap as the example's comment says; returns the example's socket lines."""
        sock = os.path.join(cls.run_dir, "fcgiwrap.sock")
        cls.spawn(["runuser", "-u", RUN_AS[0], "--", FCGIWRAP, "-c", "4", "-s", "unix:" + sock],
                  os.path.join(cls.wmk.tmp, "fcgiwrap.log"))
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.1)
        return (("/run/webmailkey/fcgiwrap.sock", sock),)

    @classmethod
    def start_server(cls):
        t = cls.wmk.tmp
        socket_lines = cls.start_backends()
        with open(os.path.join(SOURCE_DIR, "examples", cls.EXAMPLE)) as f:
            site = f.read()
        for old, new in (("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % cls.wmk.port),
                         ("/usr/local/", cls.prefix + "/"),
                         ("/etc/webmailkey/webmailkey.conf", cls.wmk.config_path),
                         ("/etc/letsencrypt/live/mail.example.org/fullchain.pem", cls.wmk.cert_path),
                         ("/etc/letsencrypt/live/mail.example.org/privkey.pem", cls.key_path()),
                         ) + socket_lines:
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
        check = subprocess.run([NGINX, "-c", path, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        cls.spawn([NGINX, "-c", path, "-g", "daemon off;"], os.path.join(t, "nginx-run.log"))


class FastCgiWorkers:
    """Mixin for the servers that reach the programs as FastCGI workers."""

    def test_programs_are_the_workers_spawn_fcgi_started_and_stop_cleanly(self):
        c = self.wmk.client()
        self.assertEqual(login(c).status, 303, self.server_logs())
        for _ in range(3):
            self.assertEqual(c.get("/inbox").status, 200)
        self.assert_workers_served()
        # SIGTERM, how systemd stops the unit, ends a worker cleanly: exit status 0 and
        # nothing in its log (libfcgi's own handler made it report a broken socket).
        pid = self.worker_pids["stop-other"]
        proc = next(p for p in self.procs if p.pid == pid)
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=15), 0)
        with open(os.path.join(self.wmk.tmp, "fcgi-stop-other.log")) as f:
            self.assertEqual(f.read(), "")


@unittest.skipUnless(os.geteuid() == 0, "Apache starts as root and the workers run as nobody")
@unittest.skipUnless(os.access(APACHE, os.X_OK) and os.access(SPAWN_FCGI, os.X_OK),
                     "apache2 or spawn-fcgi is not installed")
class ApacheProxyFcgi(FastCgiWorkers, ApacheCgid):
    EXAMPLE = "apache-webmailkey-fastcgi.conf"
    MODULES = ["mpm_event", "authz_core", "proxy", "proxy_fcgi", "ssl", "socache_shmcb",
               "headers", "alias", "env", "mime"]

    @classmethod
    def start_server(cls):
        cls.start_fcgi_workers()
        super().start_server()


@unittest.skipUnless(os.geteuid() == 0, "nginx starts as root and the workers run as nobody")
@unittest.skipUnless(os.access(NGINX, os.X_OK) and os.access(SPAWN_FCGI, os.X_OK),
                     "nginx or spawn-fcgi is not installed")
class NginxFastCgi(FastCgiWorkers, NginxFcgiwrap):
    EXAMPLE = "nginx-webmailkey-fastcgi.conf"

    @classmethod
    def start_backends(cls):
        cls.start_fcgi_workers()
        return (("/run/webmailkey/", cls.run_dir + "/"),)


if __name__ == "__main__":
    unittest.main()
