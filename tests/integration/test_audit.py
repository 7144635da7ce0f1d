"""The audit log: every mutation leaves a row (actor, action, target, time,
client address, detail), readable by owners and admins over the API and CLI."""
import json
import time

import harness
from harness import HubTest, q


class AuditTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    def audit(self, query=""):
        st, body, payload, _ = self.api("GET", "/audit" + query)
        self.assertEqual(st, 200, payload)
        return body["entries"]

    def test_each_mutation_writes_a_row_with_actor_target_and_client(self):
        t0 = int(time.time() * 1000)
        self.api("POST", "/folders", {"path": "/aud"})
        self.api("PUT", "/upload?path=" + q("/aud/f.txt"), raw=b"x")
        self.api("POST", "/move", {"from": "/aud/f.txt", "to": "/aud/g.txt"})
        self.api("DELETE", "/files?path=" + q("/aud/g.txt"))
        rows = self.audit("?limit=4")
        self.assertEqual([r["action"] for r in rows],
                         ["file.delete", "file.move", "file.version", "folder.create"])
        self.assertEqual([r["target"] for r in rows],
                         ["/aud/g.txt", "/aud/f.txt", "/aud/f.txt", "/aud"])
        for r in rows:
            self.assertEqual(r["actor"], harness.EMAIL)
            self.assertEqual(r["client"], "127.0.0.1")
            self.assertGreaterEqual(r["at"], t0 - 1000)
        self.assertEqual(rows[1]["detail"], {"to": "/aud/g.txt"})
        self.assertEqual(rows[2]["detail"]["size"], 1)

    def test_a_refused_request_writes_no_row(self):
        before = self.audit("?limit=1")[0]["id"]
        st, _, _, _ = self.api("POST", "/folders", {"path": "/../x"})
        self.assertEqual(st, 400)
        self.assertEqual(self.audit("?limit=1")[0]["id"], before)

    def test_pages_with_before_and_filters_by_action(self):
        for i in range(5):
            self.api("POST", "/folders", {"path": "/page%d" % i})
        first = self.audit("?limit=2&action=folder.create")
        self.assertEqual([r["target"] for r in first], ["/page4", "/page3"])
        nxt = self.audit("?limit=2&action=folder.create&before=%d" % first[-1]["id"])
        self.assertEqual([r["target"] for r in nxt], ["/page2", "/page1"])
        for bad in ("?limit=0", "?limit=5000", "?before=0", "?limit=x"):
            self.assertError(self.api("GET", "/audit" + bad), 400, "invalid_request")

    def test_roost_audit_prints_the_log(self):
        self.api("POST", "/folders", {"path": "/cli-audit"})
        out = self.hub.cli("audit", "--limit", "1", "--json").stdout
        rows = json.loads(out)
        self.assertEqual(rows[0]["action"], "folder.create")
        self.assertEqual(rows[0]["target"], "/cli-audit")
        text = self.hub.cli("audit", "--limit", "1").stdout.decode()
        self.assertIn("folder.create", text)
        self.assertIn("/cli-audit", text)


if __name__ == "__main__":
    harness.main()
