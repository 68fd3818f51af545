"""Time to answer N simultaneous requests for one uncached object.

usage: coalesce.py HOST PORT HOSTHEADER PATH N
Connects N sockets, sends the N GETs back to back, and prints the seconds from the first send
until every client has its response head, until every client has its whole body, and the number
of answers that were not 200 with the expected length. One thread and non-blocking sockets, so
the timing is the server's, not the client's thread scheduling; bodies are counted into one
reused buffer, not kept, so that the client's own copying (32 MiB for 1 MiB objects) does not
delay when it notices the later heads.
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
    state[s] = {"head": bytearray(), "body_bytes": 0, "head_at": None, "done_at": None}
    selector.register(s, selectors.EVENT_READ)
buffer = bytearray(1 << 20)
view = memoryview(buffer)
start = time.monotonic()
for s in state:
    s.send(request)
open_sockets = count
while open_sockets:
    for key, _ in selector.select():
        s, st = key.fileobj, state[key.fileobj]
        received = s.recv_into(buffer)
        if not received:
            st["done_at"] = time.monotonic()
            selector.unregister(s)
            s.close()
            open_sockets -= 1
        elif st["head_at"] is not None:
            st["body_bytes"] += received
        else:
            st["head"] += view[:received]
            end = st["head"].find(b"\r\n\r\n")
            if end >= 0:
                st["head_at"] = time.monotonic()
                st["body_bytes"] = len(st["head"]) - end - 4
                del st["head"][end:]
bad = 0
for st in state.values():
    lines = bytes(st["head"]).split(b"\r\n")
    lengths = [int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length:")]
    if not lines[0].startswith(b"HTTP/1.1 200") or not lengths or lengths[0] != st["body_bytes"]:
        bad += 1
print(f"{max(st['head_at'] for st in state.values()) - start:.4f} "
      f"{max(st['done_at'] for st in state.values()) - start:.4f} {bad}")
