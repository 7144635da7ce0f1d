#!/usr/bin/env python3
"""Benchmark roost's WebDAV (docs/webdav.md) against `rclone serve webdav` of a plain
folder, with the same client (rclone, Debian's package) on the same machine, in one run.

On loopback: a hub (SQLite, no rate limit) with an app password, and `rclone serve
webdav` of an empty temp folder. For each server, rclone copies in and then out:
  - 1,000 files of 100 KiB (random bytes);
  - one file of 1 GiB (random bytes; --big-mib to change).
Prints a Markdown table with the seconds, MB/s and the ratio roost / peer (time).
Usage: bench/dav.py ROOST_BIN [--files N] [--big-mib N]
"""
import argparse
import base64
import concurrent.futures
import http.client
import threading
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import free_port, wait_port

PASSWORD = "bench password 1"
EMAIL = "bench@example.test"
MB = 1e6


def api(port, method, path, body=None, token=None):
    st, data = benchlib.request(port, method, path, body, token)
    assert st < 300, (st, data)
    return data


def make_data(root, files, big_mib):
    small = os.path.join(root, "small")
    os.makedirs(small)
    for i in range(files):
        with open(os.path.join(small, "f%04d.bin" % i), "wb") as f:
            f.write(os.urandom(100 * 1024))
    big = os.path.join(root, "big")
    os.makedirs(big)
    with open(os.path.join(big, "big.bin"), "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(big_mib):
            # a fresh block each MiB: no chunk repeats, so nothing dedups
            f.write(block[:8] + i.to_bytes(8, "little") + block[16:])
    return small, big


def rclone_env(tmp, url, user=None, password=None):
    env = dict(os.environ)
    env.update(RCLONE_CONFIG=os.path.join(tmp, "rclone.conf"), RCLONE_CONFIG_R_TYPE="webdav",
               RCLONE_CONFIG_R_URL=url, RCLONE_CONFIG_R_VENDOR="other")
    if user:
        obscured = subprocess.run(["rclone", "obscure", password], capture_output=True,
                                  check=True).stdout.decode().strip()
        env.update(RCLONE_CONFIG_R_USER=user, RCLONE_CONFIG_R_PASS=obscured)
    return env


def timed_copy(env, src, dst):
    subprocess.run(["sync"], check=True)
    t = time.monotonic()
    p = subprocess.run(["rclone", "copy", src, dst], env=env, capture_output=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("rclone copy %s %s: %s" % (src, dst, p.stderr.decode()[-2000:]))
    return dt


def parallel_http(port, base, auth, small, method, threads=8):
    """PUT (or GET) every file of small at base/par/NAME over keep-alive connections
    from `threads` threads: the server's small-file rate without rclone's pacer
    (its WebDAV backend spaces calls >= 10 ms apart)."""
    names = sorted(os.listdir(small))
    local = threading.local()
    hdr = {"Authorization": auth} if auth else {}

    def one(name):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = None
        if method == "PUT":
            with open(os.path.join(small, name), "rb") as f:
                body = f.read()
        conn.request(method, base + "par/" + name, body=body, headers=hdr)
        r = conn.getresponse()
        r.read()
        assert r.status < 300, (method, name, r.status)

    if method == "PUT":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("MKCOL", base + "par/", headers=hdr)
        conn.getresponse().read()
        conn.close()
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, names))
    return time.monotonic() - t


def run_set(tmp, env, label, small, big, nbytes_small, nbytes_big):
    out = {}
    out["small in"] = timed_copy(env, small, "r:small")
    out["big in"] = timed_copy(env, big, "r:big")
    dl = os.path.join(tmp, "dl-" + label)
    out["small out"] = timed_copy(env, "r:small", os.path.join(dl, "small"))
    out["big out"] = timed_copy(env, "r:big", os.path.join(dl, "big"))
    shutil.rmtree(dl)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--big-mib", type=int, default=1024)
    a = ap.parse_args()
    for tool in ("rclone",):
        if not shutil.which(tool):
            sys.exit("%s is not installed: run scripts/install-deps" % tool)
    tmp = tempfile.mkdtemp(prefix="roost-davbench-")
    procs = []
    try:
        small, big = make_data(tmp, a.files, a.big_mib)
        nbytes_small, nbytes_big = a.files * 100 * 1024, a.big_mib << 20
        data = os.path.join(tmp, "hub")
        env = dict(os.environ, ROOST_PASSWORD=PASSWORD, XDG_CONFIG_HOME=os.path.join(tmp, "cfg"))
        subprocess.run([a.roost, "init", "--data", data, "--email", EMAIL], env=env, check=True,
                       capture_output=True)
        api_port, content_port = free_port(), free_port()
        log = open(os.path.join(tmp, "hub.log"), "wb")
        hub = subprocess.Popen([a.roost, "serve", "--data", data, "--api-port", str(api_port),
                                "--content-port", str(content_port), "--dashboard-port",
                                str(free_port()), "--rate-limit", "0"], stdout=log,
                               stderr=log, env=env)
        procs.append(hub)
        wait_port(content_port, hub, "roost serve")
        tok = api(api_port, "POST", "/api/v1/login", {"email": EMAIL, "password": PASSWORD})
        app = api(api_port, "POST", "/api/v1/tokens", {"name": "bench"}, tok["token"])["token"]
        plain = os.path.join(tmp, "plain")
        os.makedirs(plain)
        peer_port = free_port()
        peer = subprocess.Popen(["rclone", "serve", "webdav", plain, "--addr",
                                 "127.0.0.1:%d" % peer_port, "--config", "/dev/null"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(peer)
        wait_port(peer_port, peer, "rclone serve webdav")

        roost = run_set(tmp, rclone_env(tmp, "http://127.0.0.1:%d/dav/default/" % content_port,
                                        EMAIL, app), "roost", small, big, nbytes_small,
                        nbytes_big)
        other = run_set(tmp, rclone_env(tmp, "http://127.0.0.1:%d/" % peer_port), "peer", small,
                        big, nbytes_small, nbytes_big)
        basic = "Basic " + base64.b64encode(("%s:%s" % (EMAIL, app)).encode()).decode()
        for method, key in (("PUT", "par in"), ("GET", "par out")):
            roost[key] = parallel_http(content_port, "/dav/default/", basic, small, method)
            other[key] = parallel_http(peer_port, "/", None, small, method)
        print("| rclone copy | roost WebDAV | rclone serve webdav (plain folder) | "
              "roost / peer (time) |")
        print("|---|---|---|---|")
        for k in ("small in", "small out", "big in", "big out", "par in", "par out"):
            n = nbytes_big if k.startswith("big") else nbytes_small
            what = ("1 × %d MiB" % a.big_mib if k.startswith("big") else
                    "%d × 100 KiB" % a.files) + (" in (upload)" if k.endswith("in")
                                                  else " out (download)")
            if k.startswith("par"):
                what = what.replace("100 KiB", "100 KiB, 8 parallel HTTP clients, no rclone")
            print("| %s | %.2f s (%.0f MB/s) | %.2f s (%.0f MB/s) | %.2f× |" % (
                what, roost[k], n / MB / roost[k], other[k], n / MB / other[k],
                roost[k] / other[k]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
