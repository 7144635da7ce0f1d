"""Put and get through real roost processes: round trips, dedup, resume after
SIGKILL of the client and of the hub, concurrent writers, verified reads."""
import glob
import hashlib
import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import harness
from harness import HubTest, q

MiB = 1024 * 1024


def random_file(path, size, seed=None):
    """Write size random bytes (in 1 MiB blocks) and return their SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(MiB, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


class TransferTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def usage(self):
        st, body, _, _ = self.api("GET", "/usage")
        self.assertEqual(st, 200)
        return body

    def test_put_get_round_trip_of_256_mib(self):
        src = self.path("big.bin")
        digest = random_file(src, 256 * MiB)
        self.hub.cli("put", src, "/round/big.bin")
        out = self.path("big.out")
        self.hub.cli("get", "/round/big.bin", out)
        self.assertEqual(sha256_file(out), digest)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/round/big.bin"))
        self.assertEqual(info["size"], 256 * MiB)
        self.assertEqual(info["hash"], digest)
        # no temp file is left next to the download
        self.assertEqual(glob.glob(self.path(".big.out.roost-*")), [])

    def test_same_content_put_twice_stores_no_new_bytes(self):
        src = self.path("dup.bin")
        random_file(src, 20 * MiB)
        self.hub.cli("put", src, "/dup/one.bin")
        before = self.usage()
        received = self.hub.metric("roost_chunk_bytes_received_total")
        p = self.hub.cli("put", src, "/dup/two.bin")
        after = self.usage()
        self.assertEqual(after["stored_bytes"], before["stored_bytes"])
        self.assertEqual(after["chunks"], before["chunks"])
        self.assertEqual(after["logical_bytes"], before["logical_bytes"] + 20 * MiB)
        self.assertEqual(self.hub.metric("roost_chunk_bytes_received_total"), received)
        self.assertIn(b"0 uploaded", p.stdout)

    def test_killed_put_resumes_and_sends_only_missing_chunks(self):
        src = self.path("resume.bin")
        digest = random_file(src, 192 * MiB)
        start = self.hub.metric("roost_chunks_received_total")
        proc = subprocess.Popen([harness.ROOST, "put", "--parallel", "1", src, "/resume.bin"],
                                env=self.hub.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while self.hub.metric("roost_chunks_received_total") - start < 20:
            self.assertIsNone(proc.poll(), "put finished before it could be killed")
            self.assertLess(time.time(), deadline)
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        time.sleep(0.3)  # let the hub finish or drop the request in flight
        held = self.hub.metric("roost_chunks_received_total") - start
        # nothing was committed by the killed put
        st, _, _, _ = self.api("GET", "/info?path=" + q("/resume.bin"))
        self.assertEqual(st, 404)

        p = self.hub.cli("put", src, "/resume.bin")
        sent_again = self.hub.metric("roost_chunks_received_total") - start - held
        out = p.stdout.decode()
        total = int(out.split(" in ")[1].split(" chunks")[0])
        uploaded = int(out.split("chunks, ")[1].split(" uploaded")[0])
        self.assertEqual(uploaded, sent_again)
        self.assertEqual(held + sent_again, total)  # each chunk crossed the wire once
        self.assertGreater(held, 0)
        got = self.path("resume.out")
        self.hub.cli("get", "/resume.bin", got)
        self.assertEqual(sha256_file(got), digest)

    def test_two_concurrent_puts_to_one_path_leave_two_versions(self):
        a, b = self.path("a.bin"), self.path("b.bin")
        da, db = random_file(a, 8 * MiB), random_file(b, 8 * MiB)
        procs = [subprocess.Popen([harness.ROOST, "put", f, "/same.bin"], env=self.hub.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for f in (a, b)]
        for pr in procs:
            out, err = pr.communicate()
            self.assertEqual(pr.returncode, 0, err)
        st, body, _, _ = self.api("GET", "/versions?path=" + q("/same.bin"))
        self.assertEqual(st, 200)
        versions = body["versions"]
        self.assertEqual(len(versions), 2)
        self.assertEqual({v["hash"] for v in versions}, {da, db})
        current = [v for v in versions if v["current"]]
        self.assertEqual(len(current), 1)
        self.assertEqual(current[0]["version"], 2)  # the later commit wins
        out = self.path("same.out")
        self.hub.cli("get", "/same.bin", out)
        self.assertEqual(sha256_file(out), current[0]["hash"])
        older = [v for v in versions if not v["current"]][0]
        # out holds version 2: version 1 replaces it only with --force
        p = self.hub.cli("get", "/same.bin", out, "--version", "1", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"--force", p.stderr)
        self.assertEqual(sha256_file(out), current[0]["hash"])
        self.hub.cli("get", "/same.bin", out, "--version", "1", "--force")
        self.assertEqual(sha256_file(out), older["hash"])

    def test_streaming_upload_is_chunked_by_the_hub_and_deduplicated(self):
        src = self.path("stream.bin")
        digest = random_file(src, 9 * MiB)
        with open(src, "rb") as f:
            data = f.read()
        st, body, _, _ = self.api("PUT", "/upload?path=" + q("/stream/one.bin"), raw=data)
        self.assertEqual(st, 201, body)
        self.assertEqual(body["hash"], digest)
        self.assertEqual(body["size"], len(data))
        before = self.usage()["stored_bytes"]
        # the same bytes through the chunking client: nothing new stored
        p = self.hub.cli("put", src, "/stream/two.bin")
        self.assertIn(b"0 uploaded", p.stdout)
        self.assertEqual(self.usage()["stored_bytes"], before)
        out = self.path("stream.out")
        self.hub.cli("get", "/stream/one.bin", out)
        self.assertEqual(sha256_file(out), digest)

    def test_range_requests_return_exact_bytes(self):
        src = self.path("range.bin")
        random_file(src, 6 * MiB)
        with open(src, "rb") as f:
            data = f.read()
        self.hub.cli("put", src, "/range.bin")
        for rng, lo, hi in (("bytes=0-99", 0, 99), ("bytes=1048500-1048700", 1048500, 1048700),
                            ("bytes=-10", len(data) - 10, len(data) - 1),
                            ("bytes=%d-" % (len(data) - 5), len(data) - 5, len(data) - 1)):
            st, _, payload, resp = self.api("GET", "/content?path=" + q("/range.bin"),
                                            headers={"Range": rng})
            self.assertEqual(st, 206, rng)
            self.assertEqual(payload, data[lo:hi + 1], rng)
            self.assertEqual(resp.getheader("Content-Range"),
                             "bytes %d-%d/%d" % (lo, hi, len(data)))

    def test_corrupt_chunk_is_reported_and_never_served(self):
        src = self.path("corrupt.bin")
        random_file(src, 3 * MiB)
        self.hub.cli("put", src, "/corrupt.bin")
        st, body, _, _ = self.api("GET", "/list?path=" + q("/"))
        st, info, _, _ = self.api("GET", "/info?path=" + q("/corrupt.bin"))
        # find this file's first chunk on disk and flip a byte
        with open(src, "rb") as f:
            head = f.read()
        chunks = self.hub.object_paths()
        victim = None
        for c in chunks:
            with open(c, "rb") as f:
                if head.startswith(f.read(4096)):
                    victim = c
        self.assertIsNotNone(victim)
        with open(victim, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
        st, body, _, _ = self.api("GET", "/chunks/" + self.hub.object_hash(victim))
        self.assertEqual(st, 503)
        self.assertEqual(body["error"]["code"], "chunk_corrupt")
        out = self.path("corrupt.out")
        p = self.hub.cli("get", "/corrupt.bin", out, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(glob.glob(self.path(".corrupt.out.roost-*")), [])
        self.assertGreater(self.hub.metric("roost_corrupt_reads_total"), 0)

    def test_tree_commands_from_the_cli(self):
        self.hub.cli("mkdir", "-p", "/docs/2026/q4")
        src = self.path("note.txt")
        with open(src, "w") as f:
            f.write("hello roost\n")
        self.hub.cli("put", src, "/docs/2026/q4/")
        ls = json.loads(self.hub.cli("ls", "/docs/2026/q4", "--json").stdout)
        self.assertEqual([e["name"] for e in ls], ["note.txt"])
        self.assertEqual(ls[0]["content_type"], "text/plain")
        self.hub.cli("mv", "/docs/2026", "/archive")
        ls = json.loads(self.hub.cli("ls", "/archive/q4", "--json").stdout)
        self.assertEqual([e["name"] for e in ls], ["note.txt"])
        p = self.hub.cli("ls", "/docs/2026", check=False)
        self.assertNotEqual(p.returncode, 0)
        p = self.hub.cli("rm", "/archive", check=False)  # a folder with files: -r
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"rm -r", p.stderr)
        self.hub.cli("rm", "-r", "/archive")
        p = self.hub.cli("get", "/archive/q4/note.txt", self.path("x"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"no such", p.stderr)


class LosingProxy:
    """A reverse proxy in front of the hub that forwards every request, but
    answers 502 instead of the hub's answer to the first `lose` commits (POST
    .../versions): a commit that landed while its answer was lost, as when a
    hub dies behind a balancer between its commit and its reply."""

    def __init__(self, hub, lose=1):
        self.lost, proxy = 0, self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                conn = http.client.HTTPConnection("127.0.0.1", hub.api_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if (self.command == "POST" and self.path.split("?")[0].endswith("/versions")
                        and proxy.lost < lose):
                    proxy.lost += 1
                    resp, data = None, b"<html>502 Bad Gateway</html>"
                self.send_response(resp.status if resp else 502)
                ctype = resp.getheader("Content-Type") if resp else "text/html"
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class LostAnswerTest(HubTest):
    def test_a_commit_whose_answer_was_lost_is_not_made_twice(self):
        proxy = LosingProxy(self.hub)
        self.addCleanup(proxy.stop)
        cfg = os.path.join(self.tmp, "via-proxy")
        env = self.hub.env(XDG_CONFIG_HOME=cfg)
        subprocess.run([harness.ROOST, "login", "--hub", proxy.url, "--email", harness.EMAIL],
                       env=env, check=True, capture_output=True)
        src = os.path.join(self.tmp, "lost.bin")
        digest = random_file(src, MiB)
        p = subprocess.run([harness.ROOST, "put", src, "/lost.bin"], env=env,
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(proxy.lost, 1)  # the commit landed; its answer was a 502
        self.assertIn(b"version 1", p.stdout)
        st, body, _, _ = self.api("GET", "/versions?path=" + q("/lost.bin"))
        self.assertEqual(st, 200)
        self.assertEqual([v["hash"] for v in body["versions"]], [digest])


class HubCrashTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    def test_hub_killed_mid_upload_loses_nothing_committed(self):
        first = os.path.join(self.tmp, "first.bin")
        d1 = random_file(first, 16 * MiB)
        self.hub.cli("put", first, "/first.bin")
        big = os.path.join(self.tmp, "second.bin")
        d2 = random_file(big, 160 * MiB)
        start = self.hub.metric("roost_chunks_received_total")
        proc = subprocess.Popen([harness.ROOST, "put", "--parallel", "2", big, "/second.bin"],
                                env=self.hub.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        while self.hub.metric("roost_chunks_received_total") - start < 15:
            self.assertIsNone(proc.poll())
            time.sleep(0.005)
        self.hub.kill()
        proc.communicate(timeout=300)  # the client retries, then gives up
        self.hub.start()
        # The committed file is whole; the interrupted one is not visible at all.
        out = os.path.join(self.tmp, "first.out")
        self.hub.cli("get", "/first.bin", out)
        self.assertEqual(sha256_file(out), d1)
        st, _, _, _ = self.api("GET", "/info?path=" + q("/second.bin"))
        self.assertEqual(st, 404)
        if not self.hub.s3:  # (an S3 store spools to unlinked files: nothing to leave)
            self.assertEqual(os.listdir(os.path.join(self.hub.data, "objects", "tmp")), [])
        if self.hub.backend == "sqlite":
            check = subprocess.run(["sqlite3", os.path.join(self.hub.data, "roost.db"),
                                    "PRAGMA integrity_check"], capture_output=True)
            self.assertEqual(check.stdout.strip(), b"ok")
        # Nothing of the interrupted commit is in the database (no half-commit),
        # and the committed file's rows are whole.
        sql = self.hub.sql
        self.assertEqual(sql("SELECT count(*) FROM files WHERE name = 'second.bin'"), [(0,)])
        self.assertEqual(sql("SELECT count(*) FROM file_versions v JOIN files f "
                             "ON f.id = v.file_id WHERE f.name = 'second.bin'"), [(0,)])
        self.assertEqual(sql("SELECT f.size, v.number, v.hash, v.size, "
                             "(SELECT sum(size) FROM version_chunks WHERE version_id = v.id) "
                             "FROM files f JOIN file_versions v ON v.id = f.current_version_id "
                             "WHERE f.name = ? AND f.deleted_at IS NULL", ("first.bin",)),
                         [(16 * MiB, 1, d1, 16 * MiB, 16 * MiB)])
        # Re-running the put finishes it, sending only what the hub lacks.
        p = self.hub.cli("put", big, "/second.bin")
        uploaded = int(p.stdout.decode().split("chunks, ")[1].split(" uploaded")[0])
        total = int(p.stdout.decode().split(" in ")[1].split(" chunks")[0])
        self.assertLess(uploaded, total)
        out2 = os.path.join(self.tmp, "second.out")
        self.hub.cli("get", "/second.bin", out2)
        self.assertEqual(sha256_file(out2), d2)

    def test_a_download_cut_by_a_hub_restart_resumes_where_it_stopped(self):
        src = os.path.join(self.tmp, "stream.bin")
        digest = random_file(src, 24 * MiB)
        self.hub.cli("put", src, "/stream.bin")
        out = os.path.join(self.tmp, "stream.out")
        served = self.hub.metric("roost_bytes_served_total")
        # 4 MiB/s: the kill lands mid-stream (no host holds it: one stream from the hub)
        proc = subprocess.Popen([harness.ROOST, "get", "--max-down", "4M", "/stream.bin", out],
                                env=self.hub.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        harness.wait_for(lambda: self.hub.metric("roost_bytes_served_total") - served > 2 * MiB,
                         timeout=60, what="the download to start")
        self.hub.kill()
        self.hub.start()
        _, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
        self.assertIn(b"resuming at byte", err)
        self.assertEqual(sha256_file(out), digest)

    def test_hub_stops_cleanly_on_sigterm(self):
        self.hub.stop()  # asserts exit code 0
        self.hub.start()


if __name__ == "__main__":
    harness.main()
