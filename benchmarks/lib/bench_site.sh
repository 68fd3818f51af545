# Sourced by the benchmarks (from the repository's root): a real Swift holding the container
# AUTH_test/bench, readable by anyone, and an edge configured to serve it as demo.test.
#   bench_init
#       sets $work (a new directory), $swift_port (and the four after it free), $edge_port and
#       $edge_pid (empty); on exit the edge at $edge_pid and Swift are stopped and $work removed
#   start_bench_swift WORK PORT
#       starts scripts/swift-dev in WORK/swift on PORT (and the next four); sets $swift and $token
#   write_edge_config DIR NODE PORT WORKERS ZONE_SIZE [TLS_PORT CERTIFICATE KEY [TLS_SETTINGS]]
#       writes DIR/vhosts.toml and DIR/edge.toml: two cache zones of ZONE_SIZE each; with TLS_PORT,
#       HTTPS there too, demo.test's certificate and key the files given, TLS_SETTINGS (TOML lines)
#       in [tls]. The admin listener (/metrics) on $bench_admin_port, off without it. Tenant
#       settings appended to DIR/vhosts.toml apply to the tenant.
#   cpu_ticks PID...
#       CPU time (user + system, all threads) of the given processes, in clock ticks
#   start_bench_edge DIR PORT
#       starts build/release/edge with DIR/edge.toml and empty zones (appends its output to
#       DIR/edge.log), sets $edge_pid and returns once it answers on PORT
bench_init() {
  work=$(mktemp -d)
  swift_port=$(python3 tests/support/free_ports.py 5)  # swift-dev's servers take the next four ports
  edge_port=$(python3 tests/support/free_ports.py)
  edge_pid=
  trap bench_cleanup EXIT
}

bench_cleanup() {
  if [ -n "$edge_pid" ]; then kill "$edge_pid" 2>/dev/null || true; fi
  SWIFT_DEV_DIR=$work/swift SWIFT_DEV_PORT=$swift_port scripts/swift-dev stop >/dev/null 2>&1 || true
  rm -rf "$work"
}

start_bench_swift() {
  SWIFT_DEV_DIR=$1/swift SWIFT_DEV_PORT=$2 scripts/swift-dev start >/dev/null
  swift=http://127.0.0.1:$2
  token=$(curl -fsS -D - -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$swift/auth/v1.0" |
    tr -d '\r' | awk 'tolower($1) == "x-auth-token:" {print $2}')
  curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" -H 'X-Container-Read: .r:*,.rlistings' \
    "$swift/v1/AUTH_test/bench"
}

write_edge_config() {
  local dir=$1 node=$2 port=$3 workers=$4 zone_size=$5 tls_port=${6:-} certificate=${7:-} key=${8:-}
  local tls_settings=${9:-}
  mkdir -p "$dir"
  cat >"$dir/vhosts.toml" <<CONF
[[tenant]]
name = "demo"
domains = ["demo.test"]
origin.url = "$swift"
origin.account = "AUTH_test"
origin.container = "bench"
CONF
  [ -z "$tls_port" ] || printf '  [[tenant.tls]]\n  certificate = "%s"\n  key = "%s"\n' "$certificate" "$key" \
    >>"$dir/vhosts.toml"
  cat >"$dir/edge.toml" <<CONF
node_id = "$node"
tenants = "vhosts.toml"
server.workers = $workers
admin.port = ${bench_admin_port:-0}
log.access = "access.log"
[[listen]]
port = $port
CONF
  [ -z "$tls_port" ] || printf '[[listen]]\nport = %s\ntls = true\n' "$tls_port" >>"$dir/edge.toml"
  cat >>"$dir/edge.toml" <<CONF
[[cache.zone]]
path = "zone-a"
size = "$zone_size"
[[cache.zone]]
path = "zone-b"
size = "$zone_size"
CONF
  [ -z "$tls_port" ] || printf '[tls]\n%s\n' "$tls_settings" >>"$dir/edge.toml"
}

# A process gone meanwhile (nginx's cache loader exits a minute in) counts for nothing.
cpu_ticks() {
  for pid in "$@"; do cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null || echo "0 0"; done |
    awk '{t += $1 + $2} END {print t}'
}

start_bench_edge() {
  local dir=$1 port=$2 binary
  binary=$(realpath build/release/edge)
  rm -rf "$dir/zone-a" "$dir/zone-b"
  (cd "$dir" && exec "$binary" --config edge.toml </dev/null >>edge.log 2>&1) &
  edge_pid=$!
  for _ in $(seq 1 100); do
    # Any answer (the container's listing may be refused): it listens.
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: demo.test' "http://127.0.0.1:$port/")" != 000 ] && return 0
    sleep 0.1
  done
  echo "the edge in $dir did not start" >&2
  return 1
}
