#!/usr/bin/env python3
"""A TCP proxy between a migration source and destination that breaks the
link or corrupts the stream on purpose (test_migration.sh).

migproxy.py LISTEN_PORT DEST_PORT [--close-after N] [--flip-at N]
  --close-after N  after N bytes source->destination, close both sides
  --flip-at N      invert the byte at offset N of the source->destination stream
Prints "listening" once it accepts connections."""
import socket, sys, threading

args = sys.argv[1:]
lport, dport = int(args[0]), int(args[1])
close_after = int(args[args.index("--close-after") + 1]) if "--close-after" in args else None
flip_at = int(args[args.index("--flip-at") + 1]) if "--flip-at" in args else None

ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(1)
print("listening", flush=True)
src, _ = ls.accept()
dst = socket.create_connection(("127.0.0.1", dport))

def down():
    n = 0
    while True:
        try:
            b = src.recv(1 << 16)
        except OSError:
            break
        if not b:
            break
        b = bytearray(b)
        if flip_at is not None and n <= flip_at < n + len(b):
            b[flip_at - n] ^= 0xff
        if close_after is not None and n + len(b) >= close_after:
            dst.sendall(b[:close_after - n])
            break
        dst.sendall(b)
        n += len(b)
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def up():
    while True:
        try:
            b = dst.recv(1 << 16)
        except OSError:
            break
        if not b:
            break
        try:
            src.sendall(b)
        except OSError:
            break

t = threading.Thread(target=up, daemon=True)
t.start()
down()
t.join(timeout=5)
