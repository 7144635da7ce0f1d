"""Many idle feed subscribers from one process: raw non-blocking sockets under one
epoll selector, each with its own HTTP/1.1 chunked-body and SSE line parser.
test_feed_scale.py and bench/feed_idle.py use it."""
import resource
import selectors
import socket
import time


def proc_status(pid, key):
    """A number field of /proc/PID/status (VmRSS in KiB, Threads)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def raise_nofile(n):
    """Allow n more descriptors (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = soft + n if hard == resource.RLIM_INFINITY else min(hard, soft + n)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Sub:
    """One subscription: its socket, what arrived and when."""

    def __init__(self, sock):
        self.sock = sock
        self.raw = b""
        self.head = None  # the response head once whole
        self.chunk_left = None  # bytes left of the current chunk (+2 for its CRLF)
        self.text = b""
        self.ids = []  # event ids (seqs) in arrival order
        self.arrived = {}  # seq -> time.monotonic() of the recv that completed it
        self.heartbeats = 0
        self.closed = False

    def feed(self, data, now):
        self.raw += data
        if self.head is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head, self.raw = self.raw[:end].decode("latin-1"), self.raw[end + 4:]
        while self.raw:
            if not self.chunk_left:
                eol = self.raw.find(b"\r\n")
                if eol < 0:
                    return
                line = self.raw[:eol]
                if not line:  # the CRLF closing the previous chunk
                    self.raw = self.raw[2:]
                    continue
                size = int(line.split(b";")[0], 16)
                self.raw = self.raw[eol + 2:]
                if size == 0:
                    self.closed = True
                    return
                self.chunk_left = size
            take = self.raw[:self.chunk_left]
            self.raw = self.raw[len(take):]
            self.chunk_left -= len(take)
            self.text += take
        *lines, self.text = self.text.split(b"\n")
        for line in lines:
            if line.startswith(b"id: "):
                seq = int(line[4:])
                self.ids.append(seq)
                self.arrived[seq] = now
            elif line.startswith(b": heartbeat"):
                self.heartbeats += 1

    @property
    def status(self):
        return int(self.head.split(" ", 2)[1]) if self.head else None


class Pool:
    """n subscriptions to workspace ws on 127.0.0.1:port with a bearer token."""

    def __init__(self, port, ws, token, n, since=None, last_event_id=None):
        raise_nofile(n + 64)
        self.sel = selectors.DefaultSelector()
        self.subs = []
        path = "/api/v1/workspaces/%d/events" % ws
        if since is not None:
            path += "?since=%d" % since
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
               "Accept: text/event-stream\r\n" % (path, port, token))
        if last_event_id is not None:
            req += "Last-Event-ID: %d\r\n" % last_event_id
        req = (req + "\r\n").encode()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(req)
            s.setblocking(False)
            sub = Sub(s)
            self.subs.append(sub)
            self.sel.register(s, selectors.EVENT_READ, sub)
            if len(self.subs) % 200 == 0:
                self.pump(0)  # keep up with the opening comments

    def pump(self, timeout):
        """Read whatever arrives within timeout seconds (0: what is there now)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            events = self.sel.select(max(left, 0))
            now = time.monotonic()
            for key, _ in events:
                sub = key.data
                try:
                    data = sub.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sub.closed = True
                    self.sel.unregister(sub.sock)
                    continue
                sub.feed(data, now)
            if left <= 0 or (not events and timeout == 0):
                return

    def wait(self, predicate, timeout, what):
        """Pump until predicate() holds; AssertionError with `what` on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            self.pump(0.05)

    def close(self):
        for sub in self.subs:
            if not sub.closed:
                self.sel.unregister(sub.sock)
            sub.sock.close()
        self.sel.close()
