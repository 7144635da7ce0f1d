"""The relay under attack (issue 13, docs/security.md "The relay"): inputs that
once crashed it, smuggled requests through it, or leaked its descriptors until
it refused everyone. Each test names the class of attack it stands for."""
import json
import os
import socket
import ssl
import subprocess
import time
import unittest

from harness import wait_for
from test_relay import RelayBase, sha


def sockets_from(pid, client_ports, local_port):
    """How many of process pid's descriptors are TCP sockets on local_port whose
    peer is one of client_ports on this machine (the relay's side of our
    connections). The local port matters: Linux gives one ephemeral port to
    several outgoing connections with different destinations, so a host's
    tunnel connection can have the same port as one of ours."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if (f[9] in inodes and int(f[1].rsplit(":", 1)[1], 16) == local_port
                    and int(f[2].rsplit(":", 1)[1], 16) in client_ports):
                n += 1
    return n


class AttackBase(RelayBase):
    blob_size = 1 << 20

    def alive(self):
        """The relay still runs and still serves a normal request."""
        self.assertIsNone(self.relay.proc.poll(), "the relay died")
        st, body, _ = self.relay.request(self.path_of("healthz"), timeout=30)
        self.assertEqual(st, 200, body)

    def status_of(self, data):
        first = self.raw(data).split(b"\r\n")[0]
        return int(first.split(b" ")[1]) if first.startswith(b"HTTP/1.1 ") else None


class FramingTest(AttackBase):
    def test_a_malformed_chunked_body_sent_with_its_head_does_not_crash(self):
        # Once a use after free: pump() freed the client, pair() then used it.
        path = self.path_of("x").encode()
        for body in (b"zz\r\n", b"5\r\nab", b"\r\n\r\n", b"-1\r\n", b"ffffffffffffffffff\r\n"):
            self.raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + body)
            self.alive()

    def test_a_malformed_body_that_arrives_later_does_not_crash(self):
        path = self.path_of("x").encode()
        ctx = ssl.create_default_context(cafile=self.relay.ca)
        with socket.create_connection(("127.0.0.1", self.relay.public_port), 15) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n")
                time.sleep(0.3)  # paired with a data connection by now
                t.sendall(b"zz\r\n")
                try:
                    t.recv(4096)
                except OSError:
                    pass
        self.alive()

    def test_many_clients_that_vanish_mid_request_do_not_crash(self):
        path = self.path_of("x").encode()
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", self.relay.public_port), 15)
            t = ssl.create_default_context(cafile=self.relay.ca).wrap_socket(
                s, server_hostname="127.0.0.1")
            t.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                      + b"a" * (i % 7))
            t.close()
        self.alive()

    def test_heads_any_parser_could_read_two_ways_are_refused(self):
        # Request smuggling: a header http_parser takes as framing and the
        # host's parser ignores (or the other way round) is a 400, never forwarded.
        path = self.path_of("healthz").encode()
        line = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
        bad = [
            line + b"Content-Length : 5\r\n\r\nhello",
            line + b"Content-Length\t: 5\r\n\r\nhello",
            line + b" Content-Length: 5\r\n\r\nhello",
            line + b"X-A: b\r\n Content-Length: 5\r\n\r\nhello",  # obs-fold
            line + b"Content-Length: 5\n\r\n\r\nhello",  # a bare LF
            line + b"Content-Length: 5\r\r\n\r\nhello",  # a bare CR
            line + b"Content-Length: +5\r\n\r\nhello",
            line + b"Content-Length: 5, 5\r\n\r\nhello",
            line + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            line + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            line + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            line + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            line + b"X-Nul: a\x00b\r\n\r\n",
            line + b"Bad/Name: 1\r\n\r\n",
            line + b": empty name\r\n\r\n",
            b"POST  " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST " + path + b" HTTP/1.1 \r\nHost: x\r\n\r\n",
        ]
        for data in bad:
            self.assertEqual(self.status_of(data), 400, data)
        self.alive()

    def test_a_smuggled_body_never_answers_another_client(self):
        # The attack as shown: the body of a request the host misframes becomes
        # the next request on a pooled data connection that serves others.
        path = self.path_of("healthz").encode()
        evil = b"GET " + self.path_of("c/nope").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):
            self.raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length : %d\r\n\r\n"
                     % len(evil) + evil)
        for _ in range(20):
            st, body, _ = self.relay.request(self.path_of("healthz"))
            self.assertEqual(st, 200, body)
            self.assertTrue(json.loads(body)["ok"])

    def test_a_chunked_upload_is_reframed_and_arrives_whole(self):
        # Chunk extensions and trailers are the relay's to read, not the host's.
        st, made, _, _ = self.api("POST", "/urls", {"path": "/up/chunked.bin",
                                                    "scope": "write"})
        self.assertEqual(st, 201, made)
        self.assertEqual(made["via"], "relay")
        path = made["url"][len("https://127.0.0.1:%d" % self.relay.public_port):].encode()
        data = os.urandom(70000)
        body = b""
        for i in range(0, len(data), 30000):
            piece = data[i:i + 30000]
            body += b"%x;name=value\r\n" % len(piece) + piece + b"\r\n"
        body += b"0\r\nX-Trailer: yes\r\n\r\n"
        out = self.raw(b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + body)
        self.assertIn(b" 201 ", out.split(b"\r\n")[0], out[:300])
        with open(self.A.path("up/chunked.bin"), "rb") as f:
            self.assertEqual(sha(f.read()), sha(data))

    def test_silent_connections_are_closed_and_their_descriptors_freed(self):
        # Once: a connection that sent nothing got a 408 queued on a TLS
        # handshake that never finished, and was never freed.
        pid = self.relay.proc.pid
        socks = [socket.create_connection(("127.0.0.1", self.relay.public_port), 5)
                 for _ in range(30)]
        half = socket.create_connection(("127.0.0.1", self.relay.public_port), 5)
        half.sendall(b"\x16\x03\x01\x00\xff")  # a ClientHello that never ends
        socks.append(half)
        ports = {s.getsockname()[1] for s in socks}
        try:
            wait_for(lambda: sockets_from(pid, ports, self.relay.public_port) == len(socks), 10, "the relay accepting")
            for s in socks:
                s.settimeout(40)
                try:
                    self.assertEqual(s.recv(100), b"")  # closed by the relay
                except ConnectionResetError:
                    pass
            # Our sockets are still open: only the relay's side may be gone.
            wait_for(lambda: sockets_from(pid, ports, self.relay.public_port) == 0, 15,
                     "the relay's descriptors for silent clients freed")
        finally:
            for s in socks:
                s.close()
        self.alive()

    def test_tls_1_2_offers_no_cbc_suites(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.relay.ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:"
                        "ECDHE-RSA-AES128-SHA256:AES128-SHA:AES256-SHA")
        with socket.create_connection(("127.0.0.1", self.relay.public_port), 10) as s:
            with self.assertRaises(ssl.SSLError):
                ctx.wrap_socket(s, server_hostname="127.0.0.1")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.relay.ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.relay.public_port), 10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                name, version, _ = t.cipher()
                self.assertEqual(version, "TLSv1.2")
                self.assertTrue("GCM" in name or "CHACHA20" in name, name)
                self.assertIn("ECDHE", name)


class DescriptorTest(AttackBase):
    """Connections are bounded per client address."""
    relay_args = ("--limit", "ip.conns=40")

    def test_one_address_cannot_hold_more_than_its_share(self):
        socks = []
        try:
            for _ in range(60):
                socks.append(socket.create_connection(("127.0.0.1",
                                                       self.relay.public_port), 5))
            refused = 0
            for s in socks:
                s.settimeout(0.5)
                try:
                    if s.recv(10) == b"":
                        refused += 1
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    refused += 1
            self.assertGreaterEqual(refused, 20)
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: self.relay.request(self.path_of("healthz"))[0] == 200, 15,
                 "the relay serving again")


class OutOfDescriptorsTest(AttackBase):
    """Run out of descriptors, then recover without spinning on accept()."""

    @classmethod
    def start_all(cls):
        cls.prlimit = subprocess.run(["sh", "-c", "command -v prlimit"],
                                     capture_output=True).returncode == 0
        if not cls.prlimit:
            raise RuntimeError("prlimit (util-linux) is needed")
        RelayBase.start_all.__func__(cls)
        # Restart the relay with room for the host's pool and little more.
        cls.relay.stop()
        cls.relay.wrapper = ["prlimit", "--nofile=120:120"]
        cls.relay.start("--limit", "ip.conns=0")
        cls.base = wait_for(cls.public_url, 30, "A's public URL again", [cls.A])
        wait_for(lambda: cls.relay.request(cls.path_of_cls("healthz"))[0] == 200, 30,
                 "A attached again", [cls.A])

    @classmethod
    def path_of_cls(cls, rest):
        prefix = "https://127.0.0.1:%d" % cls.relay.public_port
        return cls.base[len(prefix):] + rest

    def test_the_relay_recovers_when_descriptors_run_out(self):
        size_before = os.path.getsize(self.relay.log_path)
        socks = []
        try:
            for _ in range(200):
                try:
                    socks.append(socket.create_connection(("127.0.0.1",
                                                           self.relay.public_port), 2))
                except OSError:
                    break
            time.sleep(2)  # the relay has met EMFILE by now (what it logs is measured)
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: self.relay.request(self.path_of("healthz"), timeout=5)[0] == 200, 30,
                 "the relay serving again")
        grew = os.path.getsize(self.relay.log_path) - size_before
        self.assertLess(grew, 20000, "the relay's log grew by %d bytes" % grew)
        self.alive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
