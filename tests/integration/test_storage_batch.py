"""Small files between hosts, many to a request (issue 15's data plane):
- POST /chunks/batch on a host's content server: {"hashes": [...]} with the same bearer
  chunk token as GET /chunks/HASH; the answer is one frame per hash asked, in order:
  "HASH SIZE\\n" + SIZE bytes, or "HASH -\\n" for a chunk the host does not hold. More
  than 1024 hashes: 413 too_many; a malformed body or hash: 400; a bad or foreign token:
  401/403, as for GET /chunks/HASH.
- A few hundred small files written on A arrive on B with every byte right, fetched in
  batches from A (B's status counts chunks from a peer), not one request per file.
"""
import hashlib
import json
import os
import time

from harness import Host, HubTest, q, wait_for

MiB = 1 << 20


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp-write"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def frames(payload):
    """[(hash, bytes or None)] of a /chunks/batch answer."""
    out, pos = [], 0
    while pos < len(payload):
        nl = payload.index(b"\n", pos)
        hsh, size = payload[pos:nl].decode().split(" ")
        pos = nl + 1
        if size == "-":
            out.append((hsh, None))
        else:
            out.append((hsh, payload[pos:pos + int(size)]))
            pos += int(size)
    return out


class BatchTest(HubTest):
    N = 300

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            for label in ("A", "B"):
                h = Host(cls.hub, cls.tmp, label)
                cls.hosts.append(h)
                h.join()
                h.start()
            cls.A, cls.B = cls.hosts
            cls.files = {"/small/d%d/f%03d.txt" % (k % 3, k): os.urandom(1024 + (k * 37) % 3072)
                         for k in range(cls.N)}
            for rel, data in cls.files.items():
                write(cls.A.path(rel), data)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            h.stop()
        super().tearDownClass()

    def chunk_token(self, ws=None):
        st, resp, payload, _ = self.hub.request(
            "POST", "/api/v1/workspaces/%d/tokens" % (ws or self.ws),
            {"scope": "chunks", "expires_in": 300}, token=self.token)
        self.assertEqual(st, 201, payload[:300])
        return resp["token"]

    def batch(self, host, body, token=None, raw=None):
        return self.hub.request("POST", "/chunks/batch", body, token=token, raw=raw,
                                port=host.port,
                                headers={"Content-Type": "application/json"} if raw else None)

    def wait_all_on_b(self):
        def arrived():
            for rel, data in self.files.items():
                with open(self.B.path(rel), "rb") as f:
                    if f.read() != data:
                        return False
            return True
        def state():  # which files are wrong, and where they stand
            wrong = []
            for rel, data in self.files.items():
                try:
                    with open(self.B.path(rel), "rb") as f:
                        ok = f.read() == data
                except OSError:
                    ok = False
                if not ok:
                    st, info, _, _ = self.hub.request(
                        "GET", "/api/v1/workspaces/%d/files?path=%s" % (self.ws, q(rel)),
                        token=self.token)
                    wrong.append("%s: on A %s, on B %s, hub %s %s" % (
                        rel, os.path.exists(self.A.path(rel)), os.path.exists(self.B.path(rel)),
                        st, json.dumps(info)[:300]))
            return "%d small files on B; wrong: %d\n%s\nA %s\nB %s" % (
                self.N, len(wrong), "\n".join(wrong[:10]), self.A.status(), self.B.status())
        wait_for(arrived, 120, state, self.hosts, 0.1)

    def test_1_small_files_arrive_whole_fetched_in_batches(self):
        self.wait_all_on_b()
        for rel, data in self.files.items():  # every byte, and nothing half-written
            with open(self.B.path(rel), "rb") as f:
                self.assertEqual(sha(f.read()), sha(data), rel)
        leftovers = [n for d in ("d0", "d1", "d2")
                     for n in os.listdir(self.B.path("/small/" + d)) if n.startswith(".")]
        self.assertEqual(leftovers, [])
        chunks = self.B.status()["chunks"]
        self.assertGreaterEqual(chunks["from_peer"], self.N // 2, chunks)
        with open(self.B.log_path, errors="replace") as f:
            self.assertIn("small files from the workspace in one batch", f.read())
        # an edit on A of one of them arrives too (a second version, same path)
        rel = "/small/d0/f000.txt"
        new = os.urandom(2000)
        write(self.A.path(rel), new)
        self.files[rel] = new  # the class's: the next tests wait for this one
        wait_for(lambda: open(self.B.path(rel), "rb").read() == new, 60, rel, self.hosts)

    def test_2_batch_route_serves_verified_frames(self):
        self.wait_all_on_b()
        tok = self.chunk_token()
        want = [sha(d) for d in list(self.files.values())[1:6]]
        missing = "0" * 64
        st, _, payload, resp = self.batch(self.A, {"hashes": want + [missing, want[0]]}, tok)
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(resp.getheader("Content-Type"), "application/vnd.roost.chunks")
        got = frames(payload)
        self.assertEqual([h for h, _ in got], want + [missing, want[0]])
        for h, data in got:
            if h == missing:
                self.assertIsNone(data)
            else:
                self.assertEqual(sha(data), h)

    def test_3_batch_route_bad_input(self):
        tok = self.chunk_token()
        some = sha(next(iter(self.files.values())))
        self.assertError(self.batch(self.A, {"hashes": [some] * 1025}, tok), 413, "too_many")
        self.assertError(self.batch(self.A, {"hashes": [some] * 5000}, tok), 413, "too_many")
        for body in ({"hashes": []}, {"hashes": "x"}, {}, {"hashes": ["ABC"]},
                     {"hashes": [some.upper()]}, {"hashes": [some, 7]}):
            self.assertError(self.batch(self.A, body, tok), 400, "invalid_request")
        self.assertError(self.batch(self.A, None, tok, raw=b"{not json"), 400, "invalid_request")
        # the token: none, garbage, a read URL's token, another workspace's
        self.assertError(self.batch(self.A, {"hashes": [some]}), 401)
        self.assertError(self.batch(self.A, {"hashes": [some]}, "garbage"), 401)
        st, url, payload, _ = self.api("POST", "/urls", {"path": next(iter(self.files))})
        self.assertEqual(st, 201, payload[:300])
        self.assertError(self.batch(self.A, {"hashes": [some]}, url["token"]), 403)
        st, other, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "other"},
                                           token=self.token)
        self.assertEqual(st, 201, other)
        self.assertError(self.batch(self.A, {"hashes": [some]}, self.chunk_token(other["id"])),
                         403)
        # GET on the batch route is not a chunk either; the server still answers after all this
        st, _, _, _ = self.hub.request("GET", "/chunks/batch", token=tok, port=self.A.port)
        self.assertIn(st, (400, 404))
        st, _, payload, _ = self.batch(self.A, {"hashes": [some]}, tok)
        self.assertEqual(st, 200)
        self.assertEqual(frames(payload)[0][0], some)


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
