"""Randomized convergence (issue 19, docs/reliability.md "Randomized convergence"): the
Trinity idea end to end. Three hosts (every folder pinned) on one hub, plus a CLI client,
apply random concurrent operations while faults fire; at quiescence every host's tree
equals the hub's and the runner's model of it, and nothing acknowledged is lost.

    ROOST_BIN=build/roost PYTHONPATH=tests/integration \\
        python3 tests/integration/convergence.py [ROUNDS] [SEEDS]

A run is ROUNDS rounds. In a round the top-level folders /d0../d7 are dealt out: each
actor (hosts A, B, C and the CLI) gets one or two, which only it touches that round, so
any two operations on one path by different actors in a round are a race the runner made
on purpose (one folder may go to two hosts that edit, or create, the same file at about
the same moment: those paths are "raced"). The actors' operations and the round's faults
are one timeline of seeded offsets, run in order: a host's operations are file-system
changes in its folder (made whole outside it and renamed in, as editors save), the CLI's
are `roost put/mv/rm` in a thread of their own. Operations: create, edit, rename, move
across folders, delete, case-only rename (f3.txt -> F3.txt), a folder replaced by a file
of the same name and back, a big file edited again as soon as the hub has it (while the
other hosts download it), and the races. Faults: a host SIGKILLed and restarted, the hub
SIGKILLed and restarted, host A's link to the hub (a FaultProxy: A's host.json names it)
dropping new connections, resetting live ones or stalling a body.

At the end of a round (faults off, everything running): a bounded wait until the hub's
tree and every host's folder are equal at one moment, then the checks: the tree is the
model (paths, and the SHA-256 of every path no race touched); a conflict copy stands only
beside a raced path; every local save a host kept to the end of the round is a version on
the hub, and stays one (with every `roost put` that exited 0) in every later round; and
invariants.py's checks (no torn file, chunks and refcounts, objects whole, no temp file
left; at the end of the run, every live file reads back and GC leaves nothing).

The seed is printed first; ROOST_SEED=N replays the same operations and fault schedule
(the processes' timing still varies). A failure prints the seed and the operation log:
what ran, in order, with times. ROOST_TEST_DB=postgres runs on PostgreSQL.
"""
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import harness
from faultproxy import DOWN, UP, FaultProxy
from harness import Host, Hub, wait_for
from invariants import Checker, Ledger, local_tree, sha256_file

KiB, MiB = 1 << 10, 1 << 20
TOP = ["/d%d" % i for i in range(8)]
HOSTS = ("A", "B", "C")
CONFLICT = re.compile(r"^(.*) \(conflict from [^)]*\)(\.[^/]*)?$")


def conflict_base(path):
    """The path a conflict copy was made beside, or None for an ordinary path."""
    m = CONFLICT.match(path)
    return m.group(1) + (m.group(2) or "") if m else None


def hub_tree(checker):
    """The hub's tree, or None when it changed under the listing (a folder listed
    in its parent, gone or a file by the time it was listed)."""
    try:
        return checker.hub_tree()
    except AssertionError:
        return None


def route_via(host, proxy):
    """The (joined, stopped) host reaches the hub's API through proxy (its host.json)."""
    idf = os.path.join(host.dir, ".roost", "host.json")
    with open(idf) as f:
        ident = json.load(f)
    ident["hub"] = proxy.url
    with open(idf + ".tmp", "w") as f:
        json.dump(ident, f)
    os.chmod(idf + ".tmp", os.stat(idf).st_mode)
    os.rename(idf + ".tmp", idf)


class Failure(AssertionError):
    pass


class Run:
    def __init__(self, seed, root, log=print):
        self.seed, self.root, self.say = seed, root, log
        self.rng = random.Random(seed)
        self.t0 = time.monotonic()
        self.oplog = []
        self.hub = Hub(root)
        self.hub.start()
        self.token = self.hub.login()
        self.ws = self.hub.workspace(self.token)
        self.hub.login_cli()
        self.proxy = FaultProxy(self.hub.api_port, seed=seed)
        self.hosts = {label: Host(self.hub, root, label) for label in HOSTS}
        for label, h in self.hosts.items():
            h.join()
        self.via_proxy(self.hosts["A"])
        for h in self.hosts.values():
            h.start()
        self.ledger = Ledger()
        self.checker = Checker(self.hub, self.token, self.ws, list(self.hosts.values()),
                               self.ledger)
        self.model = {}  # path -> sha256 the hub must end with (None: raced, either side)
        self.raced = set()  # paths two hosts wrote at about the same time
        self.allowed_copies = set()  # paths whose outcome was uncertain (see check_round)
        self.acked = {}  # sha256 -> what acknowledged it (a put that exited 0, a kept save)
        self.n = 0
        self.stats = {"rounds": 0, "ops": 0, "faults": 0, "races": 0, "uncertain": 0}
        self.kinds = {}
        self.staged = itertools.count(1)  # staging names (the CLI's thread makes some)
        self.staging = os.path.join(root, "staging")
        os.makedirs(self.staging)

    # ---- set-up ----
    def via_proxy(self, host):
        route_via(host, self.proxy)

    def stop(self):
        for h in self.hosts.values():
            h.stop()
        self.proxy.stop()
        self.hub.stop()

    # ---- the log ----
    def log(self, rnd, actor, text):
        self.oplog.append("%8.3f r%-3d %-4s %s" % (time.monotonic() - self.t0, rnd, actor, text))

    def oplog_text(self, last=400):
        return "\n".join(self.oplog[-last:])

    # ---- contents ----
    def name(self, prefix, ext=".txt"):
        self.n += 1
        return "%s%d%s" % (prefix, self.n, ext)

    def content(self, big=False):
        if big:
            size = self.rng.randint(4 * MiB, 12 * MiB)
        else:
            size = self.rng.choice([self.rng.randint(1, 4 * KiB), self.rng.randint(4 * KiB, 96 * KiB),
                                    self.rng.randint(200 * KiB, 2 * MiB)])
        return self.rng.randbytes(size)

    def stage(self, data):
        """A file outside every synced folder, with data in it: (its path, sha256)."""
        p = os.path.join(self.staging, "st-%d.bin" % next(self.staged))
        with open(p, "wb") as f:
            f.write(data)
        return p, sha256_file(p)

    # ---- the model's view ----
    def files_in(self, folders):
        return sorted(p for p in self.plan if any(p.startswith(f + "/") for f in folders))

    def subfolders_in(self, folders):
        out = set()
        for p in self.plan:
            for f in folders:
                if p.startswith(f + "/"):
                    parts = p[len(f) + 1:].split("/")
                    if len(parts) > 1:
                        out.add(f + "/" + parts[0])
        return sorted(out)

    def taken(self, path):
        """A file or a folder is at path in the model."""
        return path in self.plan or any(p.startswith(path + "/") for p in self.plan)

    def parent_is_file(self, path):
        d = os.path.dirname(path)
        while d != "/":
            if d in self.plan:
                return True
            d = os.path.dirname(d)
        return False

    def new_path(self, folders, ext=".txt"):
        f = self.rng.choice(folders)
        subs = self.subfolders_in([f])
        if subs and self.rng.random() < 0.4:
            f = self.rng.choice(subs)
        elif self.rng.random() < 0.15:
            f = f + "/" + self.name("s", "")
        while True:
            p = f + "/" + self.name("f" if ext else "s", ext)
            if not self.taken(p) and not self.parent_is_file(p):
                return p

    # ---- planning a round: a list of (offset s, actor, op name, args) ----
    def plan_host_ops(self, label, folders, count):
        ops = []
        for _ in range(count):
            files = self.files_in(folders)
            plain = [p for p in files if os.path.splitext(p)[1] == ".txt"]
            subs = self.subfolders_in(folders)
            asfile = [p for p in files if not os.path.splitext(p)[1]]
            choices = ["create", "create"]
            if plain:
                choices += ["edit", "edit", "rename", "move", "case", "delete"]
            if subs:
                choices.append("folder_to_file")
            if asfile:
                choices.append("file_to_folder")
            if self.rng.random() < 0.08:
                choices = ["big_edit"]
            kind = self.rng.choice(choices)
            op = self.plan_fs_op(kind, folders, plain, subs, asfile)
            if op:
                ops.append((label,) + op)
        return ops

    def plan_fs_op(self, kind, folders, plain, subs, asfile):
        """Apply kind to the model; returns (kind, args) for the actor to carry out."""
        rng = self.rng
        if kind in ("create", "big_edit"):
            p = self.new_path(folders)
            data = self.content(big=(kind == "big_edit"))
            self.plan[p] = None  # set when carried out (its sha256)
            return (kind, (p, data))
        if kind == "edit":
            p = rng.choice(plain)
            return (kind, (p, self.content()))
        if kind in ("rename", "move", "case"):
            p = rng.choice(plain)
            d, b = os.path.split(p)
            if kind == "rename":
                q = d + "/" + self.name("f")
            elif kind == "move":
                others = [f for f in folders + self.subfolders_in(folders)
                          if f != d and not f.startswith(p + "/")]
                if not others:
                    return None
                q = rng.choice(others) + "/" + self.name("f")
            else:
                q = d + "/" + b[0].swapcase() + b[1:]
            if self.taken(q) or self.parent_is_file(q):
                return None
            self.plan[q] = self.plan.pop(p)
            return (kind, (p, q))
        if kind == "delete":
            p = rng.choice(plain)
            del self.plan[p]
            return (kind, (p,))
        if kind == "folder_to_file":
            s = rng.choice(subs)
            for p in [p for p in self.plan if p.startswith(s + "/")]:
                del self.plan[p]
            self.plan[s] = None
            return (kind, (s, self.content()))
        if kind == "file_to_folder":
            p = rng.choice(asfile)
            del self.plan[p]
            inner = p + "/" + self.name("f")
            self.plan[inner] = None
            return (kind, (p, inner, self.content()))
        raise AssertionError(kind)

    def plan_cli_ops(self, folders, count):
        ops = []
        for _ in range(count):
            files = self.files_in(folders)
            plain = [p for p in files if os.path.splitext(p)[1] == ".txt"]
            subs = self.subfolders_in(folders)
            choices = ["put", "put"]
            if plain:
                choices += ["put_over", "mv", "mv_case", "rm"]
            if subs:
                choices.append("rm_folder_put_file")
            kind = self.rng.choice(choices)
            if kind == "put":
                p = self.new_path(folders)
                self.plan[p] = None
                ops.append(("cli", kind, (p, self.content())))
            elif kind == "put_over":
                p = self.rng.choice(plain)
                ops.append(("cli", kind, (p, self.content())))
            elif kind in ("mv", "mv_case"):
                op = self.plan_fs_op("case" if kind == "mv_case" else
                                     self.rng.choice(["rename", "move"]), folders, plain, subs, [])
                if op:
                    ops.append(("cli", kind, op[1]))
            elif kind == "rm":
                p = self.rng.choice(plain)
                del self.plan[p]
                ops.append(("cli", kind, (p,)))
            else:
                s = self.rng.choice(subs)
                for p in [p for p in self.plan if p.startswith(s + "/")]:
                    del self.plan[p]
                self.plan[s] = None
                ops.append(("cli", kind, (s, self.content())))
        return ops

    def plan_race(self, folder):
        """Two hosts write one file at about the same moment: an edit of a file both
        hold, or the same new name on both."""
        a, b = self.rng.sample(HOSTS, 2)
        plain = [p for p in self.files_in([folder]) if os.path.splitext(p)[1] == ".txt"
                 and p.count("/") == 2]
        if plain and self.rng.random() < 0.7:
            p = self.rng.choice(plain)
        else:
            p = folder + "/" + self.name("f")
        self.plan[p] = None
        self.raced.add(p)
        return [("race", "race", (p, a, self.content(), b, self.content()))]

    def plan_faults(self, span):
        """The round's faults: (offset, what, args), a restart after each kill."""
        out = []
        for _ in range(self.rng.choice([0, 1, 1, 2])):
            t = self.rng.uniform(0, span)
            kind = self.rng.choice(["kill_host", "kill_hub", "net_drop", "net_reset",
                                    "net_stall"])
            back = t + self.rng.uniform(0.1, 2.5)
            if kind == "kill_host":
                h = self.rng.choice(HOSTS)
                out += [(t, "fault", "kill_host", (h,)), (back, "fault", "start_host", (h,))]
            elif kind == "kill_hub":
                out += [(t, "fault", "kill_hub", ()), (back, "fault", "start_hub", ())]
            elif kind == "net_drop":
                out += [(t, "fault", "net_drop", ()), (back, "fault", "net_clear", ())]
            elif kind == "net_reset":
                out.append((t, "fault", "net_reset", ()))
            else:
                out += [(t, "fault", "net_stall", (self.rng.choice([UP, DOWN]),
                                                   self.rng.randint(16 * KiB, 1 * MiB),
                                                   self.rng.uniform(0.5, 3),
                                                   self.rng.choice(["reset", "resume"]))),
                        (back + 3, "fault", "net_clear", ())]
        return out

    def plan_round(self):
        self.plan = dict(self.model)  # what the planned operations will make of it
        folders = list(TOP)
        self.rng.shuffle(folders)
        timeline = []
        if self.rng.random() < 0.5:
            timeline += self.plan_race(folders.pop())
        actors = list(HOSTS) + ["cli"]
        deal = {a: [folders.pop()] for a in actors}
        for f in folders:
            deal[self.rng.choice(actors)].append(f)
        lists = [timeline]
        for a in actors:
            count = self.rng.randint(1, 4)
            if a == "cli":
                lists.append(self.plan_cli_ops(deal[a], count))
            else:
                lists.append(self.plan_host_ops(a, deal[a], count))
        # Interleaved at random, each actor's own operations in the order planned.
        timeline = []
        while any(lists):
            live = [x for x in lists if x]
            pick = self.rng.choices(live, weights=[len(x) for x in live])[0]
            timeline.append(pick.pop(0))
        span = 0.0
        timed = []
        for ev in timeline:
            span += self.rng.uniform(0, 0.3)
            timed.append((span,) + ev)
        timed += self.plan_faults(span)
        timed.sort(key=lambda e: e[0])
        return timed

    # ---- carrying it out ----
    def place(self, host, rel, data):
        """A save as editors make it: written whole beside, renamed in."""
        src, digest = self.stage(data)
        dst = host.path(rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        self.saves[(host.label, rel)] = digest
        return digest

    def host_op(self, rnd, label, kind, args):
        h = self.hosts[label]
        if self.deferred.get(label) or ((not h.running() or label in self.unscanned) and
                                        kind not in ("create", "edit", "big_edit")):
            # A file removed while the agent is stopped is fetched again at its start,
            # by design (docs/host.md, "Lost files"): the user's delete, rename or
            # folder swap waits for the agent (and what the user does after it too).
            self.deferred.setdefault(label, []).append((kind, args))
            self.log(rnd, label, "%s %s deferred: the agent is stopped" % (kind, args[0]))
            return
        if kind in ("delete", "rename", "move", "case", "folder_to_file", "file_to_folder"):
            self.removed.setdefault(label, []).append(args[0])
        if kind in ("create", "edit", "big_edit"):
            p, data = args
            d = self.place(h, p, data)
            self.model[p] = d
            self.log(rnd, label, "%s %s (%d B, %s)" % (kind, p, len(data), d[:10]))
            if kind == "big_edit":
                self.pending_big.append((h, p, d))
        elif kind in ("rename", "move", "case"):
            p, q = args
            os.makedirs(os.path.dirname(h.path(q)), exist_ok=True)
            os.rename(h.path(p), h.path(q))
            self.model_move(p, q)
            self.moved_saves(label, p, q)
            self.log(rnd, label, "%s %s -> %s" % (kind, p, q))
        elif kind == "delete":
            (p,) = args
            os.remove(h.path(p))
            self.model.pop(p)
            self.saves.pop((label, p), None)
            self.log(rnd, label, "delete %s" % p)
        elif kind == "folder_to_file":
            s, data = args
            shutil.rmtree(h.path(s))
            self.model_drop(s)
            self.drop_saves(label, s)
            d = self.place(h, s, data)
            self.model[s] = d
            self.log(rnd, label, "folder_to_file %s (%s)" % (s, d[:10]))
        elif kind == "file_to_folder":
            p, inner, data = args
            os.remove(h.path(p))
            self.model.pop(p)
            self.saves.pop((label, p), None)
            os.makedirs(h.path(p))
            d = self.place(h, inner, data)
            self.model[inner] = d
            self.log(rnd, label, "file_to_folder %s (%s)" % (inner, d[:10]))
        else:
            raise AssertionError(kind)

    def model_move(self, p, q):
        for path in list(self.model):
            if path == p or path.startswith(p + "/"):
                self.model[q + path[len(p):]] = self.model.pop(path)

    def model_drop(self, prefix):
        for path in list(self.model):
            if path == prefix or path.startswith(prefix + "/"):
                del self.model[path]

    def moved_saves(self, label, p, q):
        for (lab, path) in list(self.saves):
            if lab == label and (path == p or path.startswith(p + "/")):
                self.saves[(lab, q + path[len(p):])] = self.saves.pop((lab, path))

    def drop_saves(self, label, prefix):
        for (lab, path) in list(self.saves):
            if lab == label and (path == prefix or path.startswith(prefix + "/")):
                del self.saves[(lab, path)]

    def race(self, rnd, args):
        p, a, da, b, db = args
        ha, hb = self.hosts[a], self.hosts[b]
        sa, ga = self.stage(da)
        sb, gb = self.stage(db)
        for h in (ha, hb):
            os.makedirs(os.path.dirname(h.path(p)), exist_ok=True)
        os.rename(sa, ha.path(p))
        os.rename(sb, hb.path(p))
        self.saves[(a, p)], self.saves[(b, p)] = ga, gb
        self.model[p] = None
        self.race_saves += [(a, p, ga), (b, p, gb)]
        self.stats["races"] += 1
        self.log(rnd, "race", "%s on %s (%s) and %s (%s)" % (p, a, ga[:10], b, gb[:10]))

    def cli_worker(self, rnd, ops):
        """The CLI's operations, in order, in a thread of their own."""
        for kind, args in ops:
            if kind in ("put", "put_over"):
                p, data = args
                src, d = self.stage(data)
                rc = self.cli_run(rnd, ["put", src, p])
                if rc == 0:
                    self.acked[d] = "put %s" % p
                    self.model[p] = d
                else:
                    self.cli_failed.add(p)
            elif kind in ("mv", "mv_case"):
                p, q = args
                if self.cli_run(rnd, ["mv", p, q]) != 0:
                    self.cli_failed |= {p, q}
                else:
                    self.model_move(p, q)
            elif kind == "rm":
                if self.cli_run(rnd, ["rm", args[0]]) != 0:
                    self.cli_failed.add(args[0])
                else:
                    self.model.pop(args[0])
            else:
                s, data = args
                src, d = self.stage(data)
                rc1 = self.cli_run(rnd, ["rm", "-r", s])
                if rc1 == 0:
                    self.model_drop(s)
                rc2 = self.cli_run(rnd, ["put", src, s])
                if rc1 == 0 and rc2 == 0:
                    self.acked[d] = "put %s" % s
                    self.model[s] = d
                else:
                    self.cli_failed.add(s)

    def cli_run(self, rnd, args):
        t = time.monotonic()
        p = subprocess.run([harness.ROOST, *args], env=self.hub.env(), capture_output=True,
                           timeout=600)
        self.log(rnd, "cli", "roost %s -> %d in %.2f s%s" % (
            " ".join(args), p.returncode, time.monotonic() - t,
            "" if p.returncode == 0 else ": " + p.stderr.decode(errors="replace").strip()[-200:]))
        return p.returncode

    def fault(self, rnd, kind, args):
        self.log(rnd, "flt", "%s %s" % (kind, " ".join(str(a) for a in args)))
        if kind == "kill_host":
            h = self.hosts[args[0]]
            if h.running():
                h.kill()
                self.stats["faults"] += 1
                # A path removed just before the kill may not have been seen: the
                # agent then finds it lost at its start and fetches it again (by
                # design). Those paths end as the hub has them (saves still checked).
                self.uncertain |= set(self.removed.pop(args[0], []))
        elif kind == "start_host":
            self.start_host(rnd, args[0])
        elif kind == "kill_hub":
            if self.hub.proc:
                self.hub.kill()
                self.stats["faults"] += 1
        elif kind == "start_hub":
            if not self.hub.proc:
                self.hub.start()
            self.settle_scans(rnd)
        elif kind == "net_drop":
            self.proxy.drop_new = True
            self.proxy.reset_live()
            self.stats["faults"] += 1
        elif kind == "net_reset":
            self.proxy.reset_live()
            self.stats["faults"] += 1
        elif kind == "net_stall":
            direction, after, seconds, then = args
            self.proxy.stall(after, seconds, then=then, direction=direction)
            self.stats["faults"] += 1
        elif kind == "net_clear":
            self.proxy.clear()
        else:
            raise AssertionError(kind)

    def start_host(self, rnd, label):
        h = self.hosts[label]
        if not h.running():
            h.start()
            self.unscanned.add(label)
        self.settle_scans(rnd)

    def settle_scans(self, rnd):
        """A file that the agent's start-up scan finds missing was lost while it was
        stopped, by design, and is fetched again: a user's delete or rename waits
        until the scan is over (docs/reliability.md). The scan needs the hub: while
        the hub is down, they wait on (its start settles them)."""
        if not self.hub.proc:
            return
        for label in sorted(self.unscanned):
            h = self.hosts[label]
            self.unscanned.discard(label)
            if not h.running():
                continue
            wait_for(lambda: self.scanned(h), 60, "host %s's start-up scan" % label,
                     [h], interval=0.05)
            for kind, args in self.deferred.pop(label, []):
                self.host_op(rnd, label, kind, args)

    @staticmethod
    def scanned(h):
        try:
            with open(os.path.join(h.dir, ".roost", "status.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return False
        return st.get("pid") == h.proc.pid and st.get("state") in ("syncing", "idle")

    def all_up(self, rnd):
        self.proxy.clear()
        if not self.hub.proc:
            self.hub.start()
        for label in HOSTS:
            self.start_host(rnd, label)

    def round(self, rnd):
        self.saves = {}  # (host, path) -> sha256 of its last save there this round
        self.race_saves = []
        self.pending_big = []
        self.cli_failed = set()
        self.deferred, self.removed, self.uncertain = {}, {}, set()
        self.unscanned = set()  # hosts started whose start-up scan is not seen over
        timeline = self.plan_round()
        cli_ops = [(e[2], e[3]) for e in timeline if e[1] == "cli"]
        cli = threading.Thread(target=self.cli_worker, args=(rnd, cli_ops))
        start = time.monotonic()
        cli.start()
        for offset, actor, kind, args in timeline:
            left = start + offset - time.monotonic()
            if left > 0:
                time.sleep(left)  # the schedule's own moment, not a wait for readiness
            if actor == "cli":
                continue
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if actor == "fault":
                self.fault(rnd, kind, args)
            elif actor == "race":
                self.race(rnd, args)
            else:
                self.host_op(rnd, actor, kind, args)
        for kind, _ in cli_ops:
            self.kinds["cli_" + kind] = self.kinds.get("cli_" + kind, 0) + 1
        self.stats["ops"] += sum(1 for e in timeline if e[1] != "fault")
        self.all_up(rnd)
        self.log(rnd, "run", "faults off, every process up")
        cli.join(700)
        assert not cli.is_alive(), "the CLI's operations did not end"
        for h, p, d in self.pending_big:
            if self.model.get(p) != d:
                continue  # edited or moved since, in this round
            # The hub has the big file: the other hosts are fetching it now. Edit it again.
            wait_for(lambda: (hub_tree(self.checker) or {}).get(p) == d, 180,
                     "the hub to have %s" % p, list(self.hosts.values()), interval=0.1)
            if os.path.exists(h.path(p)) and self.model.get(p) == d:
                nd = self.place(h, p, self.content(big=self.rng.random() < 0.5))
                self.model[p] = nd
                self.log(rnd, h.label, "edit %s during the others' download (%s)" % (p, nd[:10]))
        self.quiesce(rnd)
        self.check_round(rnd)
        self.stats["rounds"] += 1

    # ---- checks ----
    def quiesce(self, rnd, timeout=180):
        """Until the hub's tree and every host's folder are equal at one moment."""
        state = {}

        def same():
            hub = hub_tree(self.checker)
            if hub is None:
                return False
            trees = {lab: local_tree(h.dir) for lab, h in self.hosts.items()}
            state["hub"], state["trees"] = hub, trees
            return all(t == hub for t in trees.values()) and hub == hub_tree(self.checker)

        def diff():
            hub, out = state.get("hub", {}), []
            for lab, t in state.get("trees", {}).items():
                for k in sorted(set(hub) | set(t)):
                    if hub.get(k) != t.get(k):
                        out.append((lab, k, (hub.get(k) or "-")[:10], (t.get(k) or "-")[:10]))
            return "the hosts to converge with the hub (host, path, hub, host): %s" % out[:20]
        t = time.monotonic()
        wait_for(same, timeout, diff, list(self.hosts.values()), interval=0.2)
        self.log(rnd, "run", "converged in %.1f s (%d files)" % (time.monotonic() - t,
                                                                   len(state["hub"])))
        return state["hub"]

    def check_round(self, rnd):
        tree = self.checker.hub_tree()
        # The CLI's failed commands: their outcome is whatever the hub says.
        # The CLI's failed commands, and what a killed host may not have seen removed:
        # their outcome is whatever the hub says.
        for p in sorted(self.cli_failed | self.uncertain):
            for q in [q for q in list(self.model) if q == p or q.startswith(p + "/")]:
                del self.model[q]
            for q, d in tree.items():
                if (q == p or q.startswith(p + "/")) and not conflict_base(q):
                    self.model[q] = d
            self.allowed_copies.add(p)
            self.stats["uncertain"] += 1
            self.log(rnd, "run", "%s: taken as the hub has it (%s)" % (
                p, "a failed CLI command" if p in self.cli_failed else
                "removed on a host killed later"))
        copies = {p for p in tree if conflict_base(p)}
        plain = {p: d for p, d in tree.items() if p not in copies}
        missing = sorted(set(self.model) - set(plain))
        extra = sorted(set(plain) - set(self.model))
        assert not missing and not extra, "the tree is not the model: missing %s, " \
            "unexpected %s" % (missing[:10], extra[:10])
        wrong = [(p, (self.model[p] or "-")[:10], d[:10]) for p, d in plain.items()
                 if p not in self.raced and self.model[p] != d]
        assert not wrong, "files whose content is not the last one written (path, " \
            "expected, hub): %s" % wrong[:10]
        spurious = sorted(p for p in copies if conflict_base(p) not in self.raced
                          and not self.allowed(conflict_base(p)))
        assert not spurious, "conflict copies of paths no race touched: %s" % spurious
        for p in self.raced:
            if p in plain:
                self.model[p] = plain[p]
        versions = self.checker.all_version_hashes()
        lost = [(lab, p, d[:10]) for (lab, p), d in self.saves.items() if d not in versions]
        lost += [(lab, p, d[:10]) for lab, p, d in self.race_saves if d not in versions]
        assert not lost, "local saves lost (host, path, sha256): %s" % lost
        for (lab, p), d in self.saves.items():
            self.acked.setdefault(d, "save on %s of %s" % (lab, p))
            self.ledger.local_edit(self.hosts[lab], p, d)
        gone = [(d[:10], what) for d, what in self.acked.items() if d not in versions]
        assert not gone, "acknowledged contents no longer a version: %s" % gone
        for h in self.hosts.values():
            self.checker.check_no_torn(h)
        self.checker.check_no_spurious_conflicts()
        self.checker.check_chunks()
        self.checker.check_objects_whole()
        self.checker.check_no_temp_left()
        self.log(rnd, "run", "round %d checked: %d files, %d conflict copies" % (
            rnd, len(plain), len(copies)))

    def allowed(self, path):
        return any(path == p or path.startswith(p + "/") for p in self.allowed_copies)

    def final_check(self):
        """Every live file reads back with its SHA-256; GC leaves nothing."""
        tree = self.checker.hub_tree()
        for p, d in tree.items():
            self.ledger.ack(p, d)
        self.checker.check_acked()
        self.checker.check_gc_leaves_nothing()
        self.checker.check_chunks()
        self.quiesce(-1)

    def setup_tree(self):
        """Each top-level folder with a file and a subfolder, made on host A."""
        A = self.hosts["A"]
        self.saves = {}
        for f in TOP:
            for rel in (f + "/" + self.name("f"), f + "/" + self.name("s", "") + "/" +
                        self.name("f")):
                self.model[rel] = self.place(A, rel, self.content())
        self.quiesce(0)

    def run(self, rounds):
        try:
            self.setup_tree()
            for r in range(1, rounds + 1):
                self.round(r)
                self.say("  round %d/%d ok (%d ops, %d faults so far)" % (
                    r, rounds, self.stats["ops"], self.stats["faults"]))
            self.final_check()
        except AssertionError as e:
            raise Failure("convergence: seed %d (replay: ROOST_SEED=%d) failed: %s\n"
                          "---- operation log (time s, round, actor) ----\n%s" % (
                              self.seed, self.seed, e, self.oplog_text())) from None

    def summary(self):
        return "seed %d: %d rounds, %d operations (%d races), %d faults, %d paths taken " \
            "as the hub had them; %s" % (
                self.seed, self.stats["rounds"], self.stats["ops"], self.stats["races"],
                self.stats["faults"], self.stats["uncertain"],
                ", ".join("%s %d" % kv for kv in sorted(self.kinds.items())))


def seeds_from_env(count):
    s = os.environ.get("ROOST_SEED")
    if s:
        return [int(s)]
    r = random.SystemRandom()
    return [r.randrange(1, 1 << 31) for _ in range(count)]


def run_one(seed, rounds, log=print):
    """One seeded run in a temp dir; returns the Run (stopped). Prints the seed."""
    print("convergence: seed %d (replay: ROOST_SEED=%d), %d rounds, %s" % (
        seed, seed, rounds, harness.BACKEND), flush=True)
    root = tempfile.mkdtemp(prefix="roost-conv-")
    r, ok = None, False
    try:
        r = Run(seed, root, log)
        r.run(rounds)
        ok = True
        return r
    finally:
        if r:
            r.stop()
        if ok and not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("convergence: seed %d; kept %s" % (seed, root), flush=True)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    t0 = time.monotonic()
    totals = {"ops": 0, "faults": 0, "races": 0, "uncertain": 0}
    done = 0
    for seed in seeds_from_env(seeds):
        t = time.monotonic()
        r = run_one(seed, rounds, log=lambda s: print(s, flush=True))
        print("%s; %.0f s" % (r.summary(), time.monotonic() - t), flush=True)
        for k in totals:
            totals[k] += r.stats[k]
        done += 1
    print("convergence: %d seeds, %d rounds each, %d operations (%d races), %d faults, "
          "%s, %.0f s" % (done, rounds, totals["ops"], totals["races"], totals["faults"],
                          harness.BACKEND, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    main()
