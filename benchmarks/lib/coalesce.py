"""Time to answer N simultaneous requests for one uncached object.

usage: coalesce.py HOST PORT HOSTHEADER PATH N
Opens N connections, releases N GETs at once, and prints the seconds from the release until every
client has its response head, until every client has its whole body, and the number of answers
that were not 200 with the expected length.
"""
import socket
import sys
import threading
import time

host, port, host_header, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
sockets = [socket.create_connection((host, port)) for _ in range(count)]
barrier = threading.Barrier(count + 1)
finished = [0.0] * count
heads = [0.0] * count
bad = [0]


def client(i):
    s = sockets[i]
    barrier.wait()
    s.sendall(request)
    data = bytearray()
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        if not heads[i] and b"\r\n\r\n" in data + chunk:
            heads[i] = time.monotonic()
        data += chunk
    finished[i] = time.monotonic()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
    if not head.startswith(b"HTTP/1.1 200") or not length or length[0] != len(body):
        bad[0] += 1


threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
for t in threads:
    t.start()
barrier.wait()
start = time.monotonic()
for t in threads:
    t.join()
print(f"{max(heads) - start:.4f} {max(finished) - start:.4f} {bad[0]}")
