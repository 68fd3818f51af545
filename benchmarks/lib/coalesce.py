"""Time to answer N simultaneous requests for one uncached object.

usage: coalesce.py HOST PORT HOSTHEADER PATH N
Connects N sockets, sends the N GETs back to back, and prints the seconds from the first send
until every client has its response head, until every client has its whole body, and the number
of answers that were not 200 with the expected length. One thread and non-blocking sockets, so
the timing is the server's, not the client's thread scheduling.
"""
import selectors
import socket
import sys
import time

host, port, host_header, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
selector = selectors.DefaultSelector()
state = {}
for _ in range(count):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    state[s] = {"data": bytearray(), "head": None, "done": None}
    selector.register(s, selectors.EVENT_READ)
start = time.monotonic()
for s in state:
    s.send(request)
open_sockets = count
while open_sockets:
    for key, _ in selector.select():
        s, st = key.fileobj, state[key.fileobj]
        chunk = s.recv(1 << 20)
        if chunk:
            st["data"] += chunk
            if st["head"] is None and b"\r\n\r\n" in st["data"]:
                st["head"] = time.monotonic()
            continue
        st["done"] = time.monotonic()
        selector.unregister(s)
        s.close()
        open_sockets -= 1
bad = 0
for st in state.values():
    head, _, body = bytes(st["data"]).partition(b"\r\n\r\n")
    lengths = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
    if not head.startswith(b"HTTP/1.1 200") or not lengths or lengths[0] != len(body):
        bad += 1
print(f"{max(st['head'] for st in state.values()) - start:.4f} {max(st['done'] for st in state.values()) - start:.4f} {bad}")
