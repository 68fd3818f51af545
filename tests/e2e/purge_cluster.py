"""The purge service on a local cluster: real Swift, real Redis (persistent, as in production), two
purge daemons and three edges, driven with python-swiftclient through one edge while reading
through the others. Overwrites, deletes, new files in listings and a container made private are
seen on every edge; so they are after an edge is killed during writes, Redis restarts during
writes, a purge daemon dies mid-stream, and an edge is cut off from Redis past its bound. A
checker reads every written object through every edge once the purges are done and finds no
stale version. Then the purge API's refusals, and a 1 GiB upload through an edge in bounded
memory.

usage: purge_cluster.py SOURCE_DIR BUILD_DIR
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from swiftclient import client as swift

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../support"))
from free_ports import free_ports  # noqa: E402

SOURCE, BUILD = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="purge-cluster-")
PROCESSES = []  # (name, Popen) we started; stopped by PID at the end
CHECKS = 0


def check(description, expected, actual):
    global CHECKS
    if expected != actual:
        raise AssertionError(f"{description}: expected {expected!r}, got {actual!r}")
    CHECKS += 1


def eventually(description, condition, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            global CHECKS
            CHECKS += 1
            return
        time.sleep(0.05)
    raise AssertionError(f"{description}: not within {seconds}s")


SWIFT_PORT, REDIS_PORT = free_ports(5), free_ports()  # swift-dev takes the proxy's port and the next four
# The Swift proxy runs the project's middleware: writes straight to Swift purge the edges too.
ENV = dict(os.environ, SWIFT_DEV_DIR=f"{WORK}/swift", SWIFT_DEV_PORT=str(SWIFT_PORT),
           REDIS_DEV_DIR=f"{WORK}/redis", REDIS_DEV_PORT=str(REDIS_PORT), SWIFT_DEV_REDIS=f"127.0.0.1:{REDIS_PORT}")


def dev(service, action):
    subprocess.run([f"{SOURCE}/scripts/{service}", action], env=ENV, check=True, stdout=subprocess.DEVNULL)


class RedisUnreachable(Exception):
    pass


def redis(*args):
    """redis-cli's answer; raises RedisUnreachable rather than answer "" (which would read as none)."""
    r = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True)
    if r.returncode != 0 and "Could not connect" in r.stdout + r.stderr:
        raise RedisUnreachable(f"redis-cli {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def metrics_of(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    except OSError:
        return ""


# ---- the cluster ---------------------------------------------------------------------------------

class RedisProxy:
    """A TCP relay between one edge and Redis, to cut that edge alone off the bus."""

    def __init__(self):
        self.port = free_ports()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.open = True
        self.sockets = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", REDIS_PORT))
            except OSError:  # Redis is restarting: the edge will try again
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.open = False
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets = []

    def restore(self):
        self.open = True


PURGE_KEY, SHOP_KEY = "demo-purge-key", "shop-purge-key"


def key_hash(key):
    return subprocess.run([f"{BUILD}/vhost-config", "hash-key", key], capture_output=True, text=True,
                          check=True).stdout.strip()


def write_tenants(demo_keys):
    keys = ", ".join(f'"{key_hash(k)}"' for k in demo_keys)
    with open(f"{WORK}/vhosts.toml", "w") as f:
        f.write(f"""
[defaults]
origin.url = "http://127.0.0.1:{SWIFT_PORT}"
cache.stale_while_revalidate = "0s"
[[tenant]]
name = "demo"
domains = ["demo.test"]
origin.account = "AUTH_test"
origin.container = "public"
cache.listings = true
purge.key_hashes = [{keys}]
purge.rate = 100
purge.burst = 100
[[tenant]]
name = "private"
domains = ["priv.test"]
origin.account = "AUTH_test"
origin.container = "priv"
[[tenant]]
name = "shop"
domains = ["shop.test"]
origin.account = "AUTH_test2"
origin.container = "www"
purge.key_hashes = ["{key_hash(SHOP_KEY)}"]
[[tenant]]
name = "api"
domains = ["127.0.0.1"]
origin.kind = "swift-api"
""")


# Under AddressSanitizer, freed memory waits in a 256 MiB quarantine and counts as resident: keep
# it small, so the upload's memory bound is measured in a sanitized build too.
PROCESS_ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                   ":quarantine_size_mb=8:thread_local_quarantine_size_kb=256")


def start(name, argv, log):
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                               env=PROCESS_ENV)
    PROCESSES.append((name, process))
    return process


def answers(port, path="/healthz", statuses=(200,)):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", path)
        return c.getresponse().status in statuses
    except OSError:
        return False


def wait_http(port, path="/healthz", statuses=(200,)):
    eventually(f"127.0.0.1:{port} answers", lambda: answers(port, path, statuses), 30)


def start_listening(name, configure, argv, log):
    """Starts a server on the ports configure() picks and writes into its settings, then returns them
    once its admin port answers. A free port is free only when picked: if another process took it
    before the server bound it, the server exits, and it is started again on new ones."""
    for _ in range(3):
        ports = configure()
        process = start(name, argv, log)
        eventually(f"{name} answers or exits", lambda: process.poll() is not None or answers(ports[-1]), 30)
        if process.poll() is None:
            return process, ports
        with open(log) as f:
            if "cannot listen on" not in f.read():
                raise AssertionError(f"{name} exited with {process.returncode}; see {log}")
    raise AssertionError(f"{name}: its ports were taken three times; see {log}")


class Daemon:
    def __init__(self, name):
        self.name = name

        def configure():
            api, admin = free_ports(), free_ports()
            with open(f"{WORK}/{name}.toml", "w") as f:
                f.write(f'node_id = "{name}"\ntenants = "vhosts.toml"\nredis = "127.0.0.1:{REDIS_PORT}"\n'
                        f'api.port = {api}\nadmin.port = {admin}\n'
                        f'planner.repeat_delay = "1s"\nplanner.claim_idle = "2s"\n')
            return api, admin
        self.process, (self.port, self.admin) = start_listening(
            name, configure, [f"{BUILD}/purge-daemon", "--config", f"{WORK}/{name}.toml"], f"{WORK}/{name}.log")

    def metrics(self):
        return metrics_of(self.admin)


class Edge:
    def __init__(self, index, redis_port=None, lease="1s"):
        self.name = f"edge-{index}"
        self.dir = f"{WORK}/edge-{index}"
        os.makedirs(self.dir, exist_ok=True)

        def configure():
            port, admin = free_ports(), free_ports()
            self.configure(port, admin, redis_port, lease)
            return port, admin
        self.process, (self.port, self.admin) = start_listening(self.name, configure, self.argv(), self.log())
        eventually(f"{self.name} trusts its cache", lambda: self.metric("edge_trusted") == 1)

    def argv(self):
        return [f"{BUILD}/edge", "--config", f"{self.dir}/edge.toml"]

    def log(self):
        return f"{self.dir}/edge.log"

    def configure(self, port, admin, redis_port, lease):
        with open(f"{self.dir}/edge.toml", "w") as f:
            f.write(f"""node_id = "{self.name}"
tenants = "../vhosts.toml"
listen.port = {port}
admin.port = {admin}
purge.redis = "127.0.0.1:{redis_port or REDIS_PORT}"
purge.lease = "{lease}"
purge.api = "http://127.0.0.1:{DAEMONS[0].port}"
[[cache.zone]]
path = "zone-a"
size = "2G"
[[cache.zone]]
path = "zone-b"
size = "2G"
""")

    def start(self):  # again, on the same ports
        self.process = start(self.name, self.argv(), self.log())
        wait_http(self.admin)
        eventually(f"{self.name} trusts its cache", lambda: self.metric("edge_trusted") == 1)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def metric(self, name):
        """A sample's value (its first, for a labelled metric), or None; HELP lines are not samples."""
        for line in self.metrics().split("\n"):
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def metrics(self):
        return metrics_of(self.admin)

    def get(self, host, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", urllib.parse.quote(path, safe="/?=&%"), headers={"Host": host, **(headers or {})})
        r = c.getresponse()
        return r.status, r.read(), r.getheader("X-Cache")


def swift_token(user="test:tester", key="testing"):
    c = http.client.HTTPConnection("127.0.0.1", SWIFT_PORT)
    c.request("GET", "/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": key})
    return c.getresponse().getheader("X-Auth-Token")


def through(edge, token):
    """A swiftclient connection whose every request goes through `edge`'s Swift API host."""
    # Retries: a loaded single-node Swift answers 503 now and then; every write here may be repeated.
    return swift.Connection(preauthurl=f"http://127.0.0.1:{edge.port}/v1/AUTH_test", preauthtoken=token,
                            retries=5, starting_backoff=0.2)


def purges_done():
    """Every write event planned and every edge past the end of the purge log."""
    def done():
        try:
            return planned_and_applied()
        except RedisUnreachable:
            return False  # not known to be done

    def planned_and_applied():
        if redis("XLEN", "edge:events").strip() != "0":
            return False
        if any(e.metric("edge_write_event_spool_bytes") != 0 for e in EDGES if e.process.poll() is None):
            return False
        info = redis("XINFO", "STREAM", "edge:purge-log").split("\n")
        last = info[info.index("last-generated-id") + 1] if "last-generated-id" in info else "0-0"
        progress = dict(zip(*[iter(redis("HGETALL", "edge:edges").split("\n"))] * 2))
        as_tuple = lambda s: tuple(int(x) for x in s.split("-"))
        for e in EDGES:
            p = json.loads(progress.get(e.name, '{"cursor": "0-0"}'))
            if as_tuple(p["cursor"]) < as_tuple(last):
                return False
        return True
    try:
        eventually("purges done on every edge", done, 30)
    except AssertionError:
        print("events:", redis("XLEN", "edge:events").strip(), "pending:", redis("XPENDING", "edge:events", "planners"))
        print("log:", redis("XINFO", "STREAM", "edge:purge-log").split("\n")[:12])
        print("edges:", redis("HGETALL", "edge:edges"))
        for e in EDGES:
            print(e.name, [l for l in e.metrics().split("\n") if "spool" in l or "trusted" in l or "bus_conn" in l])
        raise


def raw_write(port, method, name, body=b"", token=None):
    """One write, no retries: (status, headers with lower-case names)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, f"/v1/AUTH_test/public/{name}", body=body,
              headers={"X-Auth-Token": token or TOKEN})
    r = c.getresponse()
    r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}


def swift_now(name):
    """Swift's own answer for an object at this moment, to an anonymous reader as the edges' site
    tenant is one: its body, or None for a 404."""
    c = http.client.HTTPConnection("127.0.0.1", SWIFT_PORT, timeout=10)
    c.request("GET", urllib.parse.quote(f"/v1/AUTH_test/public/{name}"))
    r = c.getresponse()
    body = r.read()
    return body if r.status == 200 else None if r.status == 404 else r.status


STALE_READS = 0
TOKEN = None  # the test user's Swift token, once Swift is up


def read_after_write(name, writer, description):
    """Every live edge other than the writer, the instant the write's 2xx came, answers what Swift
    answers now (the read-your-writes promise)."""
    global STALE_READS
    # The edges first, as fast as a client can: the purge has had no time of its own.
    answers = [(edge, edge.get("demo.test", "/" + name)) for edge in EDGES
               if edge is not writer and edge.process.poll() is None]
    expected = swift_now(name)
    for edge, (status, body, cache) in answers:
        got = body if status == 200 else None if status == 404 else status
        if got != expected:
            STALE_READS += 1
        check(f"{description}: {name} through {edge.name} right after the 2xx (X-Cache {cache})", expected, got)


def checker(objects, description):
    """Every object through every edge: its last written version, or 404 once deleted."""
    purges_done()
    for edge in EDGES:
        for name, expected in objects.items():
            status, body, _ = edge.get("demo.test", "/" + name)
            if expected is None:
                check(f"{description}: {name} deleted, through {edge.name}", 404, status)
            else:
                check(f"{description}: {name} through {edge.name}", (200, expected), (status, body))


def read_everywhere(objects):
    for edge in EDGES:
        for name in objects:
            edge.get("demo.test", "/" + name)
            edge.get("demo.test", "/" + name)  # cached now


# ---- the scenarios --------------------------------------------------------------------------------

def test_overwrites_and_deletes(conn, objects):
    for i in range(10):
        objects[f"doc/{i}.txt"] = f"v1 of {i}".encode()
        conn.put_object("public", f"doc/{i}.txt", objects[f"doc/{i}.txt"])
    purges_done()
    read_everywhere(objects)
    check("a second read is a hit", "HIT", EDGES[2].get("demo.test", "/doc/0.txt")[2])
    for i in range(5):
        objects[f"doc/{i}.txt"] = f"v2 of {i}".encode()
        conn.put_object("public", f"doc/{i}.txt", objects[f"doc/{i}.txt"])
    for i in range(5, 8):
        conn.delete_object("public", f"doc/{i}.txt")
        objects[f"doc/{i}.txt"] = None
    checker(objects, "overwrite and delete")


def repeats_moved():
    """Listings invalidations the live daemons have repeated (moved from edge:repeats to the log)."""
    total = 0
    for d in DAEMONS:
        if d.process.poll() is None:
            total += sum(int(float(l.split()[1])) for l in d.metrics().split("\n") if l.startswith("purge_repeats_total "))
    return total


def test_listings(conn):
    dirs = ["/a/b/c/", "/a/b/", "/a/", "/"]
    conn.put_object("public", "a/b/c/old.txt", b"old")
    purges_done()
    eventually("the first write's repeats done", lambda: redis("ZCARD", "edge:repeats").strip() == "0")
    for edge in EDGES:
        for d in dirs:
            edge.get("demo.test", d + "?format=json")
    before = repeats_moved()
    conn.put_object("public", "a/b/c/new.txt", b"new")
    # Swift updates listings asynchronously: what an edge lists right after the write may be the old
    # listing, purged again by the planned repeat. Waited for, not slept for.
    eventually("the new file's listings repeat moved to the purge log",
               lambda: repeats_moved() > before and redis("ZCARD", "edge:repeats").strip() == "0")
    purges_done()
    for edge in EDGES:
        names = lambda d: [e.get("name", e.get("subdir")) for e in json.loads(edge.get("demo.test", d + "?format=json")[1])]
        check(f"new file listed in its directory, {edge.name}", True, "a/b/c/new.txt" in names("/a/b/c/"))
        check(f"ancestors list its directory, {edge.name}", True, "a/b/c/" in names("/a/b/"))
        check(f"the top lists a/, {edge.name}", True, "a/" in names("/"))


def test_container_made_private(conn):
    conn.put_container("priv", headers={"X-Container-Read": ".r:*"})
    conn.put_object("priv", "secret.txt", b"was public")
    purges_done()
    for edge in EDGES:
        check(f"public read, {edge.name}", 200, edge.get("priv.test", "/secret.txt")[0])
        check(f"cached, {edge.name}", "HIT", edge.get("priv.test", "/secret.txt")[2])
    conn.post_container("priv", headers={"X-Container-Read": ""})
    purges_done()
    for edge in EDGES:
        status, _, cache = edge.get("priv.test", "/secret.txt")
        check(f"private now, not served from the cache, {edge.name} (X-Cache {cache})", 401, status)


def burst(conn, objects, count, during=None, at=5, prefix="burst", writer=None, deletes=True):
    """`count` overwrites (and every fifth a delete) through `conn`, each followed at once by reads
    through the other edges; `during()` runs after `at` of them. The longest write, in seconds."""
    longest = 0
    writer = EDGES[0] if writer is None else writer
    for i in range(count):
        name = f"{prefix}/{i % 10}.txt"
        start = time.monotonic()
        if deletes and i % 5 == 4 and objects.get(name) is not None:
            conn.delete_object("public", name)
            objects[name] = None
        else:
            objects[name] = f"{prefix} {i}".encode()
            conn.put_object("public", name, objects[name])
        longest = max(longest, time.monotonic() - start)
        read_after_write(name, writer, prefix)
        if i == at and during is not None:
            during()
    return longest


def test_writes_confirmed_by_every_edge(conn, objects):
    read_everywhere(objects)
    answer = {}
    conn.put_object("public", "doc/confirmed.txt", b"seen by all", response_dict=answer)
    objects["doc/confirmed.txt"] = b"seen by all"
    check("the write's answer says every edge applied it", "3", answer["headers"].get("x-purge-confirmed"))
    burst(conn, objects, 30, prefix="ryw")
    # Straight to Swift: the middleware holds Swift's 2xx until the daemon says the edges applied it.
    direct = swift.Connection(preauthurl=f"http://127.0.0.1:{SWIFT_PORT}/v1/AUTH_test", preauthtoken=TOKEN)
    direct.put_object("public", "doc/direct.txt", b"straight to swift", response_dict=answer)
    objects["doc/direct.txt"] = b"straight to swift"
    check("Swift's own answer says every edge applied it", "3", answer["headers"].get("x-purge-confirmed"))
    read_everywhere(objects)
    burst(direct, objects, 30, prefix="direct", writer=object())


def listing_after_write(directory, writer, description):
    """As read_after_write, for the listing of `directory` (names only)."""
    names = lambda body: sorted(e.get("name", e.get("subdir")) for e in json.loads(body))
    answers = [(edge, edge.get("demo.test", f"/{directory}?format=json")) for edge in EDGES
               if edge is not writer and edge.process.poll() is None]
    c = http.client.HTTPConnection("127.0.0.1", SWIFT_PORT, timeout=10)
    c.request("GET", f"/v1/AUTH_test/public?format=json&prefix={urllib.parse.quote(directory)}&delimiter=/",
              headers={"X-Auth-Token": TOKEN})
    expected = names(c.getresponse().read())
    for edge, (status, body, cache) in answers:
        check(f"{description}: the listing of {directory} through {edge.name} (X-Cache {cache})", expected,
              names(body))


def test_swift_cli(objects):
    """The standard client, as a customer runs it: logged in through an edge (its storage URL then
    names the edge), and again straight to Swift; every write kind read at once on the others."""
    os.makedirs(f"{WORK}/cli", exist_ok=True)

    def cli(port, *args):
        subprocess.run(["swift", "-A", f"http://127.0.0.1:{port}/auth/v1.0", "-U", "test:tester", "-K",
                        "testing", *args], cwd=f"{WORK}/cli", check=True, capture_output=True)

    def local(name, data):
        path = f"{WORK}/cli/{name}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    # An SLO's segments go to public_segments: readable by all, as its manifest is.
    cli(SWIFT_PORT, "post", "public_segments", "-r", ".r:*")
    for port, p, writer in ((EDGES[0].port, "cli-edge", EDGES[0]), (SWIFT_PORT, "cli-swift", None)):
        kinds = f"{p} (through {'an edge' if writer else 'Swift'})"
        local(f"{p}/f.txt", b"version 1")
        cli(port, "upload", "public", f"{p}/f.txt")
        read_everywhere({f"{p}/f.txt": 1, f"{p}/g.txt": 1, f"{p}/big.bin": 1})
        listing_after_write(f"{p}/", writer, f"{kinds}: cached listing")
        local(f"{p}/f.txt", b"version 2, longer")
        cli(port, "upload", "public", f"{p}/f.txt")
        read_after_write(f"{p}/f.txt", writer, f"{kinds}: swift upload over an object")
        cli(port, "post", "public", f"{p}/f.txt", "-H", "X-Object-Meta-Color: blue")
        for edge in EDGES:
            if edge is not writer:
                c = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
                c.request("GET", f"/{p}/f.txt", headers={"Host": "demo.test"})
                r = c.getresponse()
                r.read()
                check(f"{kinds}: swift post's metadata through {edge.name}", "blue", r.getheader("X-Object-Meta-Color"))
        cli(port, "copy", "public", f"{p}/f.txt", "--destination", f"/public/{p}/g.txt")
        read_after_write(f"{p}/g.txt", writer, f"{kinds}: swift copy onto a cached 404")
        listing_after_write(f"{p}/", writer, f"{kinds}: the new name in the listing")
        local(f"{p}/big.bin", os.urandom(3000))
        cli(port, "upload", "--use-slo", "--segment-size", "1024", "public", f"{p}/big.bin")
        read_after_write(f"{p}/big.bin", writer, f"{kinds}: an SLO uploaded")
        local(f"{p}/big.bin", os.urandom(3000))
        cli(port, "upload", "--use-slo", "--segment-size", "1024", "public", f"{p}/big.bin")
        read_after_write(f"{p}/big.bin", writer, f"{kinds}: an SLO uploaded again")
        cli(port, "delete", "public", f"{p}/f.txt", f"{p}/g.txt")
        read_after_write(f"{p}/f.txt", writer, f"{kinds}: swift delete")
        read_after_write(f"{p}/g.txt", writer, f"{kinds}: swift delete")
        listing_after_write(f"{p}/", writer, f"{kinds}: the listing after swift delete")


def test_bulk_delete_and_a_later_expiry(conn, objects):
    for name in ("bulk/a.txt", "bulk/b c.txt", "bulk/kept.txt"):
        objects[name] = f"to bulk-delete {name}".encode()
        conn.put_object("public", name, objects[name])
    purges_done()
    read_everywhere(objects)
    c = http.client.HTTPConnection("127.0.0.1", EDGES[0].port, timeout=30)
    c.request("POST", "/v1/AUTH_test?bulk-delete", body=b"/public/bulk/a.txt\n/public/bulk/b%20c.txt\n",
              headers={"X-Auth-Token": TOKEN, "Content-Type": "text/plain", "Accept": "application/json"})
    r = c.getresponse()
    result = json.loads(r.read())
    check("the bulk delete through an edge deleted both", (200, 2), (r.status, result.get("Number Deleted")))
    objects["bulk/a.txt"] = objects["bulk/b c.txt"] = None
    purges_done()
    for edge in EDGES:
        check(f"a deleted name is gone on {edge.name}", 404, edge.get("demo.test", "/bulk/b%20c.txt")[0])
        # Exactly what it deleted: the rest of the cache is not even revalidated.
        check(f"a name it did not delete is still a HIT on {edge.name}", "HIT",
              edge.get("demo.test", "/bulk/kept.txt")[2])
    # An expiry set later, straight to Swift: no edge serves the object past it.
    answer = {}
    swift.post_object(f"http://127.0.0.1:{SWIFT_PORT}/v1/AUTH_test", TOKEN, "public", "bulk/kept.txt",
                      headers={"X-Delete-After": "3"}, response_dict=answer)
    # Swift still serves it for 2-3 s (X-Delete-At is whole seconds): the edges must too, and
    # the copies they store now must not outlive it.
    read_after_write("bulk/kept.txt", None, "an expiry set by a POST")
    for edge in EDGES:
        eventually(f"stored until the expiry by {edge.name}",
                   lambda: edge.get("demo.test", "/bulk/kept.txt")[2] == "HIT")
    eventually("Swift expires it", lambda: swift_now("bulk/kept.txt") is None)
    objects["bulk/kept.txt"] = None
    for edge in EDGES:
        check(f"expired: not served by {edge.name}", 404, edge.get("demo.test", "/bulk/kept.txt")[0])


def test_edge_killed_during_writes(conn, objects):
    read_everywhere(objects)
    victim = EDGES[1]
    longest = burst(conn, objects, 40, during=victim.kill, prefix="kill")
    # The writes after the kill waited for the dead edge only until its lease (1 s) ran out.
    check("a dead edge holds a write up for less than the bound (5 s)", True, longest < 4)
    victim.start()
    checker(objects, "an edge killed with -9 during writes, restarted")


def test_redis_restarted_during_writes(conn, objects):
    read_everywhere(objects)
    def outage(stop):
        stop()
        # No edge could hear of a write now: it is refused before Swift sees it.
        status, headers = raw_write(EDGES[0].port, "PUT", "outage/0.txt", b"written while Redis was down")
        check("a write while Redis is away is refused", (503, True), (status, "retry-after" in headers))
        status, _ = raw_write(SWIFT_PORT, "PUT", "outage/0.txt", b"written while Redis was down")
        check("and straight to Swift too", 503, status)
        check("Swift never saw it", None, swift_now("outage/0.txt"))
        dev("redis-dev", "start")
        # Writes are taken again once the edges hear from the bus (until then a 503 says retry).
        eventually("every edge hears from the bus again", lambda: all(
            e.metric("edge_purge_bus_connected") == 1 for e in EDGES if e.process.poll() is None))
    burst(conn, objects, 30, during=lambda: outage(lambda: dev("redis-dev", "stop")), prefix="redis")
    checker(objects, "Redis restarted during writes")

    def kill_redis():
        with open(f"{WORK}/redis/redis.pid") as f:
            os.kill(int(f.read()), signal.SIGKILL)
        # Unreaped (its parent was redis-dev's shell), it would still look alive to redis-dev.
        os.remove(f"{WORK}/redis/redis.pid")
        eventually("Redis is gone", lambda: subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"],
                                                           capture_output=True).returncode != 0)
    burst(conn, objects, 30, during=lambda: outage(kill_redis), prefix="redis-kill")
    checker(objects, "Redis killed with SIGKILL during writes")


def test_daemon_killed_mid_stream(conn, objects):
    read_everywhere(objects)
    def kill_daemon():
        DAEMONS[0].process.kill()
        DAEMONS[0].process.wait()
    burst(conn, objects, 40, during=kill_daemon, at=3, prefix="daemon")
    checker(objects, "one of two purge daemons killed mid-stream")
    check("the survivor plans alone", True, DAEMONS[1].process.poll() is None)


def test_edge_cut_off(conn, objects):
    cut_off = EDGES[2]
    read_everywhere(objects)
    PROXY.cut()
    # Writes go on through the others at once; each read right after shows no stale version on
    # any edge, the cut-off one included (it never heard of the purges, and revalidates).
    burst(conn, objects, 10, prefix="cut")
    check("the cut-off edge stopped trusting its cache", 0, cut_off.metric("edge_trusted"))
    status, headers = raw_write(cut_off.port, "PUT", "doc/0.txt", b"through the cut-off edge")
    check("a write through the cut-off edge is refused before Swift sees it", (503, True),
          (status, "retry-after" in headers))
    check("Swift kept the version before", objects["doc/0.txt"], swift_now("doc/0.txt"))
    PROXY.restore()
    eventually("caught up again, it trusts its cache", lambda: cut_off.metric("edge_trusted") == 1)
    checker(objects, "an edge cut off from Redis past its bound")


def test_purge_api_security(token):
    api = DAEMONS[1].port

    def post(body, headers):
        c = http.client.HTTPConnection("127.0.0.1", api)
        c.request("POST", "/v1/purge", body=body if isinstance(body, bytes) else json.dumps(body).encode(),
                  headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"{}")

    bearer = lambda k: {"Authorization": f"Bearer {k}"}
    check("own purge", 202, post({"urls": ["http://demo.test/doc/1.txt"]}, bearer(PURGE_KEY))[0])
    check("cross-tenant by key", 403, post({"urls": ["http://shop.test/a"]}, bearer(PURGE_KEY))[0])
    check("cross-tenant hosts", 403, post({"hosts": ["shop.test"]}, bearer(PURGE_KEY))[0])
    check("forged key", 401, post({"urls": ["http://demo.test/a"]}, bearer("guess"))[0])
    check("own purge by Swift token", 202, post({"prefixes": ["http://demo.test/doc/"]}, {"X-Auth-Token": token})[0])
    check("bad token", 403, post({"urls": ["http://demo.test/a"]}, {"X-Auth-Token": "AUTH_tk_forged"})[0])
    check("bad token, tags", 403, post({"tags": ["x"], "tenant": "demo"}, {"X-Auth-Token": "AUTH_tk_forged"})[0])
    other = swift_token("test2:tester2", "testing2")
    check("another account's token", 403, post({"urls": ["http://demo.test/a"]}, {"X-Auth-Token": other})[0])
    check("malformed body", 400, post(b"{urls:", bearer(PURGE_KEY))[0])
    check("oversize body", 400, post(b" " * 70000 + b"{}", bearer(PURGE_KEY))[0])
    # A captured request replayed after its key was rotated out is refused.
    write_tenants([PURGE_KEY + "-rotated"])
    for d in DAEMONS:
        if d.process.poll() is None:
            d.process.send_signal(signal.SIGHUP)
    eventually("the rotated key is in force",
               lambda: post({"urls": ["http://demo.test/doc/1.txt"]}, bearer(PURGE_KEY))[0] == 401)
    check("the new key works", 202, post({"urls": ["http://demo.test/doc/1.txt"]}, bearer(PURGE_KEY + "-rotated"))[0])


def peak_rss_kib(process):
    with open(f"/proc/{process.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_large_upload(token):
    edge = EDGES[0]
    big = f"{WORK}/one-gib"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    before = peak_rss_kib(edge.process)
    url = f"http://127.0.0.1:{edge.port}/v1/AUTH_test/public/big.bin"
    subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-T", big, "-H", f"X-Auth-Token: {token}", url], check=True)
    growth_mib = (peak_rss_kib(edge.process) - before) / 1024
    print(f"1 GiB upload through the edge: peak resident memory grew {growth_mib:.1f} MiB")
    check("1 GiB upload in bounded memory (< 64 MiB growth)", True, growth_mib < 64)
    head = swift.head_object(f"http://127.0.0.1:{SWIFT_PORT}/v1/AUTH_test", token, "public", "big.bin")
    check("all of it reached Swift", str(1 << 30), head["content-length"])
    # A chunked upload (no length) too.
    chunked = subprocess.run(f"head -c 67108864 /dev/zero | curl -fsS -o /dev/null -T - -H 'X-Auth-Token: {token}' "
                             f"http://127.0.0.1:{edge.port}/v1/AUTH_test/public/chunked.bin", shell=True)
    check("chunked upload", 0, chunked.returncode)
    head = swift.head_object(f"http://127.0.0.1:{SWIFT_PORT}/v1/AUTH_test", token, "public", "chunked.bin")
    check("all of the chunked body reached Swift", str(64 << 20), head["content-length"])
    os.remove(big)


def main():
    global DAEMONS, EDGES, PROXY, TOKEN
    dev("redis-dev", "start")
    dev("swift-dev", "start")
    token = swift_token()
    swift.put_container(f"http://127.0.0.1:{SWIFT_PORT}/v1/AUTH_test", token, "public",
                        headers={"X-Container-Read": ".r:*,.rlistings"})
    write_tenants([PURGE_KEY])
    TOKEN = token
    DAEMONS = [Daemon("purge-1"), Daemon("purge-2")]
    PROXY = RedisProxy()
    EDGES = []
    EDGES += [Edge(1), Edge(2)]
    EDGES.append(Edge(3, redis_port=PROXY.port))
    conn = through(EDGES[0], token)
    objects = {}
    for scenario in (lambda: test_overwrites_and_deletes(conn, objects), lambda: test_listings(through(EDGES[1], token)),
                     lambda: test_container_made_private(conn), lambda: test_writes_confirmed_by_every_edge(conn, objects),
                     lambda: test_bulk_delete_and_a_later_expiry(conn, objects), lambda: test_swift_cli(objects),
                     lambda: test_edge_killed_during_writes(conn, objects),
                     lambda: test_redis_restarted_during_writes(conn, objects),
                     lambda: test_daemon_killed_mid_stream(conn, objects), lambda: test_edge_cut_off(conn, objects),
                     lambda: test_purge_api_security(token), lambda: test_large_upload(token)):
        scenario()
    print(f"{CHECKS} passed, 0 failed; {STALE_READS} stale reads right after a 2xx")


if __name__ == "__main__":
    try:
        main()
    finally:
        for name, process in PROCESSES:
            if process.poll() is None:
                process.terminate()
        for name, process in PROCESSES:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for service in ("swift-dev", "redis-dev"):
            subprocess.run([f"{SOURCE}/scripts/{service}", "stop"], env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if os.environ.get("KEEP_WORK"):
            print(f"work directory kept: {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
