"""roost demo: one command starts a hub and a host on loopback and prints a
login that works; a file dropped in the host's folder reaches the workspace."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import free_port, q


class DemoTest(unittest.TestCase):
    def test_demo_runs_a_hub_and_a_host(self):
        tmp = tempfile.mkdtemp(prefix="roost-demo-")
        data = os.path.join(tmp, "data")
        api, content, dash = free_port(), free_port(), free_port()
        log = open(os.path.join(tmp, "demo.log"), "w+b")
        p = subprocess.Popen([harness.ROOST, "demo", "--data", data, "--api-port", str(api),
                              "--content-port", str(content), "--dashboard-port", str(dash),
                              "--host-port", str(free_port()),
                              "--relay-port", str(free_port()),
                              "--tunnel-port", str(free_port())],
                             stdout=log, stderr=log)
        try:
            hub = harness.Hub.__new__(harness.Hub)
            hub.api_port = api
            deadline = time.time() + 90  # a busy machine, a sanitizer build
            text = ""
            while time.time() < deadline and "password:" not in text:
                time.sleep(0.1)
                log.seek(0)
                text = log.read().decode(errors="replace")
            m = re.search(r"login:\s+(\S+)\s+password: (\S+)", text)
            self.assertIsNotNone(m, text)
            while time.time() < deadline:
                try:
                    token = hub.login(m.group(1), m.group(2))
                    break
                except (OSError, AssertionError):
                    time.sleep(0.1)
            ws = hub.workspace(token)
            with open(os.path.join(data, "host", "dropped.txt"), "w") as f:
                f.write("from the demo host\n")
            while time.time() < deadline:
                st, body, _, _ = hub.request(
                    "GET", "/api/v1/workspaces/%d/info?path=%s" % (ws, q("/dropped.txt")),
                    token=token)
                if st == 200:
                    break
                time.sleep(0.05)
            log.seek(0)
            self.assertEqual(st, 200, log.read().decode(errors="replace")[-3000:])
            self.assertEqual(body["size"], 19)
            st, body, _, _ = hub.request("GET", "/api/v1/workspaces/%d/hosts" % ws, token=token)
            self.assertEqual([h["status"] for h in body["hosts"]], ["online"])
            # The demo host is reachable through the demo relay.
            while time.time() < deadline:
                st, body, _, _ = hub.request("GET", "/api/v1/workspaces/%d/hosts" % ws,
                                             token=token)
                url = body["hosts"][0].get("tunnel_url")
                if url:
                    break
                time.sleep(0.1)
            self.assertTrue(url and url.startswith("https://127.0.0.1:"), body)
            import ssl
            import urllib.request
            ctx = ssl.create_default_context(cafile=os.path.join(data, "relay", "ca.pem"))
            with urllib.request.urlopen(url + "healthz", context=ctx, timeout=10) as r:
                self.assertEqual(r.status, 200)
            # And the workspace mounts over WebDAV with the printed login.
            dav = re.search(r"WebDAV:\s+(\S+)", text)
            self.assertIsNotNone(dav, text)
            import base64
            import http.client
            import urllib.parse
            u = urllib.parse.urlsplit(dav.group(1))
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            cred = base64.b64encode(("%s:%s" % (m.group(1), m.group(2))).encode()).decode()
            conn.request("PROPFIND", u.path, headers={"Depth": "1",
                                                       "Authorization": "Basic " + cred})
            resp = conn.getresponse()
            listing = resp.read().decode()
            conn.close()
            self.assertEqual(resp.status, 207, listing[:500])
            self.assertIn("dropped.txt", listing)
            # Started in order: no part complains that another is not up yet,
            # and the banner is not buried under start-up noise.
            log.seek(0)
            text = log.read().decode(errors="replace")
            for noise in ("signing key is unknown", "Error processing request",
                          "cannot attach"):
                self.assertNotIn(noise, text)
            self.assertLess(text.count("\n"), 200, text[-3000:])
        finally:
            p.send_signal(signal.SIGINT)
            code = p.wait(30)
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(code, 0)
        out = subprocess.run(["pgrep", "-f", data], capture_output=True)
        self.assertEqual(out.stdout, b"", "the demo host outlived the demo")


if __name__ == "__main__":
    unittest.main(verbosity=2)
