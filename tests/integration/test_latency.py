"""Readers do not wait for a writer (issue 18, listing and feed latency).

On SQLite one writer at a time holds the database's write lock, for as long as
a batch commit runs (seconds at a million files). A GET only reads, except the
record of a session's last use (at most once a minute): that record no longer
waits for the lock. It is left to a later request while the last one recorded
is under two intervals old; past that, it waits, so a session in use never
passes its idle timeout.

- a GET whose session is due a record answers at once while another process
  holds the write lock, and the record is left for later;
- once the lock is free, the next GET records it;
- a session whose last record is two intervals old waits for the lock and
  records its use (the wait ends when the lock does).
"""
import hashlib
import os
import sqlite3
import threading
import time
import unittest

import harness
from harness import HubTest

TOUCH_MS = 60000  # a session's last use is recorded at most this often (the default idle: 30 days)


class LatencyTest(HubTest):
    def setUp(self):
        self.token_hash = hashlib.sha256(self.token.encode()).hexdigest()

    def last_used(self):
        return self.hub.sql("SELECT last_used_at FROM tokens WHERE token_hash = ?",
                            (self.token_hash,))[0][0]

    def age_session(self, ms):
        """Make the session look last used ms ago (and created before that)."""
        now = int(time.time() * 1000)
        self.hub.sql("UPDATE tokens SET created_at = ?, last_used_at = ? WHERE token_hash = ?",
                     (now - ms - 1000, now - ms, self.token_hash))
        return now - ms

    def hold_write_lock(self):
        """Another process's writer, as a batch commit is: BEGIN IMMEDIATE on roost.db."""
        if harness.BACKEND != "sqlite":
            self.skipTest("the database-wide write lock is SQLite's (PostgreSQL locks rows)")
        con = sqlite3.connect(os.path.join(self.hub.data, "roost.db"), timeout=20,
                              isolation_level=None, check_same_thread=False)
        con.execute("BEGIN IMMEDIATE")
        return con

    def test_a_get_does_not_wait_for_a_writer(self):
        before = self.age_session(TOUCH_MS + 30000)  # due, under two intervals
        con = self.hold_write_lock()
        try:
            t = time.monotonic()
            st, body, payload, _ = self.api("GET", "/list?path=%2F")
            took = time.monotonic() - t
        finally:
            con.rollback()
            con.close()
        self.assertEqual(st, 200, payload[:300])
        self.assertIn("entries", body)
        self.assertLess(took, 2.0, "the GET waited for the writer's lock")
        self.assertEqual(self.last_used(), before, "recorded while the lock was held?")
        # The lock is free: the next request records the use.
        st, _, payload, _ = self.api("GET", "/list?path=%2F")
        self.assertEqual(st, 200, payload[:300])
        self.assertGreater(self.last_used(), before + TOUCH_MS)

    def test_an_overdue_record_waits_for_the_writer(self):
        before = self.age_session(2 * TOUCH_MS + 30000)  # two intervals old: must record
        con = self.hold_write_lock()
        released = []

        def release():
            time.sleep(1.0)
            released.append(time.monotonic())
            con.rollback()
            con.close()
        th = threading.Thread(target=release)
        th.start()
        try:
            st, body, payload, _ = self.api("GET", "/list?path=%2F")
            done = time.monotonic()
        finally:
            th.join()
        self.assertEqual(st, 200, payload[:300])
        self.assertGreaterEqual(done, released[0], "answered before the lock was free")
        self.assertGreater(self.last_used(), before + 2 * TOUCH_MS)

    def test_a_due_record_is_made_without_a_writer(self):
        before = self.age_session(TOUCH_MS + 30000)
        st, _, payload, _ = self.api("GET", "/list?path=%2F")
        self.assertEqual(st, 200, payload[:300])
        self.assertGreater(self.last_used(), before + TOUCH_MS)
        # Not due: nothing written.
        recorded = self.last_used()
        st, _, payload, _ = self.api("GET", "/list?path=%2F")
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(self.last_used(), recorded)


if __name__ == "__main__":
    unittest.main()
