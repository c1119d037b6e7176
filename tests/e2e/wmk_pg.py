"""A throwaway PostgreSQL server for the end-to-end suites (python3 standard library
only): Debian's initdb and pg_ctl make a cluster in a temporary directory that listens
only on a Unix socket there, with its own config. PostgreSQL refuses to run as root,
so under uid 0 the cluster belongs to `nobody`. The C++ unit tests have the same
fixture (tests/unit/pg_server.h).

    from wmk_pg import PgCluster, pg_missing
    cluster = PgCluster()          # started
    info = cluster.create_database("wmk")   # a libpq connection string
    cluster.psql("wmk", "SELECT 1")
    cluster.halt()                 # the server stops (fast shutdown); the data stays
    cluster.restart()              # and starts again on the same data and socket
    cluster.stop()
"""

import ctypes
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

NOBODY = 65534
PORT = 5432  # a socket in our own directory: no clash
PR_SET_PDEATHSIG = 1


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def pg_missing():
    """Why PostgreSQL cannot be tested here, or None."""
    if _bin_dir() is None:
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); scripts/setup installs it"
    return None


def _as_server_user():
    if os.geteuid() != 0:
        return None

    def drop():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return drop


def _server_child():
    drop = _as_server_user()
    if drop:
        drop()
    # After setuid, which clears it: SIGQUIT (immediate shutdown) when the test dies.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)


class PgCluster:
    def __init__(self):
        self.bin = _bin_dir()
        if self.bin is None:
            raise RuntimeError(pg_missing())
        self.dir = tempfile.mkdtemp(prefix="wmk-pg-")
        if os.geteuid() == 0:
            os.chown(self.dir, NOBODY, NOBODY)
        self.data = os.path.join(self.dir, "data")
        self._run(["initdb", "-D", self.data, "-U", "wmk", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync", "--no-instructions"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# webmailkey e2e: a throwaway cluster\n"
                    "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "shared_buffers = 16MB\nmax_connections = 40\n" % (self.dir, PORT))
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.running = False
        self._start_server()

    def _start_server(self):
        # The postmaster is our child with a parent-death signal: a killed test run
        # leaves no server behind.
        self.server = subprocess.Popen([os.path.join(self.bin, "postgres"), "-D", self.data],
                                       stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                       preexec_fn=_server_child)
        self.running = True
        deadline = time.time() + 60
        while True:
            r = subprocess.run([os.path.join(self.bin, "pg_isready"), "-q", "-h", self.dir, "-p",
                                str(PORT)], capture_output=True)
            if r.returncode == 0:
                break
            if self.server.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("the PostgreSQL server did not start: see its log")
            time.sleep(0.1)

    def _run(self, argv, **kw):
        argv = [os.path.join(self.bin, argv[0])] + argv[1:]
        return subprocess.run(argv, check=True, capture_output=True, preexec_fn=_as_server_user(),
                              timeout=120, **kw)

    def conninfo(self, dbname):
        return "host=%s port=%d user=wmk dbname=%s" % (self.dir, PORT, dbname)

    def create_database(self, name):
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return self.conninfo(name)

    def psql(self, dbname, sql):
        """Runs sql with psql (an outside client); the output, unaligned, tuples only."""
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.conninfo(dbname), "-c", sql],
                           check=True, capture_output=True, text=True, timeout=120)
        return r.stdout.strip()

    def halt(self):
        """Stops the server as an admin's `pg_ctl stop` does (fast shutdown: open
        sessions are ended), keeping its data for restart()."""
        if self.running:
            self.server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.send_signal(signal.SIGQUIT)
                self.server.wait()
            self.running = False

    def restart(self):
        """Starts a halted server again on the same data and socket; returns when it
        accepts connections."""
        if not self.running:
            self._start_server()

    def stop(self):
        self.halt()
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
