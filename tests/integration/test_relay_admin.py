"""The relay's admin port (roost relay --admin-listen, docs/relay.md): /healthz
for liveness and Prometheus /metrics counting requests by status, bytes both
ways, hosts attached, connections and limit hits."""
import http.client
import os
import re
import subprocess
import tempfile
import unittest

import harness
from harness import free_port, wait_for
from test_relay import RelayBase


class RelayAdminTest(RelayBase):
    blob_size = 1 << 20

    @classmethod
    def setUpClass(cls):
        cls.admin_port = free_port()
        cls.relay_args = ("--admin-listen", "127.0.0.1:%d" % cls.admin_port,
                          "--limit", "url.rps=1")
        super().setUpClass()

    def admin(self, path, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body.decode(), resp

    def metrics(self):
        st, body, resp = self.admin("/metrics")
        self.assertEqual(st, 200, body)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = int(value)
        return out

    def test_healthz_answers(self):
        st, body, _ = self.admin("/healthz")
        self.assertEqual(st, 200)
        self.assertIn('"ok":true', body)

    def test_other_paths_are_404(self):
        st, body, _ = self.admin("/h/whatever")
        self.assertEqual(st, 404)
        self.assertIn("/metrics", body)

    def test_metrics_count_hosts_connections_and_bytes(self):
        m = wait_for(lambda: (lambda m: m if m.get("roost_relay_hosts_attached") == 1 else None)(
            self.metrics()), 30, "the host attached", [self.A])
        self.assertGreaterEqual(m['roost_relay_connections{side="tunnel"}'], 2)
        self.assertGreaterEqual(m['roost_relay_connections_total{side="tunnel"}'], 2)
        ok_before = m.get('roost_relay_requests_total{status="200"}', 0)
        out_before = m["roost_relay_bytes_out_total"]
        st, body, _ = self.relay.request(self.path_of("c/" + self.url_token("/big.bin")))
        self.assertEqual(st, 200)
        m = self.metrics()
        self.assertEqual(m['roost_relay_requests_total{status="200"}'], ok_before + 1)
        self.assertGreaterEqual(m["roost_relay_bytes_out_total"] - out_before, len(self.blob))
        self.assertGreater(m["roost_relay_bytes_in_total"], 0)
        self.assertGreaterEqual(m['roost_relay_connections_total{side="public"}'], 1)

    def test_metrics_count_limit_hits_and_their_status(self):
        before = self.metrics()
        path = self.path_of("c/not-a-token-%d" % os.getpid())
        answers = [self.relay.request(path)[0] for _ in range(6)]  # url.rps=1: burst of 2
        self.assertIn(429, answers)
        m = self.metrics()
        hits = answers.count(429)
        self.assertEqual(m['roost_relay_limit_hits_total{limit="url"}'] -
                         before['roost_relay_limit_hits_total{limit="url"}'], hits)
        self.assertEqual(m['roost_relay_requests_total{status="429"}'] -
                         before.get('roost_relay_requests_total{status="429"}', 0), hits)
        self.assertEqual(m['roost_relay_requests_total{status="401"}'] -
                         before.get('roost_relay_requests_total{status="401"}', 0),
                         answers.count(401))

    def test_metrics_name_no_slug(self):
        slug = self.path_of("")[len("/h/"):].strip("/")
        st, body, _ = self.admin("/metrics")
        self.assertEqual(st, 200)
        self.assertNotIn(slug, body)


class AdminListenTest(unittest.TestCase):
    def test_a_bad_admin_address_is_refused_before_anything_is_written(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "relay")
            p = subprocess.run([harness.ROOST, "relay", "--data", data, "--hub",
                                "http://127.0.0.1:1", "--self-signed", "--admin-listen",
                                "nonsense"], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--admin-listen nonsense is not ADDR:PORT", p.stderr)
            self.assertFalse(os.path.exists(data))

    def test_usage_names_the_admin_port(self):
        p = subprocess.run([harness.ROOST, "relay"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--admin-listen ADDR:PORT", p.stderr)


if __name__ == "__main__":
    harness.main()
