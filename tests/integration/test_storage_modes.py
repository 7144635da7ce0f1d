"""Storage modes, the write path (docs/host.md "Storage modes", docs/security.md
"Chunk hashes"): in a workspace whose storage is 'hosts' a host commits the chunks
of its files as pointers — it holds them, the hub's store gets no byte — and the
other hosts fetch them from it; 'hub' mode keeps today's behaviour, and a switch
from one to the other and back loses nothing. A pointer commit never gets a
workspace bytes that another workspace stored on the hub.

How the hub's bytes are measured: the files under the hub's data dir objects/
(the chunk store), compared before and after; a hosts-mode sync must leave them
exactly as they were (0 bytes written)."""
import hashlib
import json
import os
import random
import re

from harness import Host, HubTest, main, q, wait_for

KiB, MiB = 1 << 10, 1 << 20
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return sha(f.read())


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def store_objects(hub):
    """{chunk hash: size} of every object in the hub's chunk store."""
    out = {}
    for base, _, files in os.walk(os.path.join(hub.data, "objects")):
        for n in files:
            if HEX64.match(n):
                try:
                    out[n] = os.path.getsize(os.path.join(base, n))
                except FileNotFoundError:
                    pass
    return out


def host_token(host):
    with open(os.path.join(host.dir, ".roost", "host.json")) as f:
        return json.load(f)["token"]


class ModesBase(HubTest):
    """A hub whose workspace keeps its bytes on hosts, with no hub cache."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            st, _, payload, _ = cls.hub.request(
                "PATCH", "/api/v1/workspaces/%d" % cls.ws,
                {"storage": "hosts", "hub_cache_bytes": 0}, token=cls.token)
            assert st == 200, payload
            cls.start_hosts()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_hosts(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            h.stop()
        super().tearDownClass()

    def wait(self, predicate, what, timeout=30):
        return wait_for(predicate, timeout, what, self.hosts)

    def set_storage(self, mode):
        st, _, payload, _ = self.api("PATCH", "", {"storage": mode})
        self.assertEqual(st, 200, payload)

    def chunks_of(self, path):
        """The chunk hashes of path's current version, from the hub's database."""
        rows = self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON "
            "f.current_version_id = vc.version_id JOIN folders d ON d.id = f.folder_id "
            "WHERE f.workspace_id = ? AND f.name = ? AND f.deleted_at IS NULL ORDER BY vc.idx",
            (self.ws, path.rsplit("/", 1)[1]))
        return [r[0] for r in rows]

    def host_id(self, host):
        return self.hub.sql("SELECT id FROM hosts WHERE label = ? AND workspace_id = ?",
                            (host.label, self.ws))[0][0]

    def holders(self, chunk):
        return sorted(r[0] for r in self.hub.sql(
            "SELECT holder FROM chunk_replicas WHERE chunk_hash = ? AND state = 'ok'",
            (chunk,)))


class HostsModeTest(ModesBase):
    """Two hosts A and B in a 'hosts' workspace with hub_cache_bytes 0."""

    @classmethod
    def start_hosts(cls):
        for label in ("A", "B"):
            h = Host(cls.hub, cls.tmp, label)
            cls.hosts.append(h)
            h.join()
            h.start()
        cls.A, cls.B = cls.hosts

    def wait_file(self, host, rel, digest, timeout=30):
        path = host.path(rel)
        self.wait(lambda: os.path.exists(path) and file_sha(path) == digest,
                  "%s on %s to be sha256 %s" % (rel, host.label, digest[:12]), timeout)

    def wait_hub(self, path, digest):
        def current():
            st, body, _, _ = self.api("GET", "/info?path=" + q(path))
            return st == 200 and body.get("hash") == digest
        self.wait(current, "the hub's %s to be sha256 %s" % (path, digest[:12]))

    def assert_store_untouched(self, before, chunks=()):
        after = store_objects(self.hub)
        self.assertEqual(after, before, "the hub's store changed in 'hosts' mode")
        for c in chunks:
            self.assertNotIn(c, after)

    def peer_chunks(self, host):
        return host.status().get("chunks", {}).get("from_peer", 0)

    def test_file_written_edited_deleted_on_a_reaches_b_without_the_hub_storing_it(self):
        before = store_objects(self.hub)
        peer0 = self.peer_chunks(self.B)
        v1 = os.urandom(300 * KiB)
        write(self.A.path("/doc/report.bin"), v1)
        self.wait_hub("/doc/report.bin", sha(v1))
        self.wait_file(self.B, "/doc/report.bin", sha(v1))
        old = self.chunks_of("/doc/report.bin")
        self.assertTrue(old)
        self.assert_store_untouched(before, old)
        # The commit recorded A as the holder, not the hub.
        a = "host:%d" % self.host_id(self.A)
        for c in old:
            self.assertIn(a, self.holders(c))
            self.assertNotIn("hub", self.holders(c))
        # B fetched the bytes from A (the hub had none to give).
        self.wait(lambda: self.peer_chunks(self.B) > peer0, "B to count chunks from a peer")

        # An edit: new bytes reach B. The old version is kept (restorable) and
        # its bytes live only on hosts: A's went with the save (A reports them
        # dropped), B, which applied the change, keeps them pinned in its cache
        # (it reports nothing dropped), so the hub's counts are true and version
        # 1 still reads back (the hub streams it from B).
        b = "host:%d" % self.host_id(self.B)
        v2 = os.urandom(300 * KiB)
        write(self.A.path("/doc/report.bin"), v2)
        self.wait_hub("/doc/report.bin", sha(v2))
        self.wait_file(self.B, "/doc/report.bin", sha(v2))
        new = self.chunks_of("/doc/report.bin")
        self.assert_store_untouched(before, new)
        gone = set(old) - set(new)
        self.wait(lambda: all(self.holders(c) == [b] for c in gone),
                  lambda: "the old chunks to be held by B alone: %s" % {
                      c[:8]: self.holders(c) for c in gone})
        self.assertEqual(self.read_version("/doc/report.bin", 1), sha(v1))

        # A delete: gone on B and the hub; the file is in the trash, restorable:
        # A dropped its chunks, B keeps them.
        os.remove(self.A.path("/doc/report.bin"))
        self.wait(lambda: not os.path.exists(self.B.path("/doc/report.bin")),
                  "report.bin to disappear from B")
        self.wait(lambda: self.api("GET", "/info?path=" + q("/doc/report.bin"))[0] == 404,
                  "the hub to forget report.bin")
        self.wait(lambda: all(self.holders(c) == [b] for c in new),
                  lambda: "the deleted file's chunks to be held by B alone: %s" % {
                      c[:8]: self.holders(c) for c in new})
        self.assert_store_untouched(before)

    def read_version(self, path, version):
        """sha256 of path's version as the hub serves it (from a host: it holds none)."""
        st, _, payload, _ = self.api("GET", "/content?path=%s&version=%d" % (q(path), version))
        self.assertEqual(st, 200, payload[:300])
        return sha(payload)

    def test_a_version_replaced_on_both_hosts_still_reads_back(self):
        """Torture (hosts storage, docs/reliability.md "Crashes") found kept
        versions lost: both hosts dropped the old content when it was replaced,
        so version 1 was listed but no copy of it was left (503 for ever)."""
        v1, v2 = os.urandom(2 * MiB), os.urandom(2 * MiB)
        write(self.A.path("/kept/a.bin"), v1)
        self.wait_file(self.B, "/kept/a.bin", sha(v1), timeout=60)
        write(self.B.path("/kept/a.bin"), v2)  # an edit on the other host this time
        self.wait_hub("/kept/a.bin", sha(v2))
        self.wait_file(self.A, "/kept/a.bin", sha(v2), timeout=60)
        self.assertEqual(self.read_version("/kept/a.bin", 1), sha(v1))
        self.assertEqual(self.read_version("/kept/a.bin", 2), sha(v2))

    def test_a_restarted_host_tells_the_hub_what_it_holds_and_what_is_gone(self):
        """Torture (hosts storage, seed 1854108233, kill point 7) found a kept
        version with no copy: a host queues its replica reports in memory, so a
        SIGKILL lost the report of a version it had just applied, and it never
        told the hub again. A restarted host now reports what it holds, and
        drops what the hub counts that it lacks (a lost "dropped")."""
        data = os.urandom(2 * MiB)
        write(self.A.path("/reconcile/held.bin"), data)
        self.wait_hub("/reconcile/held.bin", sha(data))
        self.wait_file(self.B, "/reconcile/held.bin", sha(data), timeout=60)
        held = self.chunks_of("/reconcile/held.bin")
        b = "host:%d" % self.host_id(self.B)
        self.wait(lambda: all(b in self.holders(c) for c in held), "B's copies counted")
        self.B.kill()
        # What a kill before the next heartbeat leaves: B's "have" lost, and a
        # copy counted that B does not hold (here a file made while B is down).
        self.hub.sql("DELETE FROM chunk_replicas WHERE holder = ?", (b,))
        other = os.urandom(MiB)
        write(self.A.path("/reconcile/not-on-b.bin"), other)
        self.wait_hub("/reconcile/not-on-b.bin", sha(other))
        gone = self.chunks_of("/reconcile/not-on-b.bin")[0]
        self.hub.sql("INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, "
                     "updated_at) VALUES (?, ?, ?, 'ok', 1)", (gone, b, self.host_id(self.B)))
        logged = os.path.getsize(self.B.log_path)
        self.B.start()

        def reconciled():
            with open(self.B.log_path, "rb") as f:
                f.seek(logged)
                m = re.search(rb"told the hub of (\d+) chunks? held here, (\d+) gone", f.read())
            return m and (int(m.group(1)), int(m.group(2)))
        self.wait(lambda: all(b in self.holders(c) for c in held),
                  "B's copies counted again after its restart")
        counts = self.wait(reconciled, "B's reconcile at start")
        self.assertGreaterEqual(counts[0], len(held))
        self.assertEqual(counts[1], 1, "the copy B lacks was not reported dropped")
        self.wait_file(self.B, "/reconcile/not-on-b.bin", sha(other), timeout=60)
        # The listing pages in hash order; a list_after that is no hash is refused.
        st, body, _, _ = self.api("POST", "/hosts/self/replicas", {"list_after": ""},
                                  token=host_token(self.B))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["listed"], sorted(body["listed"]))
        self.assertTrue(set(held) <= set(body["listed"]), body)
        st, body, _, _ = self.api("POST", "/hosts/self/replicas", {"list_after": "nope"},
                                  token=host_token(self.B))
        self.assertEqual((st, body["error"]["code"]), (400, "invalid_request"), body)

    def test_multi_chunk_file_goes_host_to_host(self):
        before = store_objects(self.hub)
        received0 = self.hub.metric("roost_chunk_bytes_received_total")
        data = os.urandom(5 * MiB)
        write(self.A.path("/big/five.bin"), data)
        self.wait_hub("/big/five.bin", sha(data))
        self.wait_file(self.B, "/big/five.bin", sha(data), timeout=60)
        chunks = self.chunks_of("/big/five.bin")
        self.assertGreater(len(chunks), 1)
        self.assert_store_untouched(before, chunks)
        self.assertEqual(self.hub.metric("roost_chunk_bytes_received_total"), received0,
                         "the hub received chunk bytes in 'hosts' mode")

    def test_many_small_files_in_one_batch_with_their_content_types(self):
        before = store_objects(self.hub)
        files = {}
        for i in range(200):
            body = ("note %d\n" % i).encode() * random.randint(5, 200)
            files["/small/n%03d.txt" % i] = body
            write(self.A.path("/small/n%03d.txt" % i), body)
        for rel, body in files.items():
            self.wait_file(self.B, rel, sha(body), timeout=60)
        self.assert_store_untouched(before)
        # The host sniffed the type: the hub never saw the bytes.
        st, body, _, _ = self.api("GET", "/info?path=" + q("/small/n007.txt"))
        self.assertEqual(st, 200, body)
        self.assertEqual(body.get("content_type"), "text/plain", body)
        with open(self.A.log_path, "rb") as f:
            self.assertRegex(f.read().decode(errors="replace"),
                             r"uploaded \d{2,} small files in one batch")

    def test_switch_hub_hosts_hub_loses_nothing(self):
        def mode_logged(host, where, count):
            def seen():
                with open(host.log_path, "rb") as f:
                    text = f.read().decode(errors="replace")
                return text.count("keeps its bytes on " + where) >= count
            return seen

        def count(host, where):
            with open(host.log_path, "rb") as f:
                return f.read().decode(errors="replace").count("keeps its bytes on " + where)

        files = {}
        try:
            # 'hub': the hub holds the chunks, as before this mode existed.
            n = count(self.A, "the hub")
            self.set_storage("hub")
            self.wait(mode_logged(self.A, "the hub", n + 1), "A to learn 'hub' from the feed")
            h1 = os.urandom(200 * KiB)
            write(self.A.path("/switch/h1.bin"), h1)
            files["/switch/h1.bin"] = h1
            self.wait_hub("/switch/h1.bin", sha(h1))
            objs = store_objects(self.hub)
            for c in self.chunks_of("/switch/h1.bin"):
                self.assertIn(c, objs)
                self.assertIn("hub", self.holders(c))

            # 'hosts': nothing more reaches the store.
            n = count(self.A, "hosts")
            self.set_storage("hosts")
            self.wait(mode_logged(self.A, "hosts", n + 1), "A to learn 'hosts' from the feed")
            before = store_objects(self.hub)
            h2 = os.urandom(200 * KiB)
            write(self.A.path("/switch/h2.bin"), h2)
            files["/switch/h2.bin"] = h2
            self.wait_hub("/switch/h2.bin", sha(h2))
            self.wait_file(self.B, "/switch/h2.bin", sha(h2))
            self.assert_store_untouched(before, self.chunks_of("/switch/h2.bin"))

            # 'hub' again: commits upload first, as before.
            n = count(self.A, "the hub")
            self.set_storage("hub")
            self.wait(mode_logged(self.A, "the hub", n + 1), "A to learn 'hub' again")
            h3 = os.urandom(200 * KiB)
            write(self.A.path("/switch/h3.bin"), h3)
            files["/switch/h3.bin"] = h3
            self.wait_hub("/switch/h3.bin", sha(h3))
            objs = store_objects(self.hub)
            for c in self.chunks_of("/switch/h3.bin"):
                self.assertIn(c, objs)
            out = os.path.join(self.tmp, "h3.out")
            self.hub.cli("get", "/switch/h3.bin", out)
            self.assertEqual(file_sha(out), sha(h3))
            # Nothing lost: every file whole on both hosts.
            for rel, body in files.items():
                self.wait_file(self.B, rel, sha(body))
                self.wait_file(self.A, rel, sha(body))
        finally:
            self.set_storage("hosts")


class ForgedPointerTest(ModesBase):
    """A hash alone never gets a workspace the bytes another workspace stored."""

    @classmethod
    def start_hosts(cls):
        # A host of the 'hosts' workspace, joined (its credential) but not running.
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.A.join()
        # Another workspace, in 'hub' mode, stores a secret on the hub.
        st, body, payload, _ = cls.hub.request("POST", "/api/v1/workspaces",
                                               {"name": "other"}, token=cls.token)
        assert st in (200, 201), payload
        cls.other = body["id"]
        cls.secret = b"the other workspace's secret " + os.urandom(2000)
        st, body, payload, _ = cls.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.other, q("/secret.txt")),
            raw=cls.secret, token=cls.token)
        assert st == 201, payload
        cls.hash = sha(cls.secret)
        assert body["chunks"] == 1

    def commit(self, path, token):
        return self.api("POST", "/versions", {
            "path": path, "size": len(self.secret), "hash": self.hash,
            "chunks": [{"hash": self.hash, "size": len(self.secret)}]}, token=token)

    def assert_no_secret(self, result):
        st, _, payload, _ = result
        self.assertFalse(self.secret in payload,
                         "%d: the other workspace's bytes came back" % st)
        self.assertIn(st, (404, 409, 503), payload[:300])

    def test_cli_user_naming_a_hash_it_never_uploaded_gets_missing_chunks(self):
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [self.hash]})
        self.assertEqual((st, body["missing"]), (200, [self.hash]))
        self.assertError(self.commit("/user-forged.txt", self.token), 409, "missing_chunks")
        self.assert_no_secret(self.api("GET", "/chunks/" + self.hash))

    def test_host_pointer_commit_of_anothers_hash_gets_no_bytes_back(self):
        token = host_token(self.A)
        # A probe never tells a hash's owner; a host of a 'hosts' workspace does
        # not probe anyway: it names its chunks in the commit.
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [self.hash]},
                                  token=token)
        self.assertEqual((st, body["missing"]), (200, [self.hash]))
        st, body, payload, _ = self.commit("/host-forged.txt", token)
        self.assertEqual(st, 201, payload)
        # The grant is unproven and the hub is not counted as this file's holder.
        rows = self.hub.sql("SELECT proven FROM workspace_chunks WHERE workspace_id = ? AND "
                            "chunk_hash = ?", (self.ws, self.hash))
        self.assertEqual(rows, [(0,)])
        # Neither the file nor the chunk comes back with the other workspace's bytes.
        self.assert_no_secret(self.api("GET", "/content?path=" + q("/host-forged.txt")))
        self.assert_no_secret(self.api("GET", "/chunks/" + self.hash))
        self.assert_no_secret(self.api("GET", "/chunks/" + self.hash, token=token))
        # A member who now "may read" the forged version still cannot prove the
        # chunk by committing it again.
        st, _, payload, _ = self.commit("/again.txt", self.token)
        self.assertIn(st, (201, 409), payload)
        self.assert_no_secret(self.api("GET", "/content?path=" + q("/again.txt")))
        # The other workspace still reads its own file.
        st, _, payload, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/content?path=%s" % (self.other, q("/secret.txt")),
            token=self.token)
        self.assertEqual((st, payload), (200, self.secret))

    def test_host_pointer_with_a_wrong_size_is_refused(self):
        token = host_token(self.A)
        size = len(self.secret) + 1
        st, body, payload, _ = self.api("POST", "/versions", {
            "path": "/wrong-size.txt", "size": size, "hash": self.hash,
            "chunks": [{"hash": self.hash, "size": size}]}, token=token)
        self.assertEqual(st, 422, payload)
        self.assertEqual(body["error"]["code"], "size_mismatch")

    def test_hub_mode_host_commit_still_uploads_first(self):
        token = host_token(self.A)
        other = {"other": self.other}
        st, _, payload, _ = self.hub.request(
            "PATCH", "/api/v1/workspaces/%d" % self.ws, {"storage": "hub"}, token=self.token)
        self.assertEqual(st, 200, payload)
        try:
            st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [self.hash]},
                                      token=token)
            self.assertEqual((st, body["missing"]), (200, [self.hash]), other)
            self.assertError(self.commit("/hub-mode.txt", token), 409, "missing_chunks")
        finally:
            self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws,
                             {"storage": "hosts"}, token=self.token)


if __name__ == "__main__":
    main()
