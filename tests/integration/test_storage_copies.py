"""One rule counts a chunk's copies (docs/storage.md, "Copies and durability"):
GET replicas, GET locations, GET under-replicated, the replicate job and the hub
cache's eviction all agree on it. A copy is a chunk_replicas row 'ok' held by a
non-revoked host of THIS workspace seen within replica_grace_s, or by the hub in
a 'hub' workspace while the workspace's grant is proven. A host of another
workspace never counts (it would tell a member that another workspace holds the
same bytes).

The hosts here are host credentials driven through the hosts' own API (join,
heartbeat, replica reports), so the state is exactly the one built: no agent
fetches or drops anything behind the test's back."""
import json
import os
import subprocess
import time

import harness
from harness import HubTest, q

MIN = 2
HOUR_MS = 3600 * 1000
FREE = 1 << 40  # what the online hosts say they have free: room for any copy


def now_ms():
    return int(time.time() * 1000)


class CopiesTest(HubTest):
    # ---- helpers ----
    def req(self, token, method, ws, rel, body=None, **kw):
        st, out, payload, _ = self.hub.request(
            method, "/api/v1/workspaces/%d%s" % (ws, rel), body, token=token, **kw)
        self.assertIn(st, (200, 201), payload[:300])
        return out

    def workspace(self, name):
        st, body, payload, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": name},
                                                token=self.token)
        self.assertIn(st, (200, 201), payload)
        ws = body["id"] if "id" in body else body["workspace"]["id"]
        self.req(self.token, "PATCH", ws, "", {"min_replicas": MIN, "replica_grace_s": 3600})
        return ws

    def host(self, ws, label):
        """A host joined to ws: (its id, a function calling the API as it)."""
        inv = self.req(self.token, "POST", ws, "/hosts/invites", {})
        st, joined, payload, _ = self.hub.request(
            "POST", "/api/v1/hosts/join", {"token": inv["token"], "label": label})
        self.assertEqual(st, 200, payload)
        tok = joined["token"]
        return joined["host"]["id"], lambda m, rel, body=None: self.req(tok, m, ws, rel, body)

    @staticmethod
    def beat(call):
        """An online heartbeat that keeps the host online for the whole test."""
        call("POST", "/hosts/self/heartbeat",
             {"status": "online", "interval_ms": 3600 * 1000, "free_bytes": FREE})

    def upload(self, ws, path, data):
        self.req(self.token, "PUT", ws, "/upload?path=" + q(path), raw=data)
        rows = self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON f.current_version_id "
            "= vc.version_id WHERE f.workspace_id = ? AND f.name = ? AND f.deleted_at IS NULL",
            (ws, path.rsplit("/", 1)[1]))
        self.assertEqual(len(rows), 1, "one chunk for %s: %s" % (path, rows))
        return rows[0][0]

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--json", "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=300)
        self.assertIn(p.returncode, (0, 1), p.stderr.decode())
        return json.loads(p.stdout)

    def build(self, mode):
        """Workspace W (the given storage mode) and another one, O, in 'hub' mode.
        W's hosts: A and D online, B offline for two hours (past the grace); O's
        host C is online. Five one-chunk files in W:
          ab       A, B, C (O holds the same bytes), the hub
          a_nohub  A only: the hub's copy is gone (evicted, lost)
          ad       A, D, the hub
          none     the hub and C (O holds the same bytes)
          unproven A, the hub, but W's grant is unproven
        The copies each counts, by mode."""
        w = self.workspace("copies-" + mode)
        o = self.workspace("other-" + mode)
        files = {n: os.urandom(1000) for n in ("ab", "a_nohub", "ad", "none", "unproven")}
        ch = {n: self.upload(w, "/%s.bin" % n, data) for n, data in files.items()}
        for n in ("ab", "none"):
            self.assertEqual(self.upload(o, "/%s.bin" % n, files[n]), ch[n])
        hosts = {}
        for label, ws in (("A", w), ("B", w), ("D", w), ("C", o)):
            hosts[label] = self.host(ws, "%s-%s" % (label, mode))
            self.beat(hosts[label][1])
        held = {"A": ["ab", "a_nohub", "ad", "unproven"], "B": ["ab"], "D": ["ad"],
                "C": ["ab", "none"]}
        for label, names in held.items():
            out = hosts[label][1]("POST", "/hosts/self/replicas",
                                  {"have": [ch[n] for n in names]})
            self.assertEqual(out["recorded"], len(names), label)
        self.hub.sql("UPDATE hosts SET last_seen = ?, status = 'offline' WHERE id = ?",
                     (now_ms() - 2 * HOUR_MS, hosts["B"][0]))
        self.hub.sql("DELETE FROM chunk_replicas WHERE holder = 'hub' AND chunk_hash = ?",
                     (ch["a_nohub"],))
        obj = self.hub.object_path(ch["a_nohub"])
        if os.path.exists(obj):
            os.unlink(obj)
        self.hub.sql("UPDATE workspace_chunks SET proven = 0 WHERE workspace_id = ? AND "
                     "chunk_hash = ?", (w, ch["unproven"]))
        if mode == "hosts":
            self.req(self.token, "PATCH", w, "", {"storage": "hosts", "hub_cache_bytes": 0})
        hub = 1 if mode == "hub" else 0
        copies = {"ab": 1 + hub, "a_nohub": 1, "ad": 2 + hub, "none": hub, "unproven": 1}
        return w, o, ch, hosts, copies

    def check_agreement(self, mode):
        w, o, ch, hosts, copies = self.build(mode)
        under = sorted(n for n, c in copies.items() if c < MIN)
        # GET locations: each file's copies
        for n, c in copies.items():
            loc = self.req(self.token, "GET", w, "/locations?path=" + q("/%s.bin" % n))
            self.assertEqual((loc["copies"], loc["below_min"]), (c, c < MIN), (n, loc))
            self.assertEqual(loc["hub"]["counted"], mode == "hub")
        # GET under-replicated: the same files
        lst = self.req(self.token, "GET", w, "/under-replicated?limit=1000")
        self.assertEqual(sorted(f["path"] for f in lst["files"]),
                         ["/%s.bin" % n for n in under])
        self.assertEqual(lst["total"], len(under))
        # GET replicas: the same count (one chunk a file), the same copies
        rep = self.req(self.token, "GET", w, "/replicas")
        self.assertEqual(rep, {"chunks": len(copies), "under_replicated": len(under),
                               "copies": sum(copies.values()), "min_replicas": MIN,
                               "storage": mode})
        # The replicate job: one more copy asked of W's online hosts for exactly
        # those chunks (and none of O's, whose every chunk has the hub and C).
        self.hub.sql("UPDATE chunk_replicas SET updated_at = ? WHERE holder = 'hub'",
                     (now_ms() - 60000,))  # past the eviction fence
        self.hub.sql("UPDATE workspace_chunks SET touched_at = ?", (now_ms() - 60000,))
        res = self.admin("replicate")
        pending = self.hub.sql(
            "SELECT cr.chunk_hash, h.workspace_id FROM chunk_replicas cr JOIN hosts h ON h.id = "
            "cr.host_id WHERE cr.state = 'pending' AND h.workspace_id IN (?, ?)", (w, o))
        self.assertEqual(sorted(c for c, ws in pending if ws == w),
                         sorted(ch[n] for n in under), res)
        self.assertEqual([c for c, ws in pending if ws == o], [], res)
        for c, _ in pending:  # never to a host that holds it (A) or is offline (B)
            holders = {r[0] for r in self.hub.sql(
                "SELECT holder FROM chunk_replicas WHERE chunk_hash = ? AND state = 'pending'",
                (c,))}
            self.assertNotIn("host:%d" % hosts["B"][0], holders)
        # The eviction ('hosts' mode, hub_cache_bytes 0): only what has MIN
        # copies without the hub's goes; a chunk O ('hub' mode) also uses stays.
        hub_rows = {n for n in ch if self.hub.sql(
            "SELECT 1 FROM chunk_replicas WHERE holder = 'hub' AND state = 'ok' AND "
            "chunk_hash = ?", (ch[n],))}
        if mode == "hub":
            self.assertEqual(hub_rows, {"ab", "ad", "none", "unproven"})
        else:
            self.assertEqual(hub_rows, {"ab", "none", "unproven"}, res)
            self.assertFalse(os.path.exists(self.hub.object_path(ch["ad"])))
            self.assertGreaterEqual(res.get("chunks_evicted", 0), 1)
        # and the answers are unchanged by the job (a pending copy is no copy)
        self.assertEqual(self.req(self.token, "GET", w, "/replicas")["under_replicated"],
                         len(under))
        return w, o, ch, hosts

    # ---- tests ----
    def test_hub_mode_replicas_locations_under_replicated_and_replicate_agree(self):
        self.check_agreement("hub")

    def test_hosts_mode_replicas_locations_under_replicated_replicate_and_evict_agree(self):
        self.check_agreement("hosts")

    def test_another_workspaces_host_holding_the_same_bytes_changes_no_count(self):
        """The leak: a member of W learnt from GET replicas that some other
        workspace's host holds bytes equal to a file of theirs."""
        w = self.workspace("leak-w")
        o = self.workspace("leak-o")
        data = os.urandom(1000)
        chunk = self.upload(w, "/mine.bin", data)
        self.upload(o, "/theirs.bin", data)
        _, a = self.host(w, "leak-A")
        self.beat(a)
        a("POST", "/hosts/self/replicas", {"have": [chunk]})
        before = (self.req(self.token, "GET", w, "/replicas"),
                  self.req(self.token, "GET", w, "/locations?path=" + q("/mine.bin"))["copies"],
                  self.req(self.token, "GET", w, "/under-replicated")["total"])
        self.assertEqual(before[0]["copies"], 2)  # the hub's and A's
        _, c = self.host(o, "leak-C")
        self.beat(c)
        self.assertEqual(c("POST", "/hosts/self/replicas", {"have": [chunk]})["recorded"], 1)
        after = (self.req(self.token, "GET", w, "/replicas"),
                 self.req(self.token, "GET", w, "/locations?path=" + q("/mine.bin"))["copies"],
                 self.req(self.token, "GET", w, "/under-replicated")["total"])
        self.assertEqual(after, before)
        # Nor does it stand in for a copy of W's in the replicate job: with
        # min_replicas 3 the chunk (the hub's and A's copies) gets one more, on
        # W's host D; C, which holds it for O, is no copy of W's.
        self.req(self.token, "PATCH", w, "", {"min_replicas": 3})
        self.assertEqual(self.req(self.token, "GET", w, "/replicas")["under_replicated"], 1)
        _, d = self.host(w, "leak-D")
        self.beat(d)
        self.admin("replicate")
        pending = self.hub.sql(
            "SELECT h.workspace_id FROM chunk_replicas cr JOIN hosts h ON h.id = cr.host_id "
            "WHERE cr.chunk_hash = ? AND cr.state = 'pending'", (chunk,))
        self.assertEqual(pending, [(w,)])


if __name__ == "__main__":
    harness.main()
