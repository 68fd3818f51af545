#!/usr/bin/env bash
# The edge against nginx's proxy_cache, side by side, in one run, in front of the same real Swift
# with the same tenant mapping, worker count and wrk load. Rounds alternate which server goes
# first; each server starts every round with an empty cache. Prints a table of medians and ratios
# and writes a JSON file and a PNG plot.
#
#   benchmarks/edge_vs_nginx.sh            (run with nothing else busy: this machine has 2 cores)
#   ROUNDS=3 DURATION=10 CONNECTIONS=64 WORKERS=2 OUT=benchmarks/results  (defaults)
#
# Measured: 1 KiB hits (req/s, p99), 1 MiB hits (throughput, with wrk and with discard_load, a
# client that discards bodies in its kernel, so that the client's copying does not use up the CPU
# both share), 100 KiB misses (throughput, every
# request a different object, each fetched once, 16 at a time), and the time until 32 simultaneous
# requests for one uncached 1 MiB object all have their head and all have their body, next to the
# time of one direct origin fetch of such an object. For 1 MiB hits it also measures each server's
# CPU time per MiB sent, and runs sendfile_floor (a server that does nothing but sendfile the file)
# under the same loads: the most any server can reach here while the client shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
workers=${WORKERS:-2}
out=${OUT:-$source_dir/benchmarks/results}
miss_objects=${MISS_OBJECTS:-2000}

[ -x build/release/edge ] && [ -x build/release/discard_load ] && [ -x build/release/sendfile_floor ] ||
  { echo "build first: cmake --build build/release" >&2; exit 1; }
work=$(mktemp -d)
free_port() { python3 tests/support/free_ports.py "$@"; }
swift_port=$(free_port 5)  # swift-dev's servers take the four ports after the proxy's
edge_port=$(free_port)
nginx_port=$(free_port)
floor_port=$(free_port)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  SWIFT_DEV_DIR=$work/swift SWIFT_DEV_PORT=$swift_port scripts/swift-dev stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting Swift and uploading the objects"
source benchmarks/lib/bench_site.sh
start_bench_swift "$work" "$swift_port"
head -c 1024 /dev/urandom >"$work/1k"
head -c 102400 /dev/urandom >"$work/100k"
head -c 1048576 /dev/urandom >"$work/1m"
python3 - "$swift" "$token" "$work" "$miss_objects" "$rounds" <<'PY'
import concurrent.futures, http.client, sys, urllib.parse
swift, token, work, misses, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
u = urllib.parse.urlparse(swift)
bodies = {n: open(f"{work}/{n}", "rb").read() for n in ("1k", "100k", "1m")}
uploads = [("small.bin", "1k"), ("large.bin", "1m")] + [(f"miss/{i}.bin", "100k") for i in range(misses)]
uploads += [(f"coalesce/{r}-{s}.bin", "1m") for r in range(rounds) for s in ("edge", "nginx", "origin")]
def put(batch):
    c = http.client.HTTPConnection(u.hostname, u.port)
    for name, body in batch:
        c.request("PUT", f"/v1/AUTH_test/bench/{name}", bodies[body], {"X-Auth-Token": token})
        r = c.getresponse(); r.read()
        assert r.status == 201, (name, r.status)
batches = [uploads[i::8] for i in range(8)]
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(put, batches))
PY

mkdir -p "$work/nginx"
write_edge_config "$work/edge" bench "$edge_port" "$workers" 2G
# nginx, configured as the edge is: two cache paths (one per drive) split by key, kept-alive
# upstream connections, cache lock for concurrent misses, the tenant's default TTL (5 minutes)
# for responses that say nothing, a buffered access log, sendfile.
cat >"$work/nginx/nginx.conf" <<CONF
user root;  # as the edge runs here: the workers use the benchmark's private directories
worker_processes $workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  proxy_cache_path $work/nginx/zone-a levels=1:2 keys_zone=zone_a:64m max_size=2g inactive=1h use_temp_path=off;
  proxy_cache_path $work/nginx/zone-b levels=1:2 keys_zone=zone_b:64m max_size=2g inactive=1h use_temp_path=off;
  split_clients "\$request_uri" \$zone { 50% zone_a; * zone_b; }
  upstream swift { server 127.0.0.1:$swift_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port reuseport;
    server_name demo.test;
    location / {
      proxy_pass http://swift/v1/AUTH_test/bench/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache \$zone;
      proxy_cache_valid 200 404 5m;
      proxy_cache_lock on;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
CONF

start_server() {
  case $1 in
    edge)
      rm -rf "$work/edge/zone-a" "$work/edge/zone-b"
      build/release/edge --config "$work/edge/edge.toml" </dev/null >>"$work/edge/edge.log" 2>&1 &
      edge_pid=$!
      pids+=("$edge_pid")
      port=$edge_port
      ;;
    nginx)
      rm -rf "$work/nginx/zone-a" "$work/nginx/zone-b"
      nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" 2>/dev/null
      port=$nginx_port
      ;;
    floor)
      build/release/sendfile_floor "$floor_port" "$work/1m" "$workers" &
      floor_pid=$!
      pids+=("$floor_pid")
      port=$floor_port
      for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0; sleep 0.1; done
      ;;
  esac
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H 'Host: demo.test' "http://127.0.0.1:$port/small.bin" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
stop_server() {
  case $1 in
    edge) kill "$edge_pid"; wait "$edge_pid" 2>/dev/null || true ;;
    floor) kill "$floor_pid"; wait "$floor_pid" 2>/dev/null || true ;;
    nginx)
      local pid
      pid=$(cat "$work/nginx/nginx.pid")
      kill -QUIT "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      ;;
  esac
}

# wrk output -> "req_per_s p99_ms mib_per_s"
parse_wrk() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    function mib(v) { if (v ~ /GB$/) return v * 1024; if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024; return v / 1048576 }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    $1 == "Transfer/sec:" { tput = mib($2) }
    END { printf "%.1f %.3f %.1f\n", rps, p99, tput }'
}

# The processes serving: the edge, nginx's workers, or the floor.
server_pids() {
  case $1 in
    edge) echo "$edge_pid" ;;
    nginx) pgrep -P "$(cat "$work/nginx/nginx.pid")" ;;
    floor) echo "$floor_pid" ;;
  esac
}
# Runs wrk for 1 MiB hits on $port; prints "mib_per_s server_cpu_ms_per_mib".
large_hits() {
  local pids_now before after mib
  pids_now=$(server_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids_now)
  read -r _ _ mib < <(wrk -t2 -c16 -d"${duration}s" --latency -H 'Host: demo.test' "$url/large.bin" | parse_wrk)
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids_now)
  awk -v mib="$mib" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v d="$duration" \
    'BEGIN { printf "%s %.4f\n", mib, ticks * 1000 / hz / (mib * d) }'
}

results=$work/results.txt
: >"$results"
for round in $(seq 0 $((rounds - 1))); do
  order="edge nginx"
  [ $((round % 2)) -eq 1 ] && order="nginx edge"
  # One direct origin fetch of an uncached 1 MiB object: the floor for coalesced misses.
  origin_s=$(curl -sS -o /dev/null -w '%{time_total}' "$swift/v1/AUTH_test/bench/coalesce/$round-origin.bin")
  for server in $order; do
    echo "== round $((round + 1))/$rounds: $server"
    start_server "$server"
    url=http://127.0.0.1:$port
    curl -fsS -o /dev/null -H 'Host: demo.test' "$url/large.bin"
    read -r small_rps small_p99 _ < <(wrk -t2 -c"$connections" -d"${duration}s" --latency -H 'Host: demo.test' \
      "$url/small.bin" | parse_wrk)
    read -r large_mib large_cpu_ms < <(large_hits "$server")
    read -r _ large_discard_mib large_broken < <(build/release/discard_load 127.0.0.1 "$port" demo.test /large.bin 16 \
      "$duration")
    [ "$large_broken" = 0 ] || { echo "$server: $large_broken broken connections for 1 MiB hits" >&2; exit 1; }
    read -r miss_rps miss_mib < <(python3 benchmarks/lib/misses.py 127.0.0.1 "$port" demo.test "$miss_objects" 16)
    read -r coalesce_head_s coalesce_s coalesce_bad < <(python3 benchmarks/lib/coalesce.py 127.0.0.1 "$port" \
      demo.test "/coalesce/$round-$server.bin" 32)
    [ "$coalesce_bad" = 0 ] || { echo "$server: $coalesce_bad bad answers to the coalesced misses" >&2; exit 1; }
    echo "$server $round $small_rps $small_p99 $large_mib $large_cpu_ms $large_discard_mib $miss_rps $miss_mib $coalesce_head_s $coalesce_s $origin_s" |
      tee -a "$results"
    stop_server "$server"
  done
  echo "== round $((round + 1))/$rounds: floor (1 MiB hits only)"
  start_server floor
  url=http://127.0.0.1:$port
  read -r large_mib large_cpu_ms < <(large_hits floor)
  read -r _ large_discard_mib _ < <(build/release/discard_load 127.0.0.1 "$port" demo.test /large.bin 16 "$duration")
  echo "floor $round 0 0 $large_mib $large_cpu_ms $large_discard_mib 0 0 0 0 0" | tee -a "$results"
  stop_server floor
done

mkdir -p "$out"
python3 - "$results" "$out/edge_vs_nginx.json" "$rounds" "$workers" "$connections" "$duration" <<'PY'
import json, statistics, subprocess, sys
path, out, rounds, workers, connections, duration = sys.argv[1:7]
keys = ["small_rps", "small_p99_ms", "large_mib_s", "large_cpu_ms_per_mib", "large_discard_mib_s", "miss_rps", "miss_mib_s", "coalesce_head_s", "coalesce_s",
        "origin_s"]
rows = {"edge": [], "nginx": [], "floor": []}
for line in open(path):
    f = line.split()
    rows[f[0]].append(dict(zip(keys, map(float, f[2:]))))
median = {s: {k: statistics.median(r[k] for r in rows[s]) for k in keys} for s in rows}
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
machine = f"{cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores"
metrics = [
    {"key": "small_rps", "title": "1 KiB hits", "unit": "req/s", "better": "higher"},
    {"key": "small_p99_ms", "title": "1 KiB hits, p99 latency", "unit": "ms", "better": "lower"},
    {"key": "large_mib_s", "title": "1 MiB hits", "unit": "MiB/s", "better": "higher"},
    {"key": "large_cpu_ms_per_mib", "title": "1 MiB hits, server CPU per MiB", "unit": "ms", "better": "lower"},
    {"key": "large_discard_mib_s", "title": "1 MiB hits, bodies discarded in the client's kernel", "unit": "MiB/s",
     "better": "higher"},
    {"key": "miss_mib_s", "title": "100 KiB misses", "unit": "MiB/s", "better": "higher"},
    {"key": "coalesce_head_s", "title": "32 simultaneous misses of 1 MiB: last head", "unit": "s",
     "better": "lower"},
    {"key": "coalesce_s", "title": "32 simultaneous misses of 1 MiB: last body", "unit": "s", "better": "lower"},
]
json.dump({"rounds": int(rounds), "workers": int(workers), "connections": int(connections), "duration_s": int(duration),
           "machine": machine, "metrics": metrics, "rows": rows, "median": median}, open(out, "w"), indent=1)
print(f"\nmedians of {rounds} rounds, {workers} workers each, wrk -t2 -c{connections} -d{duration}s ({machine})\n")
print(f"| metric | edge | nginx | edge/nginx |\n|---|---|---|---|")
for m in metrics:
    e, n = median["edge"][m["key"]], median["nginx"][m["key"]]
    print(f"| {m['title']} ({m['unit']}, {m['better']} is better) | {e:.4g} | {n:.4g} | {e / n:.2f} |")
print(f"| one direct origin fetch of 1 MiB (s) | {median['edge']['origin_s']:.4g} | | |")
print(f"\n| 1 MiB hits | sendfile_floor | floor/nginx | edge/floor |\n|---|---|---|---|")
for key, title in (("large_mib_s", "wrk (MiB/s)"), ("large_cpu_ms_per_mib", "wrk, server CPU per MiB (ms)"),
                   ("large_discard_mib_s", "discard_load (MiB/s)")):
    f, e, n = median["floor"][key], median["edge"][key], median["nginx"][key]
    print(f"| {title} | {f:.4g} | {f / n:.2f} | {e / f:.2f} |")
PY
/usr/bin/python3 benchmarks/lib/plot.py "$out/edge_vs_nginx.json" "$out/edge_vs_nginx.png"
echo "wrote $out/edge_vs_nginx.json and $out/edge_vs_nginx.png"
