"""Miss throughput: fetches miss/0.bin .. miss/N-1.bin once each over C kept-alive connections.

usage: misses.py HOST PORT HOSTHEADER N C
Prints requests per second and MiB per second; exits 1 if an answer is not a 200 cache miss.
"""
import http.client
import sys
import threading
import time

host, port, host_header, count, concurrency = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(
    sys.argv[5])
received = [0] * concurrency
errors = []


def client(c):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for i in range(c, count, concurrency):
        conn.request("GET", f"/miss/{i}.bin", headers={"Host": host_header})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or r.getheader("X-Cache") != "MISS":
            errors.append((i, r.status, r.getheader("X-Cache")))
        received[c] += len(body)


threads = [threading.Thread(target=client, args=(c,)) for c in range(concurrency)]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
if errors:
    print(f"{len(errors)} answers were not 200 misses, e.g. {errors[:3]}", file=sys.stderr)
    sys.exit(1)
print(f"{count / elapsed:.1f} {sum(received) / elapsed / 1048576:.1f}")
