#!/usr/bin/env python3
"""Raw control-socket clients for tests/integration/test_control.sh: the
bad and abusive inputs `ember ctl` never sends. Each subcommand prints what
it saw and exits 0 when the server behaved as docs/control-api.md says,
1 (with a reason on stderr) when not."""
import json
import os
import select
import socket
import sys
import time

TIMEOUT = 20


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(path):
    """A full listen backlog makes a UNIX connect fail with EAGAIN at once:
    try again for a while, as a patient client would."""
    deadline = time.time() + TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.01)


class Lines:
    """Reads reply lines, keeping events apart."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.events = []

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self):
        while True:
            line = self.line()
            if line is None:
                return None
            obj = json.loads(line)
            if "event" in obj:
                self.events.append(obj)
                continue
            return obj


def check_reply_shape(r):
    if not isinstance(r, dict) or "id" not in r or not isinstance(r.get("ok"), bool):
        die("malformed reply %r" % (r,))
    if r["ok"] and "result" not in r:
        die("ok reply without result: %r" % (r,))
    if not r["ok"]:
        e = r.get("error")
        if not isinstance(e, dict) or not isinstance(e.get("code"), str) or not isinstance(e.get("message"), str):
            die("error reply without code/message: %r" % (r,))


def cmd_send(path, *lines):
    """Send each line; print `CODE` (or `ok`) per reply, in order, then a
    status request proves the connection still works."""
    s = connect(path)
    rd = Lines(s)
    for ln in lines:
        s.sendall(ln.encode("utf-8", "surrogateescape") + b"\n")
        if not ln.strip():
            continue
        r = rd.reply()
        if r is None:
            die("connection closed after %r" % ln)
        check_reply_shape(r)
        print("ok" if r["ok"] else r["error"]["code"], json.dumps(r["id"]))
    s.sendall(b'{"id":"after","command":"status"}\n')
    r = rd.reply()
    if r is None or not r["ok"] or r["id"] != "after":
        die("connection unusable after the bad input: %r" % (r,))
    print("still-usable")


def cmd_bytes(path, hexdata, expect_code):
    """Send raw bytes (hex) and a newline; expect an error reply."""
    s = connect(path)
    rd = Lines(s)
    s.sendall(bytes.fromhex(hexdata) + b"\n")
    r = rd.reply()
    if r is None:
        die("no reply")
    check_reply_shape(r)
    if r["ok"] or r["error"]["code"] != expect_code:
        die("expected %s, got %r" % (expect_code, r))
    print(expect_code)


def cmd_toolong(path, n):
    """A line of n bytes: a line-too-long error, then the server closes."""
    s = connect(path)
    rd = Lines(s)
    n = int(n)
    try:
        s.sendall(b'{"id":1,"command":"status","pad":"' + b"x" * n + b'"}')
    except (BrokenPipeError, ConnectionResetError):
        pass   # the server may close before we finish
    r = rd.reply()
    if r is None:
        die("closed without an error reply")
    if r["ok"] or r["error"]["code"] != "line-too-long":
        die("expected line-too-long, got %r" % (r,))
    try:
        if rd.line() is not None:
            die("server kept the connection open")
    except ConnectionResetError:
        pass
    print("line-too-long, closed")


def cmd_flood(path, n):
    """n requests (good and bad) as fast as possible while reading: every
    one gets its reply, in order."""
    n = int(n)
    kinds = [b'{"id":%d,"command":"status"}', b'{"id":%d,"command":"nosuch"}',
             b'{"id":%d,"command":"stats"}', b'{"id":%d,"command":"status","args":{"x":1}}',
             b'{"id":%d oops', b'{"id":%d,"command":"help"}']
    out = b"".join((kinds[i % len(kinds)] % i) + b"\n" for i in range(n))
    s = connect(path)
    s.setblocking(False)
    buf, got, sent, ids = b"", 0, 0, []
    deadline = time.time() + 120
    while got < n:
        if time.time() > deadline:
            die("timed out after %d of %d replies" % (got, n))
        want_w = [s] if sent < len(out) else []
        r, w, _ = select.select([s], want_w, [], 5)
        if w:
            sent += s.send(out[sent:sent + 65536])
        if r:
            data = s.recv(1 << 20)
            if not data:
                die("server closed after %d replies" % got)
            buf += data
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                obj = json.loads(ln)
                if "event" in obj:
                    continue
                check_reply_shape(obj)
                ids.append(obj["id"])
                got += 1
    expect = [i if i % len(kinds) != 4 else None for i in range(n)]
    if ids != expect:
        die("replies out of order or missing")
    print("%d replies" % got)


def cmd_stall(path, seconds):
    """Send requests without ever reading until the kernel buffers are full,
    then hold the connection for a while: the VM and other clients must not
    notice. Prints how much it sent."""
    s = connect(path)
    s.setblocking(False)
    req = b'{"id":1,"command":"stats"}\n' * 256
    total = 0
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            total += s.send(req)
        except BlockingIOError:
            _, w, _ = select.select([], [s], [], 0.5)
            if not w:
                break
        except (BrokenPipeError, ConnectionResetError):
            print("server closed the stalled client after %d bytes" % total)
            return
    print("stalled after sending %d bytes" % total, flush=True)
    time.sleep(float(seconds))


def cmd_vanish(path, n):
    """n clients that send a request and go away without reading."""
    for _ in range(int(n)):
        s = connect(path)
        s.sendall(b'{"id":1,"command":"stats"}\n{"id":2,"command":"status"}\n')
        s.close()
    s = connect(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.sendall(b'{"id":1,"command":"help"}\n')
    s.close()   # RST
    print("%d vanished" % (int(n) + 1))


def cmd_clients(path, n):
    """n clients at once all work; one more is refused with
    too-many-clients; after they leave a new one works."""
    n = int(n)
    socks = [connect(path) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(b'{"id":%d,"command":"status"}\n' % i)
    for i, s in enumerate(socks):
        r = Lines(s).reply()
        if r is None or not r["ok"] or r["id"] != i:
            die("client %d: %r" % (i, r))
    extra = connect(path)
    r = Lines(extra).reply()
    if r is None or r["ok"] or r["error"]["code"] != "too-many-clients":
        die("client %d: expected too-many-clients, got %r" % (n + 1, r))
    for s in socks:
        s.close()
    extra.close()
    time.sleep(0.3)
    s = connect(path)
    s.sendall(b'{"id":"again","command":"status"}\n')
    r = Lines(s).reply()
    if r is None or not r["ok"]:
        die("no service after the clients left: %r" % (r,))
    print("%d served, 1 refused, then served again" % n)


def cmd_halfclose(path):
    """Requests then EOF (shutdown SHUT_WR): all replies, then the server
    closes. The last request has no newline."""
    s = connect(path)
    s.sendall(b'{"id":1,"command":"status"}\n{"id":2,"command":"help"}')
    s.shutdown(socket.SHUT_WR)
    rd = Lines(s)
    ids = []
    while True:
        r = rd.reply()
        if r is None:
            break
        ids.append(r["id"])
    if ids != [1, 2]:
        die("expected replies 1 and 2, got %r" % ids)
    print("2 replies, then closed")


def cmd_stale(path):
    """Leave a socket file nobody listens on (a crashed ember's)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    print("stale socket at", path)


def main():
    if len(sys.argv) < 3:
        die("usage: control_client.py COMMAND SOCKET [ARGS...]")
    fn = globals().get("cmd_" + sys.argv[1])
    if not fn:
        die("unknown command " + sys.argv[1])
    fn(*sys.argv[2:])


if __name__ == "__main__":
    main()
