"""The hub serves HTTPS on its ports when given --tls-cert and --tls-key, and the
CLI trusts a self-signed hub with login --cacert."""
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import unittest

import harness
from harness import Hub


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-tls-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", cls.key, "-out",
                        cls.cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = ["--tls-cert", cls.cert, "--tls-key", cls.key]
        cls.hub.start()
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def https(self, method, path, body=None, token=None, port=None):
        conn = http.client.HTTPSConnection("127.0.0.1", port or self.hub.api_port,
                                           context=self.ctx, timeout=20)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=h)
        version = conn.sock.version()
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, version

    def test_the_api_speaks_tls_1_2_or_newer(self):
        st, data, version = self.https("POST", "/api/v1/login",
                                       {"email": harness.EMAIL, "password": harness.PASSWORD})
        self.assertEqual(st, 200, data)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        token = json.loads(data)["token"]
        st, data, _ = self.https("GET", "/api/v1/workspaces", token=token)
        self.assertEqual(st, 200)

    def test_tls_1_2_offers_forward_secret_aead_suites_only(self):
        # No CBC (LUCKY13) and no static RSA key exchange, on every port.
        import socket
        for port in (self.hub.api_port, self.hub.content_port, self.hub.dash_port):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(self.cert)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
                            "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
                            "AES128-SHA:AES256-SHA:AES128-GCM-SHA256")
            with socket.create_connection(("127.0.0.1", port), 10) as s:
                with self.assertRaises(ssl.SSLError, msg="port %d" % port):
                    ctx.wrap_socket(s, server_hostname="127.0.0.1")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(self.cert)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with socket.create_connection(("127.0.0.1", port), 10) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    name, version, _ = t.cipher()
                    self.assertEqual(version, "TLSv1.2")
                    self.assertIn("ECDHE", name)
                    self.assertTrue("GCM" in name or "CHACHA20" in name, name)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(self.cert)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            with socket.create_connection(("127.0.0.1", port), 10) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    self.assertEqual(t.version(), "TLSv1.3")

    def test_plain_http_gets_no_answer_from_a_tls_port(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.api_port, timeout=5)
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                raise AssertionError("served plain HTTP")
            raise http.client.HTTPException("refused")
        conn.close()

    def test_every_port_is_tls(self):
        for port in (self.hub.content_port, self.hub.dash_port):
            st, _, version = self.https("GET", "/healthz", port=port)
            self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    def test_the_cli_trusts_a_self_signed_hub_with_cacert(self):
        url = "https://127.0.0.1:%d" % self.hub.api_port
        env = dict(self.hub.env(), XDG_CONFIG_HOME=os.path.join(self.tmp, "cfg-untrusting"))
        p = subprocess.run([harness.ROOST, "login", "--hub", url, "--email", harness.EMAIL],
                           env=env, capture_output=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"certificate", p.stderr.lower())
        self.hub.cli("login", "--hub", url, "--email", harness.EMAIL, "--cacert", self.cert)
        src = os.path.join(self.tmp, "f.bin")
        data = os.urandom(3 * 1024 * 1024)
        with open(src, "wb") as f:
            f.write(data)
        self.hub.cli("put", src, "/tls/f.bin")
        out = os.path.join(self.tmp, "f.out")
        self.hub.cli("get", "/tls/f.bin", out)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        link = self.hub.cli("url", "/tls/f.bin").stdout.decode().strip()
        self.assertTrue(link.startswith("https://127.0.0.1:%d/c/" % self.hub.content_port))

    def test_a_missing_key_file_stops_the_hub_with_a_clear_error(self):
        p = subprocess.run([harness.ROOST, "serve", "--data", self.hub.data, *self.hub.db_args(),
                            "--api-port", str(harness.free_port()), "--content-port",
                            str(harness.free_port()), "--dashboard-port",
                            str(harness.free_port()), "--tls-cert", self.cert, "--tls-key",
                            os.path.join(self.tmp, "nope.pem")],
                           env=self.hub.env(), capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"nope.pem", p.stderr)


if __name__ == "__main__":
    harness.main()
