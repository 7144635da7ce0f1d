"""The hub's streams when an online holder fails (issue 15): a workspace in
`hosts` mode with hub_cache_bytes 0, two hosts holding multi-chunk files the
hub's store never had. Each host advertises a proxy of the test's (FaultProxy)
that forwards the hub's chunk requests to it, or does to the next ones what a
failing host does: refuses, resets the connection midway, serves wrong bytes,
accepts and stalls (before or after its first bytes). A ZIP and a share-link
download that meet a fault midway go on from the other holder and end whole,
verified; a stall is given up after a few seconds, never a hang. A host killed
(SIGKILL) mid-ZIP and mid-download leaves the rest to the other. With one
holder online and failing, a ZIP is a 503 with Retry-After and detail.holders
before its first byte, and a fault past the first byte cuts it, never a
wrong byte."""
import hashlib
import http.client
import io
import json
import os
import socket
import struct
import threading
import time
import unittest
import urllib.parse
import zipfile

import harness
from harness import HubTest, main, q, wait_for

MODES = ("refuse", "reset_mid", "corrupt", "stall", "stall_mid")
# A holder that stalls (no byte) is given up within a few seconds: a stream
# that met one takes at most this much longer than the same stream unharmed.
STALL_EXTRA_S = 8


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Faults:
    """What the proxies do to the next chunk requests they get, whichever
    proxy gets them: `left` requests (-1: all) get `mode`."""

    def __init__(self):
        self.mu = threading.Lock()
        self.mode, self.left, self.only = None, 0, None
        self.hits = []      # (label, mode) of each faulted request
        self.served = []    # label of each chunk request forwarded whole

    def arm(self, mode, count=1, only=None):
        with self.mu:
            self.mode, self.left, self.only = mode, count, only
            self.hits = []

    def disarm(self):
        with self.mu:
            self.mode, self.left = None, 0

    def take(self, label):
        with self.mu:
            if not self.left or (self.only and label != self.only):
                return None
            if self.left > 0:
                self.left -= 1
            self.hits.append((label, self.mode))
            return self.mode


class FaultProxy:
    """A listener standing in for a host's advertised URL. Each request goes
    to the host with Connection: close, and its answer back, unless Faults
    says otherwise for a chunk request."""

    def __init__(self, label, target_port, faults):
        self.label, self.target, self.faults = label, target_port, faults
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []  # stalled connections, closed at close()
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass

    def accept_loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    @staticmethod
    def reset(c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def stall(self, c):
        self.held.append(c)  # never answered; the hub must give up

    def handle(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            got = c.recv(65536)
            if not got:
                c.close()
                return
            head += got
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        is_chunk = lines[0].startswith(b"GET ") and b"/chunks/" in lines[0]
        lines = [ln for ln in lines if not ln.lower().startswith(b"connection:")]
        head = b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n"
        mode = self.faults.take(self.label) if is_chunk else None
        if mode == "refuse":
            self.reset(c)
            return
        if mode == "stall":
            self.stall(c)
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:  # the host is gone: as its own port would, refuse
            self.reset(c)
            return
        up.settimeout(None)
        up.sendall(head + rest)

        def pump_up():  # a request body (a host's POST), if any
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    up.sendall(b)
            except OSError:
                pass
        if not is_chunk:  # (a chunk GET has none: c is this thread's alone, so a reset is one)
            threading.Thread(target=pump_up, daemon=True).start()
        sent, body_at, flipped = 0, None, False
        buf = b""
        try:
            while True:
                b = up.recv(65536)
                if not b:
                    break
                if body_at is None:
                    buf += b
                    if b"\r\n\r\n" in buf:
                        body_at = buf.index(b"\r\n\r\n") + 4
                        b, buf = buf, b""
                    else:
                        continue
                if mode == "corrupt" and not flipped and sent + len(b) > body_at + 1000:
                    i = body_at + 1000 - sent
                    b = b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]
                    flipped = True
                if mode in ("reset_mid", "stall_mid") and sent + len(b) > body_at + 65536:
                    c.sendall(b[:body_at + 65536 - sent])
                    if mode == "reset_mid":
                        self.reset(c)
                    else:
                        self.stall(c)
                    up.close()
                    return
                c.sendall(b)
                sent += len(b)
            if is_chunk and not mode:
                with self.faults.mu:
                    self.faults.served.append(self.label)
        except OSError:
            pass
        up.close()
        c.close()


class FailoverTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.faults = Faults()
        cls.proxies = {}
        cls.A = harness.Host(cls.hub, cls.tmp, "A")
        cls.B = harness.Host(cls.hub, cls.tmp, "B")
        for h in (cls.A, cls.B):
            p = FaultProxy(h.label, h.port, cls.faults)
            cls.proxies[h.label] = p
            h.extra_args = ["--advertise-url", p.url]
            h.join()
            h.start()
        cls.set_hosts_mode()
        # Multi-chunk files (4 MiB chunks at most); 'a.bin' comes first in a ZIP.
        cls.files = {"/d/a.bin": os.urandom(24 << 20), "/d/b.bin": os.urandom(9 << 20),
                     "/d/c.txt": b"small\n" * 1000}
        os.makedirs(cls.A.path("/d"), exist_ok=True)
        for path, data in cls.files.items():
            with open(cls.A.path(path), "wb") as f:
                f.write(data)
        for path, data in cls.files.items():
            wait_for(lambda: cls.on_both(path, data), 120, "%s on both hosts" % path,
                     [cls.A, cls.B])
        st, link, payload, _ = cls.hub.request(
            "POST", "/api/v1/workspaces/%d/shares" % cls.ws, {"path": "/d"}, token=cls.token)
        assert st == 201, payload
        cls.link = link["url"]

    @classmethod
    def tearDownClass(cls):
        for p in cls.proxies.values():
            p.close()
        super().tearDownClass()

    @classmethod
    def set_hosts_mode(cls):
        def learnt(h):
            with open(h.log_path, "rb") as f:
                return f.read().decode(errors="replace").count("keeps its bytes on hosts")
        seen = {h.label: learnt(h) for h in (cls.A, cls.B)}
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws,
                                            {"storage": "hosts", "hub_cache_bytes": 0},
                                            token=cls.token)
        assert st == 200, payload
        for h in (cls.A, cls.B):
            wait_for(lambda: learnt(h) > seen[h.label], 30,
                     "host %s to learn storage 'hosts'" % h.label, [h])

    @classmethod
    def chunks_of(cls, path):
        st, info, _, _ = cls.hub.request(
            "GET", "/api/v1/workspaces/%d/manifest?path=%s" % (cls.ws, q(path)), token=cls.token)
        return info["chunks"] if st == 200 else []

    @classmethod
    def on_both(cls, path, data):
        for h in (cls.A, cls.B):
            try:
                with open(h.path(path), "rb") as f:
                    if sha(f.read()) != sha(data):
                        return False
            except OSError:
                return False
        chunks = cls.chunks_of(path)
        return bool(chunks) and all(len(c["hosts"]) == 2 for c in chunks)

    def setUp(self):
        self.faults.disarm()
        for h in (self.A, self.B):
            if not h.running():
                h.start()
        wait_for(lambda: self.online() == {"A", "B"}, 30, "both hosts online", [self.A, self.B])

    def tearDown(self):
        self.faults.disarm()

    def online(self):
        st, body, _, _ = self.api("GET", "/hosts")
        return {x["label"] for x in body["hosts"] if x["status"] == "online"}

    def hub_objects(self):
        found = set()
        for _, _, names in os.walk(os.path.join(self.hub.data, "objects")):
            found.update(names)
        hashes = {c["hash"] for p in self.files for c in self.chunks_of(p)}
        return len(found & hashes)

    def open(self, url):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        conn.request("GET", u.path + ("?" + u.query if u.query else ""))
        return conn, conn.getresponse()

    def clean_read(self, url):
        """GET url, no fault: (its bytes, seconds taken) — the baseline."""
        t0 = time.monotonic()
        conn, resp = self.open(url)
        self.assertEqual(resp.status, 200)
        data = resp.read()
        conn.close()
        return data, time.monotonic() - t0

    def read_with(self, url, mode, after=4 << 20):
        """GET url; once `after` bytes are read, arm one `mode` fault (the next
        chunk request the hub makes of either host); read the rest. It may
        take at most STALL_EXTRA_S longer than an unharmed read."""
        _, base = self.clean_read(url)
        t0 = time.monotonic()
        conn, resp = self.open(url)
        if resp.status != 200:
            self.fail("%d: %r" % (resp.status, resp.read(300)))
        data = resp.read(after)
        self.faults.arm(mode, 1)
        data += resp.read()
        conn.close()
        took = time.monotonic() - t0
        self.assertEqual(len(self.faults.hits), 1,
                         "the fault was met (%s; served %s)" % (self.faults.hits,
                                                                self.faults.served[-5:]))
        self.assertLess(took, base + STALL_EXTRA_S,
                        "%s: a bounded wait, then the next holder (unharmed: %.1f s)" % (mode, base))
        return data

    def assertSame(self, got, want):
        """got is want; else where they part (not megabytes of bytes)."""
        if got == want:
            return
        at = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y),
                  min(len(got), len(want)))
        self.fail("%d bytes, want %d; they differ from offset %d" % (len(got), len(want), at))

    def check_zip(self, data):
        z = zipfile.ZipFile(io.BytesIO(data))
        self.assertIsNone(z.testzip())
        self.assertEqual(sorted(z.namelist()), ["a.bin", "b.bin", "c.txt"])
        for path, want in self.files.items():
            self.assertEqual(sha(z.read(os.path.basename(path))), sha(want), path)

    # ---- a fault midway, the other holder online ----

    def test_a_zip_meeting_each_fault_midway_unzips_whole(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                self.check_zip(self.read_with(self.link + "/zip", mode))
        self.assertEqual(self.hub_objects(), 0, "hub_cache_bytes 0: nothing kept")

    def test_b_a_share_download_meeting_each_fault_midway_ends_whole(self):
        url = self.link + "/file?path=" + q("/a.bin")
        for mode in MODES:
            with self.subTest(mode=mode):
                data = self.read_with(url, mode)
                self.assertSame(data, self.files["/d/a.bin"])

    def test_c_a_fault_at_the_first_byte_is_met_before_the_headers(self):
        # The first chunk request fails: the other holder serves it; 200, whole.
        for mode in ("corrupt", "stall"):
            for url in (self.link + "/zip", self.link + "/file?path=" + q("/a.bin")):
                with self.subTest(mode=mode, url=url):
                    _, base = self.clean_read(url)
                    self.faults.arm(mode, 1)
                    t0 = time.monotonic()
                    conn, resp = self.open(url)
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(len(self.faults.hits), 1, "met before the headers")
                    data = resp.read()
                    conn.close()
                    self.assertLess(time.monotonic() - t0, base + STALL_EXTRA_S)
                    if url.endswith("/zip"):
                        self.check_zip(data)
                    else:
                        self.assertEqual(sha(data), sha(self.files["/d/a.bin"]))

    # ---- the serving host killed ----

    def test_d_serving_host_killed_mid_zip_and_mid_download(self):
        for url in (self.link + "/zip", self.link + "/file?path=" + q("/a.bin")):
            with self.subTest(url=url):
                self.setUp()
                conn, resp = self.open(url)
                self.assertEqual(resp.status, 200)
                data = resp.read(4 << 20)
                victim = self.A if self.faults.served[-1] == "A" else self.B
                other = self.B if victim is self.A else self.A
                before = self.faults.served.count(other.label)
                victim.kill()
                data += resp.read()
                conn.close()
                if url.endswith("/zip"):
                    self.check_zip(data)
                else:
                    self.assertEqual(sha(data), sha(self.files["/d/a.bin"]))
                self.assertGreater(self.faults.served.count(other.label), before,
                                   "the rest came from %s" % other.label)

    # ---- one holder online, and it fails ----

    def only_a_online(self):
        self.B.stop()
        wait_for(lambda: self.online() == {"A"}, 30, "only A online", [self.A])

    def test_e_the_only_holder_failing_before_the_first_byte_is_a_503(self):
        self.only_a_online()
        for mode in ("corrupt", "refuse", "stall"):
            for url in (self.link + "/zip", self.link + "/file?path=" + q("/a.bin"),
                        "%s/api/v1/workspaces/%d/zip?path=%s" % (self.hub.url, self.ws,
                                                                 q("/d"))):
                with self.subTest(mode=mode, url=url):
                    self.faults.arm(mode, -1)
                    u = urllib.parse.urlsplit(url)
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                    t0 = time.monotonic()
                    conn.request("GET", u.path + "?" + u.query,
                                 headers={"Authorization": "Bearer " + self.token})
                    resp = conn.getresponse()
                    body = resp.read()
                    conn.close()
                    self.assertLess(time.monotonic() - t0, STALL_EXTRA_S)
                    self.assertEqual(resp.status, 503, body[:300])
                    self.assertGreater(int(resp.getheader("Retry-After")), 0)
                    err = json.loads(body)["error"]
                    self.assertEqual(err["code"], "chunk_unavailable")
                    self.assertIn("A", [h["label"] for h in err["detail"]["holders"]])
                    self.assertTrue(self.faults.hits, "A was asked")
        # Disarmed, the same ZIP is whole again.
        self.faults.disarm()
        conn, resp = self.open(self.link + "/zip")
        self.assertEqual(resp.status, 200)
        self.check_zip(resp.read())
        conn.close()

    def test_f_the_only_holder_failing_midway_cuts_the_zip_never_a_wrong_byte(self):
        self.only_a_online()
        conn, resp = self.open(self.link + "/zip")
        self.assertEqual(resp.status, 200)
        total = int(resp.getheader("Content-Length"))
        data = resp.read(4 << 20)
        self.faults.arm("corrupt", -1)
        with self.assertRaises(http.client.IncompleteRead) as cm:
            resp.read()
        conn.close()
        data += cm.exception.partial
        self.assertLess(len(data), total)
        self.assertTrue(self.faults.hits)
        # a.bin is the first member: its bytes as far as they came are a.bin's.
        name = b"a.bin"
        self.assertEqual(data[:4], b"PK\x03\x04")
        start = 30 + len(name) + 20
        got = data[start:start + len(self.files["/d/a.bin"])]
        self.assertGreater(len(got), 0)
        self.assertEqual(got, self.files["/d/a.bin"][:len(got)])


if __name__ == "__main__":
    main()
