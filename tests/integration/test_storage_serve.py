"""The hub serves what it lacks (issue 15): a workspace in `hosts` mode with
hub_cache_bytes 0 and two hosts. Host A's commits are pointer commits (the
hub's store never sees the bytes) and B syncs them from A, so the hub's store
holds no chunk of the files — reached the real way, checked by walking its
objects — and every reader returns verified bytes: `roost get` (all from the
hosts), api content with Range, a single chunk, a signed URL (each of `POST
urls` sources), a share link, WebDAV, a ZIP. With no holder online the answer
is 503 with Retry-After naming the hosts; an unproven grant never gets the
store's bytes; a host killed mid-download leaves the rest to the other."""
import hashlib
import http.client
import io
import json
import os
import subprocess
import threading
import unittest
import urllib.parse
import zipfile

import harness
from harness import HubTest, main, q, wait_for


def sha(b):
    return hashlib.sha256(b).hexdigest()


def get(url, headers=None, timeout=120):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, resp


class ServeFromHostsTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = harness.Host(cls.hub, cls.tmp, "A")
        cls.B = harness.Host(cls.hub, cls.tmp, "B")
        for h in (cls.A, cls.B):
            h.join()
            h.start()
        cls.set_hosts_mode()
        cls.small = os.urandom(3 << 20)
        cls.big = os.urandom(64 << 20)
        os.makedirs(cls.A.path("/d"), exist_ok=True)
        with open(cls.A.path("/d/small.bin"), "wb") as f:
            f.write(cls.small)
        with open(cls.A.path("/d/big.bin"), "wb") as f:
            f.write(cls.big)
        for name, data in (("/d/small.bin", cls.small), ("/d/big.bin", cls.big)):
            wait_for(lambda: cls.on_both(name, data), 120, "%s on both hosts" % name,
                     [cls.A, cls.B])

    @staticmethod
    def mode_lines(host):
        with open(host.log_path, "rb") as f:
            return f.read().decode(errors="replace").count("keeps its bytes on hosts")

    @classmethod
    def set_hosts_mode(cls):
        """PATCH storage 'hosts', hub_cache_bytes 0; wait until both hosts have
        learnt the mode from the feed (a host commits by the mode it knows)."""
        seen = {h.label: cls.mode_lines(h) for h in (cls.A, cls.B)}
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws,
                                            {"storage": "hosts", "hub_cache_bytes": 0},
                                            token=cls.token)
        assert st == 200, payload
        for h in (cls.A, cls.B):
            wait_for(lambda: cls.mode_lines(h) > seen[h.label], 30,
                     "host %s to learn storage 'hosts'" % h.label, [h])

    @classmethod
    def hub_store(cls):
        """Every object file in the hub's store (walked, not asked)."""
        found = set()
        for _, _, files in os.walk(os.path.join(cls.hub.data, "objects")):
            found.update(files)
        return found

    @classmethod
    def chunks_of(cls, path):
        st, info, _, _ = cls.hub.request(
            "GET", "/api/v1/workspaces/%d/manifest?path=%s" % (cls.ws, q(path)), token=cls.token)
        return info["chunks"] if st == 200 else []

    @classmethod
    def on_both(cls, path, data):
        """Both hosts have the file and report holding all its chunks."""
        for h in (cls.A, cls.B):
            with open(h.path(path), "rb") as f:
                if sha(f.read()) != sha(data):
                    return False
        chunks = cls.chunks_of(path)
        return chunks and all(len(c["hosts"]) == 2 for c in chunks)

    def hub_objects(self, path):
        """How many of path's chunks the hub's store holds."""
        return sum(os.path.exists(os.path.join(self.hub.data, "objects", c["hash"][:2],
                                               c["hash"]))
                   for c in self.chunks_of(path))

    def content_url(self, path):
        return "%s/api/v1/workspaces/%d/content?path=%s" % (self.hub.url, self.ws, q(path))

    def auth(self):
        return {"Authorization": "Bearer " + self.token}

    def both_online(self):
        for h in (self.A, self.B):
            if not h.running():
                h.start()
        wait_for(lambda: all(x["status"] == "online" for x in self.hosts()
                             if x["label"] in ("A", "B")), 30, "both hosts online",
                 [self.A, self.B])

    def hosts(self):
        st, body, _, _ = self.api("GET", "/hosts")
        return body["hosts"]

    # ---- every reader ----

    def test_0_the_hubs_store_holds_no_chunk_of_the_files(self):
        """Pointer commits by A, B's copies from A: the hub wrote none of it."""
        store = self.hub_store()
        for path in ("/d/small.bin", "/d/big.bin"):
            hashes = {c["hash"] for c in self.chunks_of(path)}
            self.assertTrue(hashes)
            self.assertEqual(hashes & store, set(), path)
            rows = self.hub.sql("SELECT chunk_hash FROM chunk_replicas WHERE holder = 'hub'")
            self.assertEqual(hashes & {r[0] for r in rows}, set(), path)

    def test_roost_get_takes_every_byte_from_the_hosts(self):
        self.both_online()
        for path, data in (("/d/small.bin", self.small), ("/d/big.bin", self.big)):
            out = os.path.join(self.tmp, "get-" + os.path.basename(path))
            p = self.hub.cli("get", path, out, "--json")
            rep = json.loads(p.stdout)
            with open(out, "rb") as f:
                self.assertEqual(sha(f.read()), sha(data))
            self.assertEqual(rep["sha256"], sha(data))
            by = {}
            for s in rep["sources"]:
                by[s["via"]] = by.get(s["via"], 0) + s["bytes"]
            self.assertEqual(by.get("hub", 0), 0, rep)
            self.assertEqual(by.get("host", 0), len(data), rep)
            os.unlink(out)
        self.assertEqual(self.hub_objects("/d/big.bin"), 0)

    def test_api_content_and_a_range_come_from_hosts(self):
        self.both_online()
        st, data, resp = get(self.content_url("/d/small.bin"), self.auth())
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), sha(self.small))
        h = dict(self.auth(), Range="bytes=1000000-2099999")
        st, data, resp = get(self.content_url("/d/small.bin"), h)
        self.assertEqual(st, 206, data[:300])
        self.assertEqual(data, self.small[1000000:2100000])
        # Many chunks from the middle of a big file (fetched ahead of the reader).
        h = dict(self.auth(), Range="bytes=10000001-40000000")
        st, data, resp = get(self.content_url("/d/big.bin"), h)
        self.assertEqual(st, 206, data[:300])
        self.assertEqual(sha(data), sha(self.big[10000001:40000001]))
        self.assertEqual(self.hub_objects("/d/small.bin"), 0, "hub_cache_bytes 0: nothing kept")

    def test_a_single_chunk_comes_from_a_host(self):
        self.both_online()
        c = self.chunks_of("/d/small.bin")[0]
        st, data, _ = get("%s/api/v1/workspaces/%d/chunks/%s" % (self.hub.url, self.ws,
                                                                  c["hash"]), self.auth())
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), c["hash"])
        self.assertEqual(self.hub_objects("/d/small.bin"), 0)

    def test_signed_urls_list_hosts_first_and_each_serves(self):
        self.both_online()
        st, made, payload, _ = self.api("POST", "/urls", {"path": "/d/small.bin"})
        self.assertEqual(st, 201, payload)
        srcs = made["sources"]
        self.assertEqual([s["via"] for s in srcs], ["host", "host", "hub"], srcs)
        self.assertEqual(made["url"], srcs[0]["url"])
        self.assertEqual(made["via"], "host")
        ids = {x["label"]: x["id"] for x in self.hosts()}
        self.assertEqual({s["host_id"] for s in srcs[:2]}, {ids["A"], ids["B"]})
        for s in srcs:
            self.assertEqual(s["expires_at"], made["expires_at"])
            st, data, _ = get(s["url"])
            self.assertEqual(st, 200, (s, data[:300]))
            self.assertEqual(sha(data), sha(self.small), s)
        self.assertTrue(srcs[2]["url"].startswith("http://127.0.0.1:%d/c/" %
                                                  self.hub.content_port))
        self.assertEqual(self.hub_objects("/d/small.bin"), 0, "the hub's URL kept nothing")
        # Write URLs still work.
        st, made, payload, _ = self.api("POST", "/urls", {"path": "/d/new.bin",
                                                          "scope": "write"})
        self.assertEqual(st, 201, payload)
        self.assertEqual(made["method"], "PUT")

    def test_a_reader_elsewhere_is_not_sent_to_a_hosts_loopback_url(self):
        # The hosts listen on 127.0.0.1: a reader on another machine would
        # reach nothing there (or hand the token to a program of its own).
        self.both_online()
        away = {"X-Forwarded-For": "203.0.113.7"}  # never "this machine"
        st, made, payload, _ = self.api("POST", "/urls", {"path": "/d/small.bin"},
                                        headers=away)
        self.assertEqual(st, 201, payload)
        self.assertEqual([s["via"] for s in made["sources"]], ["hub"], made["sources"])
        self.assertEqual(made["via"], "hub")
        st, data, _ = get(made["url"])
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), sha(self.small))
        st, m, payload, _ = self.api("GET", "/manifest?path=" + q("/d/small.bin"),
                                     headers=away)
        self.assertEqual(st, 200, payload)
        self.assertNotIn("127.0.0.1", json.dumps(m.get("sources", {})), m)
        self.assertEqual(m.get("hosts", {}), {}, m)
        # from this machine they are listed, as before
        st, m, payload, _ = self.api("GET", "/manifest?path=" + q("/d/small.bin"))
        self.assertEqual(len(m["hosts"]), 2, m)

    def test_a_share_link_and_its_zip(self):
        self.both_online()
        st, link, payload, _ = self.api("POST", "/shares", {"path": "/d"})
        self.assertEqual(st, 201, payload)
        st, data, _ = get(link["url"] + "/file?path=" + q("/small.bin"))
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), sha(self.small))
        st, data, resp = get(link["url"] + "/zip")
        self.assertEqual(st, 200, data[:300])
        z = zipfile.ZipFile(io.BytesIO(data))
        self.assertIsNone(z.testzip())
        self.assertEqual(sha(z.read("small.bin")), sha(self.small))
        self.assertEqual(sha(z.read("big.bin")), sha(self.big))
        self.assertEqual(self.hub_objects("/d/big.bin"), 0)

    def test_webdav_get(self):
        self.both_online()
        url = "http://127.0.0.1:%d/dav/%d/d/small.bin" % (self.hub.content_port, self.ws)
        st, data, _ = get(url, self.auth())
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), sha(self.small))
        st, data, _ = get(url, dict(self.auth(), Range="bytes=2000000-"))
        self.assertEqual(st, 206, data[:300])
        self.assertEqual(data, self.small[2000000:])
        self.assertEqual(self.hub_objects("/d/small.bin"), 0)

    # ---- the cache ----

    def test_cache_keeps_what_it_fetched_and_touches_it_when_served(self):
        self.both_online()
        data = os.urandom(1 << 20)
        with open(self.A.path("/d/cached.bin"), "wb") as f:
            f.write(data)
        wait_for(lambda: self.on_both("/d/cached.bin", data), 60, "cached.bin on both",
                 [self.A, self.B])
        self.assertEqual(self.hub_objects("/d/cached.bin"), 0, "a pointer commit")
        ws_url = "/api/v1/workspaces/%d" % self.ws
        self.hub.request("PATCH", ws_url, {"hub_cache_bytes": 1 << 30}, token=self.token)
        try:
            st, got, _ = get(self.content_url("/d/cached.bin"), self.auth())
            self.assertEqual((st, sha(got)), (200, sha(data)))
            hashes = [c["hash"] for c in self.chunks_of("/d/cached.bin")]
            self.assertEqual(self.hub_objects("/d/cached.bin"), len(hashes))

            def hub_rows():
                return {h: (state, at) for h, state, at in self.hub.sql(
                    "SELECT chunk_hash, state, updated_at FROM chunk_replicas WHERE "
                    "holder = 'hub'") if h in hashes}
            self.assertTrue(all(hub_rows()[h][0] == "ok" for h in hashes), hub_rows())
            # Served from the cache: its LRU stamp moves (at most once a minute).
            self.hub.sql("UPDATE chunk_replicas SET updated_at = 0 WHERE holder = 'hub'")
            st, got, _ = get(self.content_url("/d/cached.bin"), self.auth())
            self.assertEqual((st, sha(got)), (200, sha(data)))
            self.assertTrue(all(hub_rows()[h][1] > 0 for h in hashes), hub_rows())
            self.hub.sql("UPDATE chunk_replicas SET updated_at = 0 WHERE holder = 'hub'")
            get(self.content_url("/d/cached.bin"), self.auth())
            self.assertTrue(all(hub_rows()[h][1] == 0 for h in hashes), "throttled")
        finally:
            self.hub.request("PATCH", ws_url, {"hub_cache_bytes": 0}, token=self.token)
            self.evict_all("/d/cached.bin")

    def evict_all(self, path):
        """The replicate job evicts the cache down to hub_cache_bytes 0 (A and B
        hold min_replicas copies); its fence is 5 s since last use: polled."""
        def run():
            p = subprocess.run([harness.ROOST, "admin", "replicate", "--json", "--data",
                                self.hub.data, *self.hub.db_args()], env=self.hub.env(),
                               capture_output=True, timeout=300)
            self.assertIn(p.returncode, (0, 1), p.stderr.decode())
            return self.hub_objects(path) == 0
        wait_for(run, 60, "the cache evicted", [self.A, self.B], interval=0.5)

    # ---- no holder online ----

    def test_no_holder_online_is_a_503_naming_the_hosts_then_it_works(self):
        self.both_online()
        self.A.stop()
        self.B.stop()
        wait_for(lambda: not any(x["status"] == "online" for x in self.hosts()
                                 if x["label"] in ("A", "B")), 30, "both offline")
        st, data, resp = get(self.content_url("/d/small.bin"), self.auth())
        self.assertEqual(st, 503, data[:300])
        self.assertTrue(int(resp.getheader("Retry-After")) > 0)
        err = json.loads(data)["error"]
        self.assertEqual(err["code"], "chunk_unavailable")
        self.assertEqual(sorted(h["label"] for h in err["detail"]["holders"]), ["A", "B"])
        for h in err["detail"]["holders"]:
            self.assertIn("last_seen", h)
            self.assertIsInstance(h["id"], int)
        # The same for a share link's ZIP and a single chunk.
        st, link, _, _ = self.api("POST", "/shares", {"path": "/d"})
        st, data, resp = get(link["url"] + "/zip")
        self.assertEqual(st, 503, data[:300])
        self.assertIsNotNone(resp.getheader("Retry-After"))
        c = self.chunks_of("/d/small.bin")[0]
        st, data, resp = get("%s/api/v1/workspaces/%d/chunks/%s" % (self.hub.url, self.ws,
                                                                     c["hash"]), self.auth())
        self.assertEqual(st, 503, data[:300])
        # POST urls names only the hub now.
        st, made, _, _ = self.api("POST", "/urls", {"path": "/d/small.bin"})
        self.assertEqual([s["via"] for s in made["sources"]], ["hub"])
        self.B.start()

        def served():
            st, data, _ = get(self.content_url("/d/small.bin"), self.auth())
            return st == 200 and sha(data) == sha(self.small)
        wait_for(served, 30, "served once B is back", [self.B])
        self.both_online()

    # ---- proof of the grant ----

    def test_an_unproven_grant_never_gets_the_stores_bytes(self):
        # Another workspace, hub storage, no hosts: its file's chunks are in
        # the store. Marked unproven (a pointer commit's grant), the hub must
        # not serve them to it, whoever else stored the same hash.
        st, other, payload, _ = self.hub.request("POST", "/api/v1/workspaces",
                                                 {"name": "unproven"}, token=self.token)
        self.assertEqual(st, 201, payload)
        ws2 = other["id"]
        data = os.urandom(200000)
        st, _, payload, _ = self.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (ws2, q("/x.bin")),
            token=self.token, raw=data)
        self.assertEqual(st, 201, payload)
        url = "%s/api/v1/workspaces/%d/content?path=%s" % (self.hub.url, ws2, q("/x.bin"))
        self.assertEqual(get(url, self.auth())[0], 200)
        self.hub.sql("UPDATE workspace_chunks SET proven = 0 WHERE workspace_id = ?", (ws2,))
        st, body, resp = get(url, self.auth())
        self.assertEqual(st, 503, body[:200])
        self.assertNotIn(data[:4096], body)
        self.assertIsNotNone(resp.getheader("Retry-After"))
        st, man, _, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/manifest?path=%s" % (ws2, q("/x.bin")),
            token=self.token)
        for c in man["chunks"]:
            st, body, _ = get("%s/api/v1/workspaces/%d/chunks/%s" % (self.hub.url, ws2,
                                                                      c["hash"]), self.auth())
            self.assertEqual(st, 503, body[:200])
        st, link, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/shares" % ws2,
                                          {"path": "/x.bin"}, token=self.token)
        self.assertEqual(get(link["url"] + "/file")[0], 503)

    def test_an_unproven_grant_is_proven_by_a_hosts_bytes(self):
        self.both_online()
        self.hub.sql("UPDATE workspace_chunks SET proven = 0 WHERE workspace_id = ?", (self.ws,))
        st, data, _ = get(self.content_url("/d/small.bin"), self.auth())
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(sha(data), sha(self.small))
        hashes = [c["hash"] for c in self.chunks_of("/d/small.bin")]
        rows = self.hub.sql("SELECT chunk_hash, proven FROM workspace_chunks WHERE "
                            "workspace_id = ?", (self.ws,))
        proven = {h: p for h, p in rows}
        self.assertTrue(all(proven[h] == 1 for h in hashes), proven)

    # ---- a host holding a version only as chunks in its cache ----

    def test_y_a_host_serves_a_version_it_holds_only_in_its_cache(self):
        self.both_online()
        C = harness.Host(self.hub, self.tmp, "C")
        C.join(folders=["/elsewhere"])  # keeps nothing of /d as files
        C.start()
        try:
            cid = wait_for(lambda: {x["label"]: x["id"] for x in self.hosts()
                                    if x["status"] == "online"}.get("C"), 30, "C online", [C])
            # As the replicate job would: C is asked to keep a copy of each chunk.
            chunks = self.chunks_of("/d/small.bin")
            for c in chunks:
                self.hub.sql("INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, "
                             "updated_at, assigned) VALUES(?, ?, ?, 'pending', 0, 1)",
                             (c["hash"], "host:%d" % cid, cid))
            wait_for(lambda: all(cid in c["hosts"] for c in self.chunks_of("/d/small.bin")),
                     60, "C holding every chunk in its cache", [C])
            self.assertFalse(os.path.exists(C.path("/d/small.bin")))
            st, made, payload, _ = self.api("POST", "/urls", {"path": "/d/small.bin"})
            self.assertEqual(st, 201, payload)
            mine = [s for s in made["sources"] if s.get("host_id") == cid]
            self.assertEqual([s["via"] for s in mine], ["host"], made["sources"])
            # Only C is up: its bytes come from its cache.
            self.A.stop()
            self.B.stop()
            st, data, resp = get(mine[0]["url"])
            self.assertEqual(st, 200, data[:300])
            self.assertEqual(sha(data), sha(self.small))
            self.assertEqual(resp.getheader("Access-Control-Allow-Origin"), "*")
        finally:
            C.stop()
            self.both_online()

    # ---- a host that fails mid-stream ----

    def test_z_serving_host_killed_mid_download(self):
        self.both_online()
        served = {h.label: h.status()["chunks"]["served"] for h in (self.A, self.B)}
        u = urllib.parse.urlsplit(self.content_url("/d/big.bin"))
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        conn.request("GET", u.path + "?" + u.query, headers=self.auth())
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        h = hashlib.sha256()
        first = resp.read(8 << 20)
        h.update(first)

        def serving():
            now = {x.label: x.status()["chunks"]["served"] for x in (self.A, self.B)}
            grew = [lb for lb in now if now[lb] > served[lb]]
            return grew[0] if len(grew) == 1 else None
        label = wait_for(serving, 30, "one host serving the download")
        victim, other = (self.A, self.B) if label == "A" else (self.B, self.A)
        victim.kill()
        got = len(first)
        while True:
            piece = resp.read(1 << 20)
            if not piece:
                break
            got += len(piece)
            h.update(piece)
        conn.close()
        self.assertEqual(got, len(self.big))
        self.assertEqual(h.hexdigest(), sha(self.big))
        # The rest came from the other host (its status file follows each heartbeat).
        wait_for(lambda: other.status()["chunks"]["served"] > served[other.label], 10,
                 "the other host serving the rest", [other])
        victim.start()


if __name__ == "__main__":
    main()
