"""Clients for benchmarks/slices_vs_nginx.sh.

  slices.py ttfb HOST PORT HOSTHEADER PATH RANGE [SKIP]
      seconds from connecting until the first body byte (with SKIP: body byte SKIP, counting from
      0) of GET PATH with Range: RANGE, then closes
  slices.py ranges HOST PORT HOSTHEADER PATH FILE SLICE N SEED
      N random 64 KiB ranges of PATH (a copy of FILE), one after another on one connection, each
      compared with FILE; prints the seconds taken, the slices they touch and those slices' bytes
  slices.py slow HOST PORT HOSTHEADER PREFIX N RATE SECONDS PID...
      N clients, each GET PREFIX{i} read at RATE bytes/s for SECONDS, while the RSS of the PIDs
      (summed) is sampled; prints the peak RSS in MiB, the median and lowest client rate in MiB/s,
      how many clients failed, and the CPU seconds this client used
  slices.py origin-bytes LOG OFFSET PATH
      bytes Swift's proxy sent for GETs of PATH logged in LOG after byte OFFSET, and their count
"""
import http.client
import os
import random
import selectors
import socket
import statistics
import sys
import time


def request(host_header, path, range_=None):
    head = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"
    if range_:
        head += f"Range: {range_}\r\n"
    return (head + "\r\n").encode()


def ttfb(host, port, host_header, path, range_, skip=0):
    start = time.monotonic()
    s = socket.create_connection((host, int(port)))
    s.sendall(request(host_header, path, range_))
    head, body = b"", -1  # body: body bytes received, once the head is complete
    while body <= int(skip):
        chunk = s.recv(1 << 20)
        if not chunk:
            sys.exit(f"closed before body byte {skip}: {head[:200]!r}")
        if body >= 0:
            body += len(chunk)
            continue
        head += chunk
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            body = len(head) - end - 4
            head = head[:end]
    elapsed = time.monotonic() - start
    s.close()
    status = head.split(b" ", 2)[1]
    if status != b"206":
        sys.exit(f"status {status!r}: {head[:300]!r}")
    print(f"{elapsed:.6f}")


def ranges(host, port, host_header, path, file, slice_size, n, seed):
    slice_size, n = int(slice_size), int(n)
    size = os.path.getsize(file)
    rng = random.Random(int(seed))
    wanted = [rng.randrange(0, size - 65536) for _ in range(n)]
    touched = set()
    for first in wanted:
        touched.update(range(first // slice_size, (first + 65535) // slice_size + 1))
    touched_bytes = sum(min(size, (i + 1) * slice_size) - i * slice_size for i in touched)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    with open(file, "rb") as f:
        start = time.monotonic()
        for first in wanted:
            conn.request("GET", path, headers={"Host": host_header, "Range": f"bytes={first}-{first + 65535}"})
            r = conn.getresponse()
            body = r.read()
            f.seek(first)
            if r.status != 206 or body != f.read(65536):
                sys.exit(f"bytes={first}-{first + 65535}: status {r.status}, {len(body)} bytes, not the file's")
        elapsed = time.monotonic() - start
    print(f"{elapsed:.3f} {len(touched)} {touched_bytes}")


def rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (FileNotFoundError, StopIteration):
            pass
    return total / 1024


def slow(host, port, host_header, prefix, n, rate, seconds, *pids):
    n, rate, seconds = int(n), float(rate), float(seconds)
    pids = [int(p) for p in pids]
    sel = selectors.DefaultSelector()
    clients = []
    for i in range(n):
        s = socket.socket()
        # A small receive buffer: the client's kernel does not absorb what the client reads slowly.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect((host, int(port)))
        s.sendall(request(host_header, f"{prefix}{i}"))
        s.setblocking(False)
        c = {"sock": s, "got": 0, "failed": False, "head": b"", "body": 0}
        clients.append(c)
    start = time.monotonic()
    peak = rss_mib(pids)
    next_sample = start
    paused = set()
    for c in clients:
        sel.register(c["sock"], selectors.EVENT_READ, c)
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now >= next_sample:
            peak = max(peak, rss_mib(pids))
            next_sample = now + 0.25
        # Clients that are ahead of their rate wait; the others read.
        allowed = rate * (now - start)
        for c in clients:
            if c["failed"]:
                continue
            ahead = c["got"] >= allowed
            if ahead and c["sock"] not in paused:
                sel.unregister(c["sock"])
                paused.add(c["sock"])
            elif not ahead and c["sock"] in paused:
                sel.register(c["sock"], selectors.EVENT_READ, c)
                paused.discard(c["sock"])
        for key, _ in sel.select(timeout=0.01):
            c = key.data
            try:
                chunk = c["sock"].recv(min(65536, max(1, int(allowed - c["got"]) + 1)))
            except BlockingIOError:
                continue
            if not chunk:
                c["failed"] = True
                sel.unregister(c["sock"])
                continue
            c["got"] += len(chunk)
    elapsed = time.monotonic() - start
    peak = max(peak, rss_mib(pids))
    for c in clients:
        c["sock"].close()
    rates = [c["got"] / elapsed / 1048576 for c in clients]
    failed = sum(c["failed"] for c in clients)
    cpu = os.times()
    print(f"{peak:.1f} {statistics.median(rates):.3f} {min(rates):.3f} {failed} {cpu.user + cpu.system:.2f}")


def origin_bytes(log, offset, path):
    # proxy-logging's line: client_ip remote_addr datetime method path protocol status referer
    # user_agent auth_token bytes_recvd bytes_sent ...; the client's requests only (a sub-request of
    # slo or dlo has a source after the request time, and the path of a segment).
    total = count = 0
    with open(log, "rb") as f:
        f.seek(int(offset))
        for line in f:
            fields = line.decode(errors="replace").split()
            try:
                at = fields.index("proxy-server:")
            except ValueError:
                continue
            f_ = fields[at + 1:]
            if len(f_) > 11 and f_[3] == "GET" and f_[4].split("?")[0] == path:
                total += int(f_[11]) if f_[11] != "-" else 0
                count += 1
    print(f"{total} {count}")


commands = {"ttfb": ttfb, "ranges": ranges, "slow": slow, "origin-bytes": origin_bytes}
commands[sys.argv[1]](*sys.argv[2:])
