"""Several hubs behind a load balancer (docs/scale-out.md): two hubs on one
PostgreSQL database and one chunk store, nginx (Debian's) in front of them
with a test-only config, and two hosts attached to different hubs. A chunk
PUT and its commit may land on different hubs; downloads and the feed work
through either; hosts on different hubs sync both ways; each background job
runs once across hubs; and a mixed workload survives one hub SIGKILLed and
restarted in the middle: nothing is lost and every version verifies.

PostgreSQL only, by nature (CMakeLists.txt registers no SQLite variant; run
directly, the file picks PostgreSQL itself and refuses ROOST_TEST_DB=sqlite).

The store: one bucket on s3rver (tests/integration/s3server.py; a missing
s3rver fails loudly), each hub with its own --data (its spool). With
ROOST_TEST_CLUSTER_STORE=dir the hubs share one --data directory instead
(its objects/), the other deployment docs/scale-out.md describes."""
import os
import sys

if os.environ.get("ROOST_TEST_DB", "postgres") != "postgres":
    sys.exit("test_cluster: several hubs share one PostgreSQL database; "
             "ROOST_TEST_DB=%s cannot run it (unset it, or set postgres)"
             % os.environ["ROOST_TEST_DB"])
os.environ["ROOST_TEST_DB"] = "postgres"

import hashlib  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

import harness  # noqa: E402
from harness import EMAIL, ROOST, Host, Hub, free_port, q, wait_for, wait_healthz  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STORE = os.environ.get("ROOST_TEST_CLUSTER_STORE", "s3")
if STORE not in ("s3", "dir"):
    sys.exit("ROOST_TEST_CLUSTER_STORE=%r: expected 's3' or 'dir'" % STORE)
MiB = 1024 * 1024


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Nginx:
    """nginx as the hubs' load balancer: its own config, pid, logs and temp
    paths in a directory of its own; in the foreground (daemon off), so the
    process the test started is the master, stopped by its PID."""

    def __init__(self, root, hubs):
        self.dir = os.path.join(root, "nginx")
        os.makedirs(self.dir)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, sub))
            os.chmod(os.path.join(self.dir, sub), 0o777)  # workers may run as nobody
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.hubs = hubs
        self.proc = None

    def config(self):
        servers = "\n".join(
            "        server 127.0.0.1:%d max_fails=1 fail_timeout=3s;" % h.api_port
            for h in self.hubs)
        d = self.dir
        return """
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream roost_api {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 80m;
        location / {{
            proxy_pass http://roost_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
""".format(d=d, servers=servers, port=self.port)

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        log = open(os.path.join(self.dir, "stderr.log"), "ab")
        try:
            self.proc = subprocess.Popen([NGINX, "-c", conf, "-p", self.dir, "-e",
                                          os.path.join(self.dir, "error.log")],
                                         stdout=log, stderr=log)
        finally:
            log.close()
        wait_healthz(self.proc, self.port, "nginx", lambda: "see " + self.dir)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: its workers go too
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port


class Stream:
    """One SSE subscription to a workspace's feed, through any port."""

    def __init__(self, port, ws, token, since):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.conn.request("GET", "/api/v1/workspaces/%d/events?since=%d" % (ws, since),
                          headers={"Authorization": "Bearer " + token})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status

    def events_until(self, pred, timeout=20):
        """Read events until pred(event) holds; that event."""
        self.conn.sock.settimeout(timeout)
        data = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("the feed ended")
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data = line[6:]
            elif line == "" and data is not None:
                ev = json.loads(data)
                data = None
                if pred(ev):
                    return ev
        raise AssertionError("no such event within %g s" % timeout)

    def close(self):
        self.conn.close()


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-cluster-")
        cls.procs_started = []
        cls.addClassCleanup(cls.stop_everything)
        cls.a = Hub(os.path.join(cls.tmp, "a"))
        cls.b = Hub(os.path.join(cls.tmp, "b"), same_db_as=cls.a)
        store = []
        if STORE == "s3" and harness.STORE == "s3":
            pass  # the harness's bucket: b shares a's prefix (ROOST_STORE in their env)
        elif STORE == "s3":
            import s3server
            cls.s3 = s3server.S3Server()
            cls.procs_started.append(cls.s3)
            os.environ.update(cls.s3.env())  # the hubs' credentials (inherited)
            store = ["--store", cls.s3.store_url("cluster")]
        else:
            cls.b.data = cls.a.data  # one store: the hubs share DATA/objects
        jobs = ["--gc-every", "1d", "--scrub-every", "1d", "--replicate-every", "1d"]
        cls.nginx = Nginx(cls.tmp, [cls.a, cls.b])  # its port: the hubs' --public-url
        for h in (cls.a, cls.b):
            h.serve_args = ["--heartbeat", "1", "--max-conns-per-ip", "0",
                            "--trusted-proxy", "127.0.0.1", "--public-url", cls.nginx.url,
                            "--job-rate", "4M"] + jobs + store
            h.start()
        cls.nginx.start()
        cls.token = cls.a.login()
        cls.ws = cls.a.workspace(cls.token)
        # Each hub's own CLI config logs in to that hub directly (host invites);
        # the user's ("client") goes through the balancer.
        cls.a.login_cli()
        cls.b.login_cli()
        cls.client_cfg = os.path.join(cls.tmp, "client-cfg")
        cls.cli_raw("login", "--hub", cls.nginx.url, "--email", EMAIL, check=True)
        # Hosts A and B attach to one hub each (their invite links, which name
        # the balancer (--public-url), rewritten to the hub); host C through
        # the balancer: its uploads fail over from a dead hub to the other.
        cls.hosts = []
        for hub, label in ((cls.a, "A"), (cls.b, "B"), (None, "C")):
            invite = json.loads(cls.cli_raw("host", "invite", "--json", check=True).stdout)
            assert invite["url"].startswith(cls.nginx.url + "/host-invite/"), invite["url"]
            url = invite["url"].replace(cls.nginx.url, hub.url if hub else cls.nginx.url)
            host = Host(hub or cls.a, cls.tmp, label)
            os.makedirs(host.dir)
            cls.cli_raw("host", "join", url, "--dir", host.dir, "--label", label, check=True)
            host.start()
            cls.hosts.append(host)
        cls.hostA, cls.hostB, cls.hostC = cls.hosts

    @classmethod
    def stop_everything(cls):
        errors = []
        for stop in ([h.stop for h in getattr(cls, "hosts", [])] +
                     [getattr(cls, "nginx", None) and cls.nginx.stop] +
                     [h.stop for h in (getattr(cls, "b", None), getattr(cls, "a", None)) if h] +
                     [s.stop for s in getattr(cls, "procs_started", [])]):
            if not stop:
                continue
            try:
                stop()
            except Exception as e:  # stop the rest anyway; report the first
                errors.append(e)
        if os.environ.get("ROOST_KEEP_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        if errors:
            raise errors[0]

    # ---- helpers ----
    @classmethod
    def cli_raw(cls, *args, check=False, timeout=600):
        env = dict(os.environ, XDG_CONFIG_HOME=cls.client_cfg, ROOST_PASSWORD=harness.PASSWORD)
        p = subprocess.run([ROOST, *args], env=env, capture_output=True, timeout=timeout)
        p.out, p.err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError("roost %s (%d): %s" % (" ".join(args), p.returncode, p.err))
        return p

    def roost(self, *args, **kw):
        """roost through the balancer, as a user runs it."""
        return self.cli_raw(*args, **kw)

    def api(self, hub_or_port, method, rel, body=None, raw=None, headers=None):
        port = hub_or_port if isinstance(hub_or_port, int) else hub_or_port.api_port
        return self.a.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                              token=self.token, raw=raw, headers=headers, port=port)

    def write_local(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def content(self, hub, path, version=None):
        rel = "/content?path=" + q(path) + ("&version=%d" % version if version else "")
        st, _, payload, _ = self.api(hub, "GET", rel)
        self.assertEqual(st, 200, "GET %s on port %s: %r" % (rel, hub, payload[:200]))
        return payload

    def versions(self, hub, path):
        st, body, payload, _ = self.api(hub, "GET", "/versions?path=" + q(path))
        self.assertEqual(st, 200, payload[:200])
        return body["versions"]

    def tree(self, hub):
        st, body, payload, _ = self.api(hub, "GET", "/tree")
        self.assertEqual(st, 200, payload[:200])
        return {f["path"]: f for f in body["files"]}

    def metric(self, hub, name):
        return hub.metric(name)

    def assertSynced(self, host, path, digest, timeout=60):
        wait_for(lambda: os.path.isfile(host.path(path)) and
                 sha256_file(host.path(path)) == digest,
                 timeout=timeout, what="%s to reach host %s" % (path, host.label),
                 hosts=self.hosts)

    # ---- the tests (run in name order) ----
    def test_a_chunks_put_on_one_hub_commit_on_the_other(self):
        parts = [os.urandom(300 * 1024), os.urandom(200 * 1024)]
        whole = b"".join(parts)
        # The probe and the PUTs go to hub A, the commit to hub B.
        st, body, _, _ = self.api(self.a, "POST", "/chunks/missing",
                                  {"hashes": [sha256(p) for p in parts]})
        self.assertEqual(st, 200)
        self.assertEqual(sorted(body["missing"]), sorted(sha256(p) for p in parts))
        received_b = self.metric(self.b, "roost_chunks_received_total")
        for p in parts:
            st, _, payload, _ = self.api(self.a, "PUT", "/chunks/" + sha256(p), raw=p,
                                         headers={"Content-Type": "application/octet-stream"})
            self.assertIn(st, (200, 201), payload[:200])
        self.assertEqual(self.metric(self.b, "roost_chunks_received_total"), received_b)
        committed_a = self.metric(self.a, "roost_versions_committed_total")
        st, body, payload, _ = self.api(self.b, "POST", "/versions", {
            "path": "/split.bin", "size": len(whole), "hash": sha256(whole),
            "chunks": [{"hash": sha256(p), "size": len(p)} for p in parts]})
        self.assertEqual(st, 201, payload[:300])
        self.assertEqual(self.metric(self.a, "roost_versions_committed_total"), committed_a)
        # Hub B found the chunks hub A stored; both serve the version whole.
        for hub in (self.a, self.b):
            self.assertEqual(sha256(self.content(hub, "/split.bin")), sha256(whole))

    def test_b_put_through_the_balancer_spreads_chunks_and_either_hub_serves_it(self):
        data = os.urandom(12 * MiB)
        local = self.write_local("big.bin", data)
        before = [self.metric(h, "roost_chunks_received_total") for h in (self.a, self.b)]
        p = self.roost("put", local, "/big.bin", "--parallel", "4")
        self.assertEqual(p.returncode, 0, p.err)
        after = [self.metric(h, "roost_chunks_received_total") for h in (self.a, self.b)]
        self.assertGreater(after[0] - before[0], 0, "no chunk PUT reached hub A")
        self.assertGreater(after[1] - before[1], 0, "no chunk PUT reached hub B")
        for hub in (self.a, self.b, self.nginx.port):
            self.assertEqual(sha256(self.content(hub, "/big.bin")), sha256(data))
        out = os.path.join(self.tmp, "big.out")
        p = self.roost("get", "/big.bin", out)
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(sha256_file(out), sha256(data))

    def test_bc_links_name_the_balancer_and_work_through_it(self):
        data = self.content(self.a, "/big.bin")
        st, body, payload, _ = self.api(self.nginx.port, "POST", "/urls", {"path": "/big.bin"})
        self.assertEqual(st, 201, payload[:300])
        hub_src = [x for x in body["sources"] if x["via"] == "hub"]
        self.assertEqual(len(hub_src), 1, body["sources"])
        self.assertTrue(hub_src[0]["url"].startswith(self.nginx.url + "/c/"), hub_src[0])
        st, _, got, _ = self.a.request("GET", hub_src[0]["url"][len(self.nginx.url):],
                                       port=self.nginx.port)
        self.assertEqual((st, sha256(got)), (200, sha256(data)))
        st, body, payload, _ = self.api(self.nginx.port, "POST", "/shares",
                                        {"path": "/big.bin"})
        self.assertEqual(st, 201, payload[:300])
        self.assertTrue(body["url"].startswith(self.nginx.url + "/s/"), body["url"])
        st, _, page, _ = self.a.request("GET", body["url"][len(self.nginx.url):],
                                        port=self.nginx.port)
        self.assertEqual(st, 200, page[:200])

    def test_c_the_feed_through_either_hub_shows_a_change_made_on_the_other(self):
        st, body, _, _ = self.a.request("GET", "/api/v1/workspaces", token=self.token)
        seq = [w for w in body["workspaces"] if w["id"] == self.ws][0]["last_seq"]
        streams = [Stream(port, self.ws, self.token, seq)
                   for port in (self.a.api_port, self.b.api_port, self.nginx.port)]
        try:
            for hub, name in ((self.a, "/feed-via-a"), (self.b, "/feed-via-b")):
                st, _, payload, _ = self.api(hub, "POST", "/folders", {"path": name})
                self.assertEqual(st, 201, payload[:200])
                for s in streams:
                    ev = s.events_until(lambda e: e["payload"].get("path") == name)
                    self.assertGreater(ev["seq"], seq)
        finally:
            for s in streams:
                s.close()

    def test_d_hosts_on_different_hubs_sync_both_ways(self):
        a_data, b_data = os.urandom(700 * 1024), os.urandom(900 * 1024)
        os.makedirs(self.hostA.path("/from-a"), exist_ok=True)
        os.makedirs(self.hostB.path("/from-b"), exist_ok=True)
        with open(self.hostA.path("/from-a/a.bin"), "wb") as f:
            f.write(a_data)
        with open(self.hostB.path("/from-b/b.bin"), "wb") as f:
            f.write(b_data)
        self.assertSynced(self.hostB, "/from-a/a.bin", sha256(a_data))
        self.assertSynced(self.hostA, "/from-b/b.bin", sha256(b_data))
        # An edit on B reaches A, and a file put through the balancer both.
        b2 = os.urandom(400 * 1024)
        with open(self.hostB.path("/from-a/a.bin.tmp"), "wb") as f:
            f.write(b2)
        os.replace(self.hostB.path("/from-a/a.bin.tmp"), self.hostB.path("/from-a/a.bin"))
        self.assertSynced(self.hostA, "/from-a/a.bin", sha256(b2))

    def test_e_each_background_job_runs_once_across_hubs(self):
        names = ("gc", "scrub", "replicate")

        def jobs():
            rows = self.a.sql("SELECT name, runs, lease_owner FROM jobs")
            return {r[0]: (r[1], r[2]) for r in rows}

        def done_lines():
            n = 0
            for hub in (self.a, self.b):
                with open(os.path.join(hub.root, "hub.log"), errors="replace") as f:
                    n += sum(1 for ln in f if "jobs: " in ln and " done: " in ln)
            return n

        before, lines = jobs(), done_lines()
        # Every job due now on both hubs: each hub's jobs thread finds them due
        # within JOBS_POLL_MS (5 s); the lease and the due check let one run each.
        self.a.sql("UPDATE jobs SET next_run_at = ?", (int(time.time() * 1000) - 1,))
        wait_for(lambda: all(jobs()[n][0] > before[n][0] and jobs()[n][1] is None
                             for n in names), timeout=60, what="every job to run")
        time.sleep(11)  # two more polls of each hub: none may run again
        after = jobs()
        for n in names:
            self.assertEqual(after[n][0], before[n][0] + 1, "job %s ran %d times" % (
                n, after[n][0] - before[n][0]))
        self.assertEqual(done_lines() - lines, len(names))

    def test_bb_operators_endpoints_are_not_open_through_the_balancer(self):
        # nginx connects from loopback for every client: a relayed request is
        # never "this machine" (docs/scale-out.md).
        st, body, _, _ = self.a.request("GET", "/metrics", port=self.nginx.port)
        self.assertEqual(st, 403)
        self.assertEqual(body["error"]["code"], "ops_only")
        st, _, _, _ = self.a.request("GET", "/metrics")
        self.assertEqual(st, 200)
        for port in (self.a.api_port, self.b.api_port, self.nginx.port):
            st, body, _, _ = self.a.request("GET", "/readyz", port=port)
            self.assertEqual((st, body), (200, {"status": "ready"}))

    def test_f_mixed_workload_survives_a_hub_killed_and_restarted(self):
        rng = random.Random(18)
        expected = {}  # path -> list of SHA-256 of every version that must exist
        removed, failures = set(), []
        lock = threading.Lock()

        def record(path, digest):
            with lock:
                expected.setdefault(path, []).append(digest)

        def put_files(worker):
            for i in range(6):
                size = rng.choice([100 * 1024, 600 * 1024, 2 * MiB, 5 * MiB])
                data = os.urandom(size)
                local = self.write_local("w%d-%d.bin" % (worker, i), data)
                path = "/mixed/w%d/f%d.bin" % (worker, i % 3)  # some get 2 versions
                p = self.roost("put", local, path)
                if p.returncode != 0:
                    failures.append("put %s: %s" % (path, p.err))
                else:
                    record(path, sha256(data))

        def put_batches():
            for i in range(3):
                d = os.path.join(self.tmp, "batch%d" % i)
                os.makedirs(d)
                digests = {}
                for k in range(12):
                    data = os.urandom(rng.randint(10, 60 * 1024))
                    with open(os.path.join(d, "s%02d.txt" % k), "wb") as f:
                        f.write(data)
                    digests["/mixed/batch%d/s%02d.txt" % (i, k)] = sha256(data)
                p = self.roost("put", d, "/mixed/batch%d" % i, "-q")
                if p.returncode != 0:
                    failures.append("put batch%d: %s" % (i, p.err))
                else:
                    for path, dg in digests.items():
                        record(path, dg)

        def host_edits():
            for i in range(6):
                host = self.hosts[i % 3]
                data = os.urandom(rng.randint(1024, 300 * 1024))
                path = "/mixed/hosts/e%d.bin" % i
                os.makedirs(os.path.dirname(host.path(path)), exist_ok=True)
                with open(host.path(path) + ".part", "wb") as f:
                    f.write(data)
                os.replace(host.path(path) + ".part", host.path(path))
                record(path, sha256(data))
                time.sleep(0.5)

        def tree_has(path):
            st, _, _, _ = self.api(self.nginx.port, "GET", "/info?path=" + q(path))
            return st == 200

        def renames_and_deletes():
            # Their own files first, then moved and removed while the rest runs.
            for i in range(3):
                data = os.urandom(50 * 1024)
                local = self.write_local("mv%d.bin" % i, data)
                self.roost("put", local, "/mixed/mv/src%d.bin" % i, check=True)
                record("/mixed/mv/dst%d.bin" % i, sha256(data))
            for i in range(3):
                data = os.urandom(50 * 1024)
                local = self.write_local("rm%d.bin" % i, data)
                self.roost("put", local, "/mixed/rm/gone%d.bin" % i, check=True)
                removed.add("/mixed/rm/gone%d.bin" % i)
            for i in range(3):
                src, dst = "/mixed/mv/src%d.bin" % i, "/mixed/mv/dst%d.bin" % i
                for _ in range(5):  # a request cut by the kill may have landed
                    if tree_has(dst) and not tree_has(src):
                        break
                    self.roost("mv", src, dst)
                    time.sleep(0.3)
                gone = "/mixed/rm/gone%d.bin" % i
                for _ in range(5):
                    if not tree_has(gone):
                        break
                    self.roost("rm", gone)
                    time.sleep(0.3)

        workers = [threading.Thread(target=put_files, args=(w,)) for w in range(2)]
        workers += [threading.Thread(target=put_batches), threading.Thread(target=host_edits),
                    threading.Thread(target=renames_and_deletes)]
        received = self.metric(self.a, "roost_chunks_received_total")
        for t in workers:
            t.start()
        # Kill hub A once it is taking chunks of this workload, mid-upload.
        wait_for(lambda: self.metric(self.a, "roost_chunks_received_total") > received + 3,
                 timeout=120, what="hub A to take chunks of the workload")
        self.a.kill()
        time.sleep(4)
        self.a.start()
        for t in workers:
            t.join(600)
            self.assertFalse(t.is_alive(), "a workload thread hung")
        self.assertEqual(failures, [], "clients gave up instead of retrying")

        # Nothing lost: every expected version exists and verifies from both
        # hubs; the current one is in both hosts' folders.
        for path, digests in sorted(expected.items()):
            wait_for(lambda: tree_has(path), timeout=60, what=path + " in the tree",
                     hosts=self.hosts)
            vs = self.versions(self.nginx.port, path)
            hashes = [v["hash"] for v in vs]
            for dg in digests:
                self.assertIn(dg, hashes, "a version of %s was lost" % path)
            for v in vs:
                for hub in (self.a, self.b):
                    got = sha256(self.content(hub, path, v["version"]))
                    self.assertEqual(got, v["hash"], "%s v%d from port %d" % (
                        path, v["version"], hub.api_port))
        for path in removed:
            self.assertFalse(tree_has(path), path + " came back")
        tree_a, tree_b = self.tree(self.a), self.tree(self.b)
        self.assertEqual({p: f["hash"] for p, f in tree_a.items()},
                         {p: f["hash"] for p, f in tree_b.items()})
        for host in self.hosts:
            for path, f in tree_a.items():
                self.assertSynced(host, path, f["hash"], timeout=120)
            for path in removed:
                wait_for(lambda: not os.path.exists(host.path(path)), timeout=60,
                         what="%s to leave host %s" % (path, host.label), hosts=self.hosts)


if __name__ == "__main__":
    harness.main()
