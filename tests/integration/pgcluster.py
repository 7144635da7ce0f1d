"""A throwaway PostgreSQL cluster for the integration tests. Standard library only.

cluster() starts one cluster per test process on first use: initdb in a fresh
temp dir (as the `postgres` user when running as root, since initdb refuses
root), trust authentication for the superuser `postgres`, listening on
127.0.0.1 on a free port with its socket in the temp dir. It is stopped
(pg_ctl stop -m immediate) and the dir deleted when the process exits (atexit),
on SIGTERM, and, through a detached watchdog that waits for this process's end,
even when the process is SIGKILLed (e.g. by a ctest timeout).

Queries go over the wire protocol (simple query, trust auth), so values come
back typed: integers as int, text as str, NULL as None.

Standalone check: python3 pgcluster.py
"""
import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

HOST = "127.0.0.1"
SUPERUSER = "postgres"
OS_USER = "postgres"  # the Debian package's user; runs the server when we are root


class PgError(RuntimeError):
    pass


def _version_key(path):
    m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/bin$", path)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def find_bindir():
    """The bin dir holding initdb, pg_ctl and postgres: $ROOST_PG_BINDIR, else the
    newest /usr/lib/postgresql/*/bin."""
    need = ("initdb", "pg_ctl", "postgres")
    env = os.environ.get("ROOST_PG_BINDIR")
    dirs = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                    key=_version_key, reverse=True)
    for d in dirs:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in need):
            return d
    where = env or "/usr/lib/postgresql/*/bin"
    raise PgError("PostgreSQL server binaries (%s) not found in %s: install Debian's "
                  "postgresql package (scripts/install-deps) or set ROOST_PG_BINDIR"
                  % (", ".join(need), where))


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- SQL literals

def literal(v):
    """v as an SQL literal: int, bool, float, None, str or bytes."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("no SQL literal for %r" % v)
        return repr(v)
    if isinstance(v, str):
        if "\0" in v:
            raise ValueError("PostgreSQL text cannot hold NUL")
        return "'" + v.replace("'", "''") + "'"  # standard_conforming_strings is on
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    raise TypeError("no SQL literal for %r" % type(v))


def inline_params(sql, params):
    """Replace each '?' placeholder outside quotes and comments with a literal."""
    params = list(params)
    out, i, k, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = sql.find(c, i + 1)
            while j != -1 and sql.startswith(c, j + 1):  # '' or "" inside
                j = sql.find(c, j + 2)
            if j == -1:
                raise ValueError("unterminated quote in %r" % sql)
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j == -1 else j
            out.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j == -1:
                raise ValueError("unterminated comment in %r" % sql)
            out.append(sql[i:j + 2])
            i = j + 2
        elif c == "?":
            if k == len(params):
                raise ValueError("more placeholders than parameters in %r" % sql)
            out.append(literal(params[k]))
            k += 1
            i += 1
        else:
            out.append(c)
            i += 1
    if k != len(params):
        raise ValueError("%d parameters for %d placeholders in %r" % (len(params), k, sql))
    return "".join(out)


# ---------------------------------------------------------------- wire protocol

_INT_OIDS = {20, 21, 23, 26}      # int8, int2, int4, oid
_FLOAT_OIDS = {700, 701}          # float4, float8
_NUMERIC_OID, _BOOL_OID = 1700, 16


def _convert(oid, raw):
    if raw is None:
        return None
    s = raw.decode("utf-8")
    if oid in _INT_OIDS:
        return int(s)
    if oid in _FLOAT_OIDS:
        return float(s)
    if oid == _NUMERIC_OID:  # e.g. SUM(bigint): int when whole, like SQLite
        return int(s) if re.fullmatch(r"-?\d+", s) else float(s)
    if oid == _BOOL_OID:
        return s == "t"
    return s


def _error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    text = "%s: %s" % (fields.get(b"S", "ERROR"), fields.get(b"M", "?"))
    if b"D" in fields:
        text += " (%s)" % fields[b"D"]
    return text + " [SQLSTATE %s]" % fields.get(b"C", "?")


def wire_query(port, dbname, sql, host=HOST, user=SUPERUSER):
    """Run sql (one or more statements, simple query protocol) on a trust-auth
    server and return the rows of the last statement that returned any, as
    tuples of Python values. Raises PgError on any server error."""
    with socket.create_connection((host, port), timeout=120) as s:
        f = s.makefile("rb")

        def read(n):
            b = f.read(n)
            if len(b) != n:
                raise PgError("PostgreSQL on %s:%d closed the connection" % (host, port))
            return b

        def message():
            kind = read(1)
            return kind, read(struct.unpack("!i", read(4))[0] - 4)

        opts = {"user": user, "database": dbname, "client_encoding": "UTF8",
                "standard_conforming_strings": "on", "application_name": "roost-tests"}
        body = struct.pack("!i", 196608) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in opts.items()) + b"\0"
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            kind, m = message()
            if kind == b"E":
                raise PgError("connecting to database %r: %s" % (dbname, _error_text(m)))
            if kind == b"R" and struct.unpack("!i", m[:4])[0] != 0:
                raise PgError("the server asks for a password; the test cluster trusts")
            if kind == b"Z":
                break
        q = sql.encode("utf-8") + b"\0"
        s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
        rows, result, oids, err = [], None, [], None
        while True:
            kind, m = message()
            if kind == b"T":
                ncols, pos, oids, result = struct.unpack("!h", m[:2])[0], 2, [], []
                for _ in range(ncols):
                    pos = m.index(b"\0", pos) + 1
                    oids.append(struct.unpack("!I", m[pos + 6:pos + 10])[0])
                    pos += 18
            elif kind == b"D":
                ncols, pos, row = struct.unpack("!h", m[:2])[0], 2, []
                for i in range(ncols):
                    ln = struct.unpack("!i", m[pos:pos + 4])[0]
                    pos += 4
                    raw = None if ln < 0 else m[pos:pos + ln]
                    pos += max(ln, 0)
                    row.append(_convert(oids[i], raw))
                result.append(tuple(row))
            elif kind == b"C" and result is not None:
                rows, result = result, None
            elif kind == b"E":
                err = _error_text(m)
            elif kind == b"Z":
                break
        s.sendall(b"X\0\0\0\4")
    if err:
        raise PgError("%s\n  in: %s" % (err, sql))
    return rows


# ---------------------------------------------------------------- the cluster

# Started detached (double fork, new session) so that killing the test
# process's tree does not kill it; when the test process is gone its pipe
# reaches EOF, and if the cluster dir still exists the server is stopped and
# the dir removed.
_WATCHDOG = r"""
import os, shutil, subprocess, sys
if os.fork():
    os._exit(0)
sys.stdin.buffer.read()
root, stop = sys.argv[1], sys.argv[2:]
if os.path.isdir(root):
    subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    shutil.rmtree(root, ignore_errors=True)
"""


class Cluster:
    def __init__(self):
        self.bindir = find_bindir()
        self.port = None
        self.root = None
        self._watchdog = None
        self._prev_sigterm = None
        self._started = False
        self._stopped = False

    # ---- running things as the cluster's owner
    def _owner_cmd(self, cmd):
        if os.geteuid() != 0:
            return cmd
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", OS_USER, "--", *cmd]

    def _run(self, cmd, **kw):
        return subprocess.run(self._owner_cmd(cmd), cwd=self.root, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, **kw)

    def _make_root(self):
        if os.geteuid() != 0:
            return tempfile.mkdtemp(prefix="roost-pg-")
        try:
            pw = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PgError("running as root, but there is no %r user to run PostgreSQL as "
                          "(Debian's postgresql package creates it)" % OS_USER) from None
        for base in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
            root = tempfile.mkdtemp(prefix="roost-pg-", dir=base)
            os.chown(root, pw.pw_uid, pw.pw_gid)
            ok = subprocess.run(self._owner_cmd(["test", "-w", root, "-a", "-x", root]),
                                stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
            if ok:
                return root
            os.rmdir(root)
        raise PgError("the %r user cannot write to a temp dir under %s or /tmp"
                      % (OS_USER, tempfile.gettempdir()))

    @property
    def datadir(self):
        return os.path.join(self.root, "data")

    @property
    def logfile(self):
        return os.path.join(self.root, "server.log")

    def _stop_cmd(self):
        return self._owner_cmd([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir,
                                "-m", "immediate", "-w", "-t", "60", "stop"])

    def start(self):
        self.root = self._make_root()
        # Clean up from here on, whatever happens.
        atexit.register(self.stop)
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, self.root, *self._stop_cmd()],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self._watchdog.wait()  # the first fork exits at once; its child keeps the pipe
        try:
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: atexit and the watchdog still apply
            pass

        p = self._run([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-A", "trust",
                       "-U", SUPERUSER, "--no-locale", "-E", "UTF8", "--no-sync"],
                      timeout=300)
        if p.returncode != 0:
            raise PgError("initdb failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
        self._started = True
        for _ in range(5):
            port = _free_port()
            opts = ("-p %d -k %s -c listen_addresses=%s -c fsync=off"
                    % (port, shlex.quote(self.root), HOST))
            # more server settings, for a bench (bench/scale.py --pg-stats)
            opts += " " + os.environ.get("PGCLUSTER_OPTS", "")
            p = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir,
                           "-l", self.logfile, "-w", "-t", "120", "-o", opts, "start"],
                          timeout=180)
            if p.returncode == 0:
                self.port = port
                return self
            log = _tail(self.logfile)
            if "could not bind" not in log and "already in use" not in log:
                break
        raise PgError("PostgreSQL did not start (pg_ctl %d): %s%s\n--- %s:\n%s" % (
            p.returncode, p.stdout, p.stderr, self.logfile, log))

    def stop(self):
        """Stop the server and delete its dir; safe to call more than once."""
        if self._stopped or self.root is None:
            return
        self._stopped = True
        try:
            if self._started:
                p = subprocess.run(self._stop_cmd(), cwd="/", stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=120)
                if p.returncode != 0 and os.path.exists(os.path.join(self.datadir,
                                                                     "postmaster.pid")):
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if self._watchdog and self._watchdog.stdin:
                self._watchdog.stdin.close()  # the watchdog finds nothing left to do

    def _kill_postmaster(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def _on_sigterm(self, signum, frame):
        self.stop()
        prev = self._prev_sigterm
        if callable(prev):
            prev(signum, frame)
        else:
            signal.signal(signal.SIGTERM, prev if prev is not None else signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    # ---- using it
    def url(self, dbname):
        return "postgresql://%s@%s:%d/%s" % (SUPERUSER, HOST, self.port, dbname)

    def query(self, sql, dbname="postgres"):
        return wire_query(self.port, dbname, sql)

    def create_database(self, name):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError("database name %r: use [a-z0-9_], at most 63" % name)
        self.query("CREATE DATABASE %s" % name)
        return self.url(name)

    def psql(self, sql, dbname="postgres"):
        """psql -At as the superuser, over TCP; for checks and debugging."""
        return subprocess.run(
            [os.path.join(self.bindir, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", HOST, "-p", str(self.port), "-U", SUPERUSER, "-d", dbname, "-c", sql],
            capture_output=True, text=True, timeout=120)


_cluster = None


def cluster():
    """The process's cluster, started on first use."""
    global _cluster
    if _cluster is None:
        c = Cluster()
        try:
            c.start()
        except BaseException:
            c.stop()
            raise
        _cluster = c
    return _cluster


if __name__ == "__main__":
    c = cluster()
    print("cluster", c.root, "port", c.port)
    print("url", c.create_database("selftest"))
    p = c.psql("SELECT 1", "selftest")
    print("psql:", p.returncode, p.stdout.strip(), p.stderr.strip())
    print("wire:", c.query("SELECT 1, 'it''s', NULL::text, 2::numeric", "selftest"))
    assert p.returncode == 0 and p.stdout.strip() == "1", p
