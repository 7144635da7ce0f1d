"""Limits: max file size, workspace quota and per-token request rate, each
configurable, each refused with a clear error that changes nothing."""
import time

import harness
from harness import Hub, HubTest, q


class FileLimitsTest(HubTest):
    def settings(self, **body):
        st, resp, payload, _ = self.api("PATCH", "", body)
        self.assertEqual(st, 200, payload)

    def usage(self):
        return self.api("GET", "/usage")[1]

    def test_a_file_over_the_max_size_is_refused(self):
        self.settings(max_file_bytes=1000)
        try:
            before = self.usage()
            self.assertError(self.api("PUT", "/upload?path=" + q("/big.bin"), raw=b"x" * 2000),
                             413)
            # a chunked commit is checked too, by its logical size: one chunk
            # listed twice is a file of twice its bytes
            import hashlib
            data = b"y" * 750
            h = hashlib.sha256(data).hexdigest()
            self.assertEqual(self.api("PUT", "/chunks/" + h, raw=data)[0], 201)
            self.assertError(self.api("POST", "/versions", {
                "path": "/big2.bin", "size": 1500, "hash": hashlib.sha256(data * 2).hexdigest(),
                "chunks": [{"hash": h, "size": 750}] * 2}), 413, "file_too_large")
            # a chunk bigger than a whole file may be is not even stored
            big = b"w" * 1500
            self.assertError(self.api("PUT", "/chunks/" + hashlib.sha256(big).hexdigest(),
                                      raw=big), 507, "upload_limit")
            self.assertEqual(self.usage()["files"], before["files"])
            self.assertEqual(self.api("PUT", "/upload?path=" + q("/small.bin"),
                                      raw=b"z" * 900)[0], 201)
        finally:
            self.settings(max_file_bytes=0)

    def test_the_quota_stops_commits_that_would_exceed_it(self):
        used = self.usage()["logical_bytes"]
        self.settings(quota_bytes=used + 5000)
        try:
            self.assertEqual(self.api("PUT", "/upload?path=" + q("/q1.bin"),
                                      raw=b"a" * 4000)[0], 201)
            before = self.usage()
            self.assertError(self.api("PUT", "/upload?path=" + q("/q2.bin"), raw=b"b" * 2000),
                             507, "quota_exceeded")
            self.assertEqual(self.usage()["logical_bytes"], before["logical_bytes"])
            self.assertEqual(self.api("GET", "/info?path=" + q("/q2.bin"))[0], 404)
            # freeing space lets the same upload in
            self.assertEqual(self.api("DELETE", "/files?path=" + q("/q1.bin"))[0], 200)
            self.assertEqual(self.api("PUT", "/upload?path=" + q("/q2.bin"),
                                      raw=b"b" * 2000)[0], 201)
        finally:
            self.settings(quota_bytes=0)

    def test_bad_limit_settings_are_refused(self):
        for body in ({"quota_bytes": -1}, {"max_file_bytes": "big"}, {}, {"default_access": "x"}):
            self.assertError(self.api("PATCH", "", body), 400, "invalid_request")


class RateLimitTest(HubTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="roost-rate-")
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = ["--rate-limit", "5"]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    def test_a_token_over_its_rate_gets_429_with_retry_after(self):
        statuses = []
        for _ in range(30):
            st, body, _, resp = self.api("GET", "/usage")
            statuses.append(st)
            if st == 429:
                self.assertEqual(body["error"]["code"], "rate_limited")
                self.assertGreaterEqual(int(resp.getheader("Retry-After")), 1)
                break
        self.assertIn(429, statuses)
        self.assertGreaterEqual(statuses.index(429), 5)  # the burst went through first
        # another token has its own bucket
        other = self.hub.login()
        self.assertEqual(self.hub.request("GET", "/api/v1/workspaces", token=other)[0], 200)
        # and the first recovers
        time.sleep(1.2)
        self.assertEqual(self.api("GET", "/usage")[0], 200)


if __name__ == "__main__":
    harness.main()
