#!/usr/bin/env bash
# How long a 304 refresh of a large entry holds up other requests on the same worker: the worst
# and p99 latency of 1 KiB hits (wrk, 8 connections) on a one-worker edge while a request for a
# stale 512 MiB entry is revalidated (Swift answers 304 and the entry is refreshed, its body
# copied to a new file). Runs each edge binary given, in turn, in front of one real Swift.
#   benchmarks/refresh_stall.sh build/release/edge [OTHER_EDGE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: benchmarks/refresh_stall.sh EDGE [EDGE ...]" >&2; exit 2; }
source benchmarks/lib/bench_site.sh
bench_init

start_bench_swift "$work" "$swift_port"
head -c 1024 /dev/urandom | curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary @- \
  "$swift/v1/AUTH_test/bench/small.bin"
head -c $((512 << 20)) /dev/urandom >"$work/big"
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" -T "$work/big" "$swift/v1/AUTH_test/bench/big.bin"
rm "$work/big"
write_edge_config "$work/edge" stall "$edge_port" 1 4G
cat >>"$work/edge/vhosts.toml" <<CONF
[[tenant.cache.rule]]
path = "/big.bin"
ttl = "5s"
CONF

url=http://127.0.0.1:$edge_port
echo "| edge | 1 KiB hits during the refresh: worst | p99 | the revalidated request | the next one |"
echo "|---|---|---|---|---|"
for edge in "$@"; do
  rm -rf "$work/edge/zone-a" "$work/edge/zone-b"
  binary=$(realpath "$edge")
  (cd "$work/edge" && exec "$binary" --config edge.toml >edge.log 2>&1) &
  edge_pid=$!
  for _ in $(seq 1 50); do curl -fsS -o /dev/null -H 'Host: demo.test' "$url/small.bin" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null -H 'Host: demo.test' "$url/big.bin"  # the miss that stores it
  sleep 6                                                     # now stale
  sync
  wrk -t1 -c8 -d5s --latency -H 'Host: demo.test' "$url/small.bin" >"$work/wrk.txt" &
  wrk_pid=$!
  sleep 1.5
  big=$(curl -fsS -o /dev/null -D - -w '%{time_total}' -H 'Host: demo.test' "$url/big.bin" | tr -d '\r' |
    awk 'tolower($1) == "x-cache:" {label = $2} END {print label " in " $NF " s"}')
  # The refresh has landed by now (its copy took under a second here): within the 5 s TTL it
  # renewed, the next request is a HIT.
  sleep 1
  next=$(curl -fsS -o /dev/null -D - -H 'Host: demo.test' "$url/big.bin" | tr -d '\r' |
    awk 'tolower($1) == "x-cache:" {print $2}')
  wait "$wrk_pid"
  worst=$(awk '$1 == "Latency" {print $4}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  echo "| $edge | $worst | $p99 | $big | $next |"
  kill "$edge_pid"
  wait "$edge_pid" 2>/dev/null || true
  edge_pid=
done
