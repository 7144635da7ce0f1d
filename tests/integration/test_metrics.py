"""/metrics: Prometheus text with requests by route and status, a latency
histogram, bytes in and out, feed subscribers and database time."""
import re

import harness
from harness import HubTest, q


class MetricsTest(HubTest):
    def scrape(self):
        st, _, payload, resp = self.hub.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        out = {}
        for line in payload.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def test_requests_are_counted_by_route_and_status(self):
        before = self.scrape()
        key_ok = 'roost_http_requests_total{route="GET /api/v1/workspaces/*/usage",status="2xx"}'
        key_404 = 'roost_http_requests_total{route="GET /api/v1/workspaces/*/info",status="4xx"}'
        for _ in range(3):
            self.assertEqual(self.api("GET", "/usage")[0], 200)
        self.assertEqual(self.api("GET", "/info?path=" + q("/missing"))[0], 404)
        after = self.scrape()
        self.assertEqual(after[key_ok] - before.get(key_ok, 0), 3)
        self.assertEqual(after[key_404] - before.get(key_404, 0), 1)

    def test_the_latency_histogram_is_consistent(self):
        self.api("GET", "/usage")
        m = self.scrape()
        buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), v)
                         for k, v in m.items()
                         if k.startswith("roost_http_request_duration_seconds_bucket"))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))  # cumulative
        self.assertEqual(buckets[-1][1], m["roost_http_request_duration_seconds_count"])
        self.assertGreater(m["roost_http_request_duration_seconds_sum"], 0)

    def test_bytes_and_database_time_grow_with_work(self):
        before = self.scrape()
        self.api("PUT", "/upload?path=" + q("/m.bin"), raw=b"m" * 100000)
        self.api("GET", "/content?path=" + q("/m.bin"))
        after = self.scrape()
        self.assertGreaterEqual(after["roost_bytes_in_total"] - before["roost_bytes_in_total"],
                                100000)
        self.assertGreaterEqual(after["roost_bytes_out_total"] - before["roost_bytes_out_total"],
                                100000)
        self.assertGreater(after["roost_db_seconds_total"], before["roost_db_seconds_total"])
        self.assertIn("roost_feed_subscribers", after)


if __name__ == "__main__":
    harness.main()
