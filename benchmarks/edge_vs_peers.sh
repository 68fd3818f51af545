#!/usr/bin/env bash
# The edge against the peers a user would pick instead, side by side, in one run, in front of the
# same real Swift with the same tenant mapping, worker count and load: nginx's proxy_cache,
# Apache Traffic Server (default RAM cache) and Varnish (malloc storage, plain HTTP only), as
# Debian ships them, and a static nginx serving the same files from disk (the ceiling for hits,
# plain and over TLS). Rounds alternate the order of the servers; each cache starts every round
# empty. Prints a table of medians and ratios and writes a JSON file and a PNG plot.
#
#   benchmarks/edge_vs_peers.sh            (run with nothing else busy: this machine has 2 cores)
#   ROUNDS=3 DURATION=10 CONNECTIONS=64 WORKERS=2 OUT=benchmarks/results  (defaults)
#   SERVERS="edge nginx ats varnish static"  (the default; the targets are judged with all five)
#   LOADS="small large discard misses tls_small handshakes tls_large"  (the default: all); a subset
#           runs only those loads, e.g. LOADS="tls_small handshakes" to compare HTTPS hits alone
#   PERF=1  records each server's processes (perf record -g) under each 1 MiB load and writes
#           OUT/perf-SERVER-LOAD.txt (self time by library, then by symbol); its figures are then
#           not for comparing
#
# Plain HTTP, every server: 1 KiB hits (req/s, p99), 1 MiB hits (throughput and server CPU per MiB
# with wrk; throughput with discard_load, a client that discards bodies in its kernel, so that the
# client's copying does not use up the CPU both share). The edge and nginx also: 100 KiB misses
# (every request a different object, each fetched once, 16 at a time), and the time until 32
# simultaneous requests for one uncached 1 MiB object all have their head and all have their
# body, next to one direct origin fetch. sendfile_floor (a server that does nothing but sendfile
# the file) runs the 1 MiB loads: the most any server can reach while the client shares the cores.
#
# HTTPS, every server but Varnish (which has no TLS), all with one certificate (EC P-256, from a
# local CA) and one cipher, TLS 1.3 TLS_AES_128_GCM_SHA256 (1.2: ECDHE-ECDSA-AES128-GCM-SHA256),
# session tickets on: 1 KiB hits on kept-alive connections (wrk, req/s, p99), new full handshakes
# and resumed ones per second (benchmarks/tls_handshakes.cc: one request per connection; with the
# server's CPU per handshake, which the client's share of the two cores does not blur), and
# 1 MiB hits (wrk, MiB/s and server CPU per MiB). The server's CPU is that of all its processes
# (/proc/PID/stat).
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
workers=${WORKERS:-2}
out=${OUT:-$source_dir/benchmarks/results}
miss_objects=${MISS_OBJECTS:-2000}
handshake_threads=${HANDSHAKE_THREADS:-4}
servers=${SERVERS:-edge nginx ats varnish static}
loads=" ${LOADS:-small large discard misses tls_small handshakes tls_large} "
want() { [[ $loads == *" $1 "* ]]; }

bin=build/release
for b in edge discard_load sendfile_floor tls_handshakes; do
  [ -x "$bin/$b" ] || { echo "build first: cmake --build build/release --target $b" >&2; exit 1; }
done
command -v traffic_server >/dev/null && command -v varnishd >/dev/null || { echo "run scripts/setup first" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"  # Varnish's and Traffic Server's workers read their files under it
free_port() { python3 tests/support/free_ports.py "$@"; }
swift_port=$(free_port 5)  # swift-dev's servers take the four ports after the proxy's
declare -A plain_port tls_port
for s in edge nginx ats varnish static floor; do plain_port[$s]=$(free_port); tls_port[$s]=$(free_port); done
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for f in "$work"/nginx/nginx.pid "$work"/static/nginx.pid "$work"/varnish/varnishd.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  SWIFT_DEV_DIR=$work/swift SWIFT_DEV_PORT=$swift_port scripts/swift-dev stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting Swift and uploading the objects"
source benchmarks/lib/bench_site.sh
start_bench_swift "$work" "$swift_port"
mkdir -p "$work/files"
head -c 1024 /dev/urandom >"$work/files/small.bin"
head -c 102400 /dev/urandom >"$work/100k"
head -c 1048576 /dev/urandom >"$work/files/large.bin"
python3 - "$swift" "$token" "$work" "$miss_objects" "$rounds" <<'PY'
import concurrent.futures, http.client, sys, urllib.parse
swift, token, work, misses, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
u = urllib.parse.urlparse(swift)
bodies = {n: open(f"{work}/{p}", "rb").read() for n, p in (("1k", "files/small.bin"), ("100k", "100k"),
                                                          ("1m", "files/large.bin"))}
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

# One certificate for demo.test, from a local CA, served by every server that speaks TLS.
tls=$work/tls
mkdir -p "$tls"
source scripts/lib/local_ca.sh
local_ca "$tls"
local_certificate "$tls" demo demo.test
tls13_suite=TLS_AES_128_GCM_SHA256
tls12_cipher=ECDHE-ECDSA-AES128-GCM-SHA256

write_edge_config "$work/edge" bench "${plain_port[edge]}" "$workers" 2G "${tls_port[edge]}" "$tls/demo.pem" \
  "$tls/demo.key" "ciphers = \"$tls12_cipher\"
ciphersuites = \"$tls13_suite\""

# nginx twice: as a cache configured as the edge is (two cache paths, one per drive, split by
# key; kept-alive upstream connections; a cache lock for concurrent misses; the tenant's default
# TTL of 5 minutes for responses that say nothing), and as a static server of the same files.
# Both with a buffered access log, sendfile, and the edge's TLS settings (session tickets are
# nginx's default; the shared session cache is what its guides add).
nginx_config() {  # DIR NAME LOCATION-BODY
  local dir=$1 name=$2
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
user root;  # as the edge runs here: the workers use the benchmark's private directories
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log $dir/access.log combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  ssl_certificate $tls/demo.pem;
  ssl_certificate_key $tls/demo.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers $tls12_cipher;
  ssl_prefer_server_ciphers on;
  ssl_conf_command Ciphersuites $tls13_suite;
  ssl_session_tickets on;
  ssl_session_cache shared:SSL:10m;
  proxy_cache_path $dir/zone-a levels=1:2 keys_zone=zone_a:64m max_size=2g inactive=1h use_temp_path=off;
  proxy_cache_path $dir/zone-b levels=1:2 keys_zone=zone_b:64m max_size=2g inactive=1h use_temp_path=off;
  split_clients "\$request_uri" \$zone { 50% zone_a; * zone_b; }
  upstream swift { server 127.0.0.1:$swift_port; keepalive 64; }
  server {
    listen 127.0.0.1:${plain_port[$name]} reuseport;
    listen 127.0.0.1:${tls_port[$name]} ssl reuseport;
    server_name demo.test;
    location / {
$3
    }
  }
}
CONF
}
nginx_config "$work/nginx" nginx '      proxy_pass http://swift/v1/AUTH_test/bench/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache $zone;
      proxy_cache_valid 200 404 5m;
      proxy_cache_lock on;
      add_header X-Cache $upstream_cache_status;'
nginx_config "$work/static" static "      root $work/files;"

# Apache Traffic Server as Debian configures it (its records.config, logging, and default RAM
# cache: proxy.config.cache.ram_cache.size -1), with the edge's worker count, a 2 GiB cache file,
# a reverse-proxy mapping, the certificate and the cipher, and responses without a lifetime
# cached (Debian's required_headers 2 would store none of Swift's). It runs from a layout of its
# own (--run-root) so that the system's stays untouched.
ats=$work/ats
mkdir -p "$ats/etc" "$ats/run" "$ats/log" "$ats/cache"
cp -r /etc/trafficserver/. "$ats/etc/"
cat >"$ats/runroot.yaml" <<CONF
prefix: /usr
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $ats/etc
datadir: /usr/share/trafficserver
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $ats/run
runtimedir: $ats/run
logdir: $ats/log
cachedir: $ats/cache
CONF
cat >>"$ats/etc/records.config" <<CONF
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT $workers
CONFIG proxy.config.http.server_ports STRING ${plain_port[ats]} ${tls_port[ats]}:ssl
CONFIG proxy.config.http.cache.required_headers INT 0
CONFIG proxy.config.ssl.server.cert.path STRING $tls
CONFIG proxy.config.ssl.server.private_key.path STRING $tls
CONFIG proxy.config.ssl.server.cipher_suite STRING $tls12_cipher
CONFIG proxy.config.ssl.server.TLSv1_3.cipher_suites STRING $tls13_suite
CONFIG proxy.config.ssl.server.session_ticket.enable INT 1
CONFIG proxy.config.diags.logfile.filename STRING diags.log
CONF
echo "$ats/cache 2G" >"$ats/etc/storage.config"
echo "dest_ip=* ssl_cert_name=demo.pem ssl_key_name=demo.key" >"$ats/etc/ssl_multicert.config"
cat >"$ats/etc/remap.config" <<CONF
map http://demo.test/ http://127.0.0.1:$swift_port/v1/AUTH_test/bench/
map https://demo.test/ http://127.0.0.1:$swift_port/v1/AUTH_test/bench/
CONF

# Varnish with malloc storage and the edge's default TTL, and varnishncsa writing the access log
# (Debian enables its service beside varnishd's).
mkdir -p "$work/varnish"
cat >"$work/varnish/bench.vcl" <<CONF
vcl 4.1;
backend swift { .host = "127.0.0.1"; .port = "$swift_port"; }
sub vcl_recv { set req.url = "/v1/AUTH_test/bench" + req.url; }
CONF

start_server() {
  local name=$1
  port=${plain_port[$name]}
  server_pid=
  case $name in
    edge)
      rm -rf "$work/edge/zone-a" "$work/edge/zone-b"
      $bin/edge --config "$work/edge/edge.toml" </dev/null >>"$work/edge/edge.log" 2>&1 &
      server_pid=$!
      ;;
    nginx | static)
      rm -rf "$work/$name/zone-a" "$work/$name/zone-b"
      nginx -c "$work/$name/nginx.conf" -e "$work/$name/error.log" 2>/dev/null
      ;;
    ats)
      rm -rf "${ats:?}/cache"/* "$ats/log"/*
      traffic_server --run-root="$ats/runroot.yaml" </dev/null >>"$work/ats.log" 2>&1 &
      server_pid=$!
      ;;
    varnish)
      varnishd -a "127.0.0.1:$port" -f "$work/varnish/bench.vcl" -s malloc,2G -t 300 -n "$work/varnish/state" \
        -P "$work/varnish/varnishd.pid" >>"$work/varnish.log" 2>&1
      sleep 0.5
      varnishncsa -n "$work/varnish/state" -a -w "$work/varnish/access.log" </dev/null 2>>"$work/varnish.log" &
      server_pid=$!
      ;;
    floor)
      $bin/sendfile_floor "$port" "$work/files/large.bin" "$workers" &
      server_pid=$!  # it answers any request with its file: the wait below serves it too
      ;;
  esac
  [ -z "${server_pid:-}" ] || pids+=("$server_pid")
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null -H 'Host: demo.test' "http://127.0.0.1:$port/small.bin" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2
  exit 1
}
stop_server() {
  local pid=
  case $1 in
    edge | ats | floor) kill "$server_pid"; wait "$server_pid" 2>/dev/null || true ;;
    nginx | static) pid=$(cat "$work/$1/nginx.pid"); kill -QUIT "$pid" ;;
    varnish)
      kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
      pid=$(cat "$work/varnish/varnishd.pid"); kill "$pid"
      ;;
  esac
  if [ -n "$pid" ]; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  server_pid=
}

# The processes serving, whose CPU time counts: the edge, ATS or the floor; nginx's workers;
# Varnish's manager, its child and varnishncsa.
server_pids() {
  case $1 in
    edge | ats | floor) echo "$server_pid" ;;
    nginx | static) pgrep -P "$(cat "$work/$1/nginx.pid")" ;;
    varnish) local pid; pid=$(cat "$work/varnish/varnishd.pid"); echo "$pid $(pgrep -P "$pid") $server_pid" ;;
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
    $1 == "Non-2xx" { bad = 1 }
    END { if (bad) { print "non-2xx answers" > "/dev/stderr"; exit 1 } printf "%.1f %.3f %.1f\n", rps, p99, tput }'
}
# wrk against $url (http://127.0.0.1:PORT or https://demo.test:PORT: benchmarks/lib/wrk_loopback.lua
# connects to loopback, so that SNI names the tenant as Host does).
run_wrk() {  # CONNECTIONS PATH
  wrk -t2 -c"$1" -d"${duration}s" --latency -s benchmarks/lib/wrk_loopback.lua -H 'Host: demo.test' "$url$2" | parse_wrk
}
# With PERF set, a profile of SERVER's processes from profile_start SERVER to profile_stop SERVER
# LOAD, reported in $out/perf-SERVER-LOAD.txt.
profile_start() {
  [ -n "${PERF:-}" ] || return 0
  perf record -g -o "$work/perf.data" -p "$(server_pids "$1" | tr -s ' \n' ',' | sed 's/,$//')" >/dev/null 2>&1 &
  perf_pid=$!
}
profile_stop() {
  [ -n "${PERF:-}" ] || return 0
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  mkdir -p "$out"
  { perf report -i "$work/perf.data" --no-children -g none --sort dso --stdio 2>/dev/null
    perf report -i "$work/perf.data" --no-children -g none --sort comm,dso,sym --percent-limit 0.3 --stdio 2>/dev/null
  } | grep -v '^$' >"$out/perf-$1-$2.txt"
}
# RATE TICKS_BEFORE TICKS_AFTER -> "RATE server_cpu_ms_per_unit" over the load's $duration.
per_unit_cpu() {
  awk -v rate="$1" -v ticks=$(($3 - $2)) -v hz="$(getconf CLK_TCK)" -v d="$duration" \
    'BEGIN { printf "%s %.4f\n", rate, ticks * 1000 / hz / (rate * d) }'
}
# 1 KiB hits with wrk on $url, recorded as PREFIXsmall_rps and PREFIXsmall_p99_ms.
small_hits() {  # SERVER PREFIX
  read -r rps p99 _ < <(run_wrk "$connections" /small.bin)
  record "$1" "${2}small_rps" "$rps"
  record "$1" "${2}small_p99_ms" "$p99"
}
# 1 MiB hits with wrk on $url; prints "mib_per_s server_cpu_ms_per_mib".
large_hits() {
  local pids_now before mib
  pids_now=$(server_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids_now)
  profile_start "$1"
  read -r _ _ mib < <(run_wrk 16 /large.bin)
  profile_stop "$1" "wrk-${url%%:*}"
  # shellcheck disable=SC2086
  per_unit_cpu "$mib" "$before" "$(cpu_ticks $pids_now)"
}
handshakes() {  # SERVER new|reuse: prints "handshakes_per_s server_cpu_ms_per_handshake"
  local rate resumed failed pids_now before
  pids_now=$(server_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids_now)
  read -r rate resumed failed < <($bin/tls_handshakes 127.0.0.1 "${tls_port[$1]}" demo.test /small.bin \
    "$handshake_threads" "$duration" "$2")
  [ "$failed" -le 1 ] || { echo "$1: $failed failed handshakes ($2)" >&2; exit 1; }
  # Resumption must have happened on (nearly) every connection for it to count as such.
  if [ "$2" = reuse ] && awk -v r="$resumed" 'BEGIN { exit !(r < 0.99) }'; then
    echo "$1: only $resumed of the connections resumed" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  per_unit_cpu "$rate" "$before" "$(cpu_ticks $pids_now)"
}

results=$work/results.txt
: >"$results"
record() {  # SERVER KEY VALUE
  [ -n "$3" ] || { echo "$1: no $2 (see above)" >&2; exit 1; }
  echo "$1 $round $2 $3" | tee -a "$results"
}
read -ra order <<<"$servers"
for round in $(seq 0 $((rounds - 1))); do
  # One direct origin fetch of an uncached 1 MiB object: the floor for coalesced misses.
  record origin origin_s "$(curl -sS -o /dev/null -w '%{time_total}' "$swift/v1/AUTH_test/bench/coalesce/$round-origin.bin")"
  for server in "${order[@]}"; do
    echo "== round $((round + 1))/$rounds: $server"
    start_server "$server"
    url=http://127.0.0.1:$port
    curl -fsS -o /dev/null -H 'Host: demo.test' "$url/large.bin"  # both now cached
    if want small; then small_hits "$server" ""; fi
    if want large; then
      read -r mib cpu < <(large_hits "$server")
      record "$server" large_mib_s "$mib"
      record "$server" large_cpu_ms_per_mib "$cpu"
    fi
    if want discard; then
      profile_start "$server"
      read -r _ mib broken < <($bin/discard_load 127.0.0.1 "$port" demo.test /large.bin 16 "$duration")
      profile_stop "$server" discard
      [ "$broken" = 0 ] || { echo "$server: $broken broken connections for 1 MiB hits" >&2; exit 1; }
      record "$server" large_discard_mib_s "$mib"
    fi
    if want misses && { [ "$server" = edge ] || [ "$server" = nginx ]; }; then
      read -r _ mib < <(python3 benchmarks/lib/misses.py 127.0.0.1 "$port" demo.test "$miss_objects" 16)
      record "$server" miss_mib_s "$mib"
      read -r head_s body_s bad < <(python3 benchmarks/lib/coalesce.py 127.0.0.1 "$port" \
        demo.test "/coalesce/$round-$server.bin" 32)
      [ "$bad" = 0 ] || { echo "$server: $bad bad answers to the coalesced misses" >&2; exit 1; }
      record "$server" coalesce_head_s "$head_s"
      record "$server" coalesce_s "$body_s"
    fi
    if [ "$server" != varnish ] && { want tls_small || want handshakes || want tls_large; }; then
      url=https://demo.test:${tls_port[$server]}
      curl -fsS -o /dev/null --cacert "$tls/ca.pem" --resolve "demo.test:${tls_port[$server]}:127.0.0.1" \
        -H 'Host: demo.test' --tlsv1.3 --tls13-ciphers "$tls13_suite" "$url/small.bin"
      if want tls_small; then small_hits "$server" tls_; fi
      if want handshakes; then
        read -r rate cpu < <(handshakes "$server" new)
        record "$server" tls_full_hs "$rate"
        record "$server" tls_full_hs_cpu_ms "$cpu"
        read -r rate cpu < <(handshakes "$server" reuse)
        record "$server" tls_resumed_hs "$rate"
        record "$server" tls_resumed_hs_cpu_ms "$cpu"
      fi
      if want tls_large; then
        read -r mib cpu < <(large_hits "$server")
        record "$server" tls_large_mib_s "$mib"
        record "$server" tls_large_cpu_ms_per_mib "$cpu"
      fi
    fi
    stop_server "$server"
  done
  if want large || want discard; then
    echo "== round $((round + 1))/$rounds: floor (plain 1 MiB hits only)"
    start_server floor
    url=http://127.0.0.1:$port
    read -r mib cpu < <(large_hits floor)
    record floor large_mib_s "$mib"
    record floor large_cpu_ms_per_mib "$cpu"
    profile_start floor
    read -r _ mib _ < <($bin/discard_load 127.0.0.1 "$port" demo.test /large.bin 16 "$duration")
    profile_stop floor discard
    record floor large_discard_mib_s "$mib"
    stop_server floor
  fi
  order=("${order[@]:1}" "${order[0]}")  # the next round starts with the next server
done

mkdir -p "$out"
python3 benchmarks/lib/peers_report.py "$results" "$out/edge_vs_peers.json" "$rounds" "$workers" "$connections" \
  "$duration" "$handshake_threads" "nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(traffic_server -V 2>&1 | awk '/Traffic Server/ {print "ATS " $3; exit}'), $(varnishd -V 2>&1 | sed -n 's/.*(varnish-\([0-9.]*\).*/Varnish \1/p;q'), $(openssl version | cut -d' ' -f1,2)"
/usr/bin/python3 benchmarks/lib/plot.py "$out/edge_vs_peers.json" "$out/edge_vs_peers.png"
echo "wrote $out/edge_vs_peers.json and $out/edge_vs_peers.png"
