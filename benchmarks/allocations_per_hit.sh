#!/usr/bin/env bash
# Heap allocations per cache hit in the edge: malloc calls counted by an LD_PRELOAD library
# (benchmarks/lib/count_mallocs.c) while wrk sends hits for a 1 KiB object with a short name, one
# with a name as long as real ones, and a 1 MiB object, divided by the requests wrk made. The edge runs in front of a real Swift (scripts/swift-dev), 2 workers.
#   benchmarks/allocations_per_hit.sh     (after cmake --build build/release)
#   EDGE=path/to/edge                     another build of the edge, to compare
set -euo pipefail
cd "$(dirname "$0")/.."
edge=${EDGE:-build/release/edge}
[ -x "$edge" ] || { echo "build first: cmake --build build/release" >&2; exit 1; }
source benchmarks/lib/bench_site.sh
bench_init

gcc -O2 -shared -fPIC -o "$work/count_mallocs.so" benchmarks/lib/count_mallocs.c
start_bench_swift "$work" "$swift_port"
objects="1024.bin:1024 photos/2026/holiday/IMG_004711.jpg:1024 1048576.bin:1048576"
for object in $objects; do
  head -c "${object#*:}" /dev/urandom | curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary @- \
    "$swift/v1/AUTH_test/bench/${object%:*}"
done
write_edge_config "$work" allocations "$edge_port" 2 1G
LD_PRELOAD=$work/count_mallocs.so "$edge" --config "$work/edge.toml" </dev/null 2>"$work/edge.err" &
edge_pid=$!
url=http://127.0.0.1:$edge_port
for _ in $(seq 1 100); do curl -fsS -o /dev/null -H 'Host: demo.test' "$url/1024.bin" 2>/dev/null && break; sleep 0.1; done

count() {
  kill -USR2 "$edge_pid"
  sleep 0.3
  tail -n 1 "$work/edge.err" | awk '$1 == "mallocs" {print $2}'
}
echo "| object | bytes | requests | mallocs | mallocs per hit |"
echo "|---|---|---|---|---|"
for object in $objects; do
  name=${object%:*}
  curl -fsS -o /dev/null -H 'Host: demo.test' "$url/$name"                     # the miss that fills it
  wrk -t1 -c4 -d1s -H 'Host: demo.test' "$url/$name" >/dev/null                 # warm: buffers at size
  before=$(count)
  requests=$(wrk -t1 -c4 -d3s -H 'Host: demo.test' "$url/$name" | awk '/requests in/ {print $1}')
  after=$(count)
  echo "| $name | ${object#*:} | $requests | $((after - before)) | $(awk -v m=$((after - before)) -v r="$requests" 'BEGIN {printf "%.1f", m / r}') |"
done
