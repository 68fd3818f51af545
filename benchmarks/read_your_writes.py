"""Read-your-writes on the local cluster of `scripts/run` (Swift, Redis, a purge daemon, 3 edges):
rounds of write-then-read, each read sent the instant the write's 2xx arrives, through another
edge that held the old version in its cache. A read is stale when it differs from Swift's own
answer to the same request right after it. Round kinds cycle: an overwrite, a delete, a new file
in a listed directory (read as the directory's listing).

Two variants, one run: writes through edge 1 (the Swift API host, as the swift CLI sends them),
and writes straight to Swift (the middleware in its pipeline waits for the daemon). Reported per
variant: stale first reads, the writer's own wait for the other edges (edge 1's
edge_write_confirm_seconds; the daemon's purge_write_confirm_seconds for the middleware's), and
the client's whole write time.

No peer does this: nginx has no cluster, and Fastly and Cloudflare document about 150 ms for a
global purge, eventually consistent (the issue's reference).

usage: scripts/run; /usr/bin/python3 benchmarks/read_your_writes.py [ROUNDS]
Run with nothing else busy.
"""
import http.client
import json
import statistics
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SWIFT, WRITER, READER = 8080, 8090, 8091
ADMIN = {"edge": 9090, "daemon": 9101}
API_HOST, SITE_HOST = "swift.example.test", "demo.example.test"


class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def request(self, method, path, headers, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def token():
    status, headers, _ = Client(SWIFT).request("GET", "/auth/v1.0", {"X-Auth-User": "test:tester",
                                                                     "X-Auth-Key": "testing"})
    assert status == 200, "is the local cluster running? start it with scripts/run"
    return headers["x-auth-token"]


def histogram(port, name):
    """Cumulative bucket counts of a Prometheus histogram: {upper bound: count}."""
    _, _, text = Client(port).request("GET", "/metrics", {})
    out = {}
    for line in text.decode().split("\n"):
        if line.startswith(name + "_bucket{le=\""):
            bound = line.split('"')[1]
            out[float("inf") if bound == "+Inf" else float(bound)] = int(line.rsplit(" ", 1)[1])
    return out


def quantile(before, after, q):
    """The bucket bound below which a fraction q of the observations between two scrapes fall."""
    counts = {bound: after[bound] - before.get(bound, 0) for bound in after}
    total = counts[float("inf")]
    if total == 0:
        return None
    for bound in sorted(counts):
        if counts[bound] >= q * total:
            return bound
    return float("inf")


def listing_names(body):
    try:
        return sorted(item.get("name", item.get("subdir")) for item in json.loads(body))
    except ValueError:
        return body


def run(variant, write_port, write_host, auth, rounds):
    writer, reader, swift = Client(write_port), Client(READER), Client(SWIFT)
    site = {"Host": SITE_HOST}
    stale, write_times = 0, []
    for i in range(rounds):
        kind = ("overwrite", "delete", "listing")[i % 3]
        name = f"ryw-{variant}/o{i % 30}.txt"
        read_path, swift_path = f"/{name}", f"/v1/AUTH_test/public/{name}"
        if kind == "listing":
            name = f"ryw-{variant}/d{i % 7}/f{i}.txt"
            directory = f"ryw-{variant}/d{i % 7}/"
            read_path = f"/{directory}?format=json"
            swift_path = f"/v1/AUTH_test/public?format=json&prefix={directory}&delimiter=/"
        if kind == "delete":
            # Something to delete, cached on the reader.
            writer.request("PUT", f"/v1/AUTH_test/public/{name}", {"Host": write_host, **auth}, b"to delete")
        reader.request("GET", read_path, site)
        reader.request("GET", read_path, site)  # the reader holds the old version now
        start = time.monotonic()
        if kind == "delete":
            status, _, _ = writer.request("DELETE", f"/v1/AUTH_test/public/{name}", {"Host": write_host, **auth})
        else:
            status, _, _ = writer.request("PUT", f"/v1/AUTH_test/public/{name}", {"Host": write_host, **auth},
                                          f"{variant} round {i}".encode())
        write_times.append(time.monotonic() - start)
        assert 200 <= status < 300, f"{kind} {name}: {status}"
        got_status, _, got = reader.request("GET", read_path, site)
        want_status, _, want = swift.request("GET", swift_path, auth)
        if kind == "listing":
            got, want = listing_names(got), listing_names(want)
        if (got_status, got) != (want_status if want_status != 204 else 200, want):
            stale += 1
    return stale, write_times


def main():
    auth = {"X-Auth-Token": token()}
    rounds = ROUNDS
    results = []
    for variant, port, host, metric in (("edge", WRITER, API_HOST, ("edge", "edge_write_confirm_seconds")),
                                        ("swift", SWIFT, "127.0.0.1", ("daemon", "purge_write_confirm_seconds"))):
        before = histogram(ADMIN[metric[0]], metric[1])
        stale, times = run(variant, port, host, auth, rounds)
        after = histogram(ADMIN[metric[0]], metric[1])
        times.sort()
        results.append((variant, stale, quantile(before, after, 0.5), quantile(before, after, 0.99),
                        statistics.median(times), times[int(0.99 * (len(times) - 1))]))
    print(f"{rounds} rounds per variant (overwrite, delete, new file in a listed directory)")
    print("| writes | stale first reads | writer's wait p50 | p99 | whole write p50 | p99 |")
    print("|---|---|---|---|---|---|")
    for variant, stale, p50, p99, w50, w99 in results:
        label = "through edge 1" if variant == "edge" else "straight to Swift"
        print(f"| {label} | {stale} of {rounds} | <= {p50 * 1000:g} ms | <= {p99 * 1000:g} ms | "
              f"{w50 * 1000:.1f} ms | {w99 * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
