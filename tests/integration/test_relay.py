"""The relay (roost relay, docs/relay.md): a host that only dials out gets a
public HTTPS URL; clients reach its content server through it, with the
host's own token checks; the relay refuses what is not HTTP it can trust."""
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest

import harness
from harness import Hub, Host, Relay, q, wait_for


def sha(b):
    return hashlib.sha256(b).hexdigest()


class RelayBase(unittest.TestCase):
    blob_size = 64 << 20
    relay_args = ()

    @classmethod
    def setUpClass(cls):
        try:
            cls.start_all()
        except BaseException:
            for name in ("A", "relay", "hub"):
                part = getattr(cls, name, None)
                if part is not None and getattr(part, "proc", None) is not None:
                    part.proc.kill()
                    part.proc.wait()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def start_all(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-relay-")
        cls.hub = Hub(cls.tmp)
        cls.hub.start()
        cls.hub.login_cli()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.relay = Relay(cls.hub, cls.tmp)
        cls.relay.start(*cls.relay_args)
        cls.A = Host(cls.hub, cls.tmp, "A", relay=cls.relay)
        cls.A.join()
        cls.A.start()
        cls.blob = os.urandom(cls.blob_size)
        with open(cls.A.path("big.bin"), "wb") as f:
            f.write(cls.blob)
        cls.base = wait_for(cls.public_url, 30, "A's public URL in roost hosts", [cls.A])
        # The whole file: a version of it half-written may be committed first.
        wait_for(lambda: cls.api("GET", "/info?path=" + q("/big.bin"))[1].get("hash") ==
                 sha(cls.blob), 120, "big.bin on the hub", [cls.A])

    @classmethod
    def tearDownClass(cls):
        try:
            cls.A.stop()
        finally:
            try:
                cls.relay.stop()
            finally:
                cls.hub.stop()
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def api(cls, method, rel, body=None):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=cls.token)

    @classmethod
    def public_url(cls):
        st, body, _, _ = cls.api("GET", "/hosts")
        url = body["hosts"][0].get("tunnel_url") if st == 200 and body["hosts"] else None
        return url

    def url_token(self, path):
        st, body, _, _ = self.api("POST", "/urls", {"path": path})
        self.assertEqual(st, 201, body)
        return body["token"]

    def path_of(self, rest):
        """The relay path of host A's REST (/h/SLUG/REST)."""
        prefix = "https://127.0.0.1:%d" % self.relay.public_port
        self.assertTrue(self.base.startswith(prefix), self.base)
        return self.base[len(prefix):] + rest.lstrip("/")

    def raw(self, data, read=True):
        """Send raw bytes to the public port; the relay's answer (or b'' if closed)."""
        ctx = ssl.create_default_context(cafile=self.relay.ca)
        with socket.create_connection(("127.0.0.1", self.relay.public_port), 15) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(data)
                out = b""
                while read:
                    try:
                        chunk = t.recv(65536)
                    except (ssl.SSLError, OSError):
                        break
                    if not chunk:
                        break
                    out += chunk
                return out

    def host_id(self):
        st, body, _, _ = self.api("GET", "/hosts")
        return body["hosts"][0]["id"]


class RelayTest(RelayBase):
    blob_size = 256 << 20

    def test_a_client_downloads_through_the_relay(self):
        st, body, resp = self.relay.request(self.path_of("c/" + self.url_token("/big.bin")))
        self.assertEqual(st, 200, body[:200])
        self.assertEqual(sha(body), sha(self.blob))
        st, body, resp = self.relay.request(self.path_of("c/" + self.url_token("/big.bin")),
                                            headers={"Range": "bytes=10-19"})
        self.assertEqual(st, 206)
        self.assertEqual(body, self.blob[10:20])

    def test_an_older_version_is_served_after_the_file_changed(self):
        # The hub names a host for a version the host no longer has as a
        # file: the host assembles it from chunks instead of answering 404.
        v1, v2 = os.urandom(300000), os.urandom(200000)
        with open(self.A.path("changing.bin"), "wb") as f:
            f.write(v1)
        wait_for(lambda: self.api("GET", "/info?path=" + q("/changing.bin"))[1].get("hash") ==
                 sha(v1), 60, "v1 on the hub", [self.A])
        st, made, _, _ = self.api("POST", "/urls", {"path": "/changing.bin", "version": 1})
        self.assertEqual(st, 201, made)
        with open(self.A.path("changing.bin"), "wb") as f:
            f.write(v2)
        wait_for(lambda: self.api("GET", "/info?path=" + q("/changing.bin"))[1].get("hash") ==
                 sha(v2), 60, "v2 on the hub", [self.A])
        relayed = [src for src in made["sources"] if src["via"] == "relay"]
        self.assertEqual(len(relayed), 1, made)
        prefix = "https://127.0.0.1:%d" % self.relay.public_port
        st, body, _ = self.relay.request(relayed[0]["url"][len(prefix):])
        self.assertEqual(st, 200, body[:200])
        self.assertEqual(sha(body), sha(v1))

    def test_the_host_still_checks_tokens(self):
        st, body, _ = self.relay.request(self.path_of("c/not-a-token"))
        self.assertEqual(st, 401, body)
        st, body, _ = self.relay.request(self.path_of("chunks/" + "0" * 64))
        self.assertEqual(st, 401, body)

    def test_uploads_through_the_relay_with_a_write_token(self):
        st, made, _, _ = self.api("POST", "/urls", {"path": "/up/new.bin", "scope": "write"})
        self.assertEqual(st, 201, made)
        self.assertEqual(made["via"], "relay")
        self.assertTrue(made["url"].startswith(self.public_url()), made["url"])
        prefix = "https://127.0.0.1:%d" % self.relay.public_port
        path = made["url"][len(prefix):]
        data = os.urandom(3 << 20)
        st, body, _ = self.relay.request(path, method="PUT", body=data)
        self.assertEqual(st, 201, body)
        self.assertEqual(json.loads(body)["hash"], sha(data))
        with open(self.A.path("up/new.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

        def on_hub():
            st, info, _, _ = self.api("GET", "/info?path=" + q("/up/new.bin"))
            return st == 200 and info["hash"] == sha(data)
        wait_for(on_hub, 30, "the upload synced to the hub", [self.A])
        # the wrong scopes, and no token, are refused by the host
        read = self.url_token("/big.bin")
        self.assertEqual(self.relay.request(self.path_of("u/" + read), method="PUT",
                                            body=b"x")[0], 403)
        self.assertEqual(self.relay.request(path.replace("/u/", "/c/"))[0], 403)
        self.assertEqual(self.relay.request(self.path_of("u/forged"), method="PUT",
                                            body=b"x")[0], 401)

    def test_unknown_hosts_are_404(self):
        st, body, _ = self.relay.request("/h/nosuchslug/c/x")
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")
        st, body, _ = self.relay.request("/elsewhere")
        self.assertEqual(st, 404)

    def test_a_bad_relay_token_cannot_attach(self):
        ctx = ssl.create_default_context(cafile=self.relay.ca)
        for token in ("garbage", self.url_token("/big.bin")):
            with socket.create_connection(("127.0.0.1", self.relay.tunnel_port), 5) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    t.sendall(json.dumps({"type": "control", "token": token}).encode() + b"\n")
                    answer = json.loads(t.recv(4096).split(b"\n")[0])
                    self.assertFalse(answer["ok"], answer)
        with open(self.relay.audit_path) as f:
            events = [json.loads(line)["event"] for line in f]
        self.assertIn("auth_failure", events)
        self.assertIn("connect", events)

    def test_bad_requests_never_reach_the_host(self):
        path = self.path_of("healthz").encode()
        smuggle = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertIn(b" 400 ", self.raw(smuggle).split(b"\r\n")[0])
        two_lengths = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                       b"Content-Length: 5\r\n\r\nabcd")
        self.assertIn(b" 400 ", self.raw(two_lengths).split(b"\r\n")[0])
        self.assertIn(b" 400 ", self.raw(b"NOT HTTP AT ALL\r\n\r\n").split(b"\r\n")[0])
        huge = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        self.assertIn(b" 431 ", self.raw(huge).split(b"\r\n")[0])

    def test_more_requests_at_once_than_the_pool_holds(self):
        # 24 downloads held open (not read) occupy more than the host's 16 pooled
        # data connections; the relay asks for more ({"need":1}) and the host
        # opens them, so none waits for the 5 s timeout (503).
        token = self.url_token("/big.bin")
        held, started = [], time.time()
        try:
            for _ in range(24):
                conn = http.client.HTTPSConnection("127.0.0.1", self.relay.public_port,
                                                   timeout=30,
                                                   context=self.relay.ssl_context())
                conn.request("GET", self.path_of("c/" + token))
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                resp.read(1000)
                held.append((conn, resp))
            st, body, _ = self.relay.request(self.path_of("healthz"))
            self.assertEqual(st, 200, body)  # a request that waited 5 s would be a 503
        finally:
            for conn, resp in held:
                resp.close()
                conn.close()

    def test_keep_alive_and_pipelining(self):
        # One client connection, several requests, each answered in full.
        conn = http.client.HTTPSConnection("127.0.0.1", self.relay.public_port, timeout=30,
                                           context=self.relay.ssl_context())
        token = self.url_token("/big.bin")
        sock = None
        for _ in range(3):
            conn.request("GET", self.path_of("healthz"))
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertTrue(json.loads(resp.read())["ok"])
            sock = sock or conn.sock
            self.assertIs(conn.sock, sock, "the relay closed a keep-alive connection")
            conn.request("GET", self.path_of("c/" + token), headers={"Range": "bytes=5-9"})
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (206, self.blob[5:10]))
            conn.request("HEAD", self.path_of("c/" + token))
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (200, b""))
            self.assertEqual(int(resp.getheader("Content-Length")), len(self.blob))
        self.assertIs(conn.sock, sock)
        conn.close()
        with open(self.relay.audit_path) as f:
            statuses = [json.loads(line).get("status") for line in f]
        self.assertIn(206, statuses)  # the host's own status, read by the relay
        # Three requests in one write; the last asks to close.
        head = b"GET " + self.path_of("healthz").encode() + b" HTTP/1.1\r\nHost: x\r\n"
        out = self.raw(head + b"\r\n" + head + b"\r\n" + head + b"Connection: close\r\n\r\n")
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 3, out)

    def test_a_slow_head_is_cut_off(self):
        started = time.time()
        answer = self.raw(b"GET " + self.path_of("healthz").encode() + b" HTTP/1.1\r\nHo")
        self.assertLess(time.time() - started, 14)
        self.assertTrue(answer == b"" or b" 408 " in answer.split(b"\r\n")[0], answer[:100])

    def test_the_forwarded_request_names_the_client(self):
        # /healthz on the host answers for itself; what matters is that it arrives.
        st, body, _ = self.relay.request(self.path_of("healthz"),
                                         headers={"Connection": "keep-alive, X-Evil",
                                                  "X-Forwarded-For": "10.0.0.1"})
        self.assertEqual(st, 200, body)
        self.assertTrue(json.loads(body)["ok"])
        with open(self.relay.audit_path) as f:
            lines = [json.loads(line) for line in f]
        reqs = [e for e in lines if e["event"] == "request"]
        self.assertTrue(any(e["client"] == "127.0.0.1" and e["status"] == 200 and
                            e["path"] == "/healthz" and e["method"] == "GET" for e in reqs))
        # content tokens never reach the log
        token = self.url_token("/big.bin")
        self.relay.request(self.path_of("c/" + token + "?x=1"), headers={"Range": "bytes=0-0"})
        with open(self.relay.audit_path) as f:
            text = f.read()
        self.assertIn('"path":"/c/-"', text)
        self.assertNotIn(token.split(".")[1][:20], text)

    def test_roost_url_goes_through_the_relay(self):
        st, body, _, _ = self.api("POST", "/urls", {"path": "/big.bin"})
        self.assertEqual(st, 201, body)
        # The host directly, then through its relay, then the hub.
        self.assertEqual([s["via"] for s in body["sources"]], ["host", "relay", "hub"], body)
        self.assertEqual(body["url"], body["sources"][0]["url"])
        self.assertTrue(body["sources"][1]["url"].startswith(self.public_url()), body)
        out = self.hub.cli("url", "/big.bin").stdout.decode()
        self.assertIn("/c/", out)

    def test_y_rate_limit_per_client_ip(self):
        # The default (100/s, a burst of 200) is stated in the relay's log; whether a
        # machine can send faster than that depends on its load, so the 429 itself is
        # checked with a limit one client passes at once on any machine: 3/s, a burst of
        # 6, over one kept-alive connection.
        with open(self.relay.log_path, errors="replace") as f:
            self.assertIn("limits per ip: ip.rps=100 ", f.read())
        self.relay.stop()
        self.relay.start("--limit", "ip.rps=3")
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", self.relay.public_port,
                                               timeout=30, context=self.relay.ssl_context())
            statuses, retry = [], []
            for _ in range(40):
                conn.request("GET", "/h/nosuchslug/x")
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
                if resp.status == 429:
                    retry.append(resp.getheader("Retry-After"))
                    break
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            conn.close()
            self.assertIn(429, statuses)
            self.assertGreaterEqual(statuses.index(429), 6, statuses)  # the burst passed
            self.assertEqual(retry, ["1"])
        finally:
            self.relay.stop()
            self.relay.start(*self.relay_args)
        token = self.url_token("/big.bin")

        def through():  # A is attached again before the tests after this one
            try:
                return self.relay.request(self.path_of("c/" + token),
                                          headers={"Range": "bytes=0-9"})[0] == 206
            except OSError:
                return False
        wait_for(through, 60, "a download through the restarted relay", [self.A])

    def test_zy_rotation_keeps_serving_on_the_new_url(self):
        old = self.public_url()
        st, body, _, _ = self.api("POST", "/hosts/%d/rotate-url" % self.host_id(), {"grace_s": 4})
        self.assertEqual(st, 200, body)
        new = wait_for(lambda: (self.public_url() or old) != old and self.public_url(), 30,
                       "a new public URL", [self.A])
        token = self.url_token("/big.bin")
        prefix = "https://127.0.0.1:%d" % self.relay.public_port

        def get(base):
            try:
                return self.relay.request(base[len(prefix):] + "c/" + token,
                                          headers={"Range": "bytes=0-9"})[0]
            except OSError:
                return 0
        wait_for(lambda: get(new) == 206, 30, "the new URL serving", [self.A])
        self.assertEqual(get(old), 206)  # still, within the grace period
        wait_for(lambda: get(old) == 404, 30, "the old URL retired", [self.A])
        self.assertEqual(get(new), 206)
        type(self).base = new

    def test_zz_the_host_reattaches_after_a_relay_restart(self):
        self.relay.stop()
        self.relay.start()
        token = self.url_token("/big.bin")

        def through():
            try:
                st, body, _ = self.relay.request(self.path_of("c/" + token),
                                                 headers={"Range": "bytes=0-99"})
                return st == 206 and body == self.blob[:100]
            except OSError:
                return False
        wait_for(through, 60, "a download through the restarted relay", [self.A])


class LimitsTest(RelayBase):
    """Token buckets per client IP, per host and per URL: requests/s, bytes/s and
    requests in flight, each answered 429 with Retry-After past its limit."""
    blob_size = 6 << 20
    relay_args = ("--limit", "ip.rps=0", "--limit", "ip.inflight=2", "--limit", "ip.bps=2M",
                  "--limit", "host.rps=5", "--limit", "url.rps=2")

    def setUp(self):
        time.sleep(2.2)  # every bucket full again

    def get(self, rest):
        st, body, resp = self.relay.request(self.path_of(rest), timeout=30)
        return st, body, resp

    def assert_limited(self, st, body, resp, what):
        self.assertEqual(st, 429, body)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "rate_limited")
        self.assertIn(what, err["message"])
        self.assertGreaterEqual(int(resp.getheader("Retry-After")), 1)

    def test_requests_per_second_per_url(self):
        # url.rps=2: a burst of four, then 429 for that URL and not for another.
        for _ in range(4):
            self.assertEqual(self.get("healthz")[0], 200)
        self.assert_limited(*self.get("healthz"), "for this URL")
        self.assertEqual(self.get("c/not-a-token")[0], 401)  # reached the host

    def test_requests_per_second_per_host(self):
        # host.rps=5: a burst of ten, then 429 for the host, whatever the URL.
        answers = [self.get("c/x%d" % i) for i in range(32)]
        self.assertTrue(all(a[0] == 401 for a in answers[:8]), [a[0] for a in answers])
        limited = [a for a in answers if a[0] == 429]
        self.assertGreater(len(limited), 0, [a[0] for a in answers])
        self.assert_limited(*limited[0], "for this host")

    def open_download(self):
        """A download that stays in flight: started, then not read."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.relay.public_port, timeout=30,
                                           context=self.relay.ssl_context())
        conn.request("GET", self.path_of("c/" + self.url_token("/big.bin")))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.read(1000)
        return conn, resp  # the response holds the socket (Connection: close)

    def test_requests_in_flight_per_client(self):
        # ip.inflight=2: a third request while two downloads run is refused.
        first, second = self.open_download(), self.open_download()
        self.assert_limited(*self.get("c/not-a-token"), "at once from this address")
        for conn, resp in (first, second):
            resp.close()
            conn.close()
        wait_for(lambda: self.get("c/not-a-token")[0] == 401, 10, "the slots freed", [self.A])

    def test_bytes_per_second_per_client(self):
        # ip.bps=2M with a one-second burst: 6 MiB take at least two seconds.
        started = time.time()
        st, body, _ = self.get("c/" + self.url_token("/big.bin"))
        took = time.time() - started
        self.assertEqual(st, 200)
        self.assertEqual(sha(body), sha(self.blob))
        self.assertGreater(took, 1.8)


class RevocationTest(RelayBase):
    """Revocation cuts a download in flight and new requests at once; the client
    falls back to the hub and still gets the right bytes."""

    def test_revocation_cuts_in_flight_and_new_requests(self):
        token = self.url_token("/big.bin")
        path = self.path_of("c/" + token)
        conn = http.client.HTTPSConnection("127.0.0.1", self.relay.public_port, timeout=30,
                                           context=self.relay.ssl_context())
        conn.request("GET", path)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        got = resp.read(1 << 20)  # a first MiB, then stall while the URL is revoked
        st, body, _, _ = self.api("POST", "/hosts/%d/revoke-url" % self.host_id(), {})
        self.assertEqual(st, 200, body)
        probe = self.path_of("healthz")

        def revoked():
            try:
                return self.relay.request(probe)[0] == 404
            except (OSError, http.client.HTTPException):
                return False
        wait_for(revoked, 10, "the URL revoked", [self.A])
        try:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                got += chunk
        except (OSError, http.client.HTTPException):
            pass
        conn.close()
        self.assertLess(len(got), len(self.blob), "the download in flight was not cut")
        # The client falls back to the hub's storage.
        st, _, payload, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/content?path=%s" % (self.ws, q("/big.bin")),
            token=self.token)
        self.assertEqual(st, 200)
        self.assertEqual(sha(payload), sha(self.blob))
        with open(self.relay.audit_path) as f:
            self.assertIn("revoke", [json.loads(line)["event"] for line in f])


if __name__ == "__main__":
    unittest.main(verbosity=2)
