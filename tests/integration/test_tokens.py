"""Hub-signed content URLs: a download works without a login until it expires,
verifies against the published Ed25519 keys, and survives key rotation."""
import base64
import hashlib
import http.client
import json
import subprocess
import time
import urllib.parse

import harness
from harness import HubTest, q

PW = "member password 1"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = b"signed content " * 1000
        st, _, payload, _ = cls.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q("/docs/report v1.txt")),
            token=cls.token, raw=cls.data)
        assert st == 201, payload

    def make_url(self, path="/docs/report v1.txt", **body):
        body["path"] = path
        st, resp, payload, _ = self.api("POST", "/urls", body)
        self.assertEqual(st, 201, payload)
        return resp

    def fetch(self, url, headers=None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", u.path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body, resp

    def test_a_signed_url_downloads_without_a_login(self):
        made = self.make_url(expires_in=60)
        u = urllib.parse.urlsplit(made["url"])
        self.assertEqual(u.port, self.hub.content_port)
        st, body, resp = self.fetch(made["url"])
        self.assertEqual((st, body), (200, self.data))
        self.assertIn("filename*=UTF-8''report%20v1.txt", resp.getheader("Content-Disposition"))
        st, body, _ = self.fetch(made["url"], {"Range": "bytes=0-5"})
        self.assertEqual((st, body), (206, self.data[:6]))
        self.assertGreater(made["expires_at"], time.time() * 1000)

    def test_the_url_names_one_version(self):
        made = self.make_url()
        self.api("PUT", "/upload?path=" + q("/docs/report v1.txt"), raw=b"newer")
        st, body, _ = self.fetch(made["url"])
        self.assertEqual((st, body), (200, self.data))
        old = self.make_url(version=1)
        self.assertEqual(self.fetch(old["url"])[1], self.data)
        self.api("PUT", "/upload?path=" + q("/docs/report v1.txt"), raw=self.data)

    def test_an_expired_or_tampered_token_is_refused(self):
        made = self.make_url(expires_in=1)
        time.sleep(1.3)
        st, body, _ = self.fetch(made["url"])
        self.assertEqual(st, 403)
        self.assertIn(b"expired", body)
        good = self.make_url()
        payload, sig = good["token"].split(".")
        claims = json.loads(b64d(payload))
        claims["exp"] += 10 ** 9  # a forged, longer life
        forged = b64e(json.dumps(claims).encode()) + "." + sig
        base = good["url"].rsplit("/", 1)[0]
        flipped = sig[:10] + ("B" if sig[10] != "B" else "C") + sig[11:]
        for bad in (forged, payload + "." + flipped, "garbage", payload, "a.b"):
            st, body, _ = self.fetch(base + "/" + bad)
            self.assertEqual(st, 403, bad)
            self.assertEqual(json.loads(body)["error"]["code"], "invalid_token")

    def test_a_url_for_a_deleted_file_stops_working(self):
        self.api("PUT", "/upload?path=" + q("/gone.txt"), raw=b"bye")
        made = self.make_url("/gone.txt")
        self.api("DELETE", "/files?path=" + q("/gone.txt"))
        self.assertEqual(self.fetch(made["url"])[0], 404)

    def test_only_readers_get_urls(self):
        st, inv, _, _ = self.api("POST", "/invites", {})
        st, body, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                          {"token": inv["token"], "email": "u@example.test",
                                           "password": PW})
        st, _, _, _ = self.api("PUT", "/acl", {"path": "/docs", "user_id": body["user"]["id"],
                                               "perm": "none"})
        self.assertError(self.api("POST", "/urls", {"path": "/docs/report v1.txt"},
                                  token=body["token"]), 404, "not_found")
        for bad in ({"path": "/docs/report v1.txt", "expires_in": 0},
                    {"path": "/docs/report v1.txt", "expires_in": 10 ** 9},
                    {"path": "/docs/report v1.txt", "version": 0}):
            self.assertError(self.api("POST", "/urls", bad), 400, "invalid_request")

    def put(self, url, data):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("PUT", u.path, body=data)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, json.loads(body or b"{}")

    def test_a_write_url_takes_a_new_version_without_a_login(self):
        made = self.make_url("/inbox/new file.bin", scope="write", expires_in=60)
        self.assertEqual((made["via"], made["method"], made["scope"]), ("hub", "PUT", "write"))
        self.assertEqual(urllib.parse.urlsplit(made["url"]).port, self.hub.content_port)
        data = b"uploaded by url " * 4096
        st, body = self.put(made["url"], data)
        self.assertEqual(st, 201, body)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/inbox/new file.bin"))
        self.assertEqual(info["hash"], hashlib.sha256(data).hexdigest())
        # again: a second version of the same file
        st, body = self.put(made["url"], b"v2")
        self.assertEqual(st, 201, body)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/inbox/new file.bin"))
        self.assertEqual((info["size"], info["version"]), (2, 2))
        # a write token reads nothing, a read token writes nothing
        self.assertEqual(self.fetch(made["url"].replace("/u/", "/c/"))[0], 403)
        read = self.make_url("/inbox/new file.bin")
        self.assertEqual(self.put(read["url"].replace("/c/", "/u/"), b"x")[0], 403)
        # tampered or expired
        payload, sig = made["token"].split(".")
        claims = json.loads(b64d(payload))
        claims["path"] = "/elsewhere.bin"
        forged = made["url"].replace(payload, b64e(json.dumps(claims).encode()))
        self.assertEqual(self.put(forged, b"x")[0], 403)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/elsewhere.bin"))
        self.assertEqual(st, 404)

    def test_only_writers_get_write_urls(self):
        st, inv, _, _ = self.api("POST", "/invites", {})
        st, body, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                          {"token": inv["token"], "email": "w@example.test",
                                           "password": PW})
        self.api("PUT", "/acl", {"path": "/docs", "user_id": body["user"]["id"], "perm": "read"})
        self.assertError(self.api("POST", "/urls", {"path": "/docs/x.bin", "scope": "write"},
                                  token=body["token"]), 403, "forbidden")
        self.assertError(self.api("POST", "/urls", {"path": "/docs", "scope": "write"}),
                         409, "is_folder")
        for bad in ({"path": "/a.bin", "scope": "admin"},
                    {"path": "/a.bin", "scope": "write", "version": 1},
                    {"path": "/a.bin", "scope": 7}):
            self.assertError(self.api("POST", "/urls", bad), 400, "invalid_request")
        # made while allowed, used after the right was taken away: refused
        self.api("PUT", "/acl", {"path": "/docs", "user_id": body["user"]["id"],
                                 "perm": "write"})
        st, made, _, _ = self.api("POST", "/urls", {"path": "/docs/late.bin", "scope": "write"},
                                  token=body["token"])
        self.assertEqual(st, 201, made)
        self.api("PUT", "/acl", {"path": "/docs", "user_id": body["user"]["id"], "perm": "read"})
        self.assertEqual(self.put(made["url"], b"late")[0], 403)

    def test_tokens_verify_with_the_published_keys(self):
        from ctypes import CDLL, c_char_p, c_ulonglong
        sodium = CDLL("libsodium.so.23")
        self.assertEqual(sodium.sodium_init() >= 0, True)
        made = self.make_url()
        payload, sig = made["token"].split(".")
        kid = json.loads(b64d(payload))["kid"]
        st, keys, _, _ = self.hub.request("GET", "/api/v1/keys")
        key = [k for k in keys["keys"] if k["kid"] == kid][0]
        self.assertEqual(key["alg"], "Ed25519")
        ok = sodium.crypto_sign_verify_detached(c_char_p(b64d(sig)), c_char_p(payload.encode()),
                                                c_ulonglong(len(payload)),
                                                c_char_p(b64d(key["public_key"])))
        self.assertEqual(ok, 0)

    def test_zz_rotated_keys_keep_old_tokens_valid_and_sign_new_ones(self):
        old = self.make_url()
        env = self.hub.env()
        args = [harness.ROOST, "admin", "rotate-keys", "--data", self.hub.data,
                *self.hub.db_args()]
        p = subprocess.run(args, env=env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.make_url()
        kid = lambda t: json.loads(b64d(t.split(".")[0]))["kid"]
        self.assertNotEqual(kid(old["token"]), kid(new["token"]))
        self.assertEqual(self.fetch(old["url"])[0], 200)  # within the grace period
        self.assertEqual(self.fetch(new["url"])[0], 200)
        st, keys, _, _ = self.hub.request("GET", "/api/v1/keys")
        listed = {k["kid"]: k for k in keys["keys"]}
        self.assertIn("retired_at", listed[kid(old["token"])])
        self.assertNotIn("retired_at", listed[kid(new["token"])])
        # once retired for longer than any token lives, the old key verifies nothing
        self.hub.sql("UPDATE signing_keys SET retired_at = ? WHERE kid = ?",
                     (int(time.time() * 1000) - 8 * 24 * 3600 * 1000, kid(old["token"])))
        self.assertEqual(self.fetch(old["url"])[0], 403)
        self.assertEqual(self.fetch(new["url"])[0], 200)

    def test_roost_url_prints_a_working_link(self):
        self.hub.login_cli()
        link = self.hub.cli("url", "/docs/report v1.txt", "--expires", "10m").stdout.decode().strip()
        st, body, _ = self.fetch(link)
        self.assertEqual((st, body), (200, self.data))
        p = self.hub.cli("url", "/docs/nope.txt", check=False)
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    harness.main()
