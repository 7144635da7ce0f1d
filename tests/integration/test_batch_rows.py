"""A batch commit's rows (issue 18, `pgbatch`): on PostgreSQL most of a commit's writes
travel with the next query in one pipeline, so this checks what a batch leaves behind
when items in its middle are refused: the committed items each have their version, the
file's current version, one feed change (seq without gaps) and one audit row; a refused
item leaves nothing; a refused batch (a bad item shape) changes nothing at all."""
import hashlib

from harness import HubTest


def sha(data):
    return hashlib.sha256(data).hexdigest()


def commit(path, data, **extra):
    body = {"path": path, "size": len(data), "hash": sha(data),
            "chunks": [{"hash": sha(data), "size": len(data)}] if data else []}
    body.update(extra)
    return body


class BatchRowsTest(HubTest):
    def call(self, method, rel, body=None, **kw):
        return self.hub.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                                token=self.token, **kw)

    def put_chunk(self, data):
        st, _, payload, _ = self.call("PUT", "/chunks/" + sha(data), raw=data)
        self.assertIn(st, (200, 201), payload)

    def counts(self):
        return (self.hub.sql("SELECT COUNT(*) FROM file_versions")[0][0],
                self.hub.sql("SELECT COUNT(*) FROM changes WHERE workspace_id = ?",
                             (self.ws,))[0][0],
                self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'file.version'")[0][0])

    def test_refused_items_in_the_middle_leave_nothing_and_the_others_everything(self):
        a1, a2, b, c = b"first of a\n", b"second of a\n", b"b's bytes\n", b"c in a new folder\n"
        for d in (a1, a2, b, c):
            self.put_chunk(d)
        st, body, payload, _ = self.call("POST", "/versions", commit("/rows/a.txt", a1))
        self.assertEqual(st, 201, payload)
        a_v1 = body["version_id"] if "version_id" in body else body["version"]["id"]
        before = self.counts()
        seq0 = self.hub.sql("SELECT last_seq FROM workspace_counters WHERE workspace_id = ?", (self.ws,))[0][0]
        never = b"never uploaded\n"
        st, body, payload, _ = self.call("POST", "/versions/batch", {"versions": [
            commit("/rows/b.txt", b),
            commit("/rows/a.txt", a2, base_version_id=a_v1 + 1000),  # stale base: 409
            commit("/rows/x.txt", never),                             # missing chunk: 409
            commit("/rows/a.txt", a2, base_version_id=a_v1),
            commit("/rows/new/deep/c.txt", c),
            commit("/rows/b.txt/under-a-file.txt", c),                # a file in the way
        ]})
        self.assertEqual(st, 200, payload)
        self.assertEqual([r["status"] for r in body["results"]], [201, 409, 409, 201, 201, 409],
                         body)
        self.assertEqual(body["results"][1]["body"]["error"]["code"], "version_conflict")
        self.assertEqual(body["results"][2]["body"]["error"]["code"], "missing_chunks")
        # three versions, their changes (plus the new folders) and three audit rows
        after = self.counts()
        self.assertEqual(after[0] - before[0], 3)
        self.assertEqual(after[2] - before[2], 3)
        kinds = self.hub.sql("SELECT seq, kind FROM changes WHERE workspace_id = ? AND seq > ? "
                             "ORDER BY seq", (self.ws, seq0))
        self.assertEqual([k for _, k in kinds].count("file.version"), 3, kinds)
        self.assertEqual([k for _, k in kinds].count("folder.created"), 2, kinds)
        self.assertEqual([s for s, _ in kinds], list(range(seq0 + 1, seq0 + 1 + len(kinds))))
        self.assertEqual(self.hub.sql("SELECT last_seq FROM workspace_counters WHERE workspace_id = ?",
                                      (self.ws,))[0][0], seq0 + len(kinds))
        # every file's current version is its newest, with the right bytes
        for path, data, number in (("/rows/a.txt", a2, 2), ("/rows/b.txt", b, 1),
                                   ("/rows/new/deep/c.txt", c, 1)):
            st, info, payload, _ = self.call("GET", "/info?path=" + path)
            self.assertEqual(st, 200, payload)
            self.assertEqual(info["hash"], sha(data), info)
            self.assertEqual(info.get("version", info.get("number")), number, info)
        self.assertEqual(self.call("GET", "/info?path=/rows/x.txt")[0], 404)
        # each committed chunk is counted once per version that uses it
        self.assertEqual(self.hub.sql("SELECT refcount FROM chunks WHERE hash = ?",
                                      (sha(a2),))[0][0], 1)

    def test_a_malformed_batch_changes_nothing(self):
        before = self.counts()
        st, body, payload, _ = self.call("POST", "/versions/batch", {"versions": []})
        self.assertEqual(st, 400, payload)
        self.assertEqual(self.counts(), before)


if __name__ == "__main__":
    import harness
    harness.main()
