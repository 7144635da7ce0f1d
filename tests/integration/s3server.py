"""A throwaway S3 server (s3rver, npm) for the integration tests. Standard library only.

S3Server() starts one s3rver in a fresh temp dir on a free port of 127.0.0.1,
with the bucket `roost-test` made at start. s3rver knows one key pair
(S3RVER/S3RVER) and refuses an unknown key id, but it does not recompute SigV4
signatures (its code says "unimplemented"): so, by default, .endpoint is a
small proxy here that checks each request's SigV4 signature (header form,
x-amz-content-sha256 as the payload hash, as S3 does) and the body against
that hash, answering 403 SignatureDoesNotMatch or 400
XAmzContentSHA256Mismatch as AWS would, then passes it on to s3rver. A wrong
secret fails as on AWS, and a signing mistake of roost's is caught.
S3Server(verify=False) leaves the proxy out (bench/transfer.py). The server is stopped and its dir deleted by .stop(),
when the process exits (atexit), on SIGTERM, and by the kernel if this process
is killed (PR_SET_PDEATHSIG).

s3rver comes from web/package.json's devDependencies: BUILD/web-npm/node_modules
(configure without -DROOST_WEB=OFF) or web/node_modules (cd web && npm install).
Missing, it is an error, never a skip.

Standalone check: python3 s3server.py
"""
import atexit
import ctypes
import hashlib
import hmac
import http.client
import http.server
import os
import threading
import urllib.parse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HOST = "127.0.0.1"
ACCESS_KEY = "S3RVER"  # s3rver's fixed credentials
SECRET_KEY = "S3RVER"
BUCKET = "roost-test"
_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.dirname(os.path.dirname(_HERE))


class S3Error(RuntimeError):
    pass


def find_s3rver():
    """The path of s3rver's bin script, or raise saying how to install it."""
    roots = []
    if os.environ.get("ROOST_BIN"):
        roots.append(os.path.join(os.path.dirname(os.environ["ROOST_BIN"]), "web-npm"))
    roots += [os.path.join(_SRC, "build", "web-npm"), os.path.join(_SRC, "web")]
    for r in roots:
        p = os.path.join(r, "node_modules", "s3rver", "bin", "s3rver.js")
        if os.path.exists(p):
            return p
    raise S3Error("s3rver not found in %s: it is a devDependency in web/package.json; "
                  "run 'cd web && npm install' (or build with the dashboard)"
                  % " or ".join(os.path.join(r, "node_modules") for r in roots))


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _canonical_query(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        k, v = urllib.parse.unquote_plus(k), urllib.parse.unquote_plus(v)
        pairs.append((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def sigv4_check(method, raw_path, headers, secret):
    """None if the request's SigV4 Authorization header verifies with secret,
    else the reason."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "not SigV4"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    missing = [h for h in signed if h not in headers]
    if missing:  # as radosgw and AWS: the canonical request is rebuilt from what arrived
        return "signed header %s was not sent" % missing[0]
    path, _, query = raw_path.partition("?")
    canon_headers = "".join("%s:%s\n" % (h, " ".join((headers.get(h) or "").split()))
                            for h in signed)
    payload = headers.get("x-amz-content-sha256")
    if not payload:
        return "no x-amz-content-sha256"
    creq = "\n".join([method, path, _canonical_query(query), canon_headers,
                      ";".join(signed), payload])
    scope = "/".join(cred[1:])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", headers.get("x-amz-date", ""), scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in cred[1:]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    want = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(want, fields["Signature"]) else "signature differs"


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client killed mid-request (a crash test SIGKILLs the hub) is not an
        error of the server's: no traceback for a reset or broken connection."""
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _any(self):
        srv = self.server
        srv.requests.append((self.command, self.path))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        why = sigv4_check(self.command, self.path, self.headers, srv.secret)
        declared = self.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        if (not why and declared != "UNSIGNED-PAYLOAD"
                and hashlib.sha256(body).hexdigest() != declared):
            msg = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>XAmzContentSHA256Mismatch'
                   '</Code><Message>The provided x-amz-content-sha256 header does not match '
                   'what was computed.</Message></Error>').encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        if why and "Authorization" in self.headers:
            srv.refused += 1
            msg = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch'
                   '</Code><Message>The request signature we calculated does not match the '
                   'signature you provided (%s).</Message></Error>' % why).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        c = http.client.HTTPConnection(HOST, srv.upstream, timeout=120)
        try:
            hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            c.request(self.command, self.path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                     "keep-alive"):
                    self.send_header(k, v)
            length = r.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


class S3Server:
    def __init__(self, verify=True):
        self.script = find_s3rver()
        self.root = tempfile.mkdtemp(prefix="roost-s3rver-")
        self.access_key, self.secret_key, self.bucket = ACCESS_KEY, SECRET_KEY, BUCKET
        self.proc = None
        self._stopped = False
        atexit.register(self.stop)
        try:
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread
            self._prev_sigterm = None
        self._start()
        self.proxy = None
        if verify:
            self.proxy = _Proxy((HOST, 0), _Handler)
            self.proxy.secret, self.proxy.upstream, self.proxy.refused = (
                self.secret_key, self.port, 0)
            self.proxy.requests = []  # (method, path) of each request, in order
            threading.Thread(target=self.proxy.serve_forever, daemon=True).start()

    def _start(self):
        self._log = log = open(os.path.join(self.root, "s3rver.log"), "wb")
        for _ in range(5):
            self.port = _free_port()
            # s3rver makes ListObjectsV2's continuation tokens with DES, which
            # Node's OpenSSL 3 offers only with its legacy provider.
            self.proc = subprocess.Popen(
                ["node", "--openssl-legacy-provider", self.script,
                 "-d", os.path.join(self.root, "data"), "-a", HOST,
                 "-p", str(self.port), "--no-vhost-buckets", "--configure-bucket",
                 self.bucket],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection((HOST, self.port), timeout=1):
                        return
                except OSError:
                    time.sleep(0.1)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        with open(log.name, errors="replace") as f:
            raise S3Error("s3rver did not start:\n" + f.read()[-3000:])

    @property
    def endpoint(self):
        port = self.proxy.server_address[1] if self.proxy else self.port
        return "http://%s:%d" % (HOST, port)

    def store_url(self, prefix, addressing="path"):
        return "s3://%s/%s?endpoint=%s&region=us-east-1&addressing=%s" % (
            self.bucket, prefix, self.endpoint, addressing)

    def env(self, secret=None):
        return {"AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": secret or self.secret_key}

    # Objects, read and written around the hub (s3rver keeps each object as
    # DATA/BUCKET/KEY._S3rver_object, with metadata beside it).
    def object_path(self, key):
        return os.path.join(self.root, "data", self.bucket, key + "._S3rver_object")

    def keys(self, prefix):
        """Every key under prefix (a listing of s3rver's own files)."""
        base = os.path.join(self.root, "data", self.bucket)
        out = []
        for dirpath, _, files in os.walk(os.path.join(base, prefix)):
            for f in files:
                if f.endswith("._S3rver_object"):
                    out.append(os.path.relpath(os.path.join(dirpath, f), base)
                               [:-len("._S3rver_object")])
        return sorted(out)

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        if getattr(self, "proxy", None):
            self.proxy.shutdown()
            self.proxy.server_close()
        if getattr(self, "_log", None):
            self._log.close()
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            if os.environ.get("ROOST_TEST_KEEP_S3"):
                print("s3rver's dir kept:", self.root, file=sys.stderr)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    def _on_sigterm(self, signum, frame):
        self.stop()
        prev = self._prev_sigterm
        if callable(prev):
            prev(signum, frame)
        else:
            signal.signal(signal.SIGTERM, prev if prev is not None else signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


_shared = None


def shared():
    """One server for the whole test process, started on first use."""
    global _shared
    if _shared is None:
        _shared = S3Server()
    return _shared


if __name__ == "__main__":
    s = S3Server()
    print("s3rver at", s.endpoint, "bucket", s.bucket)
    try:
        urllib.request.urlopen(s.endpoint + "/" + s.bucket, timeout=5)
    except urllib.error.HTTPError as e:
        print("unsigned request refused as expected:", e.code)
    s.stop()
    sys.exit(0)
