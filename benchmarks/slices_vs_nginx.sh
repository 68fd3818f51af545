#!/usr/bin/env bash
# Large objects in slices (issue 14): the edge against nginx's slice module (slice + a cache key
# with $slice_range, the same slice size), side by side in one run in front of the same real
# Swift. Every measure starts its server with an empty cache; rounds alternate which server goes
# first. Prints tables of medians and ratios.
#
#   benchmarks/slices_vs_nginx.sh          (run with nothing else busy: this machine has 2 cores)
#   ROUNDS=3 SIZE=2048 SLICE=4M SLICE_SIZES="1M 16M" RANGES=100 SLOW_OBJECTS=100 SLOW_SIZE=200
#   SLOW_RATE=1048576 SLOW_SECONDS=30 WORKERS=2 MEASURES="ttfb ranges download slow sizes"
#   TTFB_SAMPLES=1 (defaults; sizes in MiB, the rate in bytes/s; MEASURES: those run each round;
#   TTFB_SAMPLES: cold first bytes per round of the edge, nginx and Swift, each from a new server)
#
# Measured, for a SIZE MiB object:
#   - time to the first body byte of `Range: bytes=N-` at 90% of it: the edge, nginx, the edge
#     with cache.slice_size = 0 (whole objects, as before slicing) and Swift's own for the one slice
#     `bytes=N-(N+slice-1)`;
#     (and for bytes=S-, S the first byte of N's slice: the range both caches ask Swift for, and
#     Swift's time until byte N in the answer to that range);
#   - a full download, cold and warm (MiB/s, curl), and the bytes Swift sent for the cold one;
#   - RANGES random 64 KiB ranges, cold: the bytes Swift sent (its proxy's log), next to the bytes
#     of the slices they touch, the edge's edge_slices_total{event="fetched"} and nginx's
#     $upstream_bytes_received;
#   - the server's RSS (nginx: all its processes) while SLOW_OBJECTS clients each read a different
#     SLOW_SIZE MiB object at SLOW_RATE, and a warm full download's MiB/s meanwhile. The slow
#     objects are SLO manifests over the same segments: different objects to the caches, without
#     uploading SLOW_OBJECTS x SLOW_SIZE MiB. The CPU Swift, the server and the slow clients took
#     meanwhile says how much of the machine was left to the fast one.
#   - for the edge with each of SLICE_SIZES too: the first byte, a cold full download, the ranges.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
size_mib=${SIZE:-2048}
slice=${SLICE:-4M}
slice_sizes=${SLICE_SIZES-1M 16M}
range_count=${RANGES:-100}
slow_objects=${SLOW_OBJECTS:-100}
slow_size=${SLOW_SIZE:-200}
slow_rate=${SLOW_RATE:-1048576}
slow_seconds=${SLOW_SECONDS:-30}
workers=${WORKERS:-2}
measures=" ${MEASURES:-ttfb ranges download slow sizes} "
ttfb_samples=${TTFB_SAMPLES:-1}
out=${OUT:-$PWD/benchmarks/results}
[ -x build/release/edge ] || { echo "build first: cmake --build build/release --target edge" >&2; exit 1; }
bytes_of() { numfmt --from=iec "${1^^}"; }

source benchmarks/lib/bench_site.sh
bench_init
nginx_port=$(python3 tests/support/free_ports.py)
admin_port=$(python3 tests/support/free_ports.py)
stop_nginx() {
  [ -f "$work/nginx/nginx.pid" ] || return 0
  local pid
  pid=$(cat "$work/nginx/nginx.pid")
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$work/nginx/nginx.pid"
}
trap 'stop_nginx; bench_cleanup' EXIT

echo "== starting Swift and uploading a $size_mib MiB object and $slow_objects SLOs of $slow_size MiB"
start_bench_swift "$work" "$swift_port"
swift_log=$work/swift/log/proxy.log
big=$work/big  # kept: every range read is compared with it
head -c $((size_mib << 20)) /dev/urandom >"$big"
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" -T "$big" "$swift/v1/AUTH_test/bench/big.bin"
python3 - "$swift" "$token" "$slow_objects" "$slow_size" <<'PY'
import http.client, json, os, sys, urllib.parse
swift, token, count, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlparse(swift)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
def put(path, body):
    c.request("PUT", f"/v1/AUTH_test/bench/{path}", body, {"X-Auth-Token": token})
    r = c.getresponse(); r.read()
    assert r.status == 201, (path, r.status)
segments = []
for i in range(0, size_mib, 50):
    body = os.urandom((min(size_mib, i + 50) - i) << 20)
    put(f"segments/{i}", body)
    segments.append({"path": f"/bench/segments/{i}"})
for i in range(count):
    put(f"slow/{i}?multipart-manifest=put", json.dumps(segments).encode())
PY
total=$((size_mib << 20))
at=$((total * 9 / 10))

# The edge, in one directory per slice size (0: whole objects); zones large enough for the object.
for s in "$slice" 0 $slice_sizes; do
  bench_admin_port=$admin_port write_edge_config "$work/edge-$s" slices "$edge_port" "$workers" 8G
  echo "cache.slice_size = \"$s\"" >>"$work/edge-$s/vhosts.toml"
done
# nginx's slice module as its docs configure it, with the edge's slice size, one zone that holds
# the object, kept-alive upstream connections, every slice's sub-request in the access log with the
# bytes it took from Swift.
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
user root;  # as the edge runs here: the workers use the benchmark's private directories
worker_processes $workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  log_format upstream '\$request_uri \$status \$upstream_bytes_received';
  access_log $work/nginx/access.log upstream;
  log_subrequest on;
  sendfile on;
  tcp_nopush on;
  proxy_cache_path $work/nginx/zone levels=1:2 keys_zone=zone:64m max_size=16g inactive=1h use_temp_path=off;
  upstream swift { server 127.0.0.1:$swift_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port reuseport;
    server_name demo.test;
    location / {
      slice $slice;
      proxy_cache zone;
      proxy_cache_key \$uri\$is_args\$args\$slice_range;
      proxy_set_header Range \$slice_range;
      proxy_cache_valid 200 206 1h;
      proxy_cache_lock on;
      proxy_pass http://swift/v1/AUTH_test/bench/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
CONF

# start_server edge-SLICE|nginx: an empty cache; sets $port and $server_pids.
start_server() {
  case $1 in
    edge-*)
      start_bench_edge "$work/$1" "$edge_port"
      port=$edge_port
      server_pids=$edge_pid
      ;;
    nginx)
      rm -rf "$work/nginx/zone"
      nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" 2>/dev/null
      port=$nginx_port
      for _ in $(seq 1 50); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.1; done
      sleep 0.3  # its cache manager and loader
      server_pids="$(cat "$work/nginx/nginx.pid") $(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')"
      ;;
  esac
}
stop_server() {
  case $1 in
    edge-*) kill "$edge_pid"; wait "$edge_pid" 2>/dev/null || true; edge_pid= ;;
    nginx) stop_nginx ;;
  esac
}
record() {  # metric server round value
  [ -n "${4:-}" ] || { echo "no figure for $1 of $2 in round $3" >&2; exit 1; }
  echo "$*" | tee -a "$results"
}
ttfb() { python3 benchmarks/lib/slices.py ttfb 127.0.0.1 "$@"; }
# curl's MiB/s for a full download of $2 on port $1 (checks the length)
download() {
  local got
  got=$(curl -fsS -o /dev/null -H 'Host: demo.test' -w '%{size_download} %{speed_download}' "http://127.0.0.1:$1$2")
  [ "${got% *}" = "$total" ] || { echo "download of $2 on $1: ${got% *} bytes, not $total" >&2; exit 1; }
  awk -v s="${got#* }" 'BEGIN { printf "%.1f\n", s / 1048576 }'
}
swift_offset() { stat -c %s "$swift_log"; }
# bytes Swift sent for big.bin since offset $1 (its log is written as it goes: a moment to land)
origin_bytes() {
  sleep 0.5
  python3 benchmarks/lib/slices.py origin-bytes "$swift_log" "$1" /v1/AUTH_test/bench/big.bin
}
edge_fetched() {
  curl -fsS "http://127.0.0.1:$admin_port/metrics" | awk '$1 == "edge_slices_total{event=\"fetched\"}" {print $2}'
}

measure_ttfb() {  # server round [aligned]: and, cold again, for bytes=S- (S: the first byte of N's slice)
  start_server "$1"
  record ttfb "$1" "$2" "$(ttfb "$port" demo.test /big.bin "bytes=$at-")"
  stop_server "$1"
  [ "${3:-}" = aligned ] || return 0
  start_server "$1"
  record ttfb_aligned "$1" "$2" "$(ttfb "$port" demo.test /big.bin "bytes=$aligned-")"
  stop_server "$1"
}
measure_download() {  # server round [slow]: cold, warm, the bytes Swift sent, then with the slow clients
  local offset bytes requests
  start_server "$1"
  offset=$(swift_offset)
  record full_cold "$1" "$2" "$(download "$port" /big.bin)"
  read -r bytes requests < <(origin_bytes "$offset")
  record full_origin_bytes "$1" "$2" "$bytes"
  record full_origin_requests "$1" "$2" "$requests"
  record full_warm "$1" "$2" "$(download "$port" /big.bin)"
  if [ "${3:-}" = slow ]; then
    # shellcheck disable=SC2086
    python3 benchmarks/lib/slices.py slow 127.0.0.1 "$port" demo.test /slow/ "$slow_objects" "$slow_rate" \
      "$slow_seconds" $server_pids >"$work/slow.txt" &
    local slow_pid=$! swift_pids before_swift before_server
    swift_pids=$(cat "$work"/swift/run/*.pid)
    # shellcheck disable=SC2086
    before_swift=$(cpu_ticks $swift_pids) before_server=$(cpu_ticks $server_pids)
    sleep $((slow_seconds / 3))
    record full_warm_with_slow "$1" "$2" "$(download "$port" /big.bin)"
    wait "$slow_pid"
    # shellcheck disable=SC2086
    record slow_cpu_swift_ticks "$1" "$2" $(($(cpu_ticks $swift_pids) - before_swift))
    # shellcheck disable=SC2086
    record slow_cpu_server_ticks "$1" "$2" $(($(cpu_ticks $server_pids) - before_server))
    read -r rss median_rate min_rate failed client_cpu <"$work/slow.txt"
    record slow_cpu_clients_ticks "$1" "$2" "$(awk -v c="$client_cpu" -v hz="$(getconf CLK_TCK)" 'BEGIN { print c * hz }')"
    record slow_rss_mib "$1" "$2" "$rss"
    record slow_median_mib_s "$1" "$2" "$median_rate"
    record slow_min_mib_s "$1" "$2" "$min_rate"
    record slow_failed "$1" "$2" "$failed"
  fi
  stop_server "$1"
}
measure_ranges() {  # server round slice
  local offset elapsed slices slice_bytes bytes requests
  start_server "$1"
  offset=$(swift_offset)
  [ "$1" = nginx ] && : >"$work/nginx/access.log"
  read -r elapsed slices slice_bytes < <(python3 benchmarks/lib/slices.py ranges 127.0.0.1 "$port" demo.test \
    /big.bin "$big" "$(bytes_of "$3")" "$range_count" "$2")
  read -r bytes requests < <(origin_bytes "$offset")
  record ranges_s "$1" "$2" "$elapsed"
  record ranges_touched_slices "$1" "$2" "$slices"
  record ranges_touched_bytes "$1" "$2" "$slice_bytes"
  record ranges_origin_bytes "$1" "$2" "$bytes"
  record ranges_origin_requests "$1" "$2" "$requests"
  case $1 in
    edge-*) record ranges_fetched_slices "$1" "$2" "$(edge_fetched)" ;;
    nginx) record ranges_upstream_bytes "$1" "$2" "$(awk '{b += $3} END {print b + 0}' "$work/nginx/access.log")" ;;
  esac
  stop_server "$1"
}

results=$work/results.txt
: >"$results"
slice_bytes=$(bytes_of "$slice")
aligned=$((at / slice_bytes * slice_bytes))
for round in $(seq 0 $((rounds - 1))); do
  order="edge-$slice nginx"
  [ $((round % 2)) -eq 1 ] && order="nginx edge-$slice"
  echo "== round $((round + 1))/$rounds"
  if [[ $measures == *" ttfb "* ]]; then
    for _ in $(seq 1 "$ttfb_samples"); do
      record ttfb swift "$round" "$(ttfb "$swift_port" demo.test /v1/AUTH_test/bench/big.bin "bytes=$at-$((at + slice_bytes - 1))")"
      record ttfb_aligned swift "$round" "$(ttfb "$swift_port" demo.test /v1/AUTH_test/bench/big.bin \
        "bytes=$aligned-$((aligned + slice_bytes - 1))")"
      record ttfb_slice_to_n swift "$round" "$(ttfb "$swift_port" demo.test /v1/AUTH_test/bench/big.bin \
        "bytes=$aligned-$((aligned + slice_bytes - 1))" $((at - aligned)))"
      for server in $order; do measure_ttfb "$server" "$round" aligned; done
    done
    measure_ttfb edge-0 "$round"
  fi
  if [[ $measures == *" ranges "* ]]; then
    for server in $order; do measure_ranges "$server" "$round" "$slice"; done
  fi
  slow=
  [[ $measures == *" slow "* ]] && slow=slow
  if [[ $measures == *" download "* || -n $slow ]]; then
    for server in $order; do measure_download "$server" "$round" $slow; done
  fi
  if [[ $measures == *" download "* ]]; then
    measure_download edge-0 "$round"
    got=$(curl -fsS -o /dev/null -w '%{speed_download}' "$swift/v1/AUTH_test/bench/big.bin")
    record full_cold swift "$round" "$(awk -v s="$got" 'BEGIN { printf "%.1f\n", s / 1048576 }')"
  fi
  if [[ $measures == *" sizes "* ]]; then
    for s in $slice_sizes; do
      measure_ttfb "edge-$s" "$round"
      measure_ranges "edge-$s" "$round" "$s"
      measure_download "edge-$s" "$round"
    done
  fi
done

mkdir -p "$out"
cp "$results" "$out/slices_vs_nginx.txt"
echo "raw figures: $out/slices_vs_nginx.txt"
python3 - "$results" "$slice" "$slice_sizes" "$rounds" "$size_mib" "$range_count" "$slow_objects" "$slow_size" \
  "$slow_rate" "$slow_seconds" <<'PY'
import collections, statistics, subprocess, sys
path, slice_, sizes, rounds, size_mib, ranges, slow_n, slow_size, slow_rate, slow_s = sys.argv[1:11]
values = collections.defaultdict(list)
for line in open(path):
    metric, server, _, value = line.split()
    values[metric, server].append(float(value))
def m(metric, server):
    v = values.get((metric, server))
    return statistics.median(v) if v else float("nan")
def runs(metric, server, scale=1):
    v = [x * scale for x in values.get((metric, server), [])]
    return " / ".join(f"{x:.4g}" for x in v) if len(v) <= 3 else f"{len(v)}: {min(v):.4g} .. {max(v):.4g}"
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print(f"\nmedians of {rounds} rounds (each round's figures, or their count and range, after them), a {size_mib} MiB object, slices of {slice_}"
      f" ({cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores)")
e, off = f"edge-{slice_}", "edge-0"
print("\n| first byte of bytes=N- at 90%, cold (ms) | median | rounds |\n|---|---|---|")
for server, title in ((e, "edge, sliced"), ("nginx", "nginx slice"), (off, "edge, cache.slice_size = 0"),
                      ("swift", "Swift, one slice bytes=N-(N+slice-1)")):
    print(f"| {title} | {m('ttfb', server) * 1000:.1f} | {runs('ttfb', server, 1000)} |")
print(f"\n| first byte of bytes=S-, S the first byte of N's slice, cold (ms) | median | rounds |\n|---|---|---|")
for server, title in ((e, "edge, sliced"), ("nginx", "nginx slice"), ("swift", "Swift, bytes=S-(S+slice-1)")):
    print(f"| {title} | {m('ttfb_aligned', server) * 1000:.1f} | {runs('ttfb_aligned', server, 1000)} |")
print(f"| Swift, bytes=S-(S+slice-1), until byte N (what a slicer waits for at least) | {m('ttfb_slice_to_n', 'swift') * 1000:.1f} | "
      f"{runs('ttfb_slice_to_n', 'swift', 1000)} |")
print(f"\nedge/Swift {m('ttfb', e) / m('ttfb', 'swift'):.2f} (target <= 1.5), slice_size=0/edge "
      f"{m('ttfb', off) / m('ttfb', e):.0f}x (target >= 10x), edge/nginx {m('ttfb', e) / m('ttfb', 'nginx'):.2f}")
print("\n| full download (MiB/s) | edge | nginx | edge/nginx | edge, slice_size 0 | Swift |\n|---|---|---|---|---|---|")
for metric, title in (("full_cold", "cold"), ("full_warm", "warm"), ("full_warm_with_slow", f"warm, during the {slow_n} slow ones")):
    print(f"| {title} | {m(metric, e):.1f} | {m(metric, 'nginx'):.1f} | {m(metric, e) / m(metric, 'nginx'):.2f} | "
          f"{m(metric, off):.1f} | {m(metric, 'swift') if metric == 'full_cold' else float('nan'):.1f} |")
print("\n| cold full download: from Swift | edge | nginx | edge, slice_size 0 |\n|---|---|---|---|")
print(f"| MiB | {m('full_origin_bytes', e) / 2**20:.1f} | {m('full_origin_bytes', 'nginx') / 2**20:.1f} | "
      f"{m('full_origin_bytes', off) / 2**20:.1f} |")
print(f"| GETs | {m('full_origin_requests', e):.0f} | {m('full_origin_requests', 'nginx'):.0f} | {m('full_origin_requests', off):.0f} |")
print(f"\n| {ranges} random 64 KiB ranges, cold | edge | nginx |\n|---|---|---|")
print(f"| slices they touch (their MiB) | {m('ranges_touched_slices', e):.0f} ({m('ranges_touched_bytes', e) / 2**20:.1f}) | same |")
print(f"| MiB Swift sent (its log) | {m('ranges_origin_bytes', e) / 2**20:.1f} | {m('ranges_origin_bytes', 'nginx') / 2**20:.1f} |")
print(f"| GETs Swift answered | {m('ranges_origin_requests', e):.0f} | {m('ranges_origin_requests', 'nginx'):.0f} |")
print(f"| edge_slices_total fetched x slice; nginx upstream_bytes_received (MiB) | "
      f"{m('ranges_fetched_slices', e):.0f} slices | {m('ranges_upstream_bytes', 'nginx') / 2**20:.1f} |")
print(f"| the {ranges} ranges took (s) | {m('ranges_s', e):.2f} | {m('ranges_s', 'nginx'):.2f} |")
print(f"\n| {slow_n} clients reading {slow_n} {slow_size} MiB objects at {int(slow_rate) / 2**20:.2f} MiB/s for {slow_s} s "
      f"| edge | nginx |\n|---|---|---|")
print(f"| peak RSS (MiB; nginx: all processes) | {m('slow_rss_mib', e):.1f} ({runs('slow_rss_mib', e)}) | "
      f"{m('slow_rss_mib', 'nginx'):.1f} ({runs('slow_rss_mib', 'nginx')}) |")
print(f"| slow clients' rate, median / lowest (MiB/s) | {m('slow_median_mib_s', e):.3f} / {m('slow_min_mib_s', e):.3f} | "
      f"{m('slow_median_mib_s', 'nginx'):.3f} / {m('slow_min_mib_s', 'nginx'):.3f} |")
hz = int(subprocess.run(["getconf", "CLK_TCK"], capture_output=True, text=True).stdout)
for who, title in (("swift", "Swift's processes"), ("server", "the server (nginx: all processes)"), ("clients", "the slow clients (one Python process)")):
    print(f"| CPU of {title} meanwhile (% of one core) | {m(f'slow_cpu_{who}_ticks', e) / hz / float(slow_s) * 100:.0f} | "
          f"{m(f'slow_cpu_{who}_ticks', 'nginx') / hz / float(slow_s) * 100:.0f} |")
print(f"| slow clients cut off | {m('slow_failed', e):.0f} | {m('slow_failed', 'nginx'):.0f} |")
print(f"| warm full download alone / during them (MiB/s) | {m('full_warm', e):.0f} / {m('full_warm_with_slow', e):.0f} | "
      f"{m('full_warm', 'nginx'):.0f} / {m('full_warm_with_slow', 'nginx'):.0f} |")
if sizes.split():
    print("\n| edge slice size | first byte (ms) | cold full download (MiB/s) | ranges: MiB from Swift | ranges: MiB of the slices they touch |"
          "\n|---|---|---|---|---|")
    for s in sorted(sizes.split() + [slice_], key=lambda s: float(s[:-1]) * {"K": 1, "M": 1024, "G": 2**20}[s[-1].upper()]):
        server = f"edge-{s}"
        print(f"| {s} | {m('ttfb', server) * 1000:.1f} | {m('full_cold', server):.1f} | "
              f"{m('ranges_origin_bytes', server) / 2**20:.1f} | {m('ranges_touched_bytes', server) / 2**20:.1f} |")
PY
