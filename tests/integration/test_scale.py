"""A million files (issue 18): a folder's listing comes page by page behind a cursor,
and search by name asks an index that follows every create, rename, move, delete,
restore and purge; neither ever shows what the caller may not see.

- GET list?limit=&cursor=: every entry exactly once over the pages, also when entries
  come and go between pages; a bad cursor or limit is a 400 JSON answer; a client
  that sends no limit gets the first 1,000 and a next_cursor.
- `roost ls` and `roost get -r` page through a folder of more than one page.
- GET search finds names through the index (SQLite FTS5 trigram, PostgreSQL
  pg_trgm), with exactly the old meaning, and forgets renamed and deleted names.
"""
import base64
import hashlib
import os

import harness
from harness import HubTest, q

PW = "member password 1"
EMPTY = hashlib.sha256(b"").hexdigest()
BIG = 1100  # files in /big: more than the default page of 1,000
SUBS = 30   # folders in /big


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


class ScaleTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.commit_many(["/big/f%05d.txt" % i for i in range(BIG)])
        for i in range(SUBS):
            cls.call(cls.token, "POST", "/folders", {"path": "/big/d%03d" % i, "parents": True})
        st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
        st, body, payload, _ = cls.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": "bob@example.test", "password": PW})
        assert st == 200, payload
        cls.bob, cls.bob_id = body["token"], body["user"]["id"]

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    @classmethod
    def commit_many(cls, paths, token=None):
        """Empty files through the batch commit, 1,000 a request."""
        for i in range(0, len(paths), 1000):
            st, body, payload, _ = cls.call(token or cls.token, "POST", "/versions/batch", {
                "versions": [{"path": p, "size": 0, "hash": EMPTY, "chunks": []}
                             for p in paths[i:i + 1000]]})
            assert st == 200, payload[:300]
            assert all(r["status"] == 201 for r in body["results"]), payload[:300]

    def hide_from_bob(self, path):
        st, _, payload, _ = self.api("PUT", "/acl", {"path": path, "user_id": self.bob_id,
                                                     "perm": "none"})
        self.assertEqual(st, 200, payload)

    def pages(self, path, limit, token=None, between=None):
        """Every page of path's listing: [[names]]. between(n) runs after page n."""
        out, cursor = [], None
        while True:
            rel = "/list?path=%s&limit=%d" % (q(path), limit)
            if cursor:
                rel += "&cursor=" + q(cursor)
            st, body, payload, _ = self.api("GET", rel, token=token or self.token)
            self.assertEqual(st, 200, payload[:300])
            self.assertLessEqual(len(body["entries"]), limit)
            out.append([e["name"] for e in body["entries"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return out
            self.assertTrue(body["entries"], "a page with nothing in it promised more")
            if between:
                between(len(out))
            self.assertLess(len(out), 5000, "the pages never end")

    def whole(self, path, token=None):
        st, body, payload, _ = self.api("GET", "/list?path=%s&limit=10000" % q(path),
                                        token=token or self.token)
        self.assertEqual(st, 200, payload[:300])
        self.assertIsNone(body["next_cursor"])
        return [e["name"] for e in body["entries"]]

    # ---- GET list, page by page ----

    def test_pages_give_every_entry_exactly_once_folders_first(self):
        everything = self.whole("/big")
        self.assertEqual(len(everything), BIG + SUBS)
        self.assertEqual(everything[:SUBS], ["d%03d" % i for i in range(SUBS)])
        for limit in (1, 7, 29, 30, 31, 1000):
            with self.subTest(limit=limit):
                pages = self.pages("/big", limit)
                flat = [n for p in pages for n in p]
                self.assertEqual(flat, everything)
                self.assertEqual(len(pages), -(-len(everything) // limit))

    def test_a_client_that_sends_no_limit_gets_a_first_page_and_a_cursor(self):
        st, body, payload, _ = self.api("GET", "/list?path=" + q("/big"))
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(len(body["entries"]), 1000)
        self.assertIsInstance(body["next_cursor"], str)
        st, rest, _, _ = self.api("GET", "/list?path=%s&cursor=%s" % (q("/big"),
                                                                      q(body["next_cursor"])))
        self.assertEqual(len(rest["entries"]), BIG + SUBS - 1000)
        self.assertIsNone(rest["next_cursor"])
        st, small, _, _ = self.api("GET", "/list?path=/")
        self.assertIsNone(small["next_cursor"])

    def test_entries_added_and_removed_between_pages(self):
        self.commit_many(["/churn/m%03d.txt" % i for i in range(100)])
        self.call(self.token, "POST", "/folders", {"path": "/churn/sub"})
        before = self.whole("/churn")

        def churn(n):
            if n != 1:
                return
            # the first page ended at m039: one entry before it, one after it come;
            # one seen and one not yet seen go
            self.commit_many(["/churn/m000a.txt", "/churn/m077a.txt"])
            for p in ("/churn/m010.txt", "/churn/m060.txt"):
                st, _, payload, _ = self.api("DELETE", "/files?path=" + q(p))
                self.assertEqual(st, 200, payload)

        flat = [n for p in self.pages("/churn", 41, between=churn) for n in p]
        self.assertEqual(len(flat), len(set(flat)), "an entry came twice")
        for name in before:
            if name != "m060.txt":
                self.assertIn(name, flat)
        self.assertNotIn("m060.txt", flat)
        self.assertIn("m077a.txt", flat)  # after the cursor: seen
        self.assertNotIn("m000a.txt", flat)  # before the cursor: a new listing shows it
        self.assertIn("m000a.txt", self.whole("/churn"))

    def test_a_bad_cursor_or_limit_is_a_400_in_json(self):
        before = self.whole("/big")
        for bad in ("!!!", b64("x:name"), b64("f:a/b"), b64("d:"), b64("f:" + "n" * 300),
                    "A" * 2000, b64("f:..")):
            with self.subTest(cursor=bad):
                self.assertError(self.api("GET", "/list?path=/big&cursor=" + q(bad)), 400,
                                 "invalid_request")
        for limit in ("0", "-1", "10001", "abc", ""):
            with self.subTest(limit=limit):
                self.assertError(self.api("GET", "/list?path=/big&limit=" + limit), 400,
                                 "invalid_request")
        st, body, _, _ = self.api("GET", "/list?path=/big&limit=10000")
        self.assertEqual(len(body["entries"]), BIG + SUBS)
        self.assertEqual(self.whole("/big"), before)

    def test_a_cursor_is_a_position_not_a_permission(self):
        # A cursor made up to name a hidden entry shows nothing of it or before it.
        self.commit_many(["/mixed/a.txt", "/mixed/s1.txt", "/mixed/z.txt"])
        self.hide_from_bob("/mixed/s1.txt")
        st, body, _, _ = self.api("GET", "/list?path=/mixed&cursor=" + b64("f:s1.txt"),
                                  token=self.bob)
        self.assertEqual(st, 200)
        self.assertEqual([e["name"] for e in body["entries"]], ["z.txt"])

    def test_hidden_entries_are_never_in_a_page_nor_promised_by_a_cursor(self):
        self.commit_many(["/hid/a%d.txt" % i for i in range(5)] +
                         ["/hid/s%d.txt" % i for i in range(5)])
        for i in range(5):
            self.hide_from_bob("/hid/s%d.txt" % i)
        # bob's last visible entry ends a page: the hidden ones after it promise no more
        st, body, _, _ = self.api("GET", "/list?path=/hid&limit=5", token=self.bob)
        self.assertEqual([e["name"] for e in body["entries"]], ["a%d.txt" % i for i in range(5)])
        self.assertIsNone(body["next_cursor"])
        pages = self.pages("/hid", 2, token=self.bob)
        self.assertEqual([n for p in pages for n in p], ["a%d.txt" % i for i in range(5)])
        self.assertEqual(len(self.whole("/hid")), 10)

    # ---- the CLI pages through ----

    def test_roost_ls_shows_every_page(self):
        p = self.roost("ls", "/big")
        self.assertEqual(p.returncode, 0, p.err)
        lines = p.out.splitlines()
        self.assertEqual(len(lines), BIG + SUBS)
        self.assertTrue(lines[0].endswith("d000/"))
        self.assertTrue(lines[-1].endswith("f%05d.txt" % (BIG - 1)))
        p = self.roost("ls", "/big", "--json")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out.count('"name"'), BIG + SUBS)

    def test_roost_get_r_fetches_a_folder_of_more_than_one_page(self):
        self.commit_many(["/tree/sub/e%04d" % i for i in range(1005)])
        dest = os.path.join(self.tmp, "tree-copy")
        p = self.roost("get", "-r", "/tree", dest)
        self.assertEqual(p.returncode, 0, p.err)
        got = sorted(os.listdir(os.path.join(dest, "sub")))
        self.assertEqual(got, ["e%04d" % i for i in range(1005)])

    # ---- search by name, through the index ----

    def search(self, text, token=None):
        st, body, payload, _ = self.api("GET", "/search?q=" + q(text), token=token or self.token)
        self.assertEqual(st, 200, payload[:300])
        return [r["path"] for r in body["results"]]

    def test_search_asks_the_index(self):
        self.commit_many(["/idx/Quarterly-Zebra.txt"])
        if self.hub.backend == "sqlite":
            rows = self.hub.sql("SELECT COUNT(*) FROM files_name_fts WHERE files_name_fts "
                                "MATCH '\"quarterly-zeb\"'")
            self.assertEqual(rows[0][0], 1)
        else:
            rows = self.hub.sql("SELECT indexname FROM pg_indexes WHERE indexname IN "
                                "('files_name_trgm', 'folders_name_trgm') ORDER BY indexname")
            self.assertEqual([r[0] for r in rows], ["files_name_trgm", "folders_name_trgm"])
        self.assertEqual(self.search("RLY-zEB"), ["/idx/Quarterly-Zebra.txt"])
        self.assertEqual(self.search("ly-z"), ["/idx/Quarterly-Zebra.txt"])
        self.assertEqual(self.search("Zb"), [])  # under three characters: no index, same answer
        self.assertEqual(self.search("Ze"), ["/idx/Quarterly-Zebra.txt"])

    def test_search_keeps_its_meaning_for_quotes_wildcards_and_non_ascii(self):
        self.commit_many(['/lit/say "hi" now.txt', "/lit/50%_off.txt", "/lit/50x_off.txt",
                          "/lit/Éclair.txt", "/lit/éclair-2.txt"])
        self.assertEqual(self.search('"hi" n'), ['/lit/say "hi" now.txt'])
        self.assertEqual(self.search('"hi'), ['/lit/say "hi" now.txt'])
        self.assertEqual(self.search("0%_o"), ["/lit/50%_off.txt"])
        self.assertEqual(self.search("%_o"), ["/lit/50%_off.txt"])
        self.assertEqual(self.search("clair"), ["/lit/Éclair.txt", "/lit/éclair-2.txt"])
        self.assertEqual(self.search("éclair-"), ["/lit/éclair-2.txt"])

    def test_renamed_moved_deleted_restored_and_purged_names_follow(self):
        self.commit_many(["/life/Needle-One.txt", "/life/needle-two.txt"])
        self.call(self.token, "POST", "/folders", {"path": "/life/needle-dir/in", "parents": True})
        self.call(self.token, "POST", "/folders", {"path": "/moved"})
        self.assertEqual(self.search("needle"), ["/life/needle-dir", "/life/Needle-One.txt",
                                                 "/life/needle-two.txt"])
        st, _, payload, _ = self.api("POST", "/move", {"from": "/life/Needle-One.txt",
                                                       "to": "/life/haystack.txt"})
        self.assertEqual(st, 200, payload)
        st, _, payload, _ = self.api("POST", "/move", {"from": "/life/needle-dir",
                                                       "to": "/moved/needle-dir"})
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.search("needle"), ["/moved/needle-dir", "/life/needle-two.txt"])
        self.assertEqual(self.search("haystack"), ["/life/haystack.txt"])
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/life/needle-two.txt"))
        self.assertEqual(st, 200, payload)
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/moved/needle-dir"))
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.search("needle"), [])
        st, trash, _, _ = self.api("GET", "/trash")
        gone = [e for e in trash["entries"] if e["path"] == "/life/needle-two.txt"][0]
        st, _, payload, _ = self.api("POST", "/trash/restore", {"id": gone["id"]})
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.search("needle"), ["/life/needle-two.txt"])
        st, _, payload, _ = self.api("DELETE", "/files?permanent=1&path=" +
                                     q("/life/needle-two.txt"))
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.search("needle"), [])

    def test_search_never_shows_a_hidden_name(self):
        self.commit_many(["/sec/keyword-secret.txt", "/pubs/keyword-public.txt"])
        self.call(self.token, "POST", "/folders", {"path": "/sec/keyword-dir"})
        self.hide_from_bob("/sec")
        self.assertEqual(self.search("keyword", token=self.bob), ["/pubs/keyword-public.txt"])
        self.assertEqual(self.search("sec", token=self.bob), [])
        self.assertEqual(len(self.search("keyword")), 3)


if __name__ == "__main__":
    harness.main()
