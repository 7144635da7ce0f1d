"""The host agent (`roost host`, docs/host.md): real agents keep real folders in sync
through a real hub; every check compares file bytes (SHA-256) on disk and the hub's
state through its API.

Where docs/host.md is silent, these tests take the reading a user would expect:
- A host's folder mirrors the workspace root: workspace path /x/y is DIR/x/y.
- A rename (file or folder) on a host is a move on the hub: the file keeps its id
  and its version history, and no chunk bytes are uploaded again.
- An empty folder made on a host appears on the other hosts and on the hub.
- Simultaneous edits: one edit becomes the current file, the other is kept beside
  it as "NAME (conflict from LABEL DATE).EXT", where LABEL names the host whose
  content lost (the copy holds that host's bytes); DATE is free-form. Every host
  and the hub end with the same two files.
- `exclude` on /ex excludes /ex and what is below it, not a sibling such as /exok;
  the excluded files never appear in that host's folder (an empty directory would
  be tolerated).
- The on-demand cache (DIR/.roost/cache) stores chunks in files whose path spells
  out the chunk's SHA-256 (possibly split across directories); its size is the sum
  of those files' sizes and never exceeds --cache-max once a fetch has finished;
  reading a cached chunk counts as a use for LRU eviction.
- After a SIGKILL and a restart, the folder holds no temporary files and
  DIR/.roost/tmp is emptied once the host is idle again.
- `roost host status` says running: false for a killed agent; an idle agent's seq is
  the workspace's last_seq. `roost hosts` shows each host's --listen URL.
- The host content server answers 401 for an expired or tampered token (the hub's
  own content port answers 403 for those; docs/host.md asks for 401 here), and
  supports one Range like the hub's content port.
- The kill and hub-restart tests aim at the middle of a transfer (a download's
  bytes in DIR/.roost/tmp; the hub's first chunk bytes received) and print whether
  they hit it; either way they check that the file ends up whole everywhere.
"""
import base64
import hashlib
import json
import os
import random
import re
import threading
import time

import harness
from harness import Host, HubTest, q, wait_for

MiB = 1 << 20


# ---- local files, as a user sees them ----

def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def write(path, data):
    """A user's save: open, write, close, in place (no temp file, no rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_random(path, size, piece=4 * MiB):
    """size random bytes written in pieces as one file; returns their SHA-256."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(piece, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def local_names(root, sub="/"):
    """Sorted workspace paths of the regular files under root/sub, without .roost."""
    out = []
    for d, dirs, files in os.walk(os.path.join(root, sub.lstrip("/"))):
        if os.path.normpath(d) == os.path.normpath(root):
            dirs[:] = [x for x in dirs if x != ".roost"]
        out += ["/" + os.path.relpath(os.path.join(d, n), root) for n in files]
    return sorted(out)


def local_files(root, sub="/"):
    """Sorted (workspace path, sha256) of the files under root/sub, without .roost."""
    return [(p, file_sha(os.path.join(root, p.lstrip("/")))) for p in local_names(root, sub)]


def describe(path):
    try:
        return "%d bytes, sha256 %s…" % (os.path.getsize(path), file_sha(path)[:12])
    except OSError:
        return "missing"


def tree_files(d):
    """(relative path without separators, size) of each file below d."""
    out = []
    for base, _, files in os.walk(d):
        for n in files:
            p = os.path.join(base, n)
            try:
                out.append((os.path.relpath(p, d).replace(os.sep, ""), os.path.getsize(p)))
            except FileNotFoundError:  # renamed or removed meanwhile
                pass
    return out


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class HostTest(HubTest):
    """A fresh hub and two joined, running hosts A and B per class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            for label in ("A", "B"):
                h = Host(cls.hub, cls.tmp, label)
                cls.hosts.append(h)
                h.join()
                h.start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.A, cls.B = cls.hosts

    @classmethod
    def tearDownClass(cls):
        errors = []
        for h in cls.hosts:
            try:
                h.stop()
            except AssertionError as e:
                errors.append(str(e))
        super().tearDownClass()
        if errors:
            raise AssertionError("\n".join(errors))

    # ---- waiting ----
    def wait(self, predicate, what, timeout=30, interval=0.02):
        return wait_for(predicate, timeout, what, self.hosts, interval)

    def wait_file(self, host, rel, digest, timeout=30, size=None):
        """Until host's copy of rel has this SHA-256 (for big files: size first)."""
        path = host.path(rel)

        def arrived():
            if size is not None and os.path.getsize(path) != size:
                return False
            return file_sha(path) == digest
        self.wait(arrived, lambda: "%s on %s to be sha256 %s…; it is %s" % (
            rel, host.label, digest[:12], describe(path)), timeout,
            0.02 if size is None or size < 16 * MiB else 0.25)

    def wait_gone(self, host, rel, timeout=30):
        self.wait(lambda: not os.path.lexists(host.path(rel)),
                  "%s to disappear from %s" % (rel, host.label), timeout)

    def wait_hub(self, path, digest, timeout=30):
        self.wait(lambda: (self.hub_info(path) or {}).get("hash") == digest,
                  lambda: "the hub's %s to be sha256 %s…; it is %s" % (
                      path, digest[:12], self.hub_info(path)), timeout)

    def wait_hub_gone(self, path, timeout=30):
        self.wait(lambda: self.hub_info(path) is None,
                  "the hub to forget %s" % path, timeout)

    # ---- the hub's view ----
    def hub_info(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body if st == 200 else None

    def hub_files(self, folder):
        """Sorted (path, hash) of the files directly in a hub folder."""
        st, body, _, _ = self.api("GET", "/list?path=" + q(folder))
        if st != 200:
            return []
        return sorted((e["path"], e["hash"]) for e in body["entries"] if e["type"] == "file")

    def last_seq(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        return [w for w in body["workspaces"] if w["id"] == self.ws][0]["last_seq"]

    def host_list(self):
        """`roost hosts --json`, as a list of hosts."""
        out = json.loads(self.hub.cli("hosts", "--json").stdout)
        return out["hosts"] if isinstance(out, dict) else out

    def host_status(self):
        return {h["label"]: h["status"] for h in self.host_list()}

    def host_id(self, label):
        st, body, _, _ = self.api("GET", "/hosts")
        self.assertEqual(st, 200, body)
        return [h["id"] for h in body["hosts"] if h["label"] == label][0]


class SyncTest(HostTest):
    def roundtrip(self, src, dst, folder):
        rel = folder + "/notes.txt"
        first = b"first draft, saved on " + src.label.encode() + b"\n"
        write(src.path(rel), first)
        self.wait_file(dst, rel, sha(first))
        self.wait_hub(rel, sha(first))
        second = b"second draft, longer: " + os.urandom(300_000)
        write(src.path(rel), second)
        self.wait_file(dst, rel, sha(second))
        self.wait_hub(rel, sha(second))
        os.remove(src.path(rel))
        self.wait_gone(dst, rel)
        self.wait_hub_gone(rel)
        self.assertFalse(os.path.exists(src.path(rel)), "the deleted file came back")

    def test_create_edit_delete_on_a_reach_b(self):
        self.roundtrip(self.A, self.B, "/ab")

    def test_create_edit_delete_on_b_reach_a(self):
        self.roundtrip(self.B, self.A, "/ba")

    def test_renaming_a_file_moves_it_with_its_history(self):
        old, new = "/mv/draft.txt", "/mv/final.txt"
        v1, v2 = b"version one\n", b"version two\n" * 100
        write(self.A.path(old), v1)
        self.wait_hub(old, sha(v1))
        write(self.A.path(old), v2)
        self.wait_file(self.B, old, sha(v2))
        self.wait_hub(old, sha(v2))
        file_id = self.hub_info(old)["id"]
        os.rename(self.A.path(old), self.A.path(new))
        self.wait_file(self.B, new, sha(v2))
        self.wait_gone(self.B, old)
        self.wait_hub(new, sha(v2))
        self.wait_hub_gone(old)
        self.assertEqual(self.hub_info(new)["id"], file_id)
        st, body, _, _ = self.api("GET", "/versions?path=" + q(new))
        hashes = [v["hash"] for v in body["versions"]]
        self.assertEqual(hashes[0], sha(v2))
        self.assertIn(sha(v1), hashes, "the history stays with the renamed file")

    def test_renaming_a_folder_moves_its_files_without_uploading_them_again(self):
        files = {"/proj/src/part%d.bin" % i: os.urandom(200_000 + i) for i in range(6)}
        files["/proj/src/docs/readme.txt"] = b"read me\n"
        for rel, data in files.items():
            write(self.A.path(rel), data)
        for rel, data in files.items():
            self.wait_file(self.B, rel, sha(data))
            self.wait_hub(rel, sha(data))
        ids = {rel: self.hub_info(rel)["id"] for rel in files}
        before = self.hub.metric("roost_chunk_bytes_received_total")
        os.rename(self.A.path("/proj/src"), self.A.path("/proj/lib"))
        moved = {rel.replace("/proj/src/", "/proj/lib/"): rel for rel in files}
        for new, old in moved.items():
            self.wait_file(self.B, new, sha(files[old]))
            self.wait_hub(new, sha(files[old]))
        self.wait_gone(self.B, "/proj/src")
        self.wait_hub_gone("/proj/src")
        self.assertEqual(local_names(self.B.dir, "/proj"), sorted(moved))
        self.assertEqual({new: self.hub_info(new)["id"] for new in moved},
                         {new: ids[old] for new, old in moved.items()})
        self.assertEqual(self.hub.metric("roost_chunk_bytes_received_total"), before,
                         "a folder rename re-uploaded content")

    def test_nested_folders_made_later_sync_with_their_files(self):
        os.makedirs(self.A.path("/nest/a/b/c"))
        leaf = b"deep inside\n"
        write(self.A.path("/nest/a/b/c/leaf.txt"), leaf)
        self.wait_file(self.B, "/nest/a/b/c/leaf.txt", sha(leaf))
        self.wait_hub("/nest/a/b/c/leaf.txt", sha(leaf))
        os.makedirs(self.A.path("/nest/a/b/c/d/e"))  # below a folder already synced
        deeper = b"deeper still\n"
        write(self.A.path("/nest/a/b/c/d/e/deeper.txt"), deeper)
        self.wait_file(self.B, "/nest/a/b/c/d/e/deeper.txt", sha(deeper))
        self.wait_hub("/nest/a/b/c/d/e/deeper.txt", sha(deeper))

    def test_an_empty_folder_syncs_too(self):
        os.makedirs(self.A.path("/hollow/x/y"))
        self.wait(lambda: os.path.isdir(self.B.path("/hollow/x/y")), "/hollow/x/y on B")
        self.assertEqual(self.hub_info("/hollow/x/y")["type"], "folder")

    def test_simultaneous_edits_keep_both_one_as_a_conflict_copy(self):
        rel = "/clash/plan.txt"
        base = b"the plan, as agreed\n"
        write(self.A.path(rel), base)
        self.wait_file(self.B, rel, sha(base))
        self.wait_hub(rel, sha(base))
        edits = {"A": b"A's plan\n" + os.urandom(2000), "B": b"B's plan\n" + os.urandom(2000)}
        origin = {sha(data): label for label, data in edits.items()}
        barrier = threading.Barrier(2)

        def edit(host):
            barrier.wait()
            write(host.path(rel), edits[host.label])
        threads = [threading.Thread(target=edit, args=(h,)) for h in (self.A, self.B)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def views():
            return (local_files(self.A.dir, "/clash"), local_files(self.B.dir, "/clash"),
                    self.hub_files("/clash"))

        def settled():
            a, b, hub = views()
            return a if a == b == hub and {h for _, h in a} == set(origin) else None
        final = self.wait(settled, lambda: "A, B and the hub to agree on both edits; "
                          "A %s, B %s, hub %s" % views(), timeout=60)
        time.sleep(0.5)
        self.assertEqual(views(), (final, final, final), "the conflict did not stay resolved")
        files = dict(final)
        self.assertEqual(len(files), 2, final)
        self.assertIn(rel, files)
        copy = [p for p in files if p != rel][0]
        m = re.match(r"^plan \(conflict from (\w+) (.+)\)\.txt$", copy.rsplit("/", 1)[1])
        self.assertTrue(m, "conflict copy named %r" % copy)
        self.assertEqual(m.group(1), origin[files[copy]],
                         "the copy names the host whose content it holds")

    def test_an_excluded_folder_never_reaches_that_host(self):
        self.hub.cli("mkdir", "-p", "/ex")  # a policy names a folder that exists
        self.hub.cli("policy", "set", "B", "/ex", "exclude")
        st, body, _, _ = self.api("GET", "/hosts/%d/policies" % self.host_id("B"))
        self.assertIn(("/ex", "exclude"), [(p["folder"], p["mode"]) for p in body["policies"]])
        via_a = b"written on A into an excluded folder\n"
        write(self.A.path("/ex/from-a.txt"), via_a)
        self.wait_hub("/ex/from-a.txt", sha(via_a))
        via_put = b"uploaded with roost put\n"
        local = os.path.join(self.tmp, "put-me.txt")
        write(local, via_put)
        self.hub.cli("put", local, "/ex/sub/from-put.txt")
        self.wait_file(self.A, "/ex/sub/from-put.txt", sha(via_put))  # A is not excluded
        # committed after the /ex files: once B has it, B has seen them and passed
        after = b"a sibling that merely starts with ex\n"
        write(self.A.path("/exok/after.txt"), after)
        self.wait_file(self.B, "/exok/after.txt", sha(after))
        self.assertEqual(local_names(self.B.dir, "/ex"), [])
        self.assertEqual(self.hub_info("/ex/from-a.txt")["hash"], sha(via_a))

    def test_status_reports_running_queue_last_sync_and_seq(self):
        ping = b"ping\n"
        write(self.A.path("/status/ping.txt"), ping)
        self.wait_file(self.B, "/status/ping.txt", sha(ping))
        for host in (self.A, self.B):
            s = host.status()
            for field in ("running", "queue", "last_sync", "seq"):
                self.assertIn(field, s)
            self.assertIs(s["running"], True)
            self.assertIsInstance(s["queue"], int)
            self.assertIsInstance(s["seq"], int)
            self.wait(lambda: (lambda s: s["seq"] == self.last_seq() and s["queue"] == 0)(
                host.status()), lambda: "%s idle at seq %d: %s" % (
                    host.label, self.last_seq(), host.status()), interval=0.2)
            self.assertTrue(host.status()["last_sync"], "a host that synced has a last_sync")

    def test_hosts_lists_both_online_with_their_urls(self):
        self.wait(lambda: self.host_status() == {"A": "online", "B": "online"},
                  lambda: "A and B online: %s" % self.host_list(), interval=0.2)
        urls = {h["label"]: h["url"] for h in self.host_list()}
        self.assertEqual(urls, {"A": self.A.url, "B": self.B.url})


class BulkTest(HostTest):
    def test_a_256_mib_file(self):
        rel = "/big/random.bin"
        t = time.monotonic()
        digest = write_random(self.A.path(rel), 256 * MiB)
        self.wait_file(self.B, rel, digest, timeout=300, size=256 * MiB)
        print("\n  256 MiB A→B in %.1f s" % (time.monotonic() - t))
        self.wait_hub(rel, digest)

    def test_ten_thousand_small_files(self):
        rng = random.Random(10000)
        t = time.monotonic()
        expected = []
        for d in range(100):
            for f in range(100):
                rel = "/many/d%02d/f%02d.txt" % (d, f)
                data = rng.randbytes(rng.randint(1024, 4096))
                write(self.A.path(rel), data)
                expected.append((rel, sha(data)))
        expected.sort()
        names = [p for p, _ in expected]
        self.wait(lambda: local_names(self.B.dir, "/many") == names,
                  lambda: "10,000 files on B; it has %d" % len(local_names(self.B.dir, "/many")),
                  timeout=300, interval=0.5)
        self.wait(lambda: local_files(self.B.dir, "/many") == expected,
                  "B's 10,000 files to have A's bytes", timeout=30, interval=1)
        print("\n  10,000 files A→B in %.1f s" % (time.monotonic() - t))
        on_hub = sorted(f for d in range(100) for f in self.hub_files("/many/d%02d" % d))
        self.assertEqual(on_hub, expected)


class FailureTest(HostTest):
    def test_a_host_killed_mid_download_finishes_after_restart(self):
        during, down = "/big/killed-during.bin", "/big/written-while-down.bin"
        tmp = os.path.join(self.B.dir, ".roost", "tmp")
        try:
            # 1. B runs; killed as soon as its download (DIR/.roost/tmp/dl-*) has bytes
            digest = write_random(self.A.path(during), 64 * MiB)

            def complete():
                path = self.B.path(during)
                try:
                    return os.path.getsize(path) == 64 * MiB and file_sha(path) == digest
                except FileNotFoundError:
                    return False
            self.wait(lambda: any(size for _, size in tree_files(tmp)) or complete(),
                      "B to start downloading", timeout=120, interval=0.001)
            self.B.kill()
            mid = not complete()
            print("\n  killed B %s" % ("mid-download" if mid else "after it had the file"))
            # 2. another large file is committed while B is down
            digest2 = write_random(self.A.path(down), 64 * MiB)
            self.wait_hub(down, digest2, timeout=120)
        finally:
            if not self.B.running():
                self.B.start()
        self.wait_file(self.B, during, digest, timeout=180, size=64 * MiB)
        self.wait_file(self.B, down, digest2, timeout=180, size=64 * MiB)
        self.wait(lambda: local_names(self.B.dir) == local_names(self.A.dir),
                  lambda: "B's folder to hold A's files and nothing else: A %s, B %s" % (
                      local_names(self.A.dir), local_names(self.B.dir)))
        self.wait(lambda: not tree_files(tmp), lambda: "B's .roost/tmp to empty: %s" % (
            tree_files(tmp),))

    def test_a_hub_restarted_mid_upload_still_gets_the_file_to_b(self):
        rel = "/hubdown/big.bin"
        metric = "roost_chunk_bytes_received_total"
        before = self.hub.metric(metric)
        digest = write_random(self.A.path(rel), 64 * MiB)
        got = self.wait(lambda: self.hub.metric(metric) - before, "A to start uploading",
                        timeout=60, interval=0)
        self.hub.stop()  # SIGTERM: must exit 0
        self.hub.start()  # same data, same ports
        print("\n  restarted the hub after it had received %.1f of 64 MiB" % (got / MiB))
        self.wait_file(self.B, rel, digest, timeout=240, size=64 * MiB)
        self.wait_hub(rel, digest)
        self.assertEqual(file_sha(self.A.path(rel)), digest)

    def test_a_killed_host_goes_offline_within_seconds_and_comes_back(self):
        self.wait(lambda: self.host_status() == {"A": "online", "B": "online"},
                  lambda: "A and B online: %s" % self.host_list(), interval=0.2)
        self.B.kill()
        t = time.monotonic()
        try:
            self.wait(lambda: self.host_status()["B"] == "offline",
                      lambda: "B offline: %s" % self.host_list(), timeout=8, interval=0.1)
            took = time.monotonic() - t
            self.assertLess(took, 6, "B went offline only after %.1f s" % took)
            self.assertEqual(self.host_status()["A"], "online")
            self.assertIs(self.B.status()["running"], False)
        finally:
            self.B.start()
        self.wait(lambda: self.host_status()["B"] == "online",
                  lambda: "B back online: %s" % self.host_list(), timeout=10, interval=0.1)


class ContentServerTest(HostTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.blob = os.urandom(3 * MiB)
        write(cls.A.path("/served/blob.bin"), cls.blob)
        path = cls.B.path("/served/blob.bin")
        try:
            wait_for(lambda: file_sha(path) == sha(cls.blob), 60, "/served/blob.bin on B",
                     cls.hosts)
        except BaseException:
            cls.tearDownClass()
            raise

    def get(self, host, path, token=None, headers=None):
        return self.hub.request("GET", path, token=token, headers=headers, port=host.port)

    def manifest(self, path):
        st, body, payload, _ = self.api("GET", "/manifest?path=" + q(path))
        self.assertEqual(st, 200, payload[:300])
        return body

    def chunk_token(self, ws=None, **body):
        body["scope"] = "chunks"
        st, resp, payload, _ = self.hub.request(
            "POST", "/api/v1/workspaces/%d/tokens" % (ws or self.ws), body, token=self.token)
        self.assertEqual(st, 201, payload[:300])
        return resp["token"]

    def url_token(self, path, **body):
        body["path"] = path
        st, resp, payload, _ = self.api("POST", "/urls", body)
        self.assertEqual(st, 201, payload[:300])
        return resp["token"]

    def test_chunks_need_a_chunks_token_of_this_workspace(self):
        chunk = self.manifest("/served/blob.bin")["chunks"][0]["hash"]
        path = "/chunks/" + chunk
        good = self.chunk_token(expires_in=300)
        for host in (self.A, self.B):
            st, _, payload, _ = self.get(host, path, token=good)
            self.assertEqual(st, 200, payload[:300])
            self.assertEqual(sha(payload), chunk)
        self.assertError(self.get(self.A, path), 401)
        self.assertError(self.get(self.A, path, token=self.url_token("/served/blob.bin")), 403)
        st, other, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "elsewhere"},
                                           token=self.token)
        self.assertEqual(st, 201, other)
        self.assertError(self.get(self.A, path, token=self.chunk_token(other["id"])), 403)
        short = self.chunk_token(expires_in=1)
        time.sleep(1.3)
        self.assertError(self.get(self.A, path, token=short), 401)
        claims, sig = good.split(".")
        forged = json.loads(b64d(claims))
        forged["exp"] += 10 ** 9
        flipped = sig[:10] + ("B" if sig[10] != "B" else "C") + sig[11:]
        for bad in (b64e(json.dumps(forged).encode()) + "." + sig, claims + "." + flipped,
                    "garbage", claims):
            self.assertError(self.get(self.A, path, token=bad), 401)
        self.assertError(self.get(self.A, "/chunks/" + "0" * 64, token=good), 404)

    def test_a_host_serves_a_signed_url_of_a_version_it_holds(self):
        token = self.url_token("/served/blob.bin")
        st, _, payload, resp = self.get(self.B, "/c/" + token)
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(sha(payload), sha(self.blob))
        # a user's bytes never render as a page on the host's origin either
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox")
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
        self.assertTrue(resp.getheader("Content-Disposition").startswith("attachment"))
        self.assertError(self.get(self.B, "/c/" + self.chunk_token()), 403)
        short = self.url_token("/served/blob.bin", expires_in=1)
        time.sleep(1.3)
        self.assertError(self.get(self.B, "/c/" + short), 401)
        st, _, payload, resp = self.get(self.B, "/c/" + token,
                                        headers={"Range": "bytes=1048570-1048579"})
        self.assertEqual(st, 206, "Range: answered %d with %d bytes" % (st, len(payload)))
        self.assertEqual(payload, self.blob[1048570:1048580])
        self.assertEqual(resp.getheader("Content-Range"),
                         "bytes 1048570-1048579/%d" % len(self.blob))

    def test_path_traversal_never_reads_files(self):
        def credentials(node, key=""):
            if isinstance(node, dict):
                return [s for k, v in node.items() for s in credentials(v, k)]
            ok = isinstance(node, str) and re.search("token|secret|key|cred", key, re.I)
            return [node.encode()] if ok else []
        with open(os.path.join(self.A.dir, ".roost", "host.json"), "rb") as f:
            secrets = credentials(json.load(f))
        self.assertTrue(secrets, "host.json holds a credential")
        secrets.append(b"root:")
        good = self.chunk_token()
        for path in ("/c/..%2f..%2fetc%2fpasswd", "/c/../../etc/passwd",
                     "/c/..%2f.roost%2fhost.json", "/chunks/../../x",
                     "/chunks/..%2f..%2fetc%2fpasswd", "/chunks/%2e%2e%2f.roost%2fhost.json",
                     "/chunks/../.roost/host.json", "/../../etc/passwd", "/.roost/host.json"):
            for token in (None, good):
                st, _, payload, _ = self.get(self.A, path, token=token)
                self.assertTrue(400 <= st < 500, "%s answered %d" % (path, st))
                for s in secrets:
                    self.assertNotIn(s, payload, path)

    def test_on_demand_files_stay_out_of_the_folder_and_the_cache_keeps_the_recent(self):
        cap = 3 * MiB
        C = Host(self.hub, self.tmp, "C", cache_max=cap)
        self.hosts.append(C)
        C.join()
        self.hub.cli("mkdir", "-p", "/od")
        self.hub.cli("policy", "set", "C", "/od", "on-demand")
        C.start()
        try:
            self.on_demand(C, cap)
        finally:
            C.stop()

    def on_demand(self, C, cap):
        cache = os.path.join(C.dir, ".roost", "cache")
        data = [os.urandom(MiB) for _ in range(4)]
        paths = ["/od/f%d.bin" % i for i in range(4)]
        for p, d in zip(paths, data):
            write(self.A.path(p), d)
        for p, d in zip(paths, data):
            self.wait_hub(p, sha(d))
        canary = b"pinned, committed after the on-demand files\n"
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/od-canary.txt"), raw=canary)
        self.assertEqual(st, 201, payload[:300])
        self.wait_file(C, "/od-canary.txt", sha(canary))
        self.assertEqual(local_names(C.dir, "/od"), [], "on-demand files were downloaded")
        chunks = [[c["hash"] for c in self.manifest(p)["chunks"]] for p in paths]

        def holds(h):
            return any(h in name for name, _ in tree_files(cache))

        def cached(i):
            return all(holds(h) for h in chunks[i])

        def cache_bytes():
            return sum(size for _, size in tree_files(cache))
        tokens = [self.url_token(p) for p in paths]
        for step, i in enumerate((0, 1, 2, 0, 3)):  # 0 is read again: 1 is the LRU
            st, _, payload, _ = self.get(C, "/c/" + tokens[i])
            self.assertEqual(st, 200, payload[:300])
            self.assertEqual(sha(payload), sha(data[i]), paths[i])
            self.wait(lambda: cache_bytes() <= cap, lambda: "C's cache within %d bytes: %d" % (
                cap, cache_bytes()), timeout=10)
            if step == 0:
                self.wait(lambda: cached(0), "the chunks of %s in C's cache" % paths[0],
                          timeout=10)
        self.wait(lambda: not any(holds(h) for h in chunks[1]),
                  lambda: "%s (least recently used) evicted; cache %s" % (
                      paths[1], tree_files(cache)), timeout=10)
        self.assertTrue(cached(3), "the newest fetch is cached")
        self.assertTrue(cached(0), "the file read again is cached")
        self.assertLessEqual(cache_bytes(), cap)
        self.assertEqual(local_names(C.dir, "/od"), [], "fetching wrote into the folder")
        self.evicted_copies_are_reported(C, paths, data, chunks, cached, holds, tokens)

    def evicted_copies_are_reported(self, C, paths, data, chunks, cached, holds, tokens):
        # /od pinned: C writes the files (f0 and f3 from its cache) and tells
        # the hub it holds their chunks.
        cid = [h["id"] for h in self.api("GET", "/hosts")[1]["hosts"] if h["label"] == "C"][0]

        def counted(hash_):
            return self.hub.sql("SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ? AND "
                                "chunk_hash = ? AND state = 'ok'", (cid, hash_))[0][0]
        self.hub.cli("policy", "set", "C", "/od", "pinned")
        for p, d in zip(paths, data):
            self.wait_file(C, p, sha(d))
        self.wait(lambda: all(counted(h) for h in chunks[0]), "the hub to count C's copy of f0")
        self.assertTrue(cached(0))
        # f0 goes: its chunks stay in the cache only, so C still holds them...
        self.hub.cli("rm", paths[0])
        self.wait(lambda: not os.path.exists(C.path(paths[0])), "f0 gone from C's folder")
        # ... until newer reads push them out: then the hub must stop counting them
        self.hub.cli("mkdir", "-p", "/od2")
        self.hub.cli("policy", "set", "C", "/od2", "on-demand")
        more = [os.urandom(MiB) for _ in range(3)]
        for i, d in enumerate(more):
            write(self.A.path("/od2/g%d.bin" % i), d)
            self.wait_hub("/od2/g%d.bin" % i, sha(d))
        for i, d in enumerate(more):
            st, _, payload, _ = self.get(C, "/c/" + self.url_token("/od2/g%d.bin" % i))
            self.assertEqual(st, 200, payload[:300])
        self.wait(lambda: not any(holds(h) for h in chunks[0]), "f0's chunks evicted from C")
        self.wait(lambda: not any(counted(h) for h in chunks[0]),
                  "the hub to stop counting C's evicted copy of f0", timeout=30)
        self.assertTrue(all(counted(h) for h in chunks[3]), "f3 is still in C's folder")


if __name__ == "__main__":
    harness.main()
