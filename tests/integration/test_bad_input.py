"""Bad input must be refused with the right status and error code, and must
change nothing: the usage counters, the recursive listing, the workspace's
change-feed sequence and the chunk store are compared before and after every
refused request (and, for chunk uploads, the chunk must still be reported
missing by the probe).

Each test class gets its own hub (harness.HubTest) with the same small fixture,
so one misbehaving case cannot spoil the others.

Run: ROOST_BIN=build-it/roost PYTHONPATH=tests/integration \
     python3 tests/integration/test_bad_input.py
"""
import base64
import hashlib
import http.client
import json
import os
import time

import subprocess
import tempfile
import unittest
import harness
from harness import q

MiB = 1024 * 1024
CHUNK_MAX = 4 * MiB    # the default workspace max chunk size
JSON_MAX = 16 * MiB    # the JSON body limit


def sha(data):
    return hashlib.sha256(data).hexdigest()


def commit_body(path, pieces, **override):
    """A version commit made of the chunks in pieces (a list of bytes)."""
    body = {"path": path, "size": sum(len(p) for p in pieces),
            "hash": sha(b"".join(pieces)),
            "chunks": [{"hash": sha(p), "size": len(p)} for p in pieces]}
    body.update(override)
    return body


def bad_paths(base):
    """Invalid spellings built around base ("dir/name"), so that a hub that
    normalized or truncated them instead of refusing would hit a real path."""
    first, rest = base.split("/", 1)
    return [
        ("dotdot_last", base + "/.."),
        ("dotdot_middle", first + "/../" + base),
        ("dotdot_leading", "/../" + base),
        ("dotdot_alone", ".."),
        ("dot_last", base + "/."),
        ("dot_middle", first + "/./" + rest),
        ("dot_alone", "."),
        # HUB BUG (see report): in a JSON body, "\u0000" is refused with
        # 400 invalid_json (jansson without JSON_ALLOW_NUL) instead of
        # 400 invalid_path; nothing changes. Query %00 gives invalid_path.
        ("nul_inside", base + "\x00.evil"),
        ("nul_end", base + "\x00"),
        ("nul_in_dir", first + "\x00/" + rest),
        ("ctrl_soh", base + "\x01"),
        ("ctrl_newline", base + "\nx"),
        ("ctrl_cr", base + "\rx"),
        ("ctrl_tab", base + "\tx"),
        ("ctrl_unit_sep", base + "\x1f"),
        ("ctrl_del", base + "\x7f"),
        ("ctrl_escape", "\x1b" + base),
        ("empty_middle", first + "//" + rest),
        ("empty_leading", "//" + base),
        # Regression guard: at commit 356af6f path_normalize accepted "a//" as
        # "/a" (so DELETE ?path=docs/sub// deleted docs/sub); fixed in
        # src/core/path.c since.
        ("empty_trailing", base + "//"),
        ("name_256_bytes", base + "/" + "n" * 256),
        ("name_256_bytes_utf8", base + "/" + "\u00e9" * 128),  # 128 chars, 256 bytes
        ("path_4097_bytes", "/" + "/".join(["x" * 240] * 17)),
        ("path_over_4096", base + "/" + "/".join(["y" * 250] * 20)),
    ]


assert len(bad_paths("a/b")[-2][1].encode()) == 4097


class BadInputTest(harness.HubTest):
    """HubTest plus a fixture and the helpers to prove nothing changed.

    Fixture: folders /docs, /docs/sub, /empty; /docs/a.txt committed from two
    chunks over the chunk protocol; /b.bin uploaded in one stream."""

    A1 = b"alpha one " * 300
    A2 = b"alpha two " * 200
    B = bytes(range(256)) * 64

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.build_fixture()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def build_fixture(cls):
        def api(method, rel, body=None, **kw):
            return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                                   token=cls.token, **kw)

        for path in ("docs/sub", "empty"):
            st, body, payload, _ = api("POST", "/folders", {"path": path, "parents": True})
            assert st == 201, (st, payload)
        for piece in (cls.A1, cls.A2):
            st, _, payload, _ = api("PUT", "/chunks/" + sha(piece), raw=piece)
            assert st == 201, (st, payload)
        st, _, payload, _ = api("POST", "/versions", commit_body("docs/a.txt", [cls.A1, cls.A2]))
        assert st == 201, (st, payload)
        st, _, payload, _ = api("PUT", "/upload?path=" + q("b.bin"), raw=cls.B)
        assert st == 201, (st, payload)

    def tearDown(self):
        # A crash shows up here, attributed to the test that caused it.
        rc = self.hub.proc.poll() if self.hub.proc else "not running"
        if rc is not None:
            self.fail("the hub exited (%s) during this test; see %s" % (rc, self.hub.log.name))

    # ---- requests ----

    def ws_url(self, rel, ws=None):
        return "/api/v1/workspaces/%s%s" % (self.ws if ws is None else ws, rel)

    def ok(self, result, status=200):
        st, body, payload, _ = result
        self.assertEqual(st, status, payload[:300])
        return body

    def put_chunk(self, data, hash=None, **kw):
        return self.api("PUT", "/chunks/" + (hash or sha(data)), raw=data,
                        headers={"Content-Type": "application/octet-stream"}, **kw)

    def missing(self, hashes):
        return self.ok(self.api("POST", "/chunks/missing", {"hashes": list(hashes)}))["missing"]

    def send_body(self, method, url, data, headers=None, chunked=False, token=True):
        """Send a large body, tolerating a hub that answers early and closes:
        stop sending on a broken pipe, a reset or a stall, then read the answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.api_port, timeout=20)
        conn.putrequest(method, url, skip_accept_encoding=True)
        h = {}
        if token:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        else:
            h["Content-Length"] = str(len(data))
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders()
        interrupted = None
        try:
            step = 256 * 1024
            for off in range(0, len(data), step):
                piece = data[off:off + step]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as e:
            interrupted = e  # the hub answered early and stopped reading
        try:
            resp = conn.getresponse()
            payload = resp.read()
        except (ConnectionError, http.client.HTTPException, TimeoutError) as e:
            self.fail("no response from the hub (sending %s): %r" % (
                "was cut off: %r" % interrupted if interrupted else "completed", e))
        finally:
            conn.close()
        parsed = None
        if resp.getheader("Content-Type", "").startswith("application/json") and payload:
            parsed = json.loads(payload)
        return resp.status, parsed, payload, resp

    # ---- state ----

    def tree(self):
        """Every entry under the root, by path, as the list endpoint shows it."""
        out, todo = {}, ["/"]
        while todo:
            body = self.ok(self.api("GET", "/list?path=" + q(todo.pop())))
            for e in body["entries"]:
                out[e["path"]] = e
                if e["type"] == "folder":
                    todo.append(e["path"])
        return out

    def objects(self):
        root = os.path.join(self.hub.data, "objects")
        found = []
        for d, dirs, files in os.walk(root):
            if os.path.relpath(d, root).split(os.sep)[0] == "tmp":
                continue
            found.extend(files)
        return sorted(found)

    def snapshot(self):
        usage = self.ok(self.api("GET", "/usage"))
        wss = self.ok(self.hub.request("GET", "/api/v1/workspaces", token=self.token))
        seq = [w["last_seq"] for w in wss["workspaces"] if w["id"] == self.ws]
        return {"usage": usage, "tree": self.tree(), "last_seq": seq,
                "stored_objects": self.objects()}

    def assertUnchanged(self, before, what=""):
        after = self.snapshot()
        for key in before:
            self.assertEqual(after[key], before[key], "%s changed after %s" % (key, what))

    def assertTmpDrains(self):
        tmp = os.path.join(self.hub.data, "objects", "tmp")
        deadline = time.time() + 30  # a loaded machine
        while os.listdir(tmp) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(tmp), [], "a refused upload left a temporary file")

    def assertFixtureIntact(self):
        tree = self.tree()
        for p in ("/docs", "/docs/sub", "/empty", "/docs/a.txt", "/b.bin"):
            self.assertIn(p, tree)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("docs/a.txt"))
        self.assertEqual(st, 200)
        self.assertEqual(payload, self.A1 + self.A2)

    def refused(self, result, status, code=None, before=None, what=""):
        """Assert the status, then (with before) that nothing changed, then the
        error body and code (so a wrong code alone still proves nothing changed)."""
        st, _, payload, _ = result
        self.assertEqual(st, status, payload[:300])
        if before is not None:
            self.assertUnchanged(before, what)
        self.assertError(result, status, code)


# ---------------------------------------------------------------- JSON bodies

class JsonBodyTests(BadInputTest):
    ENDPOINTS = ["/folders", "/move", "/versions", "/chunks/missing"]

    def post_raw(self, rel, raw, **kw):
        return self.api("POST", rel, raw=raw, headers={"Content-Type": "application/json"}, **kw)

    def test_malformed_json(self):
        bodies = [b"{", b'{"path": "zz", "parents": true', b'{"path": }', b"{'path': 'zz'}",
                  b'{"path": "zz",}', b"path=zz", b'{"path": "zz"} trailing', b'{"path": "zz"}}',
                  b"\xff\xfe{}", b'{"path": "z\xffz"}', b""]
        for rel in self.ENDPOINTS:
            for raw in bodies:
                with self.subTest(endpoint=rel, body=raw[:40]):
                    before = self.snapshot()
                    self.refused(self.post_raw(rel, raw), 400, "invalid_json", before,
                                 "POST %s %r" % (rel, raw))
        for raw in bodies:
            with self.subTest(endpoint="/api/v1/login", body=raw[:40]):
                st, body, payload, _ = self.hub.request(
                    "POST", "/api/v1/login", raw=raw, headers={"Content-Type": "application/json"})
                self.assertError((st, body, payload, None), 400, "invalid_json")

    def test_non_object_json(self):
        bodies = [b"[]", b'[{"path": "zz", "parents": true}]', b'"zz"', b"42", b"null", b"true",
                  b"3.5"]
        for rel in self.ENDPOINTS:
            for raw in bodies:
                with self.subTest(endpoint=rel, body=raw):
                    before = self.snapshot()
                    self.refused(self.post_raw(rel, raw), 400, None, before,
                                 "POST %s %r" % (rel, raw))
        for raw in bodies:
            with self.subTest(endpoint="/api/v1/login", body=raw):
                st, body, payload, _ = self.hub.request(
                    "POST", "/api/v1/login", raw=raw, headers={"Content-Type": "application/json"})
                self.assertError((st, body, payload, None), 400)

    def big_json(self, size):
        head, tail = b'{"path": "bigjson", "parents": true, "pad": "', b'"}'
        data = head + b"a" * (size - len(head) - len(tail)) + tail
        assert len(data) == size
        return data

    def test_oversized_json(self):
        data = self.big_json(JSON_MAX + 1)
        for chunked in (False, True):
            with self.subTest(transfer="chunked" if chunked else "content-length"):
                before = self.snapshot()
                result = self.send_body("POST", self.ws_url("/folders"), data,
                                        {"Content-Type": "application/json"}, chunked=chunked)
                self.refused(result, 413, "body_too_large", before, "a 16 MiB + 1 JSON body")
                self.assertNotIn("/bigjson", self.tree())
        with self.subTest(transfer="content-length, much larger"):
            before = self.snapshot()
            result = self.send_body("POST", self.ws_url("/folders"), self.big_json(40 * MiB),
                                    {"Content-Type": "application/json"})
            self.refused(result, 413, "body_too_large", before, "a 40 MiB JSON body")
        # The hub still works afterwards.
        self.ok(self.api("GET", "/usage"))

    def test_oversized_json_login(self):
        result = self.send_body("POST", "/api/v1/login", self.big_json(JSON_MAX + 1),
                                {"Content-Type": "application/json"}, token=False)
        self.assertError(result, 413, "body_too_large")


# ---------------------------------------------------------------- chunks

class ChunkTests(BadInputTest):

    def test_chunk_hash_mismatch(self):
        claimed = b"the bytes the client meant " * 10
        sent = b"the bytes that arrived " * 10
        before = self.snapshot()
        self.refused(self.put_chunk(sent, hash=sha(claimed)), 422, "hash_mismatch", before,
                     "a chunk whose bytes don't match its hash")
        # Stored neither under the claimed hash nor under the hash of the bytes sent.
        self.assertEqual(self.missing([sha(claimed), sha(sent)]), [sha(claimed), sha(sent)])
        self.assertTmpDrains()
        # A chunk PUT of a single flipped byte of a fixture chunk.
        flipped = bytearray(self.A1)
        flipped[100] ^= 1
        new_hash = sha(b"fresh chunk for the mismatch test")
        self.refused(self.put_chunk(bytes(flipped), hash=new_hash), 422, "hash_mismatch",
                     before, "a chunk with one flipped byte")
        self.assertEqual(self.missing([new_hash]), [new_hash])
        # Wrong bytes under the hash of a chunk the hub already holds: refused,
        # and the held chunk is not overwritten.
        self.refused(self.put_chunk(bytes(flipped), hash=sha(self.A1)), 422, "hash_mismatch",
                     before, "wrong bytes for a held chunk")
        st, _, payload, _ = self.api("GET", "/chunks/" + sha(self.A1))
        self.assertEqual((st, payload), (200, self.A1))
        self.assertTmpDrains()
        # Sanity: the right bytes under the same hash are accepted.
        self.ok(self.put_chunk(claimed), 201)
        self.assertEqual(self.missing([sha(claimed)]), [])

    def test_chunk_empty_body(self):
        before = self.snapshot()
        self.refused(self.put_chunk(b"", hash=sha(b"")), 400, None, before, "an empty chunk")
        self.assertEqual(self.missing([sha(b"")]), [sha(b"")])
        self.assertTmpDrains()

    def test_chunk_over_max_size(self):
        data = b"\x5a" * (CHUNK_MAX + 1)
        h = sha(data)
        for chunked in (False, True):
            with self.subTest(transfer="chunked" if chunked else "content-length"):
                before = self.snapshot()
                result = self.send_body("PUT", self.ws_url("/chunks/" + h), data,
                                        {"Content-Type": "application/octet-stream"},
                                        chunked=chunked)
                self.refused(result, 413, "body_too_large", before, "a 4 MiB + 1 chunk")
                self.assertEqual(self.missing([h]), [h])
                self.assertTmpDrains()
        # Sanity: exactly the max is accepted.
        data = b"\x5b" * CHUNK_MAX
        self.ok(self.send_body("PUT", self.ws_url("/chunks/" + sha(data)), data), 201)
        self.assertEqual(self.missing([sha(data)]), [])

    BAD_IDS = [("uppercase", lambda h: h.upper()), ("short", lambda h: h[:63]),
               ("long", lambda h: h + "0"), ("non_hex", lambda h: "g" + h[1:]),
               ("empty_looking", lambda h: "0"), ("dots", lambda h: ".."),
               ("spaces", lambda h: "%20" * 64), ("sha1", lambda h: hashlib.sha1(b"x").hexdigest()),
               ("hex_prefixed", lambda h: "0x" + h[:62]), ("missing", lambda h: "missing")]

    def test_bad_chunk_id_put(self):
        data = b"a chunk sent under a bad id " * 5
        for label, bad in self.BAD_IDS:
            with self.subTest(id=label):
                before = self.snapshot()
                self.refused(self.put_chunk(data, hash=bad(sha(data))), 400, None, before,
                             "PUT chunks/%s" % label)
                self.assertEqual(self.missing([sha(data)]), [sha(data)])
                self.assertTmpDrains()

    def test_bad_chunk_id_get(self):
        real = sha(self.A1)
        for label, bad in self.BAD_IDS:
            with self.subTest(id=label):
                before = self.snapshot()
                self.refused(self.api("GET", "/chunks/" + bad(real)), 400, None, before,
                             "GET chunks/%s" % label)
        # Sanity: the real chunk is served.
        st, _, payload, _ = self.api("GET", "/chunks/" + real)
        self.assertEqual((st, payload), (200, self.A1))

    def test_bad_probe(self):
        for body in ({}, {"hashes": "abc"}, {"hashes": [sha(b"x").upper()]},
                     {"hashes": [sha(b"x"), 5]}, {"hashes": [sha(b"x")[:10]]}):
            with self.subTest(body=body):
                self.assertError(self.api("POST", "/chunks/missing", body), 400)


# ---------------------------------------------------------------- commits

class CommitTests(BadInputTest):

    def test_commit_missing_chunks(self):
        absent1 = b"never uploaded, first " * 20
        absent2 = b"never uploaded, second " * 20
        body = commit_body("docs/new.txt", [self.A1, absent1, self.A2, absent2])
        before = self.snapshot()
        result = self.api("POST", "/versions", body)
        self.refused(result, 409, "missing_chunks", before, "a commit naming absent chunks")
        missing = result[1]["error"].get("missing")
        self.assertIsInstance(missing, list, result[2][:300])
        self.assertEqual(sorted(missing), sorted([sha(absent1), sha(absent2)]))
        self.assertEqual(len(missing), 2)
        # The same over an existing file: no new version.
        self.refused(self.api("POST", "/versions",
                              commit_body("docs/a.txt", [absent1])), 409, "missing_chunks",
                     before, "a commit over an existing file naming an absent chunk")
        # Sanity: upload what was missing and the same commit now works.
        for piece in (absent1, absent2):
            self.ok(self.put_chunk(piece), 201)
        created = self.ok(self.api("POST", "/versions", body), 201)
        self.assertEqual(created["version"], 1)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("docs/new.txt"))
        self.assertEqual((st, payload), (200, self.A1 + absent1 + self.A2 + absent2))
        after = self.snapshot()
        self.assertEqual(after["usage"]["files"], before["usage"]["files"] + 1)

    def test_commit_sizes_dont_add_up(self):
        pieces = [self.A1, self.A2]
        total = len(self.A1) + len(self.A2)
        cases = [("size_too_big", commit_body("docs/c.txt", pieces, size=total + 1)),
                 ("size_too_small", commit_body("docs/c.txt", pieces, size=total - 1)),
                 ("size_zero", commit_body("docs/c.txt", pieces, size=0)),
                 ("over_existing", commit_body("docs/a.txt", pieces, size=total + 7))]
        # The chunks add up to size, but a chunk is not the size the client claims.
        wrong = commit_body("docs/c.txt", pieces)
        wrong["chunks"][0]["size"] += 1
        wrong["chunks"][1]["size"] -= 1
        cases.append(("chunk_size_wrong", wrong))
        for label, body in cases:
            with self.subTest(case=label):
                before = self.snapshot()
                self.refused(self.api("POST", "/versions", body), 422, None, before, label)

    def test_commit_malformed_fields(self):
        base = commit_body("docs/c.txt", [self.A1])
        cases = [("no_path", {k: v for k, v in base.items() if k != "path"}),
                 ("no_size", {k: v for k, v in base.items() if k != "size"}),
                 ("no_hash", {k: v for k, v in base.items() if k != "hash"}),
                 ("no_chunks", {k: v for k, v in base.items() if k != "chunks"}),
                 ("size_string", dict(base, size=str(base["size"]))),
                 ("size_negative", dict(base, size=-1)),
                 ("hash_upper", dict(base, hash=base["hash"].upper())),
                 ("chunks_object", dict(base, chunks={"hash": sha(self.A1)})),
                 ("chunk_bad_hash", dict(base, chunks=[{"hash": "xyz", "size": len(self.A1)}])),
                 ("chunk_zero_size",
                  dict(base, size=0, chunks=[{"hash": sha(self.A1), "size": 0}])),
                 ("chunk_not_object", dict(base, chunks=[sha(self.A1)]))]
        for label, body in cases:
            with self.subTest(case=label):
                before = self.snapshot()
                self.refused(self.api("POST", "/versions", body), 400, None, before, label)

    def test_valid_commit_after_bad_ones(self):
        before = self.snapshot()
        self.assertError(self.api("POST", "/versions",
                                  commit_body("docs/a.txt", [self.A2], size=1)), 422)
        self.assertError(self.api("POST", "/versions",
                                  commit_body("docs/a.txt", [b"absent" * 9])),
                         409, "missing_chunks")
        self.assertError(self.api("POST", "/versions",
                                  commit_body("docs/../a.txt", [self.A2])), 400, "invalid_path")
        self.assertUnchanged(before, "the refused commits")
        created = self.ok(self.api("POST", "/versions", commit_body("docs/a.txt", [self.A2])), 201)
        self.assertEqual(created["version"], 2)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("docs/a.txt"))
        self.assertEqual((st, payload), (200, self.A2))
        st, _, payload, _ = self.api("GET", "/content?path=" + q("docs/a.txt") + "&version=1")
        self.assertEqual((st, payload), (200, self.A1 + self.A2))
        after = self.snapshot()
        self.assertEqual(after["usage"]["versions"], before["usage"]["versions"] + 1)
        self.assertGreater(after["last_seq"][0], before["last_seq"][0])


# ---------------------------------------------------------------- paths

class PathTests(BadInputTest):
    """Every invalid spelling, for every operation that takes a path."""

    def check_all(self, variants, call, what):
        for label, path in variants:
            with self.subTest(case=label):
                before = self.snapshot()
                self.refused(call(path), 400, "invalid_path", before, "%s %r" % (what, path[:60]))
        self.assertFixtureIntact()

    def test_mkdir_bad_path(self):
        for parents in (True, False):
            self.check_all(bad_paths("fresh/new"),
                           lambda p: self.api("POST", "/folders", {"path": p, "parents": parents}),
                           "mkdir (parents=%s)" % parents)
        self.check_all(bad_paths("docs/new"),
                       lambda p: self.api("POST", "/folders", {"path": p}), "mkdir under docs")

    def test_commit_bad_path(self):
        self.check_all(bad_paths("fresh/file.txt"),
                       lambda p: self.api("POST", "/versions", commit_body(p, [self.A1])),
                       "commit")
        self.check_all(bad_paths("docs/a.txt"),
                       lambda p: self.api("POST", "/versions", commit_body(p, [self.A2])),
                       "commit over docs/a.txt")

    def test_upload_bad_path(self):
        self.check_all(bad_paths("fresh/up.bin"),
                       lambda p: self.api("PUT", "/upload?path=" + q(p),
                                          raw=b"streamed upload body " * 50),
                       "upload")
        self.assertTmpDrains()

    def test_move_bad_from(self):
        self.check_all(bad_paths("docs/a.txt"),
                       lambda p: self.api("POST", "/move", {"from": p, "to": "moved.txt"}),
                       "move from")
        self.check_all(bad_paths("docs/sub"),
                       lambda p: self.api("POST", "/move", {"from": p, "to": "empty/moved"}),
                       "move folder from")

    def test_move_bad_to(self):
        self.check_all(bad_paths("docs/renamed.txt"),
                       lambda p: self.api("POST", "/move", {"from": "docs/a.txt", "to": p}),
                       "move file to")
        self.check_all(bad_paths("empty/sub2"),
                       lambda p: self.api("POST", "/move", {"from": "docs/sub", "to": p}),
                       "move folder to")

    def test_list_bad_path(self):
        self.check_all(bad_paths("docs/sub"),
                       lambda p: self.api("GET", "/list?path=" + q(p)), "list")

    def test_delete_bad_path(self):
        self.check_all(bad_paths("docs/sub"),
                       lambda p: self.api("DELETE", "/files?path=" + q(p)), "delete folder")
        self.check_all(bad_paths("docs/a.txt"),
                       lambda p: self.api("DELETE", "/files?path=" + q(p)), "delete file")

    def test_read_endpoints_bad_path(self):
        for rel in ("/info", "/versions", "/content"):
            self.check_all(bad_paths("docs/a.txt"),
                           lambda p: self.api("GET", rel + "?path=" + q(p)), "GET " + rel)

    def test_invalid_utf8_in_query(self):
        for rel, method in (("/list", "GET"), ("/files", "DELETE"), ("/info", "GET")):
            with self.subTest(endpoint=rel):
                before = self.snapshot()
                self.refused(self.api(method, rel + "?path=docs%2Fsub%FF"), 400, "invalid_path",
                             before, rel)

    def test_missing_path_argument(self):
        for method, rel in (("GET", "/list"), ("DELETE", "/files"), ("GET", "/content")):
            with self.subTest(endpoint=rel):
                before = self.snapshot()
                self.refused(self.api(method, rel), 400, None, before, rel)
        for rel, body in (("/folders", {"parents": True}), ("/folders", {"path": 7}),
                          ("/move", {"from": "docs/a.txt"}), ("/move", {"to": "x.txt"}),
                          ("/move", {"from": None, "to": "x.txt"})):
            with self.subTest(endpoint=rel, body=body):
                before = self.snapshot()
                self.refused(self.api("POST", rel, body), 400, None, before, rel)

    def test_valid_boundaries(self):
        """Sanity: the longest legal name and path are accepted."""
        name255 = "n" * 255
        created = self.ok(self.api("POST", "/folders", {"path": "edge/" + name255,
                                                        "parents": True}), 201)
        self.assertEqual(created["path"], "/edge/" + name255)
        utf8_255 = "\u00e9" * 127 + "e"
        self.ok(self.api("POST", "/versions", commit_body("edge/" + utf8_255, [self.A1])), 201)
        path4096 = "/" + "/".join(["z" * 240] * 16 + ["z" * 239])
        self.assertEqual(len(path4096), 4096)
        self.ok(self.api("POST", "/folders", {"path": path4096, "parents": True}), 201)
        info = self.ok(self.api("GET", "/info?path=" + q(path4096)))
        self.assertEqual(info["type"], "folder")
        # A single trailing slash is allowed and means the same folder.
        self.ok(self.api("GET", "/list?path=" + q("docs/sub/")))


# ---------------------------------------------------------------- auth

class AuthTests(BadInputTest):

    @classmethod
    def build_fixture(cls):
        super().build_fixture()
        # Somebody else's workspace, which our user is not a member of.
        sql = cls.hub.sql
        uid = sql("INSERT INTO users(email, password_hash, created_at) "
                  "VALUES('stranger@example.test', 'x', 0) RETURNING id")[0][0]
        cls.other_ws = sql("INSERT INTO workspaces(name, created_by, created_at) "
                           "VALUES('theirs', ?, 0) RETURNING id", (uid,))[0][0]
        sql("INSERT INTO memberships(workspace_id, user_id, role, created_at) "
            "VALUES(?, ?, 'owner', 0)", (cls.other_ws, uid))
        sql("INSERT INTO folders(workspace_id, parent_id, name, path, "
            "created_by, created_at, updated_at) "
            "VALUES(?, NULL, '', '/', ?, 0, 0)", (cls.other_ws, uid))

    def other_ws_state(self):
        ws = (self.other_ws,)
        return (self.hub.sql("SELECT COUNT(*) FROM folders WHERE workspace_id = ?", ws),
                self.hub.sql("SELECT COUNT(*) FROM files WHERE workspace_id = ?", ws),
                self.hub.sql("SELECT last_seq FROM workspace_counters WHERE workspace_id = ?", ws))

    def requests_for(self, ws):
        """(label, method, url, json body, raw body): reads and writes of a workspace."""
        new = b"chunk sent without valid credentials " * 7
        w = lambda rel: self.ws_url(rel, ws)
        return [
            ("list", "GET", w("/list?path=%2F"), None, None),
            ("usage", "GET", w("/usage"), None, None),
            ("info", "GET", w("/info?path=docs"), None, None),
            ("content", "GET", w("/content?path=" + q("docs/a.txt")), None, None),
            ("chunk_get", "GET", w("/chunks/" + sha(self.A1)), None, None),
            ("probe", "POST", w("/chunks/missing"), {"hashes": [sha(self.A1)]}, None),
            ("mkdir", "POST", w("/folders"), {"path": "intruder", "parents": True}, None),
            ("move", "POST", w("/move"), {"from": "docs/a.txt", "to": "stolen.txt"}, None),
            ("delete", "DELETE", w("/files?path=docs"), None, None),
            ("commit", "POST", w("/versions"), commit_body("intruder.txt", [self.A1]), None),
            ("chunk_put", "PUT", w("/chunks/" + sha(new)), None, new),
            ("upload", "PUT", w("/upload?path=intruder.bin"), None, new),
        ]

    def run_refused(self, ws, headers, status, code, what):
        new = b"chunk sent without valid credentials " * 7
        for label, method, url, body, raw in self.requests_for(ws):
            with self.subTest(what=what, request=label):
                before = self.snapshot()
                result = self.hub.request(method, url, body, raw=raw, headers=headers)
                self.refused(result, status, code, before, "%s %s" % (what, label))
                self.assertEqual(self.missing([sha(new)]), [sha(new)])

    def test_no_token(self):
        self.run_refused(self.ws, {}, 401, "unauthorized", "no token")
        for method, url in (("GET", "/api/v1/workspaces"), ("GET", "/api/v1/me"),
                            ("POST", "/api/v1/logout")):
            with self.subTest(url=url):
                self.assertError(self.hub.request(method, url), 401, "unauthorized")
        self.assertTmpDrains()

    def test_wrong_token(self):
        revoked = self.hub.login()
        self.ok(self.hub.request("POST", "/api/v1/logout", token=revoked))
        tampered = self.token[:-1] + ("A" if self.token[-1] != "A" else "B")
        for label, tok in (("made_up", "rst_thisisnotarealtokenatall0123456789abcdefgh"),
                           ("tampered", tampered), ("revoked", revoked),
                           ("truncated", self.token[:-3]), ("extended", self.token + "x"),
                           ("huge", self.token + "x" * 300)):
            self.run_refused(self.ws, {"Authorization": "Bearer " + tok}, 401, "unauthorized",
                             "token " + label)
            with self.subTest(token=label):
                self.assertError(self.hub.request("GET", "/api/v1/workspaces", token=tok),
                                 401, "unauthorized")
        # The real token still works.
        self.ok(self.hub.request("GET", "/api/v1/me", token=self.token))

    def test_malformed_authorization_header(self):
        basic = base64.b64encode(("%s:%s" % (harness.EMAIL, harness.PASSWORD)).encode()).decode()
        for label, value in (("basic", "Basic " + basic), ("no_scheme", self.token),
                             ("token_scheme", "Token " + self.token),
                             ("no_space", "Bearer" + self.token),
                             ("scheme_only", "Bearer"), ("empty_token", "Bearer "),
                             ("trailing_junk", "Bearer " + self.token + " extra"),
                             ("two_tokens", "Bearer %s, Bearer %s" % (self.token, self.token)),
                             ("empty", "")):
            self.run_refused(self.ws, {"Authorization": value}, 401, "unauthorized", label)

    def test_other_workspace(self):
        other_before = self.other_ws_state()
        auth = {"Authorization": "Bearer " + self.token}
        for ws in (999999, self.other_ws, 0, -1, "abc", "%d.0" % self.ws, "%dabc" % self.ws,
                   "99999999999999999999"):
            self.run_refused(ws, auth, 404, None, "workspace %s" % ws)
        self.assertEqual(self.other_ws_state(), other_before)
        # Not a member looks exactly like not existing.
        a = self.hub.request("GET", self.ws_url("/usage", 999999), token=self.token)
        b = self.hub.request("GET", self.ws_url("/usage", self.other_ws), token=self.token)
        self.assertEqual((a[0], a[1]), (b[0], b[1]))
        ids = [w["id"] for w in self.ok(self.hub.request("GET", "/api/v1/workspaces",
                                                         token=self.token))["workspaces"]]
        self.assertEqual(ids, [self.ws])

    def test_login_wrong_password(self):
        for label, body in (("wrong_password", {"email": harness.EMAIL, "password": "wrong pass"}),
                            ("password_prefix", {"email": harness.EMAIL,
                                                 "password": harness.PASSWORD[:-1]}),
                            ("password_case", {"email": harness.EMAIL,
                                               "password": harness.PASSWORD.upper()}),
                            ("unknown_email", {"email": "nobody@example.test",
                                               "password": harness.PASSWORD}),
                            ("stranger_no_password", {"email": "stranger@example.test",
                                                      "password": "x"})):
            with self.subTest(case=label):
                result = self.hub.request("POST", "/api/v1/login", body)
                self.assertError(result, 401, "invalid_credentials")
                self.assertNotIn("token", result[1])

    def test_login_missing_fields(self):
        for label, body in (("empty", {}), ("no_password", {"email": harness.EMAIL}),
                            ("no_email", {"password": harness.PASSWORD}),
                            ("email_not_string", {"email": 7, "password": harness.PASSWORD}),
                            ("password_null", {"email": harness.EMAIL, "password": None}),
                            ("password_number", {"email": harness.EMAIL, "password": 123}),
                            ("email_empty", {"email": "", "password": harness.PASSWORD})):
            with self.subTest(case=label):
                result = self.hub.request("POST", "/api/v1/login", body)
                self.assertError(result, 400)
                self.assertNotIn("token", result[1])

    def test_login_nul_in_credentials(self):
        """Text after a NUL must not be silently cut off: a password with extra
        bytes after a NUL is a wrong password."""
        for label, body in (("password", {"email": harness.EMAIL,
                                          "password": harness.PASSWORD + "\x00anything"}),
                            ("email", {"email": harness.EMAIL + "\x00x",
                                       "password": harness.PASSWORD})):
            with self.subTest(case=label):
                result = self.hub.request("POST", "/api/v1/login", body)
                self.assertIn(result[0], (400, 401), result[2][:300])
                self.assertError(result, result[0])


# ---------------------------------------------------------------- routing, conflicts, ranges

class RequestTests(BadInputTest):

    def test_unknown_endpoint(self):
        for method, url, tok in (("GET", "/api/v1/nope", None), ("GET", "/api/v1/nope", True),
                                 ("GET", "/api/v2/workspaces", True), ("GET", "/", None),
                                 ("GET", self.ws_url("/nope"), True),
                                 ("POST", self.ws_url("/folders/extra"), True),
                                 ("GET", self.ws_url("/chunks/%s/extra" % sha(self.A1)), True),
                                 ("DELETE", self.ws_url("/file"), True)):
            with self.subTest(method=method, url=url):
                before = self.snapshot()
                result = self.hub.request(method, url, token=self.token if tok else None)
                self.refused(result, 404, None, before, url)

    def test_wrong_method(self):
        cases = [("GET", "/api/v1/login", None, None), ("PUT", "/api/v1/login", None, None),
                 ("DELETE", self.ws_url("/usage"), None, None),
                 ("POST", self.ws_url("/list"), {"path": "/"}, None),
                 ("GET", self.ws_url("/move"), None, None),
                 ("PUT", self.ws_url("/folders"), {"path": "via-put", "parents": True}, None),
                 ("POST", self.ws_url("/files?path=" + q("docs/a.txt")), {}, None),
                 ("GET", self.ws_url("/files?path=" + q("docs/a.txt")), None, None),
                 ("DELETE", self.ws_url("/chunks/" + sha(self.A1)), None, None),
                 ("POST", self.ws_url("/chunks/" + sha(b"posted")), None, b"posted"),
                 ("PATCH", self.ws_url("/move"), {"from": "docs/a.txt", "to": "p.txt"}, None),
                 ("DELETE", self.ws_url("/upload?path=b.bin"), None, None),
                 # the workspace itself takes GET, PATCH (its settings) and DELETE
                 # (with a confirmation: test_lifecycle)
                 ("PUT", self.ws_url(""), {"storage": "hosts"}, None),
                 ("POST", self.ws_url(""), {"storage": "hosts"}, None)]
        for method, url, body, raw in cases:
            with self.subTest(method=method, url=url):
                before = self.snapshot()
                result = self.hub.request(method, url, body, raw=raw, token=self.token)
                self.refused(result, 405, None, before, "%s %s" % (method, url))
        self.assertEqual(self.missing([sha(b"posted")]), [sha(b"posted")])

    def test_mkdir_existing_without_parents(self):
        for path in ("docs", "docs/sub", "/empty/", "/"):
            with self.subTest(path=path):
                before = self.snapshot()
                self.refused(self.api("POST", "/folders", {"path": path}), 409, None, before,
                             "mkdir " + path)
                self.refused(self.api("POST", "/folders", {"path": path, "parents": False}),
                             409, None, before, "mkdir " + path)
        # A file is in the way.
        for path in ("docs/a.txt", "docs/a.txt/below"):
            with self.subTest(path=path):
                before = self.snapshot()
                self.refused(self.api("POST", "/folders", {"path": path, "parents": True}),
                             409, None, before, "mkdir " + path)
        # Sanity: with parents an existing folder is fine and changes nothing.
        before = self.snapshot()
        self.ok(self.api("POST", "/folders", {"path": "docs/sub", "parents": True}), 200)
        self.assertUnchanged(before, "mkdir -p of an existing folder")

    def test_move_onto_existing(self):
        self.ok(self.api("POST", "/versions", commit_body("docs/sub/c.txt", [self.A2])), 201)
        for src, dst in (("docs/a.txt", "b.bin"), ("docs/a.txt", "docs/sub/c.txt"),
                         ("docs/a.txt", "empty"), ("docs/a.txt", "docs/sub"),
                         ("empty", "docs"), ("empty", "docs/sub"), ("empty", "b.bin"),
                         ("docs/sub", "empty")):
            with self.subTest(src=src, dst=dst):
                before = self.snapshot()
                self.refused(self.api("POST", "/move", {"from": src, "to": dst}), 409, None,
                             before, "move %s -> %s" % (src, dst))

    def test_commit_onto_folder(self):
        for path in ("docs", "docs/sub", "empty"):
            with self.subTest(path=path):
                before = self.snapshot()
                self.refused(self.api("POST", "/versions", commit_body(path, [self.A1])), 409,
                             None, before, "commit onto folder " + path)

    def test_move_folder_into_itself(self):
        for src, dst in (("docs", "docs/inside"), ("docs", "docs/sub/inside"),
                         ("docs/sub", "docs/sub/deeper")):
            with self.subTest(src=src, dst=dst):
                before = self.snapshot()
                self.refused(self.api("POST", "/move", {"from": src, "to": dst}), 409, None,
                             before, "move %s -> %s" % (src, dst))
        # Sanity: a sibling whose name starts the same is not "inside".
        self.ok(self.api("POST", "/move", {"from": "docs/sub", "to": "docs/sub2"}))
        self.ok(self.api("POST", "/move", {"from": "docs/sub2", "to": "docs/sub"}))
        self.assertFixtureIntact()

    def test_move_root(self):
        for src, dst in (("/", "rootcopy"), ("", "rootcopy"), ("docs", "/"), ("docs", "")):
            with self.subTest(src=src, dst=dst):
                before = self.snapshot()
                self.refused(self.api("POST", "/move", {"from": src, "to": dst}), 400, None,
                             before, "move %r -> %r" % (src, dst))

    def test_delete_root(self):
        for path in ("/", "", "//"):
            with self.subTest(path=path):
                before = self.snapshot()
                self.refused(self.api("DELETE", "/files?path=" + q(path)), 400, None, before,
                             "delete %r" % path)
        self.assertFixtureIntact()

    def test_range_past_the_end(self):
        size = len(self.A1) + len(self.A2)
        for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size, size + 10),
                    "bytes=%d-" % (size + 1000), "bytes=-0"):
            with self.subTest(range=rng):
                before = self.snapshot()
                result = self.api("GET", "/content?path=" + q("docs/a.txt"),
                                  headers={"Range": rng})
                self.refused(result, 416, None, before, rng)
                self.assertEqual(result[3].getheader("Content-Range"), "bytes */%d" % size)
        # Sanity: a satisfiable range is served.
        st, _, payload, resp = self.api("GET", "/content?path=" + q("docs/a.txt"),
                                        headers={"Range": "bytes=%d-" % (size - 5)})
        self.assertEqual((st, payload), (206, (self.A1 + self.A2)[-5:]))
        self.assertEqual(resp.getheader("Content-Range"), "bytes %d-%d/%d" % (size - 5, size - 1,
                                                                            size))

    def test_bad_version_number(self):
        url = "/content?path=" + q("docs/a.txt") + "&version="
        for v, status in (("0", 400), ("abc", 400), ("-1", 400), ("1.5", 400), ("", 400),
                          ("1abc", 400), ("999", 404), ("2", 404)):
            with self.subTest(version=v):
                before = self.snapshot()
                self.refused(self.api("GET", url + v), status, None, before, "version=" + v)
        st, _, payload, _ = self.api("GET", url + "1")
        self.assertEqual((st, payload), (200, self.A1 + self.A2))

    def test_body_on_bodyless_endpoint(self):
        before = self.snapshot()
        result = self.api("DELETE", "/files?path=" + q("docs/a.txt"), raw=b'{"really": true}')
        self.refused(result, 400, None, before, "DELETE with a body")


# ---------------------------------------------------------------- good paths

class SanityTests(BadInputTest):
    """So that a hub refusing everything cannot pass."""

    def test_fixture_and_listing(self):
        self.assertFixtureIntact()
        snap = self.snapshot()
        files = [e for e in snap["tree"].values() if e["type"] == "file"]
        self.assertEqual(snap["usage"]["files"], len(files))
        self.assertGreaterEqual(snap["usage"]["logical_bytes"],
                                len(self.A1) + len(self.A2) + len(self.B))
        self.assertEqual(snap["tree"]["/docs/a.txt"]["size"], len(self.A1) + len(self.A2))
        self.assertEqual(snap["tree"]["/b.bin"]["size"], len(self.B))
        self.assertGreater(snap["last_seq"][0], 0)
        st, _, payload, _ = self.api("GET", "/content?path=b.bin")
        self.assertEqual((st, payload), (200, self.B))

    def test_chunk_protocol_round_trip(self):
        c1, c2 = os.urandom(5000), os.urandom(7000)
        self.assertEqual(self.missing([sha(c1), sha(c2), sha(self.A1)]), [sha(c1), sha(c2)])
        for c in (c1, c2):
            self.ok(self.put_chunk(c), 201)
        self.assertEqual(self.missing([sha(c1), sha(c2)]), [])
        before = self.snapshot()
        created = self.ok(self.api("POST", "/versions", commit_body("new/dir/r.bin", [c1, c2])),
                          201)
        self.assertEqual(created["size"], 12000)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("new/dir/r.bin"))
        self.assertEqual((st, payload), (200, c1 + c2))
        after = self.snapshot()
        self.assertIn("/new/dir/r.bin", after["tree"])
        self.assertEqual(after["usage"]["files"], before["usage"]["files"] + 1)

    def test_mkdir_move_delete(self):
        self.ok(self.api("POST", "/folders", {"path": "m1"}), 201)
        self.ok(self.api("POST", "/move", {"from": "m1", "to": "docs/m2"}))
        self.assertIn("/docs/m2", self.tree())
        self.ok(self.api("DELETE", "/files?path=" + q("docs/m2")))
        self.assertNotIn("/docs/m2", self.tree())

    def test_exact_json_limit_accepted(self):
        head, tail = b'{"path": "limitjson", "pad": "', b'"}'
        data = head + b"a" * (JSON_MAX - len(head) - len(tail)) + tail
        self.ok(self.send_body("POST", self.ws_url("/folders"), data,
                               {"Content-Type": "application/json"}), 201)
        self.assertIn("/limitjson", self.tree())



class ServeArgumentTests(unittest.TestCase):
    """Bad options to roost serve are refused with a message and exit 2, before
    anything starts."""

    def serve(self, *args):
        with tempfile.TemporaryDirectory(prefix="roost-args-") as d:
            return subprocess.run([harness.ROOST, "serve", "--data", d, *args],
                                  capture_output=True, text=True, timeout=60)

    def test_durations_that_overflow_milliseconds_are_refused(self):
        for opt in ("--gc-every", "--scrub-every", "--replicate-every", "--retention"):
            for v in ("9223372036854775807", "106751991167301d", "x", "-1"):
                r = self.serve(opt, v)
                self.assertEqual(r.returncode, 2, (opt, v, r.stderr))
                self.assertIn("takes a duration", r.stderr, (opt, v))

    def test_an_option_without_its_value_is_named(self):
        r = self.serve("--heartbeat")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--heartbeat needs a value", r.stderr)

if __name__ == "__main__":
    harness.main()
