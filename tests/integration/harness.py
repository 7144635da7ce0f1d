"""Integration-test harness: starts real roost processes on 127.0.0.1 and talks
to them over HTTP, as users do. Standard library only."""
import glob
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import pgcluster
import s3server

ROOST = os.environ.get("ROOST_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "roost")
PASSWORD = "correct horse battery"
EMAIL = "owner@example.test"

# The metadata back end under test: "sqlite" (the default: DIR/roost.db) or
# "postgres" (ROOST_TEST_DB=postgres: a fresh database per hub on a PostgreSQL
# cluster that this process starts on first use; see pgcluster.py).
BACKEND = os.environ.get("ROOST_TEST_DB") or "sqlite"
if BACKEND not in ("sqlite", "postgres"):
    raise SystemExit("ROOST_TEST_DB=%r: expected 'sqlite' or 'postgres'" % BACKEND)
_db_names = itertools.count(1)

# The chunk store under test: "dir" (the default: DATA/objects) or "s3"
# (ROOST_TEST_STORE=s3: each hub on its own prefix of one bucket of an s3rver
# this process starts on first use; see s3server.py). The hub and its admin
# commands find the store in ROOST_STORE (roost serve's --store default).
STORE = os.environ.get("ROOST_TEST_STORE") or "dir"
if STORE not in ("dir", "s3"):
    raise SystemExit("ROOST_TEST_STORE=%r: expected 'dir' or 's3'" % STORE)
_store_prefixes = itertools.count(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """A hub process with its own data dir, ports and a CLI config dir."""

    # With ROOST_TEST_STORE=s3: the S3Server and this hub's prefix in its bucket
    # (class defaults too: some tests make a Hub without __init__, e.g. a restored one).
    s3 = store_prefix = None

    def __init__(self, root, same_db_as=None):
        """A new hub; with same_db_as (PostgreSQL only), a second hub on that hub's
        database, as in a scale-out deployment, with its own data dir and ports."""
        self.root = root
        self.data = os.path.join(root, "hub")
        self.cfg = os.path.join(root, "cfg")
        self.api_port = free_port()
        self.content_port = free_port()
        self.dash_port = free_port()
        self.proc = None
        self.log = None
        self.serve_args = []  # extra `roost serve` options
        self.serve_env = {}  # extra environment of the hub process alone (e.g. LD_PRELOAD)
        # A size in bytes: the hub's chunk store (DATA/objects) is a tmpfs of that
        # size, mounted in a user+mount namespace of its own (`unshare -rm`, no
        # privileges needed), so a test can fill the hub's disk. store_dir() is
        # the store as the hub sees it.
        self.store_tmpfs = None
        self.hosts = []  # every Host started against this hub (stopped at the class's end)
        self.backend = BACKEND
        self.db_url = self.db_name = None
        if STORE == "s3":
            self.s3 = s3server.shared()
            self.store_prefix = (same_db_as.store_prefix if same_db_as else
                                 "hub-%d-%d" % (os.getpid(), next(_store_prefixes)))
        if same_db_as:
            assert same_db_as.backend == "postgres", "hubs share only a PostgreSQL database"
            self.pg, self.db_url, self.db_name = same_db_as.pg, same_db_as.db_url, same_db_as.db_name
            os.makedirs(self.data, exist_ok=True)
            return
        if self.backend == "postgres":
            self.pg = pgcluster.cluster()
            self.db_name = "roost_%d_%d" % (os.getpid(), next(_db_names))
            self.db_url = self.pg.create_database(self.db_name)
        p = subprocess.run([ROOST, "init", "--data", self.data, "--email", EMAIL,
                            *self.db_args()], env=self.env(), capture_output=True)
        if p.returncode != 0:
            raise RuntimeError("roost init failed (%d): %s" % (
                p.returncode, p.stderr.decode(errors="replace")))

    def limits(self):
        """Tests fire requests far faster than people do: no per-token rate limit
        unless a test asks for one (test_limits does)."""
        return [] if "--rate-limit" in self.serve_args else ["--rate-limit", "0"]

    def db_args(self):
        """--db URL for init and serve, or nothing for SQLite in the data dir."""
        return ["--db", self.db_url] if self.db_url else []

    def sql(self, query, params=()):
        """Run one SQL statement ('?' placeholders) on this hub's metadata database,
        whichever the back end, and return its rows as a list of tuples."""
        if self.backend == "postgres":
            return self.pg.query(pgcluster.inline_params(query, params), self.db_name)
        con = sqlite3.connect(os.path.join(self.data, "roost.db"), timeout=20)
        try:
            with con:
                return con.execute(query, params).fetchall()
        finally:
            con.close()

    def env(self, **extra):
        e = dict(os.environ)
        e.update(XDG_CONFIG_HOME=self.cfg, ROOST_PASSWORD=PASSWORD)
        if self.s3:
            e.update(self.s3.env(), ROOST_STORE=self.s3.store_url(self.store_prefix))
        e.update(extra)
        return e

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.api_port

    def start(self):
        """Start the hub and wait until all three ports answer. On its first start a
        port free_port() picked may have been taken since (any outgoing connection
        can get it as its local port): then the hub starts again on new ports."""
        for attempt in range(4):
            self.log = open(os.path.join(self.root, "hub.log"), "ab")
            cmd = [ROOST, "serve", "--data", self.data, *self.db_args(),
                   "--api-port", str(self.api_port),
                   "--content-port", str(self.content_port),
                   "--dashboard-port", str(self.dash_port), *self.limits(), *self.serve_args]
            if self.store_tmpfs:
                # unshare execs sh, which execs roost: self.proc is the hub itself.
                # A refused unshare or mount exits: "hub exited" below, never a skip.
                cmd = ["unshare", "-rm", "sh", "-c",
                       'mkdir -p "$1" && mount -t tmpfs -o size=%d,mode=0700 tmpfs "$1" '
                       '&& shift && exec "$@"' % self.store_tmpfs,
                       "sh", os.path.join(self.data, "objects"), *cmd]
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                         env=self.env(**self.serve_env))
            if self._wait_ready():
                self.started_once = True
                return
            with open(self.log.name, "rb") as f:
                lost_port = b"Address already in use" in f.read()[-4000:]
            if not lost_port or getattr(self, "started_once", False) or attempt == 3:
                raise RuntimeError("hub exited: see " + self.log.name)
            self.log.close()
            self.api_port, self.content_port, self.dash_port = (
                free_port(), free_port(), free_port())

    def _wait_ready(self):
        deadline = time.time() + 20
        pending = [self.api_port, self.content_port, self.dash_port]
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), 0.2):
                    pending.pop(0)  # bound: it cannot fail for its port any more
                    if not pending:
                        return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("hub did not start")

    def stop(self, sig=signal.SIGTERM):
        """Stop the hub; a SIGTERM stop must exit 0 (under ASan: no leaks)."""
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if sig == signal.SIGTERM and code != 0:
            raise AssertionError("hub exited with %r on SIGTERM; see %s/hub.log" % (
                code, self.root))

    def kill(self):
        self.stop(signal.SIGKILL)

    def store_dir(self):
        """The chunk store (DATA/objects) as the running hub sees it: with
        store_tmpfs, its tmpfs, reached through /proc/PID/root."""
        objects = os.path.join(self.data, "objects")
        if not self.store_tmpfs:
            return objects
        assert self.proc and self.proc.poll() is None, "the hub is not running"
        return "/proc/%d/root%s" % (self.proc.pid, os.path.abspath(objects))

    # ---- the chunk store, as the hub sees it, whichever the back end ----
    def object_path(self, h):
        """The file holding chunk h: DATA/objects/ab/<h>, or s3rver's file of
        PREFIX/ab/<h> (a test may read, corrupt or delete it)."""
        if self.s3:
            return self.s3.object_path("%s/%s/%s" % (self.store_prefix, h[:2], h))
        return os.path.join(self.store_dir(), h[:2], h)

    def object_paths(self):
        """Every chunk object's file, sorted."""
        if self.s3:
            return [self.s3.object_path(k) for k in self.s3.keys(self.store_prefix)
                    if k.split("/")[-2:-1] != ["quarantine"]]
        return sorted(glob.glob(os.path.join(self.store_dir(), "??", "*")))

    def object_hash(self, path):
        """The chunk hash an object_paths() file holds."""
        return os.path.basename(path).split(".")[0]

    def quarantined(self):
        """The names under the store's quarantine (objects/quarantine, PREFIX/quarantine/)."""
        if self.s3:
            return [k.rsplit("/", 1)[1]
                    for k in self.s3.keys(self.store_prefix + "/quarantine")]
        d = os.path.join(self.store_dir(), "quarantine")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    # ---- the CLI ----
    def cli(self, *args, check=True, timeout=600, **kw):
        p = subprocess.run([ROOST, *args], env=self.env(), capture_output=True,
                           timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise AssertionError("roost %s failed (%d): %s" % (
                " ".join(args), p.returncode, p.stderr.decode(errors="replace")))
        return p

    def login_cli(self):
        self.cli("login", "--hub", self.url, "--email", EMAIL)

    # ---- the HTTP API ----
    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.api_port, timeout=120)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        parsed = None
        if resp.getheader("Content-Type", "").startswith("application/json") and payload:
            parsed = json.loads(payload)
        return resp.status, parsed, payload, resp

    def login(self, email=EMAIL, password=PASSWORD):
        st, body, _, _ = self.request("POST", "/api/v1/login",
                                      {"email": email, "password": password})
        assert st == 200, (st, body)
        return body["token"]

    def workspace(self, token):
        st, body, _, _ = self.request("GET", "/api/v1/workspaces", token=token)
        assert st == 200, body
        return body["workspaces"][0]["id"]

    def metric(self, name):
        st, _, payload, _ = self.request("GET", "/metrics")
        for line in payload.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise KeyError(name)


def q(path):
    return urllib.parse.quote(path, safe="")


class HubTest(unittest.TestCase):
    """A fresh hub per test class, started; self.token logged in over HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.hub = Hub(cls.tmp)
        cls.hub.store_tmpfs = getattr(cls, "store_tmpfs", None)
        cls.stopped = False
        # unittest skips tearDownClass when setUpClass fails (in a subclass's
        # part too): the hub and its hosts are stopped anyway.
        cls.addClassCleanup(cls.stop_processes)
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    @classmethod
    def stop_processes(cls):
        if getattr(cls, "stopped", False):  # (a class with its own setUpClass has no flag)
            return
        cls.stopped = True
        # A host a test class left running must not outlive its hub, nor the
        # next host a failed stop (an exit code, a leak report) left behind:
        # each is stopped, then the first failure is raised.
        failure = None
        for h in cls.hub.hosts:
            try:
                if h.running():
                    h.stop()
            except Exception as e:  # noqa: BLE001 — raised below, after the rest stop
                failure = failure or e
        try:
            cls.hub.stop()
        finally:
            if failure:
                raise failure

    @classmethod
    def tearDownClass(cls):
        cls.stop_processes()
        if os.environ.get("ROOST_KEEP_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def add_member(cls, email, password, role="member"):
        """Invite someone to the class's workspace and accept as them:
        (their token, their user id)."""
        st, inv, payload, _ = cls.hub.request(
            "POST", "/api/v1/workspaces/%d/invites" % cls.ws, {"role": role}, token=cls.token)
        assert st in (200, 201), payload
        st, body, payload, _ = cls.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": email, "password": password})
        assert st == 200, payload
        return body["token"], body["user"]["id"]

    def roost(self, *args, **kw):
        """Run roost as a user would; the CompletedProcess with text output
        (.out, .err), whatever its exit code."""
        p = self.hub.cli(*args, check=False, **kw)
        p.out, p.err = p.stdout.decode(), p.stderr.decode()
        return p

    def api(self, method, rel, body=None, **kw):
        return self.hub.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                                token=kw.pop("token", self.token), **kw)

    def assertError(self, result, status, code=None):
        st, body, payload, _ = result
        self.assertEqual(st, status, payload[:300])
        self.assertIsInstance(body, dict, payload[:300])
        self.assertIn("error", body)
        self.assertIn("message", body["error"])
        if code:
            self.assertEqual(body["error"]["code"], code, body)


# ---- host agents (`roost host`, docs/host.md) ----

def asan_options_preloaded():
    """ASAN_OPTIONS for a process with a library preloaded (LD_PRELOAD) before the
    sanitizer's runtime, which ASan refuses unless told the order is meant (under
    `make test-asan`; harmless otherwise)."""
    return ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0")
                    if x)


def wait_healthz(proc, port, what, details=lambda: "", timeout=20):
    """Until GET /healthz on 127.0.0.1:port answers 200. Raises if proc exits
    first or the time runs out; what names the server, details() adds to the
    message (e.g. a log's tail)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%r):\n%s" % (what, proc.returncode, details()))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not answer /healthz on port %d:\n%s" % (what, port, details()))


def wait_for(predicate, timeout=30, what=None, hosts=(), interval=0.02):
    """Poll predicate() every `interval` s until it returns something true, and return
    that. An OSError inside it (a file renamed away while being read) counts as false.
    On timeout, fail with `what` (a string, or a callable giving the current state) and
    the tail of each host's log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = predicate()
        except OSError:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    desc = what() if callable(what) else what
    msg = "timed out after %g s waiting for %s" % (
        timeout, desc or getattr(predicate, "__name__", "a condition"))
    for h in hosts:
        msg += "\n---- last lines of %s ----\n%s" % (h.log_path, h.log_tail())
        msg += "\n---- its last warnings and errors ----\n%s" % h.log_problems()
    raise AssertionError(msg)


class Relay:
    """roost relay with a self-signed development CA, for a hub."""

    def __init__(self, hub, root):
        self.hub = hub
        self.data = os.path.join(root, "relay")
        self.public_port, self.tunnel_port = free_port(), free_port()
        self.log_path = os.path.join(root, "relay.log")
        self.proc = None
        self.wrapper = []  # a command to run the relay under (prlimit, say)

    @property
    def ca(self):
        return os.path.join(self.data, "ca.pem")

    @property
    def audit_path(self):
        return os.path.join(self.data, "audit.log")

    def start(self, *extra):
        """Start the relay and wait until both ports answer; on its first start,
        again on new ports if one was taken since free_port() picked it."""
        for attempt in range(4):
            size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [*self.wrapper, ROOST, "relay", "--data", self.data, "--hub", self.hub.url,
                     "--self-signed", "--public", "127.0.0.1:%d" % self.public_port,
                     "--tunnel", "127.0.0.1:%d" % self.tunnel_port, *extra],
                    stdout=log, stderr=log)
            finally:
                log.close()
            if self._wait_ready():
                self.started_once = True
                return
            with open(self.log_path, "rb") as f:
                f.seek(size)
                said = f.read()
            if (b"Address already in use" not in said or getattr(self, "started_once", False)
                    or attempt == 3):
                raise RuntimeError("relay exited: " + said[-2000:].decode(errors="replace"))
            self.public_port, self.tunnel_port = free_port(), free_port()

    def _wait_ready(self):
        deadline = time.time() + 20
        pending = [self.public_port, self.tunnel_port]
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), 0.2):
                    pending.pop(0)
                    if not pending:
                        return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("relay did not start")

    def stop(self, sig=signal.SIGTERM):
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            code = self.proc.wait(30)
        self.proc = None
        if sig == signal.SIGTERM and code not in (0, None):
            raise AssertionError("relay exited with %r: %s" % (
                code, open(self.log_path).read()[-2000:]))

    def ssl_context(self):
        import ssl
        return ssl.create_default_context(cafile=self.ca)

    def request(self, path, headers=None, method="GET", timeout=60, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.public_port, timeout=timeout,
                                           context=self.ssl_context())
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body, resp


class Host:
    """A host agent of a hub's workspace: its own folder (DIR), content-server port
    and log file root/host-LABEL.log. join() once, then start()/stop()/kill()."""

    def __init__(self, hub, root, label, cache_max=None, heartbeat=1, relay=None):
        self.hub, self.label = hub, label
        self.relay = relay  # a Relay to attach to, or None
        self.dir = os.path.join(root, "host-" + label)
        self.log_path = os.path.join(root, "host-%s.log" % label)
        self.port = free_port()
        self.cache_max, self.heartbeat = cache_max, heartbeat
        self.extra_args = []  # more `roost host run` options
        self.wrapper = []  # a command to run the agent under (faketime, say)
        self.extra_env = {}  # more environment for the agent alone (e.g. LD_PRELOAD)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def path(self, rel):
        """The local path of workspace path rel ("/a/b.txt" or "a/b.txt")."""
        return os.path.join(self.dir, rel.lstrip("/"))

    def join(self, folders=None):
        """Redeem a fresh invite made with the hub's logged-in CLI (an owner)."""
        invite = json.loads(self.hub.cli("host", "invite", "--json").stdout)
        os.makedirs(self.dir, exist_ok=True)
        args = ["host", "join", invite["url"], "--dir", self.dir, "--label", self.label]
        if folders:
            args += ["--folders", ",".join(folders)]
        self.hub.cli(*args)

    def start(self):
        if self.running():  # a second process would orphan the first
            raise AssertionError("host %s is already running" % self.label)
        args = [*self.wrapper, ROOST, "host", "run", "--dir", self.dir,
                "--listen", "127.0.0.1:%d" % self.port, "--heartbeat", str(self.heartbeat)]
        if self.cache_max is not None:
            args += ["--cache-max", str(self.cache_max)]
        args += self.extra_args
        if self.relay:
            args += ["--relay", "127.0.0.1:%d" % self.relay.tunnel_port,
                     "--relay-ca", self.relay.ca]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log,
                                         env=self.hub.env(**self.extra_env))
        finally:
            log.close()
        if self not in self.hub.hosts:
            self.hub.hosts.append(self)
        wait_healthz(self.proc, self.port, "host " + self.label, self.log_tail)

    def stop(self, sig=signal.SIGTERM):
        """Stop the agent; a SIGTERM stop must exit 0 within 30 s."""
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc:
            code = self.proc.returncode
        was_running, self.proc = self.proc is not None, None
        if was_running and sig == signal.SIGTERM and code != 0:
            raise AssertionError("host %s exited with %r on SIGTERM:\n%s" % (
                self.label, code, self.log_tail()))

    def kill(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def status(self):
        """`roost host status --dir DIR --json`, parsed."""
        p = self.hub.cli("host", "status", "--dir", self.dir, "--json", check=False)
        try:  # a stopped agent may exit non-zero, but still reports its state
            return json.loads(p.stdout)
        except ValueError:
            raise AssertionError("roost host status --json (%d): %r %r" % (
                p.returncode, p.stdout[:300], p.stderr[-300:]))

    def log_tail(self, lines=25):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self, lines=15):
        """The last warnings and errors of the log: a tail of routine lines hides them."""
        try:
            with open(self.log_path, errors="replace") as f:
                found = [ln.rstrip() for ln in f if " warn " in ln or " error " in ln]
        except OSError:
            return "(no log)"
        return "\n".join(found[-lines:]) or "(none)"


def main():
    unittest.main(verbosity=2)
