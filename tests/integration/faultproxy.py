"""A small TCP proxy for network-fault tests: put between two roost processes on
loopback (host <-> hub, CLI <-> hub, relay <-> hub/host), it forwards bytes and,
switched while it runs, delays, drops, resets and stalls them.

    p = FaultProxy(hub.api_port, seed=7)      # listens on 127.0.0.1:p.port
    p.delay_ms = 50                           # every forwarded read waits 50 ms
    p.drop_new = True                         # new connections are closed at once
    p.reset_live()                            # RST (SO_LINGER 0) every live one
    p.stall(after=1 << 20, seconds=5, then="reset", direction="up", times=1)
    p.bandwidth = 256 * 1024                  # bytes/s per direction and connection
    p.reset_after(after=3 << 20, direction="up", times=1)
    p.hold_down = b"/feed"                    # answers to requests naming it wait
    p.hold_down = None                        # (until it is cleared) then flow
    p.truncate_after(after=1 << 20, direction="down", times=1)  # a FIN mid-body
    p.clear()                                 # back to plain forwarding

Directions: "up" is client -> server (a request body), "down" server -> client (a
response body). A stall or reset counts the bytes of one connection's direction:
after `after` bytes it forwards nothing more; after `seconds` it resets both ends
(then="reset"), closes both with a FIN as if the body had ended there (then="close":
a truncated body), or forwards the rest (then="resume"). The first `times`
connections to carry more than `after` bytes that way get it (a small request on
a keep-alive connection does not use up a fault), then the proxy passes again. Where a fault is drawn at random (`after` given as a
(lo, hi) range, `jitter`), it is drawn from the proxy's own random.Random(seed).
Threads: one acceptor, two pumps per connection. Standard library only."""
import random
import socket
import struct
import threading
import time

UP, DOWN = "up", "down"


def rst_close(sock):
    """Close with a TCP RST rather than a FIN: SO_LINGER on, 0 s."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # A pump thread blocked in recv() holds the socket open past close():
        # SHUT_RD wakes it (and sends nothing), so the last close sends the RST.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy, client, server, n):
        self.proxy, self.client, self.server, self.n = proxy, client, server, n
        self.sent = {UP: 0, DOWN: 0}
        self.fault = {}  # direction -> (after, seconds, then): this connection's own
        self.held = False  # its first request named the proxy's hold_down
        self.closed = False
        self.lock = threading.Lock()

    def close(self, reset=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            if reset:
                rst_close(s)
            else:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.proxy._forget(self)

    def pump(self, direction):
        src, dst = (self.client, self.server) if direction == UP else (self.server, self.client)
        p = self.proxy
        try:
            while not self.closed:
                data = src.recv(65536)
                if not data and self.closed:
                    return  # reset by the proxy: no FIN to the other side
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                if p.delay_ms:
                    time.sleep(p.delay_ms / 1000.0)
                if direction == UP and self.sent[UP] == 0 and p.hold_down is not None:
                    self.held = p.hold_down in data.split(b"\r\n", 1)[0]
                while direction == DOWN and self.held and p.hold_down is not None \
                        and not self.closed:
                    time.sleep(0.02)
                fault = self.fault.get(direction)
                if fault is None:
                    fault = p._claim(direction, self.sent[direction] + len(data))
                    if fault:
                        self.fault[direction] = fault
                if fault and self.sent[direction] + len(data) > fault[0]:
                    after, seconds, then = fault
                    keep = max(0, after - self.sent[direction])
                    self._send(dst, data[:keep], direction)
                    p._note(direction, then)
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline and not self.closed:
                        time.sleep(0.02)
                    if then in ("reset", "close"):
                        self.close(reset=(then == "reset"))
                        return
                    self.fault[direction] = False  # resumed: forward the rest, no new fault
                    data = data[keep:]
                self._send(dst, data, direction)
        except OSError:
            pass
        finally:
            if not self.closed and direction == DOWN:
                self.close()

    def _send(self, dst, data, direction):
        p = self.proxy
        step = 16384 if p.bandwidth else len(data) or 1
        for i in range(0, len(data), step):
            part = data[i:i + step]
            dst.sendall(part)
            self.sent[direction] += len(part)
            p.bytes[direction] += len(part)
            if p.bandwidth:
                time.sleep(len(part) / float(p.bandwidth))


class FaultProxy:
    def __init__(self, target_port, seed=None, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.rng = random.Random(seed)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))  # the kernel's port: no race with free_port()
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.mu = threading.Lock()
        self.live = set()
        self.accepted = 0      # connections accepted, whatever became of them
        self.dropped = 0       # closed at once (drop_new)
        self.faults = {"reset": 0, "resume": 0}  # stalls/resets (and "close"s) that fired
        self.bytes = {UP: 0, DOWN: 0}
        self.clear()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- modes, switchable at any time ----
    def clear(self):
        """Plain forwarding from now on (live connections keep a fault already claimed)."""
        self.delay_ms = 0
        self.drop_new = False
        # bytes: a connection whose first request line holds them gets no answer
        # bytes while this stays set (a feed held back; everything else flows)
        self.hold_down = None
        self.bandwidth = 0
        self._plans = {UP: [], DOWN: []}

    def stall(self, after, seconds, then="resume", direction=UP, times=1):
        """The next `times` connections stop forwarding `direction` after `after`
        bytes (an int, or a (lo, hi) range drawn from the seeded random) for
        `seconds`, then reset or resume."""
        assert then in ("reset", "close", "resume") and direction in (UP, DOWN)
        with self.mu:
            for _ in range(times):
                a = self.rng.randint(*after) if isinstance(after, tuple) else after
                self._plans[direction].append((a, seconds, then))

    def reset_after(self, after, direction=UP, times=1):
        """The next `times` connections are reset once `after` bytes went `direction`."""
        self.stall(after, 0, "reset", direction, times)

    def truncate_after(self, after, direction=DOWN, times=1):
        """The next `times` connections end (a FIN both ways, no RST) once `after`
        bytes went `direction`: a body cut short, as a crashed or buggy server's."""
        self.stall(after, 0, "close", direction, times)

    def pending(self, direction=UP):
        """Faults planned for `direction` and not yet claimed by a connection."""
        with self.mu:
            return len(self._plans[direction])

    def reset_live(self):
        """Reset (RST) every connection open now; returns how many."""
        with self.mu:
            conns = list(self.live)
        for c in conns:
            c.close(reset=True)
        return len(conns)

    def live_count(self):
        with self.mu:
            return len(self.live)

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.reset_live()

    # ---- internals ----
    def _claim(self, direction, total):
        """The next planned fault, for a connection about to have sent `total` bytes
        in `direction`: the first connection to pass its `after` takes it."""
        with self.mu:
            plans = self._plans[direction]
            if plans and total > plans[0][0]:
                return plans.pop(0)
            return None

    def _note(self, direction, then):
        with self.mu:
            self.faults[then] = self.faults.get(then, 0) + 1

    def _forget(self, conn):
        with self.mu:
            self.live.discard(conn)

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            with self.mu:
                self.accepted += 1
                n = self.accepted
            if self.drop_new:
                with self.mu:
                    self.dropped += 1
                rst_close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                rst_close(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = _Conn(self, client, server, n)
            with self.mu:
                self.live.add(c)
            for d in (UP, DOWN):
                threading.Thread(target=c.pump, args=(d,), daemon=True).start()
