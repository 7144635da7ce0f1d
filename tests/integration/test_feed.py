"""The realtime feed: Server-Sent Events of every committed change, resumable by
seq without gaps or repeats, with heartbeats, and roost watch on top of it."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Hub, HubTest, q


class Stream:
    """One SSE subscription, read line by line."""

    def __init__(self, hub, ws, token, since=None, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", hub.api_port, timeout=10)
        path = "/api/v1/workspaces/%d/events" % ws
        if since is not None:
            path += "?since=%s" % since
        headers = {"Authorization": "Bearer " + token}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.comments = []

    def next_event(self, timeout=10):
        """The next event as a dict (seq, kind, entity, at, payload), skipping comments."""
        self.conn.sock.settimeout(timeout)
        data, event_id = None, None
        while True:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("the feed ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data is not None:
                    ev = json.loads(data)
                    assert str(ev["seq"]) == event_id, (ev, event_id)
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = line[6:]

    def next_comment(self, timeout=10):
        self.conn.sock.settimeout(timeout)
        while True:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("the feed ended")
            if line.startswith(b":"):
                return line.decode().strip()

    def close(self):
        self.conn.close()


class FeedTest(HubTest):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-feed-")
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = ["--heartbeat", "1"]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.hub.login_cli()

    def last_seq(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        return [w for w in body["workspaces"] if w["id"] == self.ws][0]["last_seq"]

    def mkdir(self, path):
        st, body, _, _ = self.api("POST", "/folders", {"path": path, "parents": True})
        self.assertIn(st, (200, 201), body)

    def test_changes_stream_in_commit_order_as_they_happen(self):
        start = self.last_seq()
        s = Stream(self.hub, self.ws, self.token, since=start)
        try:
            self.mkdir("/live")  # one new folder: one change
            self.api("PUT", "/upload?path=" + q("/live/a.txt"), raw=b"hello")
            self.api("POST", "/move", {"from": "/live/a.txt", "to": "/live/b.txt"})
            self.api("DELETE", "/files?path=" + q("/live/b.txt"))
            got = [s.next_event() for _ in range(4)]
        finally:
            s.close()
        self.assertEqual([e["seq"] for e in got], list(range(start + 1, start + 5)))
        self.assertEqual([e["kind"] for e in got],
                         ["folder.created", "file.version", "file.moved", "file.deleted"])
        self.assertEqual(got[1]["payload"]["path"], "/live/a.txt")
        self.assertEqual(got[2]["payload"]["to"], "/live/b.txt")

    def test_reconnecting_with_the_last_seq_misses_nothing_and_repeats_nothing(self):
        self.mkdir("/resume")
        start = self.last_seq()
        s = Stream(self.hub, self.ws, self.token, since=start)
        self.mkdir("/resume/one")
        first = s.next_event()
        s.close()
        # changes made while nobody listens
        for name in ("two", "three", "four"):
            self.mkdir("/resume/" + name)
        s = Stream(self.hub, self.ws, self.token, since=first["seq"])
        try:
            rest = [s.next_event() for _ in range(3)]
            self.mkdir("/resume/five")
            rest.append(s.next_event())
        finally:
            s.close()
        seqs = [first["seq"]] + [e["seq"] for e in rest]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 5)))
        self.assertEqual([e["payload"]["path"] for e in rest],
                         ["/resume/two", "/resume/three", "/resume/four", "/resume/five"])

    def test_last_event_id_resumes_like_since(self):
        self.mkdir("/leid")
        start = self.last_seq()
        self.mkdir("/leid/a")
        self.mkdir("/leid/b")
        s = Stream(self.hub, self.ws, self.token, last_event_id=start + 1)
        try:
            ev = s.next_event()
        finally:
            s.close()
        self.assertEqual(ev["seq"], start + 2)
        self.assertEqual(ev["payload"]["path"], "/leid/b")

    def test_replay_from_zero_returns_the_whole_history(self):
        s = Stream(self.hub, self.ws, self.token, since=0)
        try:
            ev = s.next_event()
        finally:
            s.close()
        self.assertEqual(ev["seq"], 1)

    def test_a_quiet_feed_sends_heartbeats(self):
        s = Stream(self.hub, self.ws, self.token)
        try:
            self.assertEqual(s.next_comment(), ": roost feed")
            t = time.monotonic()
            self.assertEqual(s.next_comment(timeout=5), ": heartbeat")
            self.assertLess(time.monotonic() - t, 3)
        finally:
            s.close()

    def test_subscribing_needs_a_token_membership_and_a_valid_since(self):
        st, _, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d/events" % self.ws)
        self.assertEqual(st, 401)
        self.assertError(self.hub.request("GET", "/api/v1/workspaces/999999/events",
                                          token=self.token), 404, "not_found")
        for bad in ("-1", "abc", "01", "1.5"):
            self.assertError(self.api("GET", "/events?since=" + bad), 400, "invalid_since")

    def test_roost_watch_prints_changes(self):
        start = self.last_seq()
        proc = subprocess.Popen([harness.ROOST, "watch", "--since", str(start), "--json"],
                                env=self.hub.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            time.sleep(0.5)
            self.mkdir("/watched")
            line = proc.stdout.readline()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
        ev = json.loads(line)
        self.assertEqual(ev["seq"], start + 1)
        self.assertEqual(ev["kind"], "folder.created")
        self.assertEqual(ev["payload"]["path"], "/watched")

    def test_subscriber_count_shows_in_metrics(self):
        before = self.hub.metric("roost_feed_subscribers")
        s = Stream(self.hub, self.ws, self.token)
        try:
            s.next_comment()
            self.assertEqual(self.hub.metric("roost_feed_subscribers"), before + 1)
        finally:
            s.close()

    @unittest.skipUnless(harness.BACKEND == "postgres",
                         "several hubs share one PostgreSQL database, never one SQLite file")
    def test_a_change_through_one_hub_reaches_subscribers_of_another(self):
        other = Hub(os.path.join(self.tmp, "second-hub"), same_db_as=self.hub)
        other.start()
        try:
            token_b = other.login()
            start = self.last_seq()
            s = Stream(other, self.ws, token_b, since=start)
            s.next_comment()
            t = time.monotonic()
            self.mkdir("/via-hub-a")  # committed through the first hub
            ev = s.next_event(timeout=5)
            s.close()
            self.assertEqual(ev["payload"]["path"], "/via-hub-a")
            self.assertLess(time.monotonic() - t, 2)
        finally:
            other.stop()

    def test_zz_hub_stops_promptly_with_subscribers_connected(self):
        streams = [Stream(self.hub, self.ws, self.token) for _ in range(5)]
        for s in streams:
            s.next_comment()
        t = time.monotonic()
        self.hub.stop()  # asserts exit code 0
        self.assertLess(time.monotonic() - t, 10)
        for s in streams:
            s.close()
        self.hub.start()


if __name__ == "__main__":
    harness.main()
