"""Attribution (issue 16): who made a change, and through what.

- A host's commit is "alice via laptop": the versions API answers by (the
  user) and via (the host's id and current name); `roost versions` and the
  audit log (API and `roost audit`) say the same.
- A host renamed later shows its new name; a removed one "via a removed host".
- An anonymous share-link download, and an upload through a write link, are
  logged as the link ("share link #ID '/target'"); the link's creator never
  appears as their actor. A version's reader learns the link's id, not its
  target (it may name a folder the reader cannot see).
"""
import http.client
import json
import os
import urllib.parse

import harness
from harness import HubTest, Host, q, wait_for


class AttributionTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    # ---- helpers ----

    def versions(self, path):
        st, body, payload, _ = self.api("GET", "/versions?path=" + q(path))
        self.assertEqual(st, 200, payload[:300])
        return body["versions"]

    def audit(self, action):
        st, body, payload, _ = self.api("GET", "/audit?action=" + q(action))
        self.assertEqual(st, 200, payload[:300])
        return body["entries"]

    def host_commits(self, host, rel, data):
        with open(host.path(rel), "wb") as f:
            f.write(data)
        wait_for(lambda: self.api("GET", "/versions?path=" + q(rel))[0] == 200, 30,
                 "the host's commit of " + rel, [host])

    def share(self, **body):
        st, resp, payload, _ = self.api("POST", "/shares", body)
        self.assertEqual(st, 201, payload)
        return resp

    def anon(self, url, rel, method="GET", body=None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request(method, u.path + rel, body=body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    # ---- hosts ----

    def test_a_hosts_commit_is_the_user_via_the_host_in_versions_and_audit(self):
        laptop = Host(self.hub, self.tmp, "laptop")
        laptop.join()
        laptop.start()
        try:
            self.host_commits(laptop, "/notes.txt", b"from the laptop")
        finally:
            laptop.stop()
        host_id = self.hub.sql("SELECT id FROM hosts WHERE label = 'laptop'")[0][0]

        v = self.versions("/notes.txt")[0]
        self.assertEqual(v["by"], harness.EMAIL)
        self.assertEqual(v["via"], {"host_id": host_id, "host": "laptop", "removed": False})
        self.assertEqual(v["created_by"], harness.EMAIL)  # unchanged for older clients

        p = self.roost("versions", "/notes.txt")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("%s via laptop" % harness.EMAIL, p.out)

        rows = [e for e in self.audit("file.version") if e["target"] == "/notes.txt"]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual((rows[0]["by"], rows[0]["via"]["host"]), (harness.EMAIL, "laptop"))
        p = self.roost("audit", "--action", "file.version")
        self.assertEqual(p.returncode, 0, p.err)
        line = [ln for ln in p.out.splitlines() if "/notes.txt" in ln]
        self.assertEqual(len(line), 1, p.out)
        self.assertIn("%s via laptop" % harness.EMAIL, line[0])

    def test_a_user_upload_has_no_via(self):
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/mine.txt"), raw=b"mine")
        self.assertEqual(st, 201, payload)
        v = self.versions("/mine.txt")[0]
        self.assertEqual((v["by"], v["via"]), (harness.EMAIL, None))
        p = self.roost("versions", "/mine.txt")
        self.assertIn(harness.EMAIL, p.out)
        self.assertNotIn(" via ", p.out)

    def test_a_renamed_host_shows_its_new_name_and_a_removed_one_says_so(self):
        desk = Host(self.hub, self.tmp, "desk")
        desk.join()
        desk.start()
        try:
            self.host_commits(desk, "/desk.txt", b"from the desk")
        finally:
            desk.stop()
        self.hub.sql("UPDATE hosts SET label = 'workstation' WHERE label = 'desk'")
        self.assertEqual(self.versions("/desk.txt")[0]["via"]["host"], "workstation")
        p = self.roost("versions", "/desk.txt")
        self.assertIn("%s via workstation" % harness.EMAIL, p.out)

        p = self.roost("host", "rm", "workstation")
        self.assertEqual(p.returncode, 0, p.err)
        via = self.versions("/desk.txt")[0]["via"]
        self.assertEqual((via["host"], via["removed"]), (None, True))
        p = self.roost("versions", "/desk.txt")
        self.assertIn("%s via a removed host" % harness.EMAIL, p.out)
        self.assertNotIn("workstation", p.out)
        row = [e for e in self.audit("file.version") if e["target"] == "/desk.txt"][0]
        self.assertEqual((row["via"]["host"], row["via"]["removed"]), (None, True))

    # ---- share links ----

    def test_an_anonymous_share_download_is_logged_as_the_link_not_its_creator(self):
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/pub/report.txt"), raw=b"r")
        self.assertEqual(st, 201, payload)
        link = self.share(path="/pub/report.txt")
        self.assertEqual(self.anon(link["url"], "/file"), (200, b"r"))

        rows = self.audit("share.download")
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertIsNone(row.get("actor"))
        self.assertIsNone(row["by"])
        self.assertEqual(row["via"], {"share_id": link["id"], "share": "/pub/report.txt"})
        self.assertNotIn(harness.EMAIL, json.dumps(row))
        self.assertEqual(self.hub.sql(
            "SELECT actor_user_id, actor_share_id FROM audit_log WHERE action = "
            "'share.download'"), [(None, link["id"])])

        p = self.roost("audit", "--action", "share.download")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("share link #%d '/pub/report.txt'" % link["id"], p.out)
        self.assertNotIn(harness.EMAIL, p.out)

    def test_an_upload_through_a_write_link_is_the_links_not_its_creators(self):
        st, _, payload, _ = self.api("POST", "/folders", {"path": "/inbox"})
        self.assertIn(st, (200, 201), payload)
        link = self.share(path="/inbox", scope="write")
        st, data = self.anon(link["url"], "/upload?path=" + q("/dropped.txt"), method="PUT",
                             body=b"dropped")
        self.assertEqual(st, 201, data)

        v = self.versions("/inbox/dropped.txt")[0]
        self.assertIsNone(v["by"])
        self.assertEqual(v["created_by"], "")
        self.assertEqual(v["via"], {"share_id": link["id"]})  # no target for a reader
        p = self.roost("versions", "/inbox/dropped.txt")
        self.assertIn("share link #%d" % link["id"], p.out)
        self.assertNotIn(harness.EMAIL, p.out)

        row = [e for e in self.audit("file.version") if e["target"] == "/inbox/dropped.txt"]
        self.assertEqual(len(row), 1, row)
        self.assertEqual((row[0]["by"], row[0]["via"]["share_id"], row[0]["via"]["share"]),
                         (None, link["id"], "/inbox"))
        st, ls, _, _ = self.api("GET", "/list?path=" + q("/inbox"))
        self.assertEqual(st, 200)
        self.assertEqual([e["modified_by"] for e in ls["entries"]], [""])


if __name__ == "__main__":
    harness.main()
