"""`roost serve --host-ca` (issue 15): the CA bundle the hub trusts when it
fetches chunks from hosts and relays. A 'hosts' workspace (cache 0) whose
files are pointer commits held only by hosts the hub reaches over TLS with
self-signed certificates:

- host A's content server runs HTTPS (--tls-cert/--tls-key, self-signed);
- host B's direct URL is dead (--advertise-url): the hub reaches it only
  through its relay URL (the relay's self-signed CA).

Without --host-ca the hub cannot verify either: a quick 503 chunk_unavailable,
not a hang. With a bundle of both CAs it serves every byte, verified; so does
the replicate job (`roost admin replicate --host-ca`), which pulls a
single-holder file past replica_grace_s into the hub."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import ROOST, Host, Hub, Relay, free_port, q, wait_for
from test_storage_picker import TLSHost


def sha(b):
    return hashlib.sha256(b).hexdigest()


class HostCATest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-hostca-")
        cls.hub = Hub(cls.tmp)
        cls.relay = None
        cls.hosts = []
        try:
            cls.start_all()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_all(cls):
        cls.cert = os.path.join(cls.tmp, "host.pem")
        key = os.path.join(cls.tmp, "host.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cls.cert], check=True, capture_output=True)
        cls.hub.start()
        cls.hub.login_cli()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.relay = Relay(cls.hub, cls.tmp)
        cls.relay.start()
        # The bundle the hub is given: both self-signed CAs.
        cls.bundle = os.path.join(cls.tmp, "hosts-ca.pem")
        with open(cls.bundle, "wb") as out:
            for p in (cls.cert, cls.relay.ca):
                with open(p, "rb") as f:
                    out.write(f.read())
        cls.A = TLSHost(cls.hub, cls.tmp, "A", cert=cls.cert, key=key)
        cls.A.join(folders=["/a"])
        cls.B = Host(cls.hub, cls.tmp, "B", relay=cls.relay)
        cls.B.extra_args = ["--advertise-url", "http://127.0.0.1:%d" % free_port()]
        cls.B.join(folders=["/b"])
        cls.hosts = [cls.A, cls.B]
        for h in cls.hosts:
            h.start()
        wait_for(lambda: cls.host_row("B").get("tunnel_url"), 60, "B's relay URL", cls.hosts)
        cls.set_hosts_mode()
        cls.a_data = os.urandom(3 << 20)
        cls.b_data = os.urandom(3 << 20)
        cls.write(cls.A, "/a/t.bin", cls.a_data)
        cls.write(cls.B, "/b/r.bin", cls.b_data)

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

    # ---- helpers ----

    @classmethod
    def api(cls, method, rel, body=None):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=cls.token)

    @classmethod
    def host_row(cls, label):
        st, body, _, _ = cls.api("GET", "/hosts")
        return next((h for h in body.get("hosts", []) if h["label"] == label), {}) \
            if st == 200 else {}

    @classmethod
    def set_hosts_mode(cls):
        def learnt(h):
            with open(h.log_path, "rb") as f:
                return f.read().decode(errors="replace").count("keeps its bytes on hosts")
        seen = {h.label: learnt(h) for h in cls.hosts}
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws,
                                            {"storage": "hosts", "hub_cache_bytes": 0},
                                            token=cls.token)
        assert st == 200, payload
        for h in cls.hosts:
            wait_for(lambda: learnt(h) > seen[h.label], 30,
                     "host %s to learn storage 'hosts'" % h.label, [h])

    @classmethod
    def chunks(cls, path):
        st, m, _, _ = cls.api("GET", "/manifest?path=" + q(path))
        return m["chunks"] if st == 200 else []

    @classmethod
    def write(cls, host, path, data):
        """A pointer commit by host: on the hub's list, held by host alone."""
        os.makedirs(os.path.dirname(host.path(path)), exist_ok=True)
        with open(host.path(path), "wb") as f:
            f.write(data)
        wait_for(lambda: cls.api("GET", "/info?path=" + q(path))[1].get("hash") == sha(data),
                 60, path + " on the hub", cls.hosts)
        wait_for(lambda: all(len(c["hosts"]) == 1 for c in cls.chunks(path) or [{"hosts": []}]),
                 60, host.label + " reporting " + path, cls.hosts)

    def hub_objects(self, path):
        store = set()
        for _, _, files in os.walk(os.path.join(self.hub.data, "objects")):
            store.update(files)
        return len({c["hash"] for c in self.chunks(path)} & store)

    def content(self, path):
        return self.api("GET", "/content?path=" + q(path))

    def restart_hub(self, *serve_args):
        self.hub.stop()
        self.hub.serve_args = list(serve_args)
        self.hub.start()
        wait_for(lambda: all(self.host_row(h.label).get("status") == "online"
                             for h in self.hosts), 30, "both hosts online again", self.hosts)

    # ---- tests ----

    def test_1_without_the_ca_a_quick_503(self):
        for path in ("/a/t.bin", "/b/r.bin"):
            self.assertEqual(self.hub_objects(path), 0, path)
            t0 = time.monotonic()
            st, body, payload, hdrs = self.content(path)
            self.assertLess(time.monotonic() - t0, 30, "a 503, not a hang")
            self.assertEqual(st, 503, payload[:300])
            self.assertEqual(body["error"]["code"], "chunk_unavailable", body)
        with open(os.path.join(self.hub.root, "hub.log"), "rb") as f:
            self.assertIn(b"did not serve chunk", f.read())

    def test_2_with_the_ca_every_byte_verified(self):
        self.restart_hub("--host-ca", self.bundle)
        for path, data in (("/a/t.bin", self.a_data), ("/b/r.bin", self.b_data)):
            st, _, payload, _ = self.content(path)
            self.assertEqual(st, 200, payload[:300])
            self.assertEqual(sha(payload), sha(data), path)
            self.assertEqual(self.hub_objects(path), 0, "hub_cache_bytes 0: nothing kept")
        # A share link goes the same way.
        st, link, _, _ = self.api("POST", "/shares", {"path": "/b/r.bin"})
        self.assertEqual(st, 201, link)
        with urllib.request.urlopen(link["url"] + "/file", timeout=60) as resp:
            self.assertEqual((resp.status, sha(resp.read())), (200, sha(self.b_data)))

    def test_3_a_bad_bundle_is_refused_at_start(self):
        p = subprocess.run([ROOST, "serve", "--data", self.hub.data, *self.hub.db_args(),
                            "--host-ca", os.path.join(self.tmp, "nope.pem"),
                            "--api-port", str(free_port()), "--content-port",
                            str(free_port()), "--dashboard-port", str(free_port())],
                           env=self.hub.env(), capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"--host-ca", p.stderr)

    def test_4_replicate_pulls_through_the_ca(self):
        """A single holder past replica_grace_s: the replicate job pulls a
        copy into the hub — over HTTPS from A, through the relay from B."""
        st, _, payload, _ = self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws,
                                            {"replica_grace_s": 1, "min_replicas": 2,
                                             "hub_cache_bytes": 1 << 30}, token=self.token)
        self.assertEqual(st, 200, payload)

        def pulled():
            p = subprocess.run([ROOST, "admin", "replicate", "--json", "--data",
                                self.hub.data, *self.hub.db_args(), "--host-ca", self.bundle],
                               env=self.hub.env(), capture_output=True, timeout=300)
            self.assertIn(p.returncode, (0, 1), p.stderr.decode())
            return all(self.hub_objects(path) == len(self.chunks(path))
                       for path in ("/a/t.bin", "/b/r.bin"))
        wait_for(pulled, 60, "replicate pulling both files into the hub", self.hosts,
                 interval=0.5)
        for path in ("/a/t.bin", "/b/r.bin"):
            for c in self.chunks(path):
                with open(os.path.join(self.hub.data, "objects", c["hash"][:2], c["hash"]),
                          "rb") as f:
                    self.assertEqual(sha(f.read()), c["hash"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
