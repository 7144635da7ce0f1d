"""Connections under abuse (issue 13, item 17): one address cannot take every
connection slot of the hub (any port) or of a host's content server, and a
connection that sends no request head is closed soon, while a feed that has
authenticated stays open."""
import http.client
import os
import shutil
import socket
import tempfile
import time
import unittest

import harness
from harness import Hub, HubTest, Host, wait_for


def idle_sockets(port, n, source="127.0.0.2"):
    """n connections that send nothing, from source (another loopback address,
    so the flood is not counted against the test's own 127.0.0.1)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def closed_by_peer(s, wait):
    """Did the other side close s within wait seconds?"""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True  # reset


def count_closed(socks, within):
    deadline = time.monotonic() + within
    return sum(closed_by_peer(s, max(0.01, deadline - time.monotonic())) for s in socks)


def healthz(port, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    conn.request("GET", "/healthz")
    st = conn.getresponse().status
    conn.close()
    return st


def lines_logged_for_garbage(test, port, log):
    """300 malformed requests to port: each made libmicrohttpd log a line, so one
    client could fill the disk (the demo once printed ~8,600 in 12 s). Now the
    log grows by a bounded number of lines, and the server still answers."""
    before = os.path.getsize(log)
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nNot a header\r\n\r\n")  # 400 at once
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    test.assertEqual(healthz(port), 200)
    with open(log, "rb") as f:
        f.seek(before)
        grew = f.read()
    test.assertLess(grew.count(b"\n"), 60, grew[-2000:])


class HubConnectionTest(HubTest):
    """The hub with its defaults: 128 connections per address, 15 s to send a head."""

    def test_one_address_cannot_take_every_connection(self):
        for port in (self.hub.api_port, self.hub.content_port, self.hub.dash_port):
            with self.subTest(port=port):
                flood = idle_sockets(port, 200)
                try:
                    # past its limit the address's connections are closed at once
                    self.assertGreaterEqual(count_closed(flood[128:], 5), 72 - 2)
                    # and everyone else is still served
                    self.assertEqual(healthz(self.hub.api_port), 200)
                finally:
                    for s in flood:
                        s.close()
                # the slots come back once the flood is gone
                wait_for(lambda: healthz(port, "127.0.0.2") in (200, 404), 30, "the slots back")

    def test_garbage_requests_do_not_flood_the_log(self):
        lines_logged_for_garbage(self, self.hub.api_port, os.path.join(self.hub.root, "hub.log"))

    def test_a_connection_that_sends_no_head_is_closed_soon(self):
        s, = idle_sockets(self.hub.api_port, 1)
        start = time.monotonic()
        self.assertTrue(closed_by_peer(s, 40), "still open after 40 s")
        self.assertLess(time.monotonic() - start, 30)
        s.close()


class HeadTimeoutTest(unittest.TestCase):
    """--head-timeout 2: a trickled head is cut off; an authenticated feed is not."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-conn-")
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = ["--head-timeout", "2", "--max-conns-per-ip", "8"]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_a_half_sent_head_is_closed(self):
        s, = idle_sockets(self.hub.api_port, 1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        self.assertTrue(closed_by_peer(s, 15))
        s.close()

    def test_the_limit_is_an_option(self):
        flood = idle_sockets(self.hub.content_port, 10)
        try:
            self.assertGreaterEqual(count_closed(flood[8:], 5), 2)
        finally:
            for s in flood:
                s.close()

    def test_an_authenticated_feed_outlives_the_head_timeout(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.api_port, timeout=30)
        conn.request("GET", "/api/v1/workspaces/%d/events?since=0" % self.ws,
                     headers={"Authorization": "Bearer " + self.token,
                              "Accept": "text/event-stream"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        time.sleep(5)  # quiet for longer than the head timeout (2 s)
        st, _, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/folders" % self.ws,
                                       {"path": "/after-the-wait"}, token=self.token)
        self.assertEqual(st, 201)
        got = b""
        while b"after-the-wait" not in got:
            line = resp.fp.readline()
            self.assertTrue(line, "the feed closed")
            got += line
        conn.close()


class HostConnectionTest(HubTest):
    """A host's content server has the same limits."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.host = Host(cls.hub, cls.tmp, "a")
        cls.host.join()
        cls.host.start()

    @classmethod
    def tearDownClass(cls):
        cls.host.stop()
        super().tearDownClass()

    def test_one_address_cannot_take_the_content_server(self):
        flood = idle_sockets(self.host.port, 200)
        try:
            self.assertGreaterEqual(count_closed(flood[128:], 5), 72 - 2)
            self.assertEqual(healthz(self.host.port), 200)
        finally:
            for s in flood:
                s.close()

    def test_garbage_requests_do_not_flood_the_log(self):
        lines_logged_for_garbage(self, self.host.port, self.host.log_path)

    def test_a_connection_that_sends_no_head_is_closed_soon(self):
        s, = idle_sockets(self.host.port, 1)
        start = time.monotonic()
        self.assertTrue(closed_by_peer(s, 40), "still open after 40 s")
        self.assertLess(time.monotonic() - start, 30)
        s.close()


if __name__ == "__main__":
    unittest.main()
