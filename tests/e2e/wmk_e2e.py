"""Helpers for webmailkey's end-to-end suites (python3 standard library only).

Not a test itself. A suite does:

    from wmk_e2e import Instance

    class T(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.wmk = Instance(config={"session_idle_timeout": 30})
            cls.wmk.add_user("alice", "correct horse", "alice@example.org")
            cls.wmk.start()

        @classmethod
        def tearDownClass(cls):
            cls.wmk.close()

        def test_login_page(self):
            r = self.wmk.client().get("/login")
            self.assertEqual(r.page, "login")

Instance makes a temporary data directory and config, drives the real CLI
($WEBMAILKEY_BUILD_DIR/webmailkey) and the real server (scripts/serve → lighttpd over
HTTPS on a free loopback port). Client speaks HTTPS with http.client, trusts only the
instance's self-signed certificate, keeps its own cookies and follows no redirects.

Environment: WEBMAILKEY_BUILD_DIR (default SOURCE/build), WEBMAILKEY_SOURCE_DIR (default
two levels up from this file), WMK_E2E_KEEP=1 keeps the temporary directory,
WMK_E2E_MODE=fastcgi (the default: the programs run as FastCGI workers that lighttpd
starts) or cgi (one process per request). CTest runs each suite in FastCGI mode as
e2e.NAME and a subset in CGI mode as e2e.cgi.NAME. WMK_E2E_MAILBOX=imap (CTest's
e2e.imap.NAME) keeps each Instance's mail on its own Dovecot (start_dovecot) instead of
a Maildir, reached over IMAPS as the master user: the suites written for the Maildir
deliver, look at Drafts and check what is at rest through deliver_with_python(),
folder_messages(), clear_folder() and files_at_rest(), which work on both.
"""

import atexit
import email
import email.message
import html.parser
import http.client
import imaplib
import json
import mailbox
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import unittest
import sys
import tempfile
import time
import urllib.parse

SOURCE_DIR = os.path.abspath(
    os.environ.get("WEBMAILKEY_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
)
BUILD_DIR = os.path.abspath(os.environ.get("WEBMAILKEY_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
CLI = os.path.join(BUILD_DIR, "webmailkey")
CGI_BIN = os.path.join(BUILD_DIR, "cgi-bin")
SERVE = os.path.join(SOURCE_DIR, "scripts", "serve")
MODE = os.environ.get("WMK_E2E_MODE", "fastcgi")
if MODE not in ("fastcgi", "cgi"):
    raise RuntimeError("WMK_E2E_MODE must be fastcgi or cgi, not %r" % MODE)
MAILBOX = os.environ.get("WMK_E2E_MAILBOX", "maildir")
if MAILBOX not in ("maildir", "imap"):
    raise RuntimeError("WMK_E2E_MAILBOX must be maildir or imap, not %r" % MAILBOX)


def _sanitized_build():
    """True when BUILD_DIR was built with the sanitizers (scripts/test's build-asan)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            cache = f.read()
    except OSError:
        return False
    return "WEBMAILKEY_SANITIZE:BOOL=ON" in cache or "WEBMAILKEY_FUZZ:BOOL=ON" in cache


# In a sanitizer build every program this process starts, directly or through the
# server (scripts/serve hands the *SAN_OPTIONS on to the CGI programs and FastCGI
# workers), writes its ASan, UBSan and LeakSanitizer reports into SANITIZER_LOG_DIR
# instead of a stderr nobody reads (a CGI program's goes to lighttpd's log). Instance.close()
# fails when a report is there, and so does the suite's exit (reports of programs the
# suite ran itself).
SANITIZED = _sanitized_build()
SANITIZER_LOG_DIR = None
SANITIZER_ENV = {}
if SANITIZED:
    SANITIZER_LOG_DIR = tempfile.mkdtemp(prefix="wmk-sanitizer-")
    for _name, _default in (
        ("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"),
        ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
        ("LSAN_OPTIONS", "suppressions=%s/tests/lsan.supp:print_suppressions=0" % SOURCE_DIR),
    ):
        _opts = [o for o in os.environ.get(_name, _default).split(":")
                 if o and not o.startswith("log_path=")]
        if _name != "LSAN_OPTIONS":
            _opts.append("log_path=%s/%s" % (SANITIZER_LOG_DIR, _name.split("_")[0].lower()))
        os.environ[_name] = SANITIZER_ENV[_name] = ":".join(_opts)


def take_sanitizer_reports():
    """The sanitizer reports written since the last call ([(file name, text)]), removed
    from SANITIZER_LOG_DIR; [] outside a sanitizer build."""
    if not SANITIZER_LOG_DIR:
        return []
    out = []
    for name in sorted(os.listdir(SANITIZER_LOG_DIR)):
        path = os.path.join(SANITIZER_LOG_DIR, name)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        os.unlink(path)
        if text.strip():
            out.append((name, text))
    return out


def format_sanitizer_reports(reports, limit=20000):
    text = "\n".join("==> %s <==\n%s" % r for r in reports)
    return text if len(text) <= limit else text[:limit] + "\n[... %d more characters]" % (
        len(text) - limit)


def _check_sanitizer_reports_at_exit():
    reports = take_sanitizer_reports()
    if SANITIZER_LOG_DIR:
        shutil.rmtree(SANITIZER_LOG_DIR, ignore_errors=True)
    if reports:
        sys.stderr.write("FAIL: sanitizer reports of programs this suite ran:\n%s\n"
                         % format_sanitizer_reports(reports))
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)


if SANITIZED:
    atexit.register(_check_sanitizer_reports_at_exit)

# Cheap KDF and password costs so that suites run fast; production uses the defaults.
TEST_CONFIG = {
    "allow_insecure_http": "false",
    "kdf_memory_kib": 1024,
    "kdf_iterations": 1,
    "kdf_parallelism": 1,
    "password_memory_kib": 1024,
    "password_iterations": 1,
}


def start_dovecot(cls, condstore=True):
    """Starts the suite's Dovecot for a test class: cls.dovecot (the process; a line
    "stop" or "start" on its stdin stops it or brings it back) and cls.info (its ports,
    CA file and master user). condstore=False: a server that advertises neither
    CONDSTORE nor QRESYNC. Skips the class where Dovecot cannot run."""
    program = os.path.join(BUILD_DIR, "test_dovecot")
    if not os.access(program, os.X_OK):
        raise unittest.SkipTest("no %s: build first" % program)
    argv = [program] + ([] if condstore else ["--no-condstore"])
    cls.dovecot = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
    info = json.loads(cls.dovecot.stdout.readline() or "{}")
    if "imaps_port" not in info:
        cls.dovecot.stdin.close()
        cls.dovecot.wait()
        if "unavailable" in info:
            raise unittest.SkipTest(info["unavailable"])
        raise RuntimeError("test_dovecot did not start")
    cls.info = info


def stop_dovecot(cls):
    """Ends what start_dovecot() started."""
    cls.dovecot.stdin.close()
    cls.dovecot.wait(timeout=30)


class OutsideGpg:
    """An outside GnuPG home (a correspondent's side), not the code under test's. Keys
    without a passphrase; a call gives gpg's stdout and raises on failure."""

    def __init__(self, home):
        self.home = home
        os.makedirs(home, mode=0o700, exist_ok=True)

    def __call__(self, *args, input=None):
        argv = ["gpg", "--homedir", self.home, "--batch", "--no-tty", "--pinentry-mode",
                "loopback", "--passphrase", "", "--trust-model", "always"] + list(args)
        r = subprocess.run(argv, input=input, capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (argv[0:3], r.returncode,
                                                       r.stderr.decode("utf-8", "replace")))
        return r.stdout

    def make_key(self, uid):
        self("--quick-gen-key", uid, "future-default", "default", "never")
        out = self("--with-colons", "--list-keys", uid).decode()
        return re.search(r"^fpr:+([0-9A-F]{40}):", out, re.M).group(1)

    def stop(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"],
                       capture_output=True)


def multipart_encrypted(armored):
    """A PGP/MIME multipart/encrypted entity (RFC 3156) around an armored OpenPGP
    message, built by Python's email package; the caller adds the headers."""
    m = email.message.EmailMessage()
    m.make_mixed()
    m.set_type("multipart/encrypted")
    m.set_param("protocol", "application/pgp-encrypted")
    control = email.message.EmailMessage()
    control.set_content(b"Version: 1\n", maintype="application", subtype="pgp-encrypted",
                        cte="7bit")
    payload = email.message.EmailMessage()
    payload.set_content(armored, maintype="application", subtype="octet-stream", cte="7bit")
    m.attach(control)
    m.attach(payload)
    return m


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    """True while pid runs (not gone, not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class CliError(Exception):
    def __init__(self, args, result):
        super().__init__(
            "webmailkey %s exited %d\nstdout: %s\nstderr: %s"
            % (" ".join(args), result.returncode, result.stdout, result.stderr)
        )
        self.result = result


class Instance:
    """A webmailkey data directory, its config, and (after start()) a server."""

    def __init__(self, config=None, tls=True, mode=None, workers=None, mailbox=None):
        """config: keys overriding TEST_CONFIG (values as they would be written in the
        file). tls=False serves plain HTTP (to test that it is refused). mode: "fastcgi"
        or "cgi" (default $WMK_E2E_MODE, else fastcgi); workers: FastCGI workers per
        program (default: scripts/serve's). mailbox: "maildir" or "imap" (default
        $WMK_E2E_MAILBOX, else maildir); imap starts this instance's own Dovecot and
        raises unittest.SkipTest where it cannot run."""
        self.mode = mode or MODE
        self.workers = workers
        self.mailbox = mailbox or MAILBOX
        if not os.access(CLI, os.X_OK):
            raise RuntimeError("no CLI at %s: build first or set WEBMAILKEY_BUILD_DIR" % CLI)
        self.imap_server = None
        if self.mailbox == "imap":
            self.imap_server = type("ImapServer", (), {})()
            start_dovecot(self.imap_server)
        self.tmp = tempfile.mkdtemp(prefix="wmk-e2e-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.config_path = os.path.join(self.tmp, "webmailkey.conf")
        self.tls = tls
        self.port = None
        self.server = None
        self.settings = dict(TEST_CONFIG)
        self.settings["data_dir"] = self.data_dir
        if self.imap_server:
            info = self.imap_server.info
            master_file = os.path.join(self.tmp, "imap-master")
            with open(master_file, "w") as f:
                f.write(info["master_password"] + "\n")
            os.chmod(master_file, 0o600)
            self.settings.update({
                "mailbox": "imap",
                "imap_host": "localhost",
                "imap_port": info["imaps_port"],
                "imap_tls": "imaps",
                "imap_ca_file": info["ca_file"],
                "imap_login": "master",
                "imap_master_user": info["master"],
                "imap_master_password_file": master_file,
            })
        self.settings.update(config or {})
        self.write_config()
        self.cli("init")

    # ---- config and CLI

    def capture_sendmail(self, **config):
        """Points the config's sendmail (with any other config changes) at
        tests/fixtures/sendmail-capture.sh, which keeps each handed-over message (and
        its argv) in a directory instead of sending it; returns that directory. The
        wrapper's path stays in self.capturing_sendmail."""
        outbox = os.path.join(self.tmp, "outbox")
        os.mkdir(outbox)
        sendmail = os.path.join(self.tmp, "sendmail-capture")
        capture = os.path.join(SOURCE_DIR, "tests", "fixtures", "sendmail-capture.sh")
        with open(sendmail, "w") as f:
            f.write("#!/bin/sh\nSENDMAIL_CAPTURE_DIR=%s exec %s \"$@\"\n" % (outbox, capture))
        os.chmod(sendmail, 0o700)
        self.capturing_sendmail = sendmail
        self.write_config(sendmail=sendmail, **config)
        return outbox

    def write_config(self, **changes):
        """(Re)writes the config file with changes applied. CGI programs read it at
        every request; FastCGI workers when they start, so a running server's workers
        are recycled here: either way changes apply to the next request."""
        self.settings.update(changes)
        with open(self.config_path, "w") as f:
            for k, v in self.settings.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                f.write("%s = %s\n" % (k, v))
        os.chmod(self.config_path, 0o600)
        if self.server and self.mode == "fastcgi":
            self.recycle_workers()

    def cli(self, *args, input=None, check=True, json_output=False):
        """Runs the real CLI with this instance's config. Returns the CompletedProcess
        (text mode), or the parsed JSON of stdout with json_output=True."""
        argv = [CLI, "--config", self.config_path]
        if json_output:
            argv.append("--json")
        argv += [str(a) for a in args]
        if isinstance(input, str):
            input = input.encode()
        result = subprocess.run(argv, input=input, capture_output=True, timeout=120)
        result.stdout = result.stdout.decode("utf-8", "replace")
        result.stderr = result.stderr.decode("utf-8", "replace")
        if check and result.returncode != 0:
            raise CliError(args, result)
        if json_output:
            return json.loads(result.stdout)
        return result

    def add_user(self, login, password, email=None, name=None):
        """`webmailkey user add LOGIN --email ADDR --password-stdin`."""
        args = ["user", "add", login, "--email", email or "%s@example.org" % login]
        if name:
            args += ["--name", name]
        args.append("--password-stdin")
        return self.cli(*args, input=password + "\n")

    def deliver(self, login, message, folder=None):
        """`webmailkey deliver LOGIN [--folder F]` with message (bytes or str) on stdin."""
        args = ["deliver", login]
        if folder:
            args += ["--folder", folder]
        return self.cli(*args, input=message)

    def maildir_path(self, login):
        """The user's Maildir under the default pattern %h/mail/%u/Maildir (tests that
        change `maildir` in the config compute it themselves)."""
        return os.path.join(self.data_dir, "mail", login, "Maildir")

    def deliver_with_python(self, login, message, folder="INBOX"):
        """Puts message (bytes, str or email.message.Message) into the user's Maildir
        with Python's own mailbox module, as another delivery agent would: an outside
        tool, independent of webmailkey's code. Returns the message's uid. On IMAP,
        Python's imaplib appends it (CRLF line ends) as the user, through the master
        user, as the server's own delivery would store it; returns "UIDVALIDITY.UID"."""
        if isinstance(message, email.message.Message):
            message = message.as_bytes()
        elif isinstance(message, str):
            message = message.encode()
        if self.imap_server:
            raw = bytes(message).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            with self.imap(login) as c:
                if folder != "INBOX":
                    c.create(folder)  # NO when it exists
                typ, data = c.append(folder, None, None, raw)
                assert typ == "OK", data
                found = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
                assert found, data
                return "%s.%s" % (found.group(1).decode(), found.group(2).decode())
        os.makedirs(os.path.dirname(self.maildir_path(login)), mode=0o700, exist_ok=True)
        md = mailbox.Maildir(self.maildir_path(login), create=True)
        if folder != "INBOX":
            md = md.add_folder(folder) if folder not in md.list_folders() else md.get_folder(folder)
        if isinstance(message, email.message.Message):
            message = message.as_bytes()
        elif isinstance(message, str):
            message = message.encode()
        return md.add(bytes(message))

    def imap(self, login):
        """Python's imaplib logged in to this instance's Dovecot as login (through
        the master user), over IMAPS with the test CA."""
        info = self.imap_server.info
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        c = imaplib.IMAP4_SSL("localhost", info["imaps_port"], ssl_context=ctx)
        c.login("%s*%s" % (login, info["master"]), info["master_password"])
        return c

    def folder_messages(self, login, folder):
        """The bytes of every message in one of login's folders ("INBOX", "Sent",
        "Drafts"), read from outside webmailkey: the Maildir's files, or over IMAP."""
        if self.imap_server:
            with self.imap(login) as c:
                typ, _ = c.select(folder, readonly=True)
                if typ != "OK":
                    return []
                typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
                return [part[1] for part in data if isinstance(part, tuple)]
        d = self.maildir_path(login)
        if folder != "INBOX":
            d = os.path.join(d, "." + folder)
        out = []
        for sub in ("cur", "new"):
            p = os.path.join(d, sub)
            for name in sorted(os.listdir(p)) if os.path.isdir(p) else []:
                with open(os.path.join(p, name), "rb") as f:
                    out.append(f.read())
        return out

    def clear_folder(self, login, folder):
        """Removes every message from one of login's folders, from outside webmailkey."""
        if self.imap_server:
            with self.imap(login) as c:
                if c.select(folder)[0] == "OK":
                    c.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                    c.expunge()
            return
        d = self.maildir_path(login)
        if folder != "INBOX":
            d = os.path.join(d, "." + folder)
        for sub in ("cur", "new"):
            p = os.path.join(d, sub)
            for name in os.listdir(p) if os.path.isdir(p) else []:
                os.unlink(os.path.join(p, name))

    def files_at_rest(self):
        """The paths of the regular files where this instance's data lies at rest: the
        data directory, and on IMAP the Dovecot's directory too (its users' Maildirs and
        index files). Sockets, FIFOs (Dovecot's run directory) and symlinks are left
        out."""
        dirs = [self.data_dir]
        if self.imap_server:
            dirs.append(self.imap_server.info["dir"])
        for d in dirs:
            for root, _dirs, files in os.walk(d):
                for name in files:
                    path = os.path.join(root, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        yield path

    # ---- server

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def origin(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    @property
    def cert_path(self):
        return os.path.join(self.data_dir, "tls", "cert.pem")

    @property
    def error_log(self):
        return os.path.join(self.data_dir, "log", "lighttpd-error.log")

    def start(self, timeout=20):
        """Starts scripts/serve on a free port and waits until it answers."""
        if self.server:
            return self
        last_error = None
        for _attempt in range(3):  # a port can be taken between free_port() and bind
            self.port = free_port()
            argv = [SERVE, "--data-dir", self.data_dir, "--config", self.config_path,
                    "--port", str(self.port), "--build-dir", BUILD_DIR]
            if not self.tls:
                argv.append("--no-tls")
            argv.append("--cgi" if self.mode == "cgi" else "--fastcgi")
            if self.workers:
                argv += ["--workers", str(self.workers)]
            self.server_log = open(os.path.join(self.tmp, "serve.log"), "ab")
            self.server = subprocess.Popen(argv, stdout=self.server_log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.server.poll() is not None:
                    last_error = "scripts/serve exited %d" % self.server.returncode
                    break
                try:
                    r = self.client().get("/static/style.css")
                    if r.status == 200:
                        return self
                except (OSError, http.client.HTTPException) as e:
                    last_error = repr(e)
                time.sleep(0.1)
            else:
                last_error = "no answer within %ds (%s)" % (timeout, last_error)
            self.stop()
        raise RuntimeError("the server did not start: %s\n%s" % (last_error, self.logs()))

    def worker_pids(self, program=None):
        """The pids of this server's FastCGI workers (of one program, e.g. "decrypt"),
        as lighttpd started them: its children running a program of CGI_BIN."""
        if not self.server:
            return []
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                exe = os.readlink("/proc/%s/exe" % entry)
            except (OSError, IndexError, ValueError):
                continue
            if ppid != self.server.pid or not exe.startswith(os.path.realpath(CGI_BIN) + "/"):
                continue
            if program is None or os.path.basename(exe) == program + ".cgi":
                out.append(int(entry))
        return sorted(out)

    @staticmethod
    def worker_generation(pid):
        """How many times the worker was recycled (WEBMAILKEY_WORKER_GENERATION in its
        environment; None when the process is gone)."""
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            return None
        for item in env:
            if item.startswith(b"WEBMAILKEY_WORKER_GENERATION="):
                return int(item.split(b"=", 1)[1])
        return 0

    def recycle_workers(self, timeout=10):
        """Recycles every FastCGI worker (SIGHUP: each one finishes its request and
        replaces itself with a fresh image, which reads the config afresh) and waits
        until all have."""
        before = {pid: self.worker_generation(pid) for pid in self.worker_pids()}
        for pid in before:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.worker_generation(pid) != gen for pid, gen in before.items()):
                return
            time.sleep(0.02)
        raise RuntimeError("the FastCGI workers were not recycled:\n" + self.logs())

    def stop(self):
        """Stops the server (the whole process group)."""
        if self.server is None:
            return
        workers = self.worker_pids()
        try:
            os.killpg(self.server.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
        if SANITIZED:
            # A worker stopped by SIGTERM finishes and exits, and LeakSanitizer checks
            # it then: give it the time before the SIGKILL below.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
                time.sleep(0.05)
        # A FastCGI worker lighttpd (re)started while it was shutting down missed the
        # SIGTERM; it is still in the group.
        try:
            os.killpg(self.server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.server = None
        self.server_log.close()

    def logs(self):
        """The serve output and lighttpd's error log (CGI stderr lands there)."""
        out = []
        for path in (os.path.join(self.tmp, "serve.log"), self.error_log):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append("==> %s <==\n%s" % (path, f.read().decode("utf-8", "replace")))
        return "\n".join(out)

    def close(self):
        """Stops the server and removes the directory; in a sanitizer build, fails
        (AssertionError) when a program wrote a sanitizer report (a leak, a memory
        error, undefined behaviour)."""
        self.stop()
        if self.imap_server:
            stop_dovecot(self.imap_server)
            self.imap_server = None
        if os.environ.get("WMK_E2E_KEEP") == "1":
            sys.stderr.write("kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        reports = take_sanitizer_reports()
        if reports:
            raise AssertionError("sanitizer reports of the programs:\n"
                                 + format_sanitizer_reports(reports))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def client(self, **kwargs):
        return Client(self, **kwargs)

    # ---- the CGI programs without a server

    def run_cgi(self, program, method="GET", query="", body=b"", https=False, headers=None,
                content_type="application/x-www-form-urlencoded", env=None):
        """Runs build/cgi-bin/PROGRAM.cgi as a web server would, without HTTPS=on unless
        https=True. headers: {"Cookie": ...} become HTTP_* variables. Returns a Response."""
        if isinstance(body, str):
            body = body.encode()
        e = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "WEBMAILKEY_CONFIG": self.config_path,
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "REQUEST_URI": "/%s%s" % (program, "?" + query if query else ""),
            "SCRIPT_NAME": "/" + program,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        if https:
            e["HTTPS"] = "on"
        if method in ("POST", "PUT"):
            e["CONTENT_LENGTH"] = str(len(body))
            e["CONTENT_TYPE"] = content_type
        for k, v in (headers or {}).items():
            e["HTTP_" + k.upper().replace("-", "_")] = v
        e.update(SANITIZER_ENV)
        e.update(env or {})
        p = subprocess.run([os.path.join(CGI_BIN, program + ".cgi")], input=body, env=e,
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("%s.cgi exited %d: %s" % (program, p.returncode, p.stderr))
        return Response.from_cgi(p.stdout, p.stderr.decode("utf-8", "replace"))


class Response:
    """An HTTP (or CGI) response: status, headers, body, and what the page says."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(name, value)] in order, names as sent
        self.body = body
        self._parsed = None

    @classmethod
    def from_cgi(cls, output, stderr=""):
        head, _, body = output.partition(b"\r\n\r\n")
        if not _:
            head, _, body = output.partition(b"\n\n")
        headers = []
        status = 200
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value))
        r = cls(status, headers, body)
        r.stderr = stderr
        return r

    def header(self, name):
        """The first value of a header (case-insensitive), or None."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def location(self):
        return self.header("Location")

    def _html(self):
        if self._parsed is None:
            self._parsed = _PageParser()
            self._parsed.feed(self.text)
            self._parsed.close()
        return self._parsed

    @property
    def page(self):
        """The data-page attribute of <body>, or None."""
        return self._html().page

    def hidden(self, name, form_action=None):
        """The value of the first hidden input named name (in the form with that action,
        when given), or None."""
        for form in self._html().forms:
            if form_action is not None and form["action"] != form_action:
                continue
            for field in form["inputs"]:
                if field.get("name") == name and field.get("type") == "hidden":
                    return field.get("value", "")
        return None

    def forms(self):
        """[{"action", "method", "inputs": [attrs...], "buttons": [attrs...]}]."""
        return self._html().forms

    def links(self):
        """Every <a href> in order."""
        return self._html().links

    def text_of(self, css_class):
        """The text of elements with that class, concatenated (for notices)."""
        return self._html().class_text.get(css_class, "")

    def set_cookies(self):
        """{name: {"value": v, attribute (lowercase): value or True}} of Set-Cookie."""
        out = {}
        for v in self.header_all("Set-Cookie"):
            parts = [p.strip() for p in v.split(";")]
            name, _, value = parts[0].partition("=")
            attrs = {"value": value}
            for p in parts[1:]:
                k, eq, val = p.partition("=")
                attrs[k.lower()] = val if eq else True
            out[name] = attrs
        return out

    def __repr__(self):
        return "<Response %d page=%r>" % (self.status, self.page)


class _PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = None
        self.forms = []
        self.links = []
        self.class_text = {}
        self._form = None
        self._class_stack = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "body":
            self.page = a.get("data-page")
        elif tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                          "enctype": a.get("enctype", ""), "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif tag in ("input", "textarea", "select") and self._form is not None:
            a.setdefault("type", "text" if tag == "input" else tag)
            self._form["inputs"].append(a)
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(a)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag not in ("input", "meta", "link", "br", "img", "hr"):
            self._class_stack.append(a.get("class", "").split())

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if tag not in ("input", "meta", "link", "br", "img", "hr") and self._class_stack:
            self._class_stack.pop()

    def handle_data(self, data):
        for classes in self._class_stack:
            for c in classes:
                self.class_text[c] = self.class_text.get(c, "") + data


class Client:
    """One browser: its own cookie jar, HTTPS trusting only the instance's certificate,
    no redirects followed. POSTs carry Origin and Sec-Fetch-Site as a browser's would
    (pass same_origin=False, or headers, to act like another site)."""

    def __init__(self, instance, user_agent="wmk-e2e/1"):
        self.instance = instance
        self.cookies = {}
        self.user_agent = user_agent
        self.last = None

    def _connection(self):
        inst = self.instance
        if inst.tls:
            ctx = ssl.create_default_context(cafile=inst.cert_path)
            return http.client.HTTPSConnection("127.0.0.1", inst.port, context=ctx, timeout=60)
        return http.client.HTTPConnection("127.0.0.1", inst.port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        """Sends one request with this client's cookies; stores Set-Cookie; returns a
        Response."""
        h = {"Host": "127.0.0.1:%d" % self.instance.port, "User-Agent": self.user_agent}
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=h)
            raw = conn.getresponse()
            r = Response(raw.status, raw.getheaders(), raw.read())
        finally:
            conn.close()
        for name, attrs in r.set_cookies().items():
            if attrs.get("max-age") == "0" or attrs["value"] == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = attrs["value"]
        self.last = r
        return r

    def get(self, path, params=None, headers=None):
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        return self.request("GET", path, headers=headers)

    def post(self, path, fields=None, headers=None, same_origin=True, files=None):
        """POSTs fields (dict or list of pairs) urlencoded, or multipart/form-data when
        files = [(field, filename, content_type, bytes)] is given."""
        h = {}
        if same_origin:
            h["Origin"] = self.instance.origin
            h["Sec-Fetch-Site"] = "same-origin"
        if files:
            body, ctype = encode_multipart(fields or {}, files)
        else:
            body, ctype = urllib.parse.urlencode(fields or {}).encode(), \
                "application/x-www-form-urlencoded"
        h["Content-Type"] = ctype
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h)

    def login(self, user, password, expect=303):
        """Logs in through the login form as a browser does (CSRF token from the form).
        Asserts the status is expect (a redirect to the inbox) unless expect is None;
        returns the response."""
        token = self.get("/login").hidden("csrf", form_action="/login")
        r = self.post("/login", {"csrf": token, "user": user, "password": password})
        if expect is not None:
            assert r.status == expect, r
        return r

    def follow(self, response):
        """GETs the Location of a redirect."""
        loc = response.location
        if not loc:
            raise AssertionError("not a redirect: %r" % response)
        return self.get(loc)


def encode_multipart(fields, files):
    """A multipart/form-data body as browsers send it. Returns (bytes, content type)."""
    boundary = "----wmk-e2e-%d" % int(time.time() * 1e6)
    items = fields.items() if isinstance(fields, dict) else fields
    out = []
    for name, value in items:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                    % (boundary, name)).encode())
        out.append(value.encode() if isinstance(value, str) else value)
        out.append(b"\r\n")
    for field, filename, ctype, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, field, filename, ctype)).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=%s" % boundary
