"""GET usage's cost is bounded (issue 18: no request's cost grows with the workspace's
size except where it must). Its stored bytes are the distinct chunks of every version,
so counting reads every version; the hub keeps the last count per workspace and
caller's view (hub/usage.c):
  - a small workspace is counted afresh after every change (the first class);
  - a big count (10,000 versions or more) is given again, with its as_of, for up to
    30 s after the workspace changed; the test makes every count a big one
    (ROOST_USAGE_BIG=0) to see it (the second class);
  - a member whose ACL hides files never gets the whole workspace's figures, cached
    or not, nor another member's."""
import os
import threading

from harness import HubTest, q

PW = "member password 1"


class UsageBase(HubTest):
    BIG = None  # ROOST_USAGE_BIG for the hub

    @classmethod
    def setUpClass(cls):
        old = os.environ.get("ROOST_USAGE_BIG")
        if cls.BIG is not None:
            os.environ["ROOST_USAGE_BIG"] = str(cls.BIG)
        try:
            super().setUpClass()
        finally:
            if old is None:
                os.environ.pop("ROOST_USAGE_BIG", None)
            else:
                os.environ["ROOST_USAGE_BIG"] = old
        for path, data in (("/pub/p.txt", b"p" * 1000), ("/priv/s.txt", b"s" * 5000)):
            st, _, payload, _ = cls.call(cls.token, "PUT", "/upload?path=" + q(path), raw=data)
            assert st == 201, payload
        cls.bob, cls.bob_id = cls.add_member("bob@example.test", PW)
        st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                     {"path": "/priv", "user_id": cls.bob_id, "perm": "none"})
        assert st == 200, payload

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def usage(self, token=None):
        st, body, payload, _ = self.call(token or self.token, "GET", "/usage")
        self.assertEqual(st, 200, payload)
        return body

    def put(self, path, data):
        st, _, payload, _ = self.call(self.token, "PUT", "/upload?path=" + q(path), raw=data)
        self.assertEqual(st, 201, payload)


class FreshTest(UsageBase):
    BIG = 10 ** 9  # no count is a big one

    def test_a_small_workspace_is_counted_after_every_change(self):
        before = self.usage()
        self.assertEqual(before["files"], 2, before)
        self.put("/pub/new.txt", b"n" * 300)
        after = self.usage()
        self.assertEqual(after["files"], before["files"] + 1, after)
        self.assertEqual(after["logical_bytes"], before["logical_bytes"] + 300, after)
        self.assertGreaterEqual(after["as_of"], before["as_of"])
        again = self.usage()  # nothing changed: the same count
        self.assertEqual(again, after)

    def test_a_member_gets_what_they_may_read(self):
        whole = self.usage()
        bob = self.usage(self.bob)
        self.assertLess(bob["files"], whole["files"])
        self.assertLessEqual(bob["logical_bytes"], whole["logical_bytes"] - 5000)
        self.assertEqual(bob["role"], "member")


class BoundedTest(UsageBase):
    BIG = 0

    def test_a_big_count_is_given_again_with_its_time(self):
        first = self.usage()
        self.put("/pub/late.txt", b"l" * 700)
        second = self.usage()
        # counted at most every 30 s: the same figures, and when they were counted
        self.assertEqual(second, first)
        # the change itself is there (the listing is never cached)
        st, body, payload, _ = self.call(self.token, "GET", "/list?path=" + q("/pub"))
        self.assertEqual(st, 200, payload)
        self.assertIn("late.txt", [e["name"] for e in body["entries"]])

    def test_views_are_cached_apart(self):
        # (either may be a count from an earlier test: the figures are "as of")
        whole = self.usage()
        bob = self.usage(self.bob)
        self.assertGreaterEqual(whole["logical_bytes"], 6000, whole)  # /priv's 5000 too
        self.assertLess(bob["logical_bytes"], 5000, bob)  # never the hidden file's
        # again, from the cache: still each its own
        self.assertEqual(self.usage(self.bob), bob)
        self.assertEqual(self.usage(), whole)

    def test_concurrent_askers_share_one_count(self):
        self.put("/pub/c.txt", b"c" * 10)
        got, errors = [], []

        def ask():
            try:
                got.append(self.usage())
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(got), 8)
        self.assertEqual(len({g["as_of"] for g in got}), 1, got)


if __name__ == "__main__":
    import harness
    harness.main()
