"""Crash points (issue 19, docs/reliability.md "Crashes"): SIGKILL the hub, a host
or a CLI process at a seeded random moment during an operation, restart what was
killed, and check every invariant (invariants.py).

    ROOST_BIN=build/roost PYTHONPATH=tests/integration python3 tests/integration/torture.py [POINTS]

The seed is printed first; ROOST_SEED=N replays the same operations, targets,
contents and kill delays (the processes' own timing still varies). Each
operation's kill window is 1.5 times its duration measured once without a kill
(its calibration run), so kills land before, during and after its commits.
ROOST_TEST_DB=postgres runs it on PostgreSQL; ROOST_TORTURE_OPS=a,b only those
operations. `make torture` runs the full size.

Storage configurations (docs/reliability.md "Crashes"):
- ROOST_TORTURE_STORAGE=hosts: the workspace keeps its bytes on the hosts
  (storage hosts, hub_cache_bytes 0, min_replicas 2; docs/storage.md): puts go to
  a host (killed too), replicate also evicts the hub's cache, GC tells hosts to
  drop copies; the checks add that every current file reads back from each host
  the hub lists as its source (POST urls), bytes the hub itself may lack.
- ROOST_TEST_STORE=s3: the hub's store is an S3 bucket (s3rver, s3server.py);
  every object in the bucket is checked to hash to its name.
"""
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from harness import Host, Hub, wait_for
from invariants import Checker, Ledger, local_tree, sha256_file

KiB, MiB = 1 << 10, 1 << 20


class Op:
    """A running operation: finish() waits for it (acks what it was told)."""

    def __init__(self, proc=None, done=None):
        self.proc, self.done = proc, done

    def finish(self, timeout=180):
        rc = None
        if self.proc:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s still running %d s after the kill" % (
                    self.proc.args[1:3], timeout))
            rc = self.proc.returncode
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()
        if self.done:
            self.done(rc)
        return rc


STORAGES = ("hub", "hosts")


def storage_from_env():
    s = os.environ.get("ROOST_TORTURE_STORAGE") or "hub"
    if s not in STORAGES:
        raise SystemExit("ROOST_TORTURE_STORAGE=%r: expected one of %s" % (s, STORAGES))
    return s


class Torture:
    def __init__(self, seed, root, log=print, storage="hub", ops=None, targets=None):
        self.seed, self.root, self.log = seed, root, log
        self.storage, self.store = storage, harness.STORE
        self.rng = random.Random(seed)
        self.hub = Hub(root)
        self.hub.start()
        self.token = self.hub.login()
        self.ws = self.hub.workspace(self.token)
        self.hub.login_cli()
        if storage == "hosts":
            st, _, payload, _ = self.hub.request(
                "PATCH", "/api/v1/workspaces/%d" % self.ws,
                {"storage": "hosts", "hub_cache_bytes": 0, "min_replicas": 2},
                token=self.token)
            assert st == 200, payload
        self.A, self.B = Host(self.hub, root, "A"), Host(self.hub, root, "B")
        for h in (self.A, self.B):
            h.join()
            h.start()
        self.ledger = Ledger()
        self.checker = Checker(self.hub, self.token, self.ws, (self.A, self.B), self.ledger,
                               host_sources=(storage == "hosts"))
        self.n = 0  # names made so far
        self.windows = {}  # op -> kill window (s), from its calibration run
        self.kills = collections.Counter()  # (op, component) -> kill points
        self.checks = 0
        self.landed = collections.Counter()  # "during"/"after": was the op's process running
        self.ops = {
            "put_big": (self.put_big, ["cli", "hub"]),
            "put_small": (self.put_small, ["cli", "hub"]),
            "batch_commit": (self.batch_commit, ["cli", "hub"]),
            "sync_a_to_b": (lambda: self.sync(self.A, self.B), ["host A", "host B", "hub"]),
            "sync_b_to_a": (lambda: self.sync(self.B, self.A), ["host A", "host B", "hub"]),
            "rename_storm": (self.rename_storm, ["host A", "host B", "hub"]),
            "gc": (lambda: self.job("gc"), ["cli", "hub"]),
            "scrub": (lambda: self.job("scrub"), ["cli", "hub"]),
            "replicate": (lambda: self.job("replicate"), ["cli", "hub", "host B"]),
        }

        if storage == "hosts":
            # A put goes to a host (the hub's cache only when none takes it); GC and
            # replication (with the cache's eviction) tell hosts to drop or fetch.
            hosts = ["host A", "host B"]
            for op in ("put_big", "put_small", "batch_commit", "gc", "replicate"):
                fn, comps = self.ops[op]
                self.ops[op] = (fn, comps + [h for h in hosts if h not in comps])
        only = ops or os.environ.get("ROOST_TORTURE_OPS")  # e.g. "rename_storm,gc"
        if only:
            self.ops = {k: v for k, v in self.ops.items() if k in only.split(",")}
            assert self.ops, "ROOST_TORTURE_OPS names no operation of %s" % only
        if targets:  # only these components are killed
            self.ops = {k: (fn, [c for c in ts if c in targets])
                        for k, (fn, ts) in self.ops.items()}
            assert all(ts for _, ts in self.ops.values()), (
                "an operation has none of the targets %s" % targets)

    def stop(self):
        for h in (self.A, self.B):
            h.stop()
        self.hub.stop()

    # ---- helpers ----
    def name(self, prefix):
        self.n += 1
        return "%s%d" % (prefix, self.n)

    def local_file(self, size):
        path = os.path.join(self.root, self.name("src-"))
        with open(path, "wb") as f:
            f.write(self.rng.randbytes(size))
        return path, sha256_file(path)

    def roost(self, *args):
        return subprocess.Popen([harness.ROOST, *args], env=self.hub.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def put(self, size):
        src, digest = self.local_file(size)
        dst = "/%s.bin" % self.name("put/p")

        def done(rc):
            if rc == 0:
                self.ledger.ack(dst, digest)
        return Op(self.roost("put", src, dst), done)

    # ---- operations ----
    def put_big(self):
        return self.put(self.rng.randint(4 * MiB, 16 * MiB))

    def put_small(self):
        return self.put(self.rng.randint(1, 64 * KiB))

    def batch_commit(self):
        """`roost put -r` of small files: one POST versions/batch."""
        d = os.path.join(self.root, self.name("batch-"))
        os.makedirs(d)
        files = {}
        for i in range(self.rng.randint(10, 40)):
            p = os.path.join(d, "f%d.txt" % i)
            with open(p, "wb") as f:
                f.write(self.rng.randbytes(self.rng.randint(1, 2 * KiB)))
            files["f%d.txt" % i] = sha256_file(p)
        dst = "/" + os.path.basename(d)

        def done(rc):
            if rc == 0:
                for n, digest in files.items():
                    self.ledger.ack("%s/%s" % (dst, n), digest)
        return Op(self.roost("put", "-r", d, dst), done)

    def sync(self, src, dst):
        """Files written on src (new ones and edits of earlier ones) reach dst."""
        folder = "/sync-%s" % src.label
        for _ in range(self.rng.randint(1, 5)):
            existing = sorted(p for p in local_tree(src.dir) if p.startswith(folder + "/"))
            rel = (self.rng.choice(existing) if existing and self.rng.random() < 0.4
                   else "%s/%s.dat" % (folder, self.name("s")))
            data = self.rng.randbytes(self.rng.choice([100, 20 * KiB, 700 * KiB, 3 * MiB]))
            path = src.path(rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            self.ledger.local_edit(src, rel, sha256_file(path))
        return Op()

    def rename_storm(self):
        """Files made on A, then renamed again and again (and across folders)."""
        base = "/storm-%d" % self.rng.randint(1, 3)
        names = []
        for _ in range(self.rng.randint(2, 4)):
            rel = "%s/%s.txt" % (base, self.name("r"))
            path = self.A.path(rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(self.rng.randbytes(self.rng.randint(10, 50 * KiB)))
            self.ledger.local_edit(self.A, rel, sha256_file(path))
            names.append(rel)
        for _ in range(self.rng.randint(5, 15)):
            i = self.rng.randrange(len(names))
            new = "/storm-%d/%s.txt" % (self.rng.randint(1, 3), self.name("r"))
            os.makedirs(os.path.dirname(self.A.path(new)), exist_ok=True)
            try:
                os.rename(self.A.path(names[i]), self.A.path(new))
                names[i] = new
            except FileNotFoundError:  # the agent moved it meanwhile (a conflict)
                pass
        return Op()

    def job(self, name):
        """roost admin gc/scrub/replicate beside the running hub; gc first gets
        garbage: a file put and deleted for good."""
        args = ["admin", name, "--data", self.hub.data, *self.hub.db_args()]
        if name == "gc":
            src, digest = self.local_file(self.rng.randint(1, 2 * MiB))
            dst = "/%s.bin" % self.name("garbage/g")
            self.hub.cli("put", src, dst)
            self.hub.cli("rm", "--permanent", dst)
            self.ledger.forget(dst, digest)
            args += ["--retention", "0"]
        return Op(self.roost(*args))

    # ---- a kill point ----
    def kill(self, component):
        if component == "hub":
            self.hub.kill()
            self.hub.start()
        elif component.startswith("host "):
            h = self.A if component.endswith("A") else self.B
            h.kill()
            h.start()

    def calibrate(self, op):
        """The op once without a kill: its window is 1.5 times its duration (a
        process's run; for host operations, until the hosts have converged)."""
        fn, _ = self.ops[op]
        t0 = time.monotonic()
        running = fn()
        rc = running.finish()
        if running.proc:
            assert rc == 0, "%s failed without a fault (%r)" % (op, rc)
            took = time.monotonic() - t0
        self.checker.check_converged()
        if not running.proc:
            took = time.monotonic() - t0
        self.windows[op] = max(0.05, 1.5 * took)

    def point(self, op):
        """One kill point: start op, SIGKILL a component after a seeded delay within
        the op's window, restart it, let the op end, check the invariants."""
        if op not in self.windows:
            self.calibrate(op)
        fn, targets = self.ops[op]
        component = self.rng.choice(targets)
        delay = self.rng.uniform(0, self.windows[op])
        t0 = time.monotonic()
        running = fn()
        left = t0 + delay - time.monotonic()
        if left > 0:
            time.sleep(left)  # the kill moment itself (not a wait for readiness)
        if running.proc:
            self.landed["during" if running.proc.poll() is None else "after"] += 1
        if component == "cli":
            if running.proc and running.proc.poll() is None:
                running.proc.kill()
        else:
            self.kill(component)
        running.finish()
        self.kills[(op, component)] += 1
        try:
            self.checker.check_all(gc=(op == "gc"))
        except AssertionError as e:
            raise AssertionError("seed %d, kill point %d (%s, %s at %.3f s): %s" % (
                self.seed, sum(self.kills.values()), op, component, delay, e)) from None
        self.checks += 1

    def run(self, points):
        t0 = time.monotonic()
        order = []
        while len(order) < points:
            round_ = sorted(self.ops)
            self.rng.shuffle(round_)
            order += round_
        for i, op in enumerate(order[:points]):
            self.point(op)
            self.log("  %3d/%d %-13s ok" % (i + 1, points, op))
        self.checker.check_all(gc=True)
        self.checks += 1
        return time.monotonic() - t0

    def summary(self, seconds):
        lines = ["kill points per operation and component (%s, %s storage, %s store):" % (
            harness.BACKEND, self.storage, self.store)]
        for (op, comp), n in sorted(self.kills.items()):
            lines.append("  %-13s %-7s %d" % (op, comp, n))
        lines.append("kills of a process-run operation: %d while it ran, %d after it "
                     "ended" % (self.landed["during"], self.landed["after"]))
        lines.append("kill points: %d; invariant checks passed: %d; acknowledged versions "
                     "checked: %d; %.0f s" % (sum(self.kills.values()), self.checks,
                                              self.ledger.count(), seconds))
        if self.storage == "hosts":
            lines.append("reads from hosts' content servers verified: %d; kept (replaced) "
                         "host versions left with no copy: %d" % (
                             self.checker.host_reads, len(self.checker.superseded_lost)))
            lines.append("kept versions another host had applied left with no copy "
                         "(ROOST_TORTURE_STRICT=1 fails on them): %d" %
                         len(self.checker.applied_lost))
        if self.store == "s3":
            lines.append("bucket objects hashed: %d" % self.checker.objects_hashed)
        return "\n".join(lines)


def seed_from_env():
    s = os.environ.get("ROOST_SEED")
    return int(s) if s else random.SystemRandom().randrange(1, 1 << 31)


def run(points, log=print, storage=None, ops=None, targets=None):
    """A whole run in a temp dir; returns (Torture, seconds). Prints the seed.
    storage: "hub" or "hosts" (default ROOST_TORTURE_STORAGE); ops: a
    comma-separated list of operations (default ROOST_TORTURE_OPS, else all);
    targets: the only components killed (e.g. ["hub"])."""
    seed = seed_from_env()
    storage = storage or storage_from_env()
    print("torture: seed %d (replay: ROOST_SEED=%d), %d kill points, %s, %s storage, "
          "%s store" % (seed, seed, points, harness.BACKEND, storage, harness.STORE),
          flush=True)
    root = tempfile.mkdtemp(prefix="roost-torture-")
    t = None
    ok = False
    try:
        t = Torture(seed, root, log, storage=storage, ops=ops, targets=targets)
        seconds = t.run(points)
        ok = True
        return t, seconds
    finally:
        if t:
            t.stop()
        if ok and not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("torture: seed %d; kept %s" % (seed, root), flush=True)


def main():
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    t, seconds = run(points, log=lambda s: print(s, flush=True))
    print(t.summary(seconds), flush=True)


if __name__ == "__main__":
    main()
