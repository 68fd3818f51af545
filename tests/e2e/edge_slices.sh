#!/usr/bin/env bash
# Large objects in slices, against a real Swift: a 200 MiB object larger than either zone (once
# relayed whole, Range dropped); a cold seek fetches one slice, from its byte first; random
# ranges, suffixes and several ranges compared byte for byte with Swift's own answer; full
# downloads cold and warm; an overwrite
# between two slices of one download (cut, never spliced); a write through the edge while a slow
# download streams; a DLO and an SLO uploaded with the swift CLI; the edge's memory while 20 slow
# clients stream. Release build only (hundreds of MiB through Swift's Python proxy).
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
if ! grep -qx 'CMAKE_BUILD_TYPE:STRING=Release' "$build_dir/CMakeCache.txt" 2>/dev/null ||
  grep -qx 'EDGE_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  echo "skipped: large objects run in the Release build only"
  exit 0
fi
source "$source_dir/tests/e2e/lib/dev_service.sh"
source "$source_dir/tests/e2e/lib/edge.sh"
use_dev_service swift-dev SWIFT_DEV
trap 'stop_started; "$dev_service" stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

"$source_dir/scripts/swift-dev" start >/dev/null
swift=http://127.0.0.1:$port
token=$(swift_token "$swift")
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" -H 'X-Container-Read: .r:*,.rlistings' "$swift/v1/AUTH_test/media"
put() { curl -fsS -o /dev/null -X PUT --data-binary "@$2" -H "X-Auth-Token: $token" "$swift/v1/AUTH_test/media/$1"; }
head -c $((200 << 20)) /dev/urandom >"$state/v1.bin"
head -c $((200 << 20)) /dev/urandom >"$state/v2.bin"
head -c $((40 << 20)) /dev/urandom >"$state/large.bin"
put movie.bin "$state/v1.bin"
put seek.bin "$state/v1.bin"
# A DLO and an SLO of 8 MiB segments, as users make them.
swift_cli() { swift -A "$swift/auth/v1.0" -U test:tester -K testing "$@"; }
(cd "$state" && swift_cli upload -S $((8 << 20)) --object-name dlo.bin media large.bin >/dev/null)
(cd "$state" && swift_cli upload -S $((8 << 20)) --use-slo --object-name slo.bin media large.bin >/dev/null)
# Swift reads a large object's segments with the client's rights (a DLO's by listing their
# container): anyone may read and list them too.
swift_cli post -r '.r:*,.rlistings' media_segments

edge_dir=$state/edge
mkdir -p "$edge_dir"
edge_port=$(free_port)
admin_port=$(free_port)
cat >"$edge_dir/vhosts.toml" <<CONF
[defaults]
origin.url = "$swift"
[[tenant]]
name = "media"
domains = ["media.test"]
origin.account = "AUTH_test"
origin.container = "media"
[[tenant]]
name = "api"
domains = ["api.test"]
origin.kind = "swift-api"
CONF
cat >"$edge_dir/edge.toml" <<CONF
node_id = "e2e-slices"
tenants = "vhosts.toml"
listen.port = $edge_port
admin.port = $admin_port
[[cache.zone]]
path = "zone-a"
size = "160M"
[[cache.zone]]
path = "zone-b"
size = "160M"
CONF
"$build_dir/edge" --check --config "$edge_dir/edge.toml" >/dev/null
start_edge "$edge_dir"

python3 - "$swift" "$token" "http://127.0.0.1:$edge_port" "http://127.0.0.1:$admin_port" "$state" "$edge_pid" <<'PY'
import hashlib, http.client, random, subprocess, sys, threading, time, urllib.parse
swift, token, edge, admin, state, edge_pid = sys.argv[1:7]
v1 = open(f"{state}/v1.bin", "rb").read()
v2 = open(f"{state}/v2.bin", "rb").read()
large = open(f"{state}/large.bin", "rb").read()
passed = 0

def check(what, ok, detail=""):
    global passed
    if not ok:
        print(f"FAIL: {what} {detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1

def request(base, path, headers=None, method="GET", host="media.test", body=None):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = dict(headers or {})
    h.setdefault("Host", host)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = b""
    try:
        data = r.read()
    except http.client.IncompleteRead as e:
        data = e.partial  # a cut answer
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data

def swift_get(name, headers=None):
    h = {"X-Auth-Token": token}
    h.update(headers or {})
    return request(swift, f"/v1/AUTH_test/media/{name}", h, host=urllib.parse.urlparse(swift).netloc)

def metric(name):
    for line in request(admin, "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0

fetched = 'edge_slices_total{event="fetched"}'

def stored_hit(path, first, length):
    """Whether `length` bytes from `first` come as a hit once the fetch in flight is stored."""
    deadline = time.monotonic() + 10
    while True:
        status, head, body = request(edge, path, {"Range": f"bytes={first}-{first + length - 1}"})
        if head.get("x-cache") == "HIT" or time.monotonic() > deadline:
            return status == 206 and head.get("x-cache") == "HIT", body
        time.sleep(0.05)
# A byte range of an object larger than any zone: exactly the bytes asked for, from one slice.
status, head, body = request(edge, "/movie.bin", {"Range": "bytes=0-9"})
check("a range of an object larger than a zone is a 206", status == 206, status)
check("... of the 10 bytes asked for", body == v1[:10])
check("... fetched as one slice", metric(fetched) == 1, metric(fetched))
# A cold seek to 90%, 3 MiB into its slice: one slice from Swift, the seek's bytes first.
at = len(v1) * 9 // 10 + (3 << 20) + 12345
t0 = time.monotonic()
status, head, body = request(edge, "/seek.bin", {"Range": f"bytes={at}-{at + 65535}"})
seek_ms = (time.monotonic() - t0) * 1000
check("a cold seek to 90% is a 206 of the bytes asked", status == 206 and body == v1[at:at + 65536])
check("... from one more slice", metric(fetched) == 2, metric(fetched))
check("... asked for from the seek's byte first", metric('edge_slices_total{event="seek"}') == 1)
slice_first = at // (4 << 20) * (4 << 20)
hit, body = stored_hit("/seek.bin", slice_first, 4 << 20)
check("... and stored whole, its bytes before the seek too", hit and body == v1[slice_first:slice_first + (4 << 20)])
print(f"cold 64 KiB seek at 90% of 200 MiB: {seek_ms:.1f} ms")
# Random ranges, byte for byte as Swift answers them.
rng = random.Random(14)
for _ in range(25):
    first = rng.randrange(len(v1))
    last = min(len(v1) - 1, first + rng.randrange(12 << 20))
    spec = rng.choice([f"bytes={first}-{last}", f"bytes=-{last - first + 1}", f"bytes={first}-"])
    if spec.endswith("-") and len(v1) - first > (16 << 20):
        spec = f"bytes={first}-{last}"
    s_status, s_head, s_body = swift_get("movie.bin", {"Range": spec})
    e_status, e_head, e_body = request(edge, "/movie.bin", {"Range": spec})
    check(f"range {spec} as Swift answers it", (e_status, e_head.get("content-range"), e_body) ==
          (s_status, s_head.get("content-range"), s_body), (e_status, e_head.get("content-range")))
multi = "bytes=100-199,50000000-50000099"
e_status, e_head, e_body = request(edge, "/movie.bin", {"Range": multi})
check("several ranges: a multipart answer", e_status == 206 and
      e_head.get("content-type", "").startswith("multipart/byteranges"))
check("... holding both parts", v1[100:200] in e_body and v1[50000000:50000100] in e_body)
# Whole downloads, cold (slice after slice) then warm.
for label in ("cold", "warm"):
    t0 = time.monotonic()
    status, head, body = request(edge, "/movie.bin")
    took = time.monotonic() - t0
    check(f"a {label} full download is the whole object", status == 200 and
          hashlib.sha256(body).digest() == hashlib.sha256(v1).digest())
    print(f"{label} full download of 200 MiB: {200 / took:.0f} MiB/s")
check("the warm one is a hit", head.get("x-cache") == "HIT", head.get("x-cache"))
slices = metric(fetched)
# An overwrite between two slices, with no purge: the download is cut, never spliced.
request(edge, "/seek.bin", {"Range": "bytes=0-9"})  # its first slice, of v1, is stored
put = http.client.HTTPConnection(urllib.parse.urlparse(swift).hostname, urllib.parse.urlparse(swift).port)
put.request("PUT", "/v1/AUTH_test/media/seek.bin", body=v2, headers={"X-Auth-Token": token})
check("the overwrite is stored", put.getresponse().status == 201)
status, head, body = request(edge, "/seek.bin")
check("a download across the overwrite is cut short", len(body) < len(v1), len(body))
check("... with bytes of the version it began with only", v1.startswith(body))
check("... counted", metric('edge_slices_total{event="version_changed"}') >= 1)
status, head, body = request(edge, "/seek.bin")
check("the next download is the new version, whole", hashlib.sha256(body).digest() == hashlib.sha256(v2).digest())
# A write through the edge while a slow download streams: the download never mixes versions.
result = {}
def slow_download():
    u = urllib.parse.urlparse(edge)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    c.request("GET", "/movie.bin", headers={"Host": "media.test"})
    r = c.getresponse()
    got = bytearray()
    while True:
        try:
            chunk = r.read(1 << 20)
        except http.client.IncompleteRead as e:
            got += e.partial
            break
        if not chunk:
            break
        got += chunk
        time.sleep(0.01)
    result["body"] = bytes(got)
reader = threading.Thread(target=slow_download)
reader.start()
time.sleep(0.5)
status, _, _ = request(edge, "/v1/AUTH_test/media/movie.bin", {"X-Auth-Token": token}, method="PUT", host="api.test",
                       body=v2)
check("an overwrite through the edge", status == 201, status)
reader.join()
got = result["body"]
check("the download streaming meanwhile holds one version only", v1.startswith(got) or v2.startswith(got),
      len(got))
status, head, body = request(edge, "/movie.bin")
check("after the write, the new version", hashlib.sha256(body).digest() == hashlib.sha256(v2).digest())
# Swift large objects: their answers through the edge are Swift's.
for name in ("dlo.bin", "slo.bin"):
    # A cold seek 1 MiB into slice 5: Swift's two ranged answers carry one ETag, so it is stored.
    seeks, bad = metric('edge_slices_total{event="seek"}'), metric('edge_slices_total{event="bad_answer"}')
    e = request(edge, f"/{name}", {"Range": "bytes=22000000-"})
    s = swift_get(name, {"Range": "bytes=22000000-"})
    check(f"a cold seek into the {name} as Swift", (e[0], e[2]) == (s[0], s[2]), (e[0], s[0]))
    check("... the seek's bytes first", metric('edge_slices_total{event="seek"}') == seeks + 1)
    hit, body = stored_hit(f"/{name}", 20971520, 10)
    check("... its slice stored", hit and body == large[20971520:20971530])
    check("... no answer refused", metric('edge_slices_total{event="bad_answer"}') == bad)
    status, head, body = request(edge, f"/{name}")
    check(f"the {name} whole", status == 200 and body == large, status)
    for spec in ("bytes=1000-9999999", "bytes=-5000000", "bytes=33554432-"):
        e = request(edge, f"/{name}", {"Range": spec})
        s = swift_get(name, {"Range": spec})
        check(f"{name} {spec} as Swift", (e[0], e[2]) == (s[0], s[2]), (e[0], s[0]))
# Swift gives every object, DLO and SLO a strong ETag, even on ranges: each was sliced.
check("no probe without a strong ETag", metric('edge_slices_total{event="no_validator"}') == 0)
# 20 slow clients at once: the edge's memory stays bounded.
def rss_mib():
    for line in open(f"/proc/{edge_pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
peak = [rss_mib()]
clients = [threading.Thread(target=slow_download) for _ in range(20)]
for t in clients:
    t.start()
while any(t.is_alive() for t in clients):
    peak.append(rss_mib())
    time.sleep(0.2)
print(f"edge RSS during 20 slow downloads: peak {max(peak):.0f} MiB")
check("the edge's memory stays under 256 MiB while 20 slow clients stream", max(peak) < 256, max(peak))
print(f"edge_slices: {passed} checks passed")
PY
