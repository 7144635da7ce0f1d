"""The invariants issue 19 checks after every fault (docs/reliability.md), for any
fault test: crashes (torture.py, test_crash_points.py), I/O errors, full disks,
networks. Standard library only; the hub, hosts and requests are harness's.

    ledger = Ledger()
    ledger.ack("/a.txt", sha)          # the client was told "committed"
    ledger.local_edit(host, "/b", sha) # a user saved this on a host
    Checker(hub, token, ws, hosts, ledger).check_all()

Each check raises AssertionError naming what broke; check_all() returns a dict
of what it counted.
"""
import hashlib
import os
import re
import subprocess
import time

from harness import q, wait_for

UPLOAD_LEASE_S = 86400  # the one-day upload lease (docs/api.md, "Upload")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sha(url, timeout=120):
    """GET url (http://127.0.0.1:PORT/…): the SHA-256 of a whole 200 answer, else a
    string saying what came instead (a status, a short body, an error)."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        conn.request("GET", u.path + ("?" + u.query if u.query else ""))
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    except (http.client.HTTPException, OSError) as e:
        return "an error (%r)" % e
    if resp.status != 200:
        return "status %d (%r)" % (resp.status, body[:200])
    return hashlib.sha256(body).hexdigest()


class Ledger:
    """What clients were told: path -> hashes of the versions acknowledged to a
    client (a put that exited 0, a commit answered 201), and the local edits
    users saved on hosts (each must end up a version or a conflict copy)."""

    def __init__(self):
        self.acked = {}  # path -> [sha256, …] in acknowledgement order
        self.edits = []  # (host label, path, sha256)
        self.purged = set()  # hashes of versions deleted for good (a host may still
        # hold one until it applies the deletion)

    def ack(self, path, digest):
        self.acked.setdefault(path, []).append(digest)

    def local_edit(self, host, path, digest):
        """A save on a host; it replaces an earlier save of the same path there (a
        user's second save before a sync overwrites the first; every check in
        between already found the first kept)."""
        self.edits = [e for e in self.edits if e[:2] != (host.label, path)]
        self.edits.append((host.label, path, digest))

    def forget(self, path, digest=None):
        """A path deleted for good on purpose (its versions may be collected)."""
        if digest:
            self.purged.add(digest)
        self.acked.pop(path, None)
        self.edits = [e for e in self.edits if e[1] != path]

    def moved(self, old, new):
        """A rename: the file keeps its versions under its new path."""
        if old in self.acked:
            self.acked.setdefault(new, []).extend(self.acked.pop(old))
        self.edits = [(h, new if p == old else p, d) for h, p, d in self.edits]

    def count(self):
        return sum(len(v) for v in self.acked.values())


def local_tree(root):
    """{workspace path: sha256} of the regular files under a host folder, without
    DIR/.roost (its temp files and state)."""
    out = {}
    for d, dirs, files in os.walk(root):
        if os.path.normpath(d) == os.path.normpath(root):
            dirs[:] = [x for x in dirs if x != ".roost"]
        for n in files:
            p = os.path.join(d, n)
            out["/" + os.path.relpath(p, root)] = sha256_file(p)
    return out


class Checker:
    """The invariant checks of one workspace of a hub and its hosts."""

    def __init__(self, hub, token, ws, hosts=(), ledger=None, host_sources=False):
        """host_sources (a `hosts`-storage workspace): check_all also reads every
        current file back from each host the hub names as its source."""
        self.hub, self.token, self.ws = hub, token, ws
        self.hosts, self.ledger = list(hosts), ledger or Ledger()
        self.objects_checked_at = 0.0
        self.host_sources = host_sources
        self.host_read_ok = set()  # (path, sha256, host id) read back whole once
        self.host_reads = 0  # reads from hosts' content servers verified
        self.objects_hashed = 0
        self.superseded_lost = set()  # ids of kept versions no copy is left of
        self.applied_lost = set()  # … of those another host had applied (open)

    # ---- the hub's view, through its API ----
    def api(self, method, rel, body=None):
        return self.hub.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                                token=self.token)

    def hub_tree(self):
        """{path: current sha256} of every live file of the workspace (paged)."""
        out, folders = {}, ["/"]
        while folders:
            folder, cursor = folders.pop(), None
            while True:
                rel = "/list?limit=10000&path=" + q(folder)
                if cursor:
                    rel += "&cursor=" + q(cursor)
                st, body, payload, _ = self.api("GET", rel)
                assert st == 200, ("list", folder, st, payload[:300])
                for e in body["entries"]:
                    if e["type"] == "folder":
                        folders.append(e["path"])
                    else:
                        out[e["path"]] = e["hash"]
                cursor = body.get("next_cursor")
                if not cursor:
                    break
        return out

    def versions(self, path):
        st, body, payload, _ = self.api("GET", "/versions?path=" + q(path))
        if st == 404:
            return []
        assert st == 200, ("versions", path, st, payload[:300])
        return body["versions"]

    def read_sha(self, path, version):
        st, _, payload, _ = self.api("GET", "/content?path=%s&version=%d" % (q(path), version))
        assert st == 200, ("content", path, version, st, payload[:300])
        return hashlib.sha256(payload).hexdigest()

    def all_version_hashes(self):
        return {r[0] for r in self.hub.sql(
            "SELECT v.hash FROM file_versions v JOIN files f ON f.id = v.file_id "
            "WHERE f.workspace_id = ?", (self.ws,))}

    # ---- 1. every acknowledged version is listed and reads back ----
    def check_acked(self):
        """Each acknowledged hash is a version of its path whose bytes, read from the
        hub, have that SHA-256; and each host holding the path as current holds it
        whole (checked by check_converged)."""
        n = 0
        for path, digests in self.ledger.acked.items():
            vs = self.versions(path)
            by_hash = {}
            for v in vs:
                by_hash.setdefault(v["hash"], v["version"])
            for d in digests:
                assert d in by_hash, "acknowledged %s (sha256 %s…) is lost: versions %s" % (
                    path, d[:12], [(v["version"], v["hash"][:12]) for v in vs])
                got = self.read_sha(path, by_hash[d])
                assert got == d, "%s version %d reads back as %s…, not %s…" % (
                    path, by_hash[d], got[:12], d[:12])
                n += 1
        return n

    # ---- 2. no file in a host's folder is torn ----
    def check_no_torn(self, host):
        """Every file in the host's folder is byte for byte some committed version
        (of any path: a rename keeps its versions) or a local edit made on it."""
        tree = local_tree(host.dir)  # first: a file that arrives later is a version now
        known = self.all_version_hashes() | self.ledger.purged
        known |= {d for label, _, d in self.ledger.edits if label == host.label}
        bad = {p: d for p, d in tree.items() if d not in known}
        assert not bad, "host %s holds files that are no version nor local edit: %s" % (
            host.label, {p: d[:12] for p, d in bad.items()})

    # ---- 3. no live chunk missing; refcounts right; GC leaves no garbage ----
    def check_chunks(self):
        """Every chunk a version references has a chunks row whose refcount counts
        its references, and an object in the hub's store or an 'ok' copy on a
        host that is not revoked."""
        rows = self.hub.sql(
            "SELECT vc.chunk_hash, COUNT(*), MAX(c.refcount), MAX(c.hash) FROM version_chunks vc "
            "LEFT JOIN chunks c ON c.hash = vc.chunk_hash GROUP BY vc.chunk_hash")
        on_hosts = {r[0] for r in self.hub.sql(
            "SELECT r.chunk_hash FROM chunk_replicas r JOIN hosts h ON h.id = r.host_id "
            "WHERE r.state = 'ok' AND h.revoked_at IS NULL")}
        missing, bad_ref = [], []
        for h, refs, refcount, row in rows:
            if row is None or refcount != refs:
                bad_ref.append((h[:12], refs, refcount))
            if not os.path.exists(self.hub.object_path(h)) and h not in on_hosts:
                missing.append(h)
        if missing and self.host_sources:
            missing = self.superseded_only(missing)
        assert not missing, "chunks of live versions missing everywhere: %s" % missing
        assert not bad_ref, "chunks whose refcount is not their references (hash, refs, " \
            "refcount): %s" % bad_ref
        stale = self.hub.sql("SELECT hash, refcount FROM chunks WHERE refcount > 0 AND NOT "
                             "EXISTS (SELECT 1 FROM version_chunks v WHERE v.chunk_hash = hash)")
        assert not stale, "chunks counted as referenced that no version uses: %s" % stale
        return len(rows)

    def superseded_only(self, missing):
        """`hosts` storage: of the missing chunks, those a current version or an
        acknowledged one uses (returned, short), apart from those only kept
        versions that no client was told of use: a host's version saved over on
        that host before any other host had applied it, within replica_grace_s
        (docs/storage.md: the one risk of `hosts` storage; docs/reliability.md,
        "Crashes"), counted in superseded_lost. Hosts that applied a version keep
        its chunks when it is replaced."""
        acked = {d for ds in self.ledger.acked.values() for d in ds}
        labels = dict(self.hub.sql("SELECT id, label FROM hosts"))
        out = []
        for h in missing:
            rows = self.hub.sql(
                "SELECT v.id, v.hash, f.current_version_id = v.id, v.number, v.host_id, "
                "d.path, f.name FROM version_chunks vc JOIN file_versions v ON "
                "v.id = vc.version_id JOIN files f ON f.id = v.file_id JOIN folders d ON "
                "d.id = f.folder_id WHERE vc.chunk_hash = ?", (h,))
            if any(cur or digest in acked for _, digest, cur, *_ in rows):
                out.append(h[:12])
                continue
            applied = [r for r in rows if self.applied_elsewhere(r, labels)]
            if applied and os.environ.get("ROOST_TORTURE_STRICT"):
                # another host had it: it should have kept the chunks
                out.append("%s (%s version %d, applied on another host)" % (
                    h[:12], self.row_path(applied[0]), applied[0][3]))
            elif applied:  # open (docs/reliability.md "Crashes"): counted
                self.applied_lost |= {r[0] for r in rows}
            else:
                self.superseded_lost |= {r[0] for r in rows}
        return out

    @staticmethod
    def row_path(row):
        folder, name = row[5], row[6]
        return folder.rstrip("/") + "/" + name

    def applied_elsewhere(self, row, labels):
        """Did a host other than the committing one log applying this version?"""
        line = "synced %s (version %d) from the workspace" % (self.row_path(row), row[3])
        for host in self.hosts:
            if host.label == labels.get(row[4]):
                continue
            try:
                with open(host.log_path, errors="replace") as f:
                    if any(line in ln for ln in f):
                        return True
            except OSError:
                pass
        return False

    def check_objects_whole(self):
        """No object in the hub's store is torn: each written since the last check
        hashes to its name (a directory store, or the S3 bucket's objects as the S3
        server keeps them)."""
        since, self.objects_checked_at = self.objects_checked_at, time.time() - 2
        torn, n = [], 0
        for p in self.hub.object_paths():
            try:
                if os.path.getmtime(p) < since:
                    continue
                n += 1
                if sha256_file(p) != self.hub.object_hash(p):
                    torn.append(self.hub.object_hash(p)[:12])
            except FileNotFoundError:  # collected meanwhile
                pass
        assert not torn, "objects in the hub's store that are not their hash: %s" % torn
        self.objects_hashed += n
        return n

    def check_no_temp_left(self, timeout=60):
        """Nothing half-written stays: once idle, each running host's DIR/.roost/tmp
        and the hub's DATA/objects/tmp are empty (a restart or the next sync
        removes a killed transfer's temp files)."""
        dirs = [os.path.join(h.dir, ".roost", "tmp") for h in self.hosts if h.running()]
        if not self.hub.s3:
            dirs.append(os.path.join(self.hub.store_dir(), "tmp"))

        def left():
            return [os.path.join(d, n) for d in dirs if os.path.isdir(d) for n in os.listdir(d)]
        wait_for(lambda: not left(), timeout, lambda: "temp files to go: %s" % left()[:10],
                 self.hosts, interval=0.25)

    def run_gc(self):
        """`roost admin gc --retention 0` (every unreferenced committed chunk may go).
        False while another runner holds the job's lease (exit 3): a killed run's
        lease lapses in 10 s, then the next run resumes at its cursor."""
        p = subprocess.run([self.hub_roost(), "admin", "gc", "--data", self.hub.data,
                            *self.hub.db_args(), "--retention", "0"],
                           env=self.hub.env(), capture_output=True, timeout=300)
        if p.returncode == 3:
            return False
        assert p.returncode == 0, "roost admin gc failed (%d): %s" % (
            p.returncode, p.stderr.decode(errors="replace"))
        return True

    def hub_roost(self):
        import harness
        return harness.ROOST

    def gc_leftovers(self):
        """What a GC with retention 0 should have removed: (chunk rows no version
        references, objects no version references that are no upload under its
        one-day lease: a chunk_uploads row, or an object no row names yet — written
        just before a crash — younger than the lease)."""
        rows = [r[0][:12] for r in self.hub.sql("SELECT hash FROM chunks WHERE refcount <= 0")]
        referenced = {r[0] for r in self.hub.sql("SELECT DISTINCT chunk_hash FROM version_chunks")}
        leased = {r[0] for r in self.hub.sql("SELECT chunk_hash FROM chunk_uploads")}
        named = {r[0] for r in self.hub.sql("SELECT hash FROM chunks")}
        now, objects = time.time(), []
        for p in self.hub.object_paths():
            h = self.hub.object_hash(p)
            if h in referenced or h in leased:
                continue
            if h not in named and now - os.path.getmtime(p) < UPLOAD_LEASE_S:
                continue
            objects.append(h[:12])
        return rows, objects

    def check_gc_leaves_nothing(self, timeout=60):
        """Nothing unreferenced outlives GC: `roost admin gc --retention 0` until
        none is left. GC keeps a chunk whose host copies it told to drop until
        those hosts say they did (their next heartbeat): a bound, not a step."""
        state = {}

        def clean():
            if not self.run_gc():
                state["left"] = "(the job's lease is held)"
                return False
            state["left"] = self.gc_leftovers()
            return state["left"] == ([], [])
        wait_for(clean, timeout, lambda: "GC to leave nothing unreferenced; left (chunk "
                 "rows, objects): %s" % (state.get("left"),), self.hosts, interval=0.5)

    # ---- 3b. in `hosts` storage, the hosts serve what the hub may lack ----
    def check_host_sources(self):
        """Every current file reads back whole from each online host the hub lists
        as holding all its chunks (POST urls' `via: host` sources: the host's
        content server, from its folder or its chunks), and at least one host is
        such a source for a file whose chunks the hub's store lacks. Each (path,
        version, host) is read once per run."""
        n = 0
        store = {self.hub.object_hash(p) for p in self.hub.object_paths()}
        for path, digest in sorted(self.hub_tree().items()):
            chunks = {r[0] for r in self.hub.sql(
                "SELECT vc.chunk_hash FROM version_chunks vc JOIN file_versions v ON "
                "v.id = vc.version_id WHERE v.hash = ?", (digest,))}
            st, body, payload, _ = self.api("POST", "/urls", {"path": path})
            if st == 404:  # deleted or moved since the listing (a host's late echo)
                continue
            assert st == 201, ("urls", path, st, payload[:300])
            hosts = [s for s in body["sources"] if s["via"] == "host"]
            if not hosts and chunks - store:
                raise AssertionError("%s (sha256 %s…): the hub lacks chunks %s and names "
                                     "no host holding them all" % (
                                         path, digest[:12], sorted(c[:12] for c in chunks - store)))
            for s in hosts:
                key = (path, digest, s.get("host_id"))
                if key in self.host_read_ok:
                    continue
                got = fetch_sha(s["url"])
                assert got == digest, "%s from host %s (%s) reads back as %s, not %s…" % (
                    path, s.get("host_id"), s["url"], got, digest[:12])
                self.host_read_ok.add(key)
                n += 1
        self.host_reads += n
        return n

    # ---- 4. hosts converge to the hub's tree ----
    def check_converged(self, timeout=90):
        """Every running host's folder equals the hub's tree (paths and bytes), with
        no manual step, within timeout."""
        for host in self.hosts:
            if not host.running():
                continue
            state = {}

            def same():
                state["hub"], state["host"] = self.hub_tree(), local_tree(host.dir)
                return state["hub"] == state["host"]

            def diff():
                a, b = state.get("hub", {}), state.get("host", {})
                keys = sorted(set(a) | set(b))
                return "host %s to converge; differing: %s" % (host.label, [
                    (k, (a.get(k) or "-")[:12], (b.get(k) or "-")[:12])
                    for k in keys if a.get(k) != b.get(k)][:20])
            wait_for(same, timeout, diff, [host], interval=0.25)

    def check_edits_kept(self):
        """Every local edit made on a host is a version of some path (conflict
        copies included) once the hosts have converged."""
        known = self.all_version_hashes()
        lost = [(h, p, d[:12]) for h, p, d in self.ledger.edits if d not in known]
        assert not lost, "local edits lost (host, path, sha256): %s" % lost

    def check_no_spurious_conflicts(self):
        """A conflict copy appears only where edits raced: never one holding the
        same bytes as the file it stands beside (nothing differed to keep)."""
        tree = self.hub_tree()
        same = []
        for path, digest in tree.items():
            m = re.match(r"^(.*) \(conflict from [^)]*\)(\.[^/]*)?$", path)
            if m and tree.get(m.group(1) + (m.group(2) or "")) == digest:
                same.append(path)
        assert not same, "conflict copies identical to their file: %s" % same

    def check_all(self, gc=False):
        """Every invariant; with gc, a GC run and its check too. Returns counts."""
        for host in self.hosts:
            if host.running():
                self.check_no_torn(host)
        self.check_converged()
        acked = self.check_acked()
        self.check_edits_kept()
        self.check_no_spurious_conflicts()
        chunks = self.check_chunks()
        if self.host_sources:
            self.check_host_sources()
        self.check_objects_whole()
        self.check_no_temp_left()
        if gc:
            self.check_gc_leaves_nothing()
            self.check_chunks()
            self.check_acked()
        return {"acked_versions": acked, "chunks": chunks}
