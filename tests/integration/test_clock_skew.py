"""Clock: hosts whose clocks are hours off (libfaketime's `faketime`, a Debian
package in scripts/install-deps) still sync both ways, and judge a hub-signed
token's expiry by the hub's clock, not their own.

The hub puts its clock's reading in GET /api/v1/keys ("now"); a host (and the
relay) measures the difference when it fetches the keys and judges `exp` by the
hub's time, to within that fetch's round trip (docs/security.md, "Clocks").
Before, a host 3 h ahead refused every signed URL and chunk token (10 min), and
a host 3 h behind took an expired workspace chunk token for 3 h (an expired signed
URL was still refused there, by the hub's own check: 403 instead of 401)."""
import hashlib
import http.client
import os
import shutil
import time

import harness
from harness import HubTest, q, wait_for

# The library of Debian's faketime package, preloaded through env(1), which execs:
# the agent's PID is roost's own (SIGTERM reaches it; faketime(1) would not pass it on).
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FAKETIME = shutil.which("faketime") and os.path.exists(LIBFAKETIME)


def skewed(offset):
    return ["env", "LD_PRELOAD=" + LIBFAKETIME, "FAKETIME=" + offset,
            "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1",
            "ASAN_OPTIONS=" + harness.asan_options_preloaded()]


def sha(b):
    return hashlib.sha256(b).hexdigest()


class ClockSkewTest(HubTest):
    @classmethod
    def setUpClass(cls):
        if not FAKETIME:
            raise AssertionError("faketime is missing: run `make deps` (Debian package faketime)")
        super().setUpClass()
        cls.hub.login_cli()
        cls.ahead = harness.Host(cls.hub, cls.tmp, "ahead")
        cls.behind = harness.Host(cls.hub, cls.tmp, "behind")
        # Monotonic time stays real: only the wall clock is off.
        cls.ahead.wrapper = skewed("+3h")
        cls.behind.wrapper = skewed("-3h")
        for h in (cls.ahead, cls.behind):
            h.join()
            h.start()

    def file_on(self, h, rel, data):
        try:
            with open(h.path(rel), "rb") as f:
                return f.read() == data
        except OSError:
            return False

    def get(self, h, path):
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def url(self, path, ttl=600):
        st, body, _, _ = self.api("POST", "/urls", {"path": path, "expires_in": ttl})
        self.assertEqual(st, 201, body)
        return body["token"]

    def test_the_wall_clocks_are_off(self):
        # The wrapper works: each agent's log is stamped with its own clock.
        for h, sign in ((self.ahead, 1), (self.behind, -1)):
            with open(h.log_path) as f:
                stamp = f.readline()[:20]
            t = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            self.assertAlmostEqual((t - time.time()) * sign, 3 * 3600, delta=600, msg=stamp)

    def test_hosts_hours_off_sync_both_ways(self):
        a, b = os.urandom(3 << 20), os.urandom(200000)
        os.makedirs(self.ahead.path("/clk"), exist_ok=True)
        staged = os.path.join(self.tmp, "staged.bin")  # outside the folder: seen whole
        with open(staged, "wb") as f:
            f.write(a)
        os.rename(staged, self.ahead.path("/clk/a.bin"))
        wait_for(lambda: self.file_on(self.behind, "/clk/a.bin", a), 60,
                 "the ahead host's file on the behind host", [self.ahead, self.behind])
        with open(self.behind.path("/clk/b.bin"), "wb") as f:
            f.write(b)
        wait_for(lambda: self.file_on(self.ahead, "/clk/b.bin", b), 60,
                 "the behind host's file on the ahead host", [self.ahead, self.behind])
        with open(self.behind.path("/clk/a.bin"), "wb") as f:
            f.write(b"edited behind\n")
        wait_for(lambda: self.file_on(self.ahead, "/clk/a.bin", b"edited behind\n"), 60,
                 "the edit on the ahead host", [self.ahead, self.behind])
        st, body, _, _ = self.api("GET", "/versions?path=" + q("/clk/a.bin"))
        self.assertEqual([v["hash"] for v in body["versions"]],
                         [sha(b"edited behind\n"), sha(a)])
        for h in (self.ahead, self.behind):
            self.assertNotIn(" error ", h.log_problems(), h.label)

    def test_a_host_ahead_accepts_a_token_the_hub_still_honours(self):
        data = os.urandom(50000)
        with open(self.ahead.path("ahead.bin"), "wb") as f:
            f.write(data)
        wait_for(lambda: (self.api("GET", "/info?path=" + q("/ahead.bin"))[1] or {})
                 .get("hash") == sha(data), 60, "ahead.bin committed", [self.ahead])
        st, body = self.get(self.ahead, "/c/" + self.url("/ahead.bin"))
        self.assertEqual(st, 200, body[:300])  # was 401 "the token has expired"
        self.assertEqual(body, data)

    def test_a_host_behind_refuses_a_token_the_hub_has_expired(self):
        data = os.urandom(50000)
        with open(self.behind.path("behind.bin"), "wb") as f:
            f.write(data)
        wait_for(lambda: (self.api("GET", "/info?path=" + q("/behind.bin"))[1] or {})
                 .get("hash") == sha(data), 60, "behind.bin committed", [self.behind])
        tok = self.url("/behind.bin", ttl=2)
        st, body = self.get(self.behind, "/c/" + tok)
        self.assertEqual(st, 200, body[:300])
        time.sleep(2.5)  # the token's own 2 s lifetime, by the hub's clock
        st, body = self.get(self.behind, "/c/" + tok)
        self.assertEqual(st, 401, body[:300])  # the host's own judgement (was the hub's)
        self.assertIn(b"expired", body)


if __name__ == "__main__":
    harness.main()
