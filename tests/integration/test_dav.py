"""WebDAV (docs/webdav.md): Debian's litmus suite and rclone against a live hub,
authentication, access control, quotas, the feed, the audit log and sync to a host.
litmus and rclone are required (scripts/install-deps installs them): without them
these tests fail rather than skip."""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Host, Hub, HubTest, q, wait_for
from test_feed import Stream

PW = "member password 1"


def sha(data):
    return hashlib.sha256(data).hexdigest()


class DavTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        out = cls.hub.cli("token", "create", "--name", "dav-tests", "--json").stdout
        cls.app = json.loads(out)["token"]
        cls.hosts = []

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            h.stop()
        super().tearDownClass()

    # ---- helpers ----
    def basic(self, email=harness.EMAIL, password=None):
        raw = "%s:%s" % (email, password or self.app)
        return "Basic " + base64.b64encode(raw.encode()).decode()

    def dav(self, method, path, body=None, headers=None, auth=None):
        """One request on the content port; path is below /dav/default."""
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=60)
        h = {"Authorization": auth or self.basic()}
        h.update(headers or {})
        url = "/dav/default" + urlpath(path)
        conn.request(method, url, body=body, headers={k: v for k, v in h.items() if v})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp

    def rclone_env(self, user=harness.EMAIL, password=None):
        obscured = subprocess.run(["rclone", "obscure", password or self.app],
                                  capture_output=True, check=True).stdout.decode().strip()
        env = dict(os.environ)
        env.update(RCLONE_CONFIG=os.path.join(self.tmp, "rclone.conf"),
                   RCLONE_CONFIG_ROOST_TYPE="webdav",
                   RCLONE_CONFIG_ROOST_URL="http://127.0.0.1:%d/dav/default/" %
                   self.hub.content_port,
                   RCLONE_CONFIG_ROOST_VENDOR="other",
                   RCLONE_CONFIG_ROOST_USER=user, RCLONE_CONFIG_ROOST_PASS=obscured)
        return env

    def rclone(self, *args):
        p = subprocess.run(["rclone", *args], env=self.rclone_env(), capture_output=True,
                           timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
        return p

    # ---- litmus ----
    def test_litmus_suites_all_pass(self):
        self.assertTrue(shutil.which("litmus"), "litmus is not installed: run scripts/install-deps")
        url = "http://127.0.0.1:%d/dav/default/" % self.hub.content_port
        env = dict(os.environ, TESTS="basic copymove props locks http")
        p = subprocess.run(["litmus", "-k", url, harness.EMAIL, self.app], env=env,
                           capture_output=True, timeout=600)
        out = p.stdout.decode(errors="replace")
        summaries = {s: (int(n), int(f)) for s, n, f in re.findall(
            r"<- summary for `(\w+)': of (\d+) tests run: \d+ passed, (\d+) failed", out)}
        failures = [line for line in out.splitlines() if "FAIL" in line]
        self.assertEqual(sorted(summaries), ["basic", "copymove", "http", "locks", "props"], out)
        for suite, (ran, failed) in summaries.items():
            self.assertGreater(ran, 3, suite)
            self.assertEqual(failed, 0, "%s: %s" % (suite, "\n".join(failures)))
        self.assertNotIn("WARNING", out)

    # ---- rclone ----
    def test_rclone_copies_a_tree_in_and_out_unchanged(self):
        self.assertTrue(shutil.which("rclone"), "rclone is not installed: run scripts/install-deps")
        src = os.path.join(self.tmp, "rc-src")
        files = {
            "big.bin": os.urandom(5 * 1024 * 1024 + 17),  # several chunks
            "empty": b"",
            "a/b/c/deep.txt": b"deep\n",
            "sp ace/ünï cödé #1%.txt": "ü\n".encode(),
            "a/same1.bin": b"x" * 300000,
            "a/same2.bin": b"x" * 300000,
        }
        for i in range(40):
            files["many/f%02d" % i] = os.urandom(i * 997)
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "wb") as f:
                f.write(data)
        self.rclone("copy", src, "roost:rc")
        check = self.rclone("check", src, "roost:rc", "--download")
        self.assertIn("0 differences found", check.stderr.decode())
        out = os.path.join(self.tmp, "rc-out")
        self.rclone("copy", "roost:rc", out)
        for rel, data in files.items():
            with open(os.path.join(out, rel), "rb") as f:
                self.assertEqual(f.read(), data, rel)
        # the hub holds exactly these bytes (its own SHA-256 of each version)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/rc/big.bin"))
        self.assertEqual(st, 200)
        self.assertEqual(info["hash"], sha(files["big.bin"]))
        st, info, _, _ = self.api("GET", "/info?path=" + q("/rc/sp ace/ünï cödé #1%.txt"))
        self.assertEqual((st, info["size"]), (200, 3))

    # ---- authentication ----
    def test_bearer_token_and_account_password_work(self):
        for auth in ("Bearer " + self.token, self.basic(password=harness.PASSWORD),
                     self.basic(password=harness.PASSWORD)):  # the second from the cache
            st, body, _ = self.dav("PROPFIND", "/", headers={"Depth": "0"}, auth=auth)
            self.assertEqual(st, 207, body[:300])
            self.assertIn(b"<D:collection/>", body)

    def test_bad_or_missing_credentials_get_401_with_a_basic_challenge(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=30)
        conn.request("PROPFIND", "/dav/default/", headers={"Depth": "0"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        self.assertEqual(resp.status, 401)
        self.assertIn('Basic realm="roost"', resp.getheader("WWW-Authenticate"))
        for auth in (self.basic(password="wrong"), self.basic(password="rst_wrong"),
                     self.basic(email="nobody@example.test"), "Bearer rst_nope",
                     "Basic !!!notbase64"):
            st, _, resp = self.dav("PROPFIND", "/", headers={"Depth": "0"}, auth=auth)
            self.assertEqual(st, 401, auth)
        # failed logins are audited like the API's (no workspace: it is not known yet)
        rows = self.hub.sql("SELECT detail FROM audit_log WHERE action = 'login.failed'")
        self.assertGreaterEqual(len([r for r in rows if '"dav"' in (r[0] or "")]), 3)

    def test_revoked_app_password_stops_working(self):
        made = json.loads(self.hub.cli("token", "create", "--name", "temp", "--json").stdout)
        self.assertEqual(self.dav("PROPFIND", "/", headers={"Depth": "0"},
                                  auth=self.basic(password=made["token"]))[0], 207)
        listed = json.loads(self.hub.cli("token", "ls", "--json").stdout)
        self.assertIn("temp", [t["name"] for t in listed])
        self.hub.cli("token", "revoke", str(made["id"]))
        self.assertEqual(self.dav("PROPFIND", "/", headers={"Depth": "0"},
                                  auth=self.basic(password=made["token"]))[0], 401)

    def test_webdav_is_served_on_the_content_port_only(self):
        st, _, _, _ = self.hub.request("PROPFIND", "/dav/default/", token=self.token)
        self.assertEqual(st, 404)

    def test_workspace_by_id_and_unknown_workspace(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=30)
        conn.request("PROPFIND", "/dav/%d/" % self.ws,
                     headers={"Depth": "0", "Authorization": self.basic()})
        self.assertEqual(conn.getresponse().status, 207)
        conn.close()
        st, _, _ = self.dav("PROPFIND", "/../../nope", headers={"Depth": "0"})
        self.assertIn(st, (400, 404))
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=30)
        conn.request("PROPFIND", "/dav/nope/",
                     headers={"Depth": "0", "Authorization": self.basic()})
        self.assertEqual(conn.getresponse().status, 404)
        conn.close()

    # ---- protocol details ----
    def test_propfind_infinity_is_refused(self):
        st, body, _ = self.dav("PROPFIND", "/", headers={"Depth": "infinity"})
        self.assertEqual(st, 403)
        self.assertIn(b"propfind-finite-depth", body)

    def test_get_with_range_etag_and_conditional_requests(self):
        data = os.urandom(3 * 1024 * 1024)
        st, _, resp = self.dav("PUT", "/range.bin", data)
        self.assertEqual(st, 201)
        etag = resp.getheader("ETag")
        st, body, resp = self.dav("GET", "/range.bin", headers={"Range": "bytes=1000-1999"})
        self.assertEqual((st, body), (206, data[1000:2000]))
        self.assertEqual(resp.getheader("ETag"), etag)
        self.assertEqual(self.dav("GET", "/range.bin", headers={"If-None-Match": etag})[0], 304)
        self.assertEqual(self.dav("PUT", "/range.bin", b"new",
                                  headers={"If-Match": '"nope"'})[0], 412)
        self.assertEqual(self.dav("PUT", "/range.bin", b"new",
                                  headers={"If-None-Match": "*"})[0], 412)
        self.assertEqual(self.dav("PUT", "/range.bin", b"new", headers={"If-Match": etag})[0],
                         204)
        st, _, resp = self.dav("HEAD", "/range.bin")
        self.assertEqual((st, resp.getheader("Content-Length")), (200, "3"))

    def test_copy_of_a_file_sends_no_bytes_and_keeps_history(self):
        data = os.urandom(2 * 1024 * 1024)
        self.assertEqual(self.dav("PUT", "/orig.bin", data)[0], 201)
        before = self.hub.metric("roost_chunk_bytes_received_total")
        dest = "http://127.0.0.1:%d/dav/default/copy.bin" % self.hub.content_port
        self.assertEqual(self.dav("COPY", "/orig.bin", headers={"Destination": dest})[0], 201)
        self.assertEqual(self.hub.metric("roost_chunk_bytes_received_total"), before)
        self.assertEqual(self.dav("GET", "/copy.bin")[1], data)
        self.assertEqual(self.dav("COPY", "/orig.bin", headers={"Destination": dest})[0], 204)
        st, body, _, _ = self.api("GET", "/versions?path=" + q("/copy.bin"))
        self.assertEqual(len(body["versions"]), 2)

    def test_dead_properties_follow_a_move_made_through_the_api(self):
        self.assertEqual(self.dav("PUT", "/prop-a.txt", b"p")[0], 201)
        patch = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
                 '<D:set><D:prop><Z:colour>blue <b xmlns="urn:b">bold</b></Z:colour></D:prop>'
                 '</D:set></D:propertyupdate>')
        st, body, _ = self.dav("PROPPATCH", "/prop-a.txt", patch.encode())
        self.assertEqual(st, 207, body)
        self.assertIn(b"200 OK", body)
        st, _, payload, _ = self.api("POST", "/move", {"from": "/prop-a.txt",
                                                        "to": "/prop-b.txt"})
        self.assertEqual(st, 200, payload)
        find = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
                '<colour xmlns="urn:z"/></D:prop></D:propfind>')
        st, body, _ = self.dav("PROPFIND", "/prop-b.txt", find.encode(), {"Depth": "0"})
        self.assertEqual(st, 207, body)
        self.assertIn(b'xmlns:Z="urn:z"', body)
        self.assertIn(b'<b xmlns="urn:b">bold</b>', body)
        # a new file at the old path starts without them
        self.assertEqual(self.dav("PUT", "/prop-a.txt", b"new")[0], 201)
        st, body, _ = self.dav("PROPFIND", "/prop-a.txt", find.encode(), {"Depth": "0"})
        self.assertIn(b"404 Not Found", body)

    def test_proppatch_with_a_dtd_is_refused_and_propfind_stays_well_formed(self):
        # Entities of a DTD were stored as references (&e;) and replayed raw,
        # which broke PROPFIND's XML (issue 13, item 12; tests/fuzz/fuzz_dav_xml.c).
        import xml.etree.ElementTree as ET
        self.assertEqual(self.dav("PUT", "/dtd.txt", b"d")[0], 201)
        for dtd, ref in (('<!DOCTYPE D:propertyupdate [<!ENTITY e "v">]>', "&e;"),
                         ('<!DOCTYPE D:propertyupdate SYSTEM "x.dtd">', "&undeclared;")):
            patch = ('<?xml version="1.0"?>' + dtd +
                     '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
                     '<x xmlns="urn:y">' + ref + '</x></D:prop></D:set></D:propertyupdate>')
            st, body, _ = self.dav("PROPPATCH", "/dtd.txt", patch.encode())
            self.assertEqual(st, 400, body)
        find = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>')
        st, body, _ = self.dav("PROPFIND", "/dtd.txt", find.encode(), {"Depth": "0"})
        self.assertEqual(st, 207, body)
        ET.fromstring(body)  # well-formed
        self.assertNotIn(b"urn:y", body)

    def test_if_header_without_a_list_is_malformed(self):
        # RFC 4918 10.4: If = 1*No-tag-list | 1*Tagged-list. An empty header or
        # a tag with no list used to be taken as "no condition" (tests/fuzz).
        self.assertEqual(self.dav("PUT", "/iftag.txt", b"i")[0], 201)
        tag = "<http://127.0.0.1:%d/dav/default/iftag.txt>" % self.hub.content_port
        for value in (" ", tag, tag + " " + tag + ' (["x"])', '(["x"]) ' + tag + ' (["y"])'):
            st, body, _ = self.dav("PUT", "/iftag.txt", b"j", headers={"If": value})
            self.assertEqual(st, 400, (value, body))
        self.assertEqual(self.dav("GET", "/iftag.txt")[1], b"i")

    # ---- access control and quota ----
    def member(self, name):
        st, inv, _, _ = self.api("POST", "/invites", {"role": "member"})
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": name + "@example.test", "password": PW})
        self.assertEqual(st, 200, payload)
        return body["token"], body["user"]["id"]

    def test_acl_applies_read_only_member_gets_403_and_hidden_paths_404(self):
        for p in ("/ro", "/secret"):
            self.assertIn(self.dav("MKCOL", p)[0], (201, 405))
        self.assertEqual(self.dav("PUT", "/ro/r.txt", b"read me")[0], 201)
        self.assertEqual(self.dav("PUT", "/secret/s.txt", b"hidden")[0], 201)
        tok, uid = self.member("reader")
        for path, perm in (("/ro", "read"), ("/secret", "none")):
            st, _, payload, _ = self.api("PUT", "/acl", {"path": path, "user_id": uid,
                                                          "perm": perm})
            self.assertEqual(st, 200, payload)
        auth = "Bearer " + tok
        self.assertEqual(self.dav("GET", "/ro/r.txt", auth=auth)[1], b"read me")
        self.assertEqual(self.dav("PUT", "/ro/r.txt", b"no", auth=auth)[0], 403)
        self.assertEqual(self.dav("PUT", "/ro/new.txt", b"no", auth=auth)[0], 403)
        self.assertEqual(self.dav("MKCOL", "/ro/sub", auth=auth)[0], 403)
        self.assertEqual(self.dav("DELETE", "/ro/r.txt", auth=auth)[0], 403)
        self.assertEqual(self.dav("GET", "/secret/s.txt", auth=auth)[0], 404)
        st, body, _ = self.dav("PROPFIND", "/", headers={"Depth": "1"}, auth=auth)
        self.assertEqual(st, 207)
        self.assertIn(b"/dav/default/ro/", body)
        self.assertNotIn(b"/dav/default/secret/", body)
        # basic auth with the member's own account password behaves the same
        self.assertEqual(self.dav("PUT", "/ro/r.txt", b"no",
                                  auth=self.basic("reader@example.test", PW))[0], 403)

    def test_move_without_write_on_the_source_leaves_the_destination_alone(self):
        self.assertIn(self.dav("MKCOL", "/mv-src")[0], (201, 405))
        self.assertEqual(self.dav("PUT", "/mv-src/f.txt", b"src")[0], 201)
        self.assertEqual(self.dav("PUT", "/mv-dst.txt", b"dst")[0], 201)
        tok, uid = self.member("mover")
        st, _, payload, _ = self.api("PUT", "/acl", {"path": "/mv-src", "user_id": uid,
                                                      "perm": "read"})
        self.assertEqual(st, 200, payload)
        dest = "http://127.0.0.1:%d/dav/default/mv-dst.txt" % self.hub.content_port
        st, _, _ = self.dav("MOVE", "/mv-src/f.txt", auth="Bearer " + tok,
                            headers={"Destination": dest, "Overwrite": "T"})
        self.assertEqual(st, 403)
        self.assertEqual(self.dav("GET", "/mv-dst.txt")[1], b"dst")
        self.assertEqual(self.dav("GET", "/mv-src/f.txt")[1], b"src")

    def test_quota_applies(self):
        st, _, payload, _ = self.api("PATCH", "", {"quota_bytes": 64 * 1024 * 1024})
        self.assertEqual(st, 200, payload)
        try:
            find = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
                    b'<D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>')
            st, body, _ = self.dav("PROPFIND", "/", find, {"Depth": "0"})
            used = int(re.search(rb"<D:quota-used-bytes>(\d+)<", body).group(1))
            left = int(re.search(rb"<D:quota-available-bytes>(\d+)<", body).group(1))
            self.assertEqual(used + left, 64 * 1024 * 1024)
            st, body, _ = self.dav("PUT", "/too-big.bin", os.urandom(65 * 1024 * 1024))
            self.assertEqual(st, 507, body[:200])
            self.assertEqual(self.dav("GET", "/too-big.bin")[0], 404)
        finally:
            self.api("PATCH", "", {"quota_bytes": 0})

    # ---- feed, audit, hosts ----
    def test_writes_show_on_the_feed_and_in_the_audit_log(self):
        st, ws, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        since = ws["workspaces"][0]["last_seq"]
        stream = Stream(self.hub, self.ws, self.token, since=since)
        try:
            self.assertEqual(self.dav("MKCOL", "/fed")[0], 201)
            self.assertEqual(self.dav("PUT", "/fed/a.txt", b"feed me")[0], 201)
            dest = "http://127.0.0.1:%d/dav/default/fed/b.txt" % self.hub.content_port
            self.assertEqual(self.dav("MOVE", "/fed/a.txt", headers={"Destination": dest})[0],
                             201)
            self.assertEqual(self.dav("DELETE", "/fed/b.txt")[0], 204)
            seen = [stream.next_event() for _ in range(4)]
        finally:
            stream.close()
        self.assertEqual([e["kind"] for e in seen],
                         ["folder.created", "file.version", "file.moved", "file.deleted"])
        self.assertEqual(seen[1]["payload"]["path"], "/fed/a.txt")
        self.assertEqual(seen[1]["payload"]["hash"], sha(b"feed me"))
        st, body, _, _ = self.api("GET", "/audit?limit=50")
        actions = [(e["action"], e["target"]) for e in body["entries"]]
        for want in (("folder.create", "/fed"), ("file.version", "/fed/a.txt"),
                     ("file.move", "/fed/a.txt"), ("file.delete", "/fed/b.txt")):
            self.assertIn(want, actions)

    def test_a_file_written_over_webdav_reaches_a_synced_host(self):
        host = Host(self.hub, self.tmp, "davhost")
        host.join()
        host.start()
        self.hosts.append(host)
        data = os.urandom(1500 * 1024)
        self.assertEqual(self.dav("MKCOL", "/synced")[0], 201)
        self.assertEqual(self.dav("PUT", "/synced/from-dav.bin", data)[0], 201)

        def arrived():
            with open(host.path("/synced/from-dav.bin"), "rb") as f:
                return f.read() == data
        wait_for(arrived, 60, "/synced/from-dav.bin on the host", hosts=[host])
        # and the dashboard lists it (its API on the dashboard port)
        st, body, payload, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/list?path=%s" % (self.ws, q("/synced")),
            token=self.token, port=self.hub.dash_port)
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual([(e["name"], e["size"]) for e in body["entries"]],
                         [("from-dav.bin", len(data))])


def lan_address():
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


class DavNetworkTest(unittest.TestCase):
    """Basic credentials cross the network only inside TLS."""

    @classmethod
    def setUpClass(cls):
        cls.addr = lan_address()
        cls.tmp = tempfile.mkdtemp(prefix="roost-davnet-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cls.cert,
                        "-days", "2", "-subj", "/CN=roost-test"], check=True,
                       capture_output=True)
        cls.plain = Hub(os.path.join(cls.tmp, "plain"))
        cls.plain.serve_args = ["--listen", "0.0.0.0"]
        cls.tls = Hub(os.path.join(cls.tmp, "tls"))
        cls.tls.serve_args = ["--listen", "0.0.0.0", "--tls-cert", cls.cert, "--tls-key", key]
        cls.plain.start()
        cls.tls.start()

    @classmethod
    def tearDownClass(cls):
        cls.plain.stop()
        cls.tls.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def propfind(self, conn):
        auth = base64.b64encode(("%s:%s" % (harness.EMAIL, harness.PASSWORD)).encode())
        conn.request("PROPFIND", "/dav/default/",
                     headers={"Depth": "0", "Authorization": "Basic " + auth.decode()})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    def test_basic_over_plain_http_is_refused_off_this_machine(self):
        if not self.addr:
            self.skipTest("no non-loopback IPv4 address")
        self.assertEqual(self.propfind(http.client.HTTPConnection(
            "127.0.0.1", self.plain.content_port, timeout=30)), 207)
        self.assertEqual(self.propfind(http.client.HTTPConnection(
            self.addr, self.plain.content_port, timeout=30)), 403)

    def test_basic_over_tls_works_from_anywhere(self):
        if not self.addr:
            self.skipTest("no non-loopback IPv4 address")
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        self.assertEqual(self.propfind(http.client.HTTPSConnection(
            self.addr, self.tls.content_port, context=ctx, timeout=30)), 207)


def urlpath(path):
    from urllib.parse import quote
    return quote(path)


if __name__ == "__main__":
    harness.main()
