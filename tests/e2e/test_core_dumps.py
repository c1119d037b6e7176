#!/usr/bin/env python3
"""Secrets in crashes (issue 12): every process that holds a secret runs without core
dumps. Checked from outside on the running processes — the CLI while it waits for a
password on stdin, a CGI program while it waits for a login form's body, and the
GnuPG home's gpg-agent — by reading /proc/PID/limits, and by making them abort with
SIGABRT in a directory where the kernel would write a core file (a control process
with core dumps allowed shows that it would)."""

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wmk_e2e import CLI, Instance  # noqa: E402

CGI_BIN = os.path.join(os.path.dirname(CLI), "cgi-bin")


def core_limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                soft, hard = line.split()[4:6]
                return soft, hard
    raise AssertionError("no core limit line for %d" % pid)


def wait_for_limits(pid, want, timeout=10):
    """The (soft, hard) core limits of pid once both are want (or at the timeout). Both:
    in a sanitizer build ASan lowers the soft limit itself before main, so the soft
    limit alone would be read before the program's own setrlimit had run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = core_limits(pid)
        if got == (want, want):
            return got
        time.sleep(0.02)
    return core_limits(pid)


def allow_cores():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


class CoreDumps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        cls.inst.add_user("alice", "Alice-Login-Password-1")
        with open("/proc/sys/kernel/core_pattern") as f:
            cls.core_pattern = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def cores_in(self, d):
        return [n for n in os.listdir(d) if n.startswith("core")]

    def abort_leaves_core(self, argv, env=None, stdin=subprocess.PIPE, wait_pid=None):
        """Starts argv in a fresh directory with core dumps allowed by its parent,
        waits until it has dropped them (its own doing), aborts it, and returns the
        core files left there."""
        d = tempfile.mkdtemp(prefix="wmk-core-")
        p = subprocess.Popen(argv, cwd=d, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=allow_cores)
        try:
            limits = wait_for_limits(p.pid, "0")
            os.kill(p.pid, signal.SIGABRT)
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdin:
                p.stdin.close()
        return limits, self.cores_in(d), d

    def test_control_process_would_dump_core(self):
        if self.core_pattern.startswith("|"):
            self.skipTest("core_pattern pipes to %s" % self.core_pattern)
        d = tempfile.mkdtemp(prefix="wmk-core-")
        subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=d,
                       preexec_fn=allow_cores, capture_output=True)
        if not self.cores_in(d):
            self.skipTest("the kernel writes no core files here (container)")
        self.assertTrue(self.cores_in(d))

    def test_cli_waiting_for_a_password_has_no_core_dumps(self):
        argv = [CLI, "--config", self.inst.config_path, "user", "passwd", "alice",
                "--password-stdin"]
        limits, cores, _ = self.abort_leaves_core(argv)
        self.assertEqual(limits, ("0", "0"))
        self.assertEqual(cores, [])

    def test_cgi_waiting_for_a_login_body_has_no_core_dumps(self):
        env = {
            "WEBMAILKEY_CONFIG": self.inst.config_path,
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": "100000",
            "HTTPS": "on",
            "REMOTE_ADDR": "127.0.0.1",
            "SCRIPT_NAME": "/login",
            "REQUEST_URI": "/login",
            "HTTP_HOST": "localhost",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        limits, cores, _ = self.abort_leaves_core([os.path.join(CGI_BIN, "login.cgi")], env=env)
        self.assertEqual(limits, ("0", "0"))
        self.assertEqual(cores, [])

    def test_gpg_agent_of_the_key_home_has_no_core_dumps(self):
        r = self.inst.cli("key", "generate", "alice", "--type", "openpgp", "--passphrase-stdin",
                          input="Key-Passphrase-For-Core-Test\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        home = os.path.join(self.inst.data_dir, "gnupg")
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"gpg-agent") and home.encode() in b" ".join(cmd):
                pids.append(int(pid))
        if not pids:
            self.skipTest("no gpg-agent is running for the key home")
        for pid in pids:
            self.assertEqual(core_limits(pid)[0], "0")


if __name__ == "__main__":
    unittest.main()
