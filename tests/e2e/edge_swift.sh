#!/usr/bin/env bash
# The edge binary in front of a real Swift: objects, listings, ranges, 304s, cached 404s, a private
# container never served from the cache, coalesced misses counted in Swift's own proxy log, SIGHUP
# reload, restart with a warm cache, a zone directory failing under load, SIGTERM.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/dev_service.sh"
source "$source_dir/tests/e2e/lib/edge.sh"
use_dev_service swift-dev SWIFT_DEV
swift_proxy=""  # set while Swift's proxy is stopped (SIGSTOP): continued before it is stopped for good
trap '[ -z "$swift_proxy" ] || kill -CONT "$swift_proxy" 2>/dev/null; stop_started; "$dev_service" stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

"$source_dir/scripts/swift-dev" start >/dev/null
swift=http://127.0.0.1:$port
token=$(swift_token "$swift")
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" -H 'X-Container-Read: .r:*,.rlistings' "$swift/v1/AUTH_test/public"
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" "$swift/v1/AUTH_test/private"
put() { curl -fsS -o /dev/null -X PUT --data-binary "@$2" -H "X-Auth-Token: $token" "$swift/v1/AUTH_test/$1"; }
printf 'hello edge' >"$state/hello.txt"
head -c 1048576 /dev/urandom >"$state/big.bin"
put public/docs/hello.txt "$state/hello.txt"
put public/docs/sub/deeper.txt "$state/hello.txt"
put public/big.bin "$state/big.bin"
put private/secret.txt "$state/hello.txt"
for i in $(seq 1 40); do put "public/load/$i.txt" "$state/hello.txt"; done

edge_dir=$state/edge
mkdir -p "$edge_dir"
edge_port=$(free_port)
admin_port=$(free_port)
cat >"$edge_dir/vhosts.toml" <<CONF
[defaults]
origin.url = "$swift"
[[tenant]]
name = "demo"
domains = ["demo.test"]
origin.account = "AUTH_test"
origin.container = "public"
cache.listings = true
[[tenant]]
name = "private"
domains = ["private.test"]
origin.account = "AUTH_test"
origin.container = "private"
[[tenant]]
name = "api"
domains = ["api.test"]
origin.kind = "swift-api"
CONF
cat >"$edge_dir/edge.toml" <<CONF
node_id = "e2e"
tenants = "vhosts.toml"
listen.port = $edge_port
admin.port = $admin_port
log.access = "access.log"
cache.memory = 0  # every hit reads its zone, so a dying zone is seen under load
[[cache.zone]]
path = "zone-a"
size = "64M"
[[cache.zone]]
path = "zone-b"
size = "64M"
CONF
"$build_dir/edge" --check --config "$edge_dir/edge.toml" >/dev/null
start_edge "$edge_dir"
e=http://127.0.0.1:$edge_port
get() {  # get HOST PATH [curl args...] -> "status x-cache" and the body in $state/body
  local host=$1 path=$2
  shift 2
  # In $(...) set -e is off: a failed curl prints nothing, so its check fails, never judged from
  # an earlier request's files.
  rm -f "$state/body" "$state/head"
  curl -sS -o "$state/body" -D "$state/head" -H "Host: $host" "$@" "$e$path" >/dev/null ||
    { echo "FAIL: curl $host$path exited $?" >&2; return 1; }
  echo "$(awk 'NR==1 {print $2}' "$state/head") $(tr -d '\r' <"$state/head" | awk 'tolower($1)=="x-cache:" {print $2}')"
}
origin_gets() { grep -c "GET $1 HTTP" "$state/log/proxy.log" || true; }
metric() { curl -fsS "http://127.0.0.1:$admin_port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

# Objects: a miss, then a hit with the same bytes.
check "first read" "200 MISS" "$(get demo.test /docs/hello.txt)"
check "body" "hello edge" "$(cat "$state/body")"
check "second read" "200 HIT" "$(get demo.test /docs/hello.txt)"
check "api host shares the entry" "200 HIT" "$(get api.test /v1/AUTH_test/public/docs/hello.txt)"
check "origin saw one GET" 1 "$(origin_gets /v1/AUTH_test/public/docs/hello.txt)"
# Ranges and conditionals from the cache.
check "range" "206 HIT" "$(get demo.test /docs/hello.txt -H 'Range: bytes=6-9')"
check "range body" "edge" "$(cat "$state/body")"
etag=$(tr -d '\r' <"$state/head" | awk 'tolower($1)=="etag:" {print $2}')
check "304" "304 HIT" "$(get demo.test /docs/hello.txt -H "If-None-Match: $etag")"
check "416" "416 HIT" "$(get demo.test /docs/hello.txt -H 'Range: bytes=100-')"
# Listings, by prefix and format.
check "listing" "200 MISS" "$(get demo.test '/docs/?format=json')"
check "listing names" '["docs/hello.txt","docs/sub/"]' \
  "$(python3 -c 'import json,sys; print(json.dumps([e.get("name", e.get("subdir")) for e in json.load(open(sys.argv[1]))], separators=(",",":")))' "$state/body")"
check "listing cached" "200 HIT" "$(get demo.test '/docs/?format=json')"
check "plain listing is another entry" "200 MISS" "$(get demo.test /docs/)"
check "api listing" "200 MISS" "$(get api.test '/v1/AUTH_test/public?prefix=docs/&delimiter=/&format=json')"
# 404s are cached.
check "404" "404 MISS" "$(get demo.test /nope.txt)"
check "404 cached" "404 HIT" "$(get demo.test /nope.txt)"
# A private container: anonymous is refused and never cached; a token's answer is the client's only.
check "private anonymous" "401 BYPASS" "$(get private.test /secret.txt)"
check "private anonymous again" "401 BYPASS" "$(get private.test /secret.txt)"
check "private with token" "200 BYPASS" "$(get api.test /v1/AUTH_test/private/secret.txt -H "X-Auth-Token: $token")"
check "token answer not shared" "401 BYPASS" "$(get api.test /v1/AUTH_test/private/secret.txt)"
check "private reached the origin each time" 4 "$(origin_gets /v1/AUTH_test/private/secret.txt)"
# Path tricks and unknown hosts.
check "traversal" "400 " "$(get demo.test '/docs/%2e%2e/%2e%2e/etc/passwd')"
check "unknown host" "421 " "$(get nobody.test /docs/hello.txt)"

# 32 simultaneous misses of one 1 MiB object: one origin GET, 32 whole answers. Swift's proxy is
# stopped until all 32 are at the edge and its one fetch is out, so they overlap however slowly
# they start; each is then a MISS (one that came after the fill would be a HIT).
swift_proxy=$(cat "$state/run/proxy.pid")
kill -STOP "$swift_proxy"
clients=()
for i in $(seq 1 32); do
  curl -sS -o "$state/big.$i" -w '%{http_code} %header{x-cache}\n' -H 'Host: demo.test' "$e/big.bin" >"$state/code.$i" &
  clients+=($!)
done
all_waiting() { [ "$(metric edge_connections)" = 32 ] && [ "$(metric edge_origin_fetches_in_flight)" = 1 ]; }
eventually "32 clients waiting on one origin fetch" all_waiting
kill -CONT "$swift_proxy"
swift_proxy=""
wait "${clients[@]}"
for i in $(seq 1 32); do
  check "coalesced answer $i" "200 MISS" "$(cat "$state/code.$i")"
  cmp -s "$state/big.bin" "$state/big.$i" || { echo "FAIL: coalesced body $i differs" >&2; exit 1; }
done
check "32 misses, one origin GET" 1 "$(origin_gets /v1/AUTH_test/public/big.bin)"

# SIGHUP: a broken tenant file is refused and the old one keeps serving; a good one takes effect.
cp "$edge_dir/vhosts.toml" "$state/vhosts.good"
printf '[[tenant]]\nname = 3\n' >"$edge_dir/vhosts.toml"
refusals=$(grep -c "reload refused" "$edge_dir/edge.log" || true)
kill -HUP "$edge_pid"
eventually "the bad reload handled" grown "reload refused" "$edge_dir/edge.log" "$refusals"
check "bad reload refused" "200 HIT" "$(get demo.test /docs/hello.txt)"
sed 's/"demo.test"/"demo.test", "alias.test"/' "$state/vhosts.good" >"$edge_dir/vhosts.toml"
reloads=$(grep -c "edge: reloaded " "$edge_dir/edge.log" || true)
kill -HUP "$edge_pid"
eventually "the good reload handled" grown "edge: reloaded " "$edge_dir/edge.log" "$reloads"
check "good reload applied" "200 HIT" "$(get alias.test /docs/hello.txt)"

# Access log: buffered, flushed within a second, one line per request with the tenant.
eventually "the access log line of a hit" \
  grep -q $'\tdemo\tdemo.test\tGET\t/docs/hello.txt\t200\t10\tHIT\t' "$edge_dir/access.log"
# Metrics.
metrics=$(curl -fsS "http://127.0.0.1:$admin_port/metrics")
grep -q 'edge_cache_responses_total{tenant="demo",cache="HIT"}' <<<"$metrics" || { echo "FAIL: metrics" >&2; exit 1; }
grep -q 'edge_zone_healthy{zone=".*zone-a"} 1' <<<"$metrics" || { echo "FAIL: zone metrics" >&2; exit 1; }

# Restart: SIGTERM drains and exits 0; the cache is warm when the edge comes back.
kill -TERM "$edge_pid"
wait "$edge_pid" && rc=0 || rc=$?
check "graceful exit" 0 "$rc"
start_edge "$edge_dir"
e=http://127.0.0.1:$edge_port  # start_edge moves to other ports if these were taken meanwhile
check "warm after restart" "200 HIT" "$(get demo.test /docs/hello.txt)"
check "warm 1 MiB after restart" "200 HIT" "$(get demo.test /big.bin)"

# A zone directory fails under load: no client request fails.
python3 - "$edge_port" >"$state/load.out" <<'PY' &
import http.client, sys, time
port, failures, done = int(sys.argv[1]), 0, 0
end = time.time() + 3
while time.time() < end:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(1, 41):
        c.request("GET", f"/load/{i}.txt", headers={"Host": "demo.test"})
        r = c.getresponse()
        body = r.read()
        done += 1
        if r.status != 200 or body != b"hello edge":
            failures += 1
    c.close()
print(done, failures)
PY
load_pid=$!
sleep 1
rm -rf "$edge_dir/zone-a"
touch "$edge_dir/zone-a"  # a file where the directory was: every open in the zone fails
wait "$load_pid"
read -r done failures <"$state/load.out"
check "requests failed while a zone died (of $done)" 0 "$failures"
metrics=$(curl -fsS "http://127.0.0.1:$admin_port/metrics")
grep -q 'edge_zone_healthy{zone=".*zone-a"} 0' <<<"$metrics" || { echo "FAIL: zone-a still healthy" >&2; exit 1; }
check "still healthy with one zone" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/healthz")"
check "served from the other zone" "200 HIT" "$(get demo.test /load/1.txt >/dev/null; get demo.test /load/1.txt)"

echo "$passed passed, 0 failed"
