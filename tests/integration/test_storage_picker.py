"""Every reader picks the nearest source and falls back (issue 15): `roost get`
fetches each chunk from a host holding it (directly, else through its relay
URL), then the hub; a source that fails mid-download is skipped; hosts can
advertise another URL and serve HTTPS."""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import ROOST, Host, Hub, Relay, free_port, q, wait_for

BIG = 256 << 20


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class PickerBase(unittest.TestCase):
    """A hub and hosts A and B holding the same files."""
    relay = None
    hosts_args = {}  # label -> extra `roost host run` options

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-picker-")
        cls.hub = Hub(cls.tmp)
        cls.hosts = []
        try:
            cls.start_all()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_all(cls):
        cls.hub.start()
        cls.hub.login_cli()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        if cls.relay is not None:
            cls.relay = Relay(cls.hub, cls.tmp)
            cls.relay.start()
        for label in ("A", "B"):
            h = Host(cls.hub, cls.tmp, label, relay=cls.relay)
            h.extra_args = list(cls.hosts_args.get(label, ()))
            h.join()
            h.start()
            cls.hosts.append(h)
        cls.A, cls.B = cls.hosts

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            if h.proc:
                h.proc.kill()
                h.proc.wait()
        if cls.relay:
            cls.relay.stop(signal.SIGKILL)
        cls.hub.stop()
        if os.environ.get("ROOST_KEEP_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def api(cls, method, rel, body=None, token=None):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token or cls.token)

    @classmethod
    def manifest(cls, path):
        st, m, _, _ = cls.api("GET", "/manifest?path=" + q(path))
        assert st == 200, m
        return m

    @classmethod
    def put_on_both(cls, path, data):
        """Write path into A; wait until the hub has it and both hosts hold
        every chunk (as the manifest says)."""
        with open(cls.A.path(path), "wb") as f:
            f.write(data)
        want = sha(data)
        wait_for(lambda: cls.api("GET", "/info?path=" + q(path))[1].get("hash") == want,
                 180, path + " on the hub", cls.hosts)

        def both_hold():
            m = cls.manifest(path)
            return all(len(c["hosts"]) >= 2 for c in m["chunks"])
        wait_for(both_hold, 180, "A and B reporting every chunk of " + path, cls.hosts)

    @classmethod
    def set_hosts_mode(cls, cache_bytes):
        """PATCH storage 'hosts' (and hub_cache_bytes); wait until every host
        has learnt it (a host commits by the mode it knows): from then on a
        host's commit names its chunks and the hub's store never sees them."""
        def learnt(h):
            with open(h.log_path, "rb") as f:
                return f.read().decode(errors="replace").count("keeps its bytes on hosts")
        seen = {h.label: learnt(h) for h in cls.hosts}
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws,
                                            {"storage": "hosts", "hub_cache_bytes": cache_bytes},
                                            token=cls.token)
        assert st == 200, payload
        for h in cls.hosts:
            wait_for(lambda: learnt(h) > seen[h.label], 30,
                     "host %s to learn storage 'hosts'" % h.label, [h])

    @classmethod
    def hub_lacks(cls, path):
        """The hub's store (walked) holds no chunk of path."""
        store = set()
        for _, _, files in os.walk(os.path.join(cls.hub.data, "objects")):
            store.update(files)
        hashes = {c["hash"] for c in cls.manifest(path)["chunks"]}
        return bool(hashes) and not hashes & store

    def get_cmd(self, path, out, *extra):
        return [ROOST, "get", path, out, "--json", *extra]

    def get(self, path, *extra):
        out = os.path.join(self.tmp, "out-" + os.path.basename(path))
        p = subprocess.run(self.get_cmd(path, out, *extra), env=self.hub.env(),
                           capture_output=True, timeout=600)
        return p, out

    def report(self, p):
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return json.loads(p.stdout)

    def bytes_via(self, rep, via):
        return sum(s["bytes"] for s in rep["sources"] if s["via"] == via)

    def host_id(self, label):
        st, body, _, _ = self.api("GET", "/hosts")
        return next(h["id"] for h in body["hosts"] if h["label"] == label)

    def interrupt_mid_download(self, path, out, act, *extra):
        """Start `roost get`, stop it (SIGSTOP) once its temp file has grown,
        run act(), let it go on: its report. 'Mid' is when bytes were
        written and the download has not ended — checked, not slept for."""
        p = subprocess.Popen(self.get_cmd(path, out, "--parallel", "2", *extra),
                             env=self.hub.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        pattern = os.path.join(os.path.dirname(out), "." + os.path.basename(out) + ".roost-*")
        stopped = False
        try:
            deadline = time.time() + 120
            while time.time() < deadline and p.poll() is None:
                tmp = glob.glob(pattern)
                try:
                    grown = tmp and os.path.getsize(tmp[0]) >= (8 << 20)
                except OSError:
                    grown = False
                if grown:
                    p.send_signal(signal.SIGSTOP)
                    stopped = True
                    break
                time.sleep(0.002)
            self.assertTrue(stopped, "the download ended before it could be interrupted")
            self.assertLess(os.path.getsize(glob.glob(pattern)[0]), BIG)
            act()
        finally:
            if stopped:
                p.send_signal(signal.SIGCONT)
        so, se = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, se.decode(errors="replace"))
        return json.loads(so)


class DirectTest(PickerBase):
    """Hosts reachable directly. small.bin was written in 'hub' mode (the hub
    holds it); then the workspace went 'hosts' and big.bin is a pointer
    commit: the hub's store never had its bytes."""

    @classmethod
    def start_all(cls):
        super().start_all()
        cls.small = os.urandom(3 << 20)
        cls.put_on_both("small.bin", cls.small)
        # No cache while big.bin spreads: a host that falls back to the hub for a
        # chunk (its peer slow on a busy machine) must not leave a copy there.
        cls.set_hosts_mode(0)
        cls.blob = os.urandom(BIG)
        cls.put_on_both("big.bin", cls.blob)
        assert cls.hub_lacks("big.bin"), "big.bin's chunks in the hub's store"
        # Then a cache big enough that small.bin's hub copy stays for test_e (the
        # replicate job, which evicts, first runs 10 minutes after the hub starts).
        st, _, payload, _ = cls.api("PATCH", "", {"hub_cache_bytes": 1 << 30})
        assert st == 200, payload

    def test_a_hosts_bytes_the_hub_never_had(self):
        p, out = self.get("/big.bin", "--verbose")
        rep = self.report(p)
        self.assertEqual(rep["sha256"], sha(self.blob))
        self.assertEqual(rep["size"], BIG)
        self.assertEqual(file_sha(out), sha(self.blob))
        self.assertEqual(self.bytes_via(rep, "host"), BIG, rep)
        self.assertEqual(self.bytes_via(rep, "hub"), 0, rep)
        ids = {s.get("host_id") for s in rep["sources"]}
        self.assertLessEqual(ids, {self.host_id("A"), self.host_id("B")})
        self.assertIn(b"from host", p.stderr)  # --verbose: bytes per source
        os.unlink(out)

    def test_b_hosts_are_preferred_to_the_hub(self):
        p, out = self.get("/small.bin")
        rep = self.report(p)
        self.assertEqual(rep["sha256"], sha(self.small))
        self.assertEqual(self.bytes_via(rep, "host"), len(self.small), rep)
        os.unlink(out)

    def test_c_a_member_who_reads_one_file_gets_a_version_token(self):
        st, body, _, _ = self.api("POST", "/tokens", {"scope": "chunks", "path": "/small.bin"})
        self.assertEqual(st, 201, body)
        self.assertEqual(body["scope"], "vchunks")
        tok = body["token"]
        mine = self.manifest("/small.bin")["chunks"][0]["hash"]
        other = self.manifest("/big.bin")["chunks"][0]["hash"]
        st, _, payload, _ = self.hub.request("GET", "/chunks/" + mine, token=tok,
                                             port=self.A.port)
        self.assertEqual((st, sha(payload)), (200, mine))
        st, err, _, _ = self.hub.request("GET", "/chunks/" + other, token=tok, port=self.A.port)
        self.assertEqual(st, 403, err)
        # The whole workspace still needs read access to all of it: an owner has it.
        st, body, _, _ = self.api("POST", "/tokens", {"scope": "chunks"})
        self.assertEqual((st, body["scope"]), (201, "chunks"))

    def test_d_the_serving_host_killed_mid_download(self):
        out = os.path.join(self.tmp, "killed.bin")
        victim = self.A
        rep = self.interrupt_mid_download("/big.bin", out, victim.kill)
        try:
            self.assertEqual(rep["sha256"], sha(self.blob))
            self.assertEqual(file_sha(out), sha(self.blob))
            by = {s.get("host_id"): s["bytes"] for s in rep["sources"]}
            self.assertGreater(by.get(self.host_id("B"), 0), 0, rep)
            self.assertLess(by.get(self.host_id("A"), 0), BIG, rep)
            self.assertEqual(sum(by.values()), BIG)
        finally:
            victim.start()
            os.unlink(out)

    def test_e_the_hub_when_no_host_is_online(self):
        for h in self.hosts:
            h.stop()  # says "stopping": offline at once
        try:
            wait_for(lambda: not self.manifest("/small.bin")["sources"], 30,
                     "no host online in the manifest")
            p, out = self.get("/small.bin")
            rep = self.report(p)
            self.assertEqual(rep["sha256"], sha(self.small))
            self.assertEqual([s["via"] for s in rep["sources"]], ["hub"], rep)
            os.unlink(out)
            # Nobody holds big.bin now: a clear failure, no file.
            p, out = self.get("/big.bin")
            self.assertNotEqual(p.returncode, 0)
            self.assertFalse(os.path.exists(out))
        finally:
            for h in self.hosts:
                h.start()


    def test_f_bytes_rotted_on_a_host_under_an_unchanged_stat(self):
        # A serves a chunk of a file whose stat matches its index as read, without
        # hashing it again: the reader's own check refuses the rotten bytes and
        # takes them from B.
        # Both hosts serving (test_e restarts them): B must be a source to fall back to.
        ids = {str(self.host_id("A")), str(self.host_id("B"))}
        wait_for(lambda: ids <= set(self.manifest("/big.bin")["sources"]), 60,
                 "A and B back among big.bin's sources", self.hosts)
        path = self.A.path("/big.bin")
        before = os.stat(path)
        with open(path, "r+b") as f:
            f.seek(1000)
            good = f.read(4)
            f.seek(1000)
            f.write(bytes(b ^ 0xFF for b in good))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        try:
            p, out = self.get("/big.bin")
            rep = self.report(p)
            self.assertEqual(rep["sha256"], sha(self.blob))
            self.assertEqual(file_sha(out), sha(self.blob))
            by = {s.get("host_id"): s["bytes"] for s in rep["sources"]}
            self.assertGreater(by.get(self.host_id("B"), 0), 0, rep)
            os.unlink(out)
        finally:
            with open(path, "r+b") as f:
                f.seek(1000)
                f.write(good)
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


class RelayPickerTest(PickerBase):
    """Hosts whose advertised URL does not answer, reachable through a relay;
    a 'hosts' workspace (cache 0): big.bin is a pointer commit."""
    relay = True

    @classmethod
    def start_all(cls):
        cls.dead = "http://127.0.0.1:%d" % free_port()  # nothing listens there
        cls.hosts_args = {"A": ["--advertise-url", cls.dead],
                          "B": ["--advertise-url", cls.dead + "/b"]}
        super().start_all()

        def relayed():
            st, body, _, _ = cls.api("GET", "/hosts")
            return all(h.get("tunnel_url") for h in body["hosts"])
        wait_for(relayed, 60, "both hosts' relay URLs", cls.hosts)
        cls.set_hosts_mode(0)
        cls.blob = os.urandom(BIG)
        cls.put_on_both("big.bin", cls.blob)  # B syncs it from A through the relay
        assert cls.hub_lacks("big.bin"), "big.bin's chunks in the hub's store"

    def get_cmd(self, path, out, *extra):
        return super().get_cmd(path, out, "--host-ca", self.relay.ca, *extra)

    def test_a_the_advertised_url_is_what_others_use(self):
        m = self.manifest("/big.bin")
        a, b = str(self.host_id("A")), str(self.host_id("B"))
        self.assertEqual(m["sources"][a]["url"], self.dead)
        self.assertEqual(m["hosts"][b], self.dead + "/b")
        self.assertTrue(m["sources"][a]["relay_url"].startswith("https://"))
        self.assertEqual(m["sources"][a]["label"], "A")

    def test_b_through_the_relay_when_the_direct_url_does_not_answer(self):
        p, out = self.get("/big.bin")
        rep = self.report(p)
        self.assertEqual(rep["sha256"], sha(self.blob))
        self.assertEqual(self.bytes_via(rep, "relay"), BIG, rep)
        os.unlink(out)

    def test_c_a_relay_url_revoked_mid_download(self):
        out = os.path.join(self.tmp, "revoked.bin")
        a = self.host_id("A")
        slug_url = self.manifest("/big.bin")["sources"][str(a)]["relay_url"]
        prefix = "https://127.0.0.1:%d" % self.relay.public_port

        def revoke():
            self.hub.cli("host", "revoke-url", str(a))
            wait_for(lambda: self.relay.request(slug_url[len(prefix):] + "healthz")[0] == 404,
                     60, "the relay refusing A's revoked URL")
        rep = self.interrupt_mid_download("/big.bin", out, revoke)
        self.assertEqual(rep["sha256"], sha(self.blob))
        self.assertEqual(file_sha(out), sha(self.blob))
        by = {s.get("host_id"): s["bytes"] for s in rep["sources"]}
        self.assertGreater(by.get(self.host_id("B"), 0), 0, rep)
        self.assertLess(by.get(a, 0), BIG, rep)
        self.assertEqual(sum(by.values()), BIG)
        os.unlink(out)


class TLSHost(Host):
    """A host whose content server speaks HTTPS with a self-signed certificate."""

    def __init__(self, *a, cert=None, key=None, **kw):
        super().__init__(*a, **kw)
        self.cert, self.key = cert, key

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self):
        import http.client
        import ssl
        self.extra_args = ["--tls-cert", self.cert, "--tls-key", self.key]
        real = http.client.HTTPConnection
        ctx = ssl.create_default_context(cafile=self.cert)
        http.client.HTTPConnection = lambda host, port, timeout=None: \
            http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        try:
            super().start()  # waits for /healthz, over HTTPS
        finally:
            http.client.HTTPConnection = real


class TLSTest(PickerBase):
    @classmethod
    def start_all(cls):
        cls.cert = os.path.join(cls.tmp, "host.pem")
        cls.key = os.path.join(cls.tmp, "host.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True,
                       capture_output=True)
        cls.hub.start()
        cls.hub.login_cli()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.A = TLSHost(cls.hub, cls.tmp, "A", cert=cls.cert, key=cls.key)
        cls.A.join()
        cls.A.start()
        cls.hosts = [cls.A]
        cls.data = os.urandom(5 << 20)
        with open(cls.A.path("t.bin"), "wb") as f:
            f.write(cls.data)
        wait_for(lambda: cls.api("GET", "/info?path=" + q("/t.bin"))[1].get("hash") ==
                 sha(cls.data), 120, "t.bin on the hub", cls.hosts)
        wait_for(lambda: all(c["hosts"] for c in cls.manifest("/t.bin")["chunks"]), 120,
                 "A reporting t.bin's chunks", cls.hosts)

    def test_the_https_url_is_advertised(self):
        m = self.manifest("/t.bin")
        self.assertEqual(m["sources"][str(self.host_id("A"))]["url"], self.A.url)

    def test_verified_with_its_ca(self):
        p, out = self.get("/t.bin", "--host-ca", self.cert)
        rep = self.report(p)
        self.assertEqual(rep["sha256"], sha(self.data))
        self.assertEqual(self.bytes_via(rep, "host"), len(self.data), rep)
        os.unlink(out)

    def test_refused_without_it(self):
        p, out = self.get("/t.bin", "--verbose")
        rep = self.report(p)  # the hub still has it
        self.assertEqual(self.bytes_via(rep, "host"), 0, rep)
        self.assertEqual(self.bytes_via(rep, "hub"), len(self.data), rep)
        self.assertIn(b"did not answer", p.stderr)  # the TLS check failed: skipped
        os.unlink(out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
