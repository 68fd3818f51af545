#!/usr/bin/env bash
# scripts/swift-dev runs a real Swift: start it on free loopback ports, upload, read back, list,
# check a private account stays private. Its proxy runs the edge_purge middleware against a
# redis-server of this test's own: writes straight to Swift (with curl and the swift CLI: an
# object, a container's ACL, an SLO and its segments, a bulk delete, a COPY, an expiry) become
# write events on the stream, failures do not, and events written while Redis is down arrive
# once it is back. Then stop it all and check the processes are gone.
set -euo pipefail
trap 'echo "swift_dev.sh: check failed at line $LINENO" >&2' ERR
source_dir=$1
source "$source_dir/tests/e2e/lib/dev_service.sh"
use_dev_service swift-dev SWIFT_DEV

redis_port=$(python3 "$source_dir/tests/support/free_ports.py")
redis_pid=
start_redis() {
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$state" --save '' --appendonly yes \
    --loglevel warning </dev/null >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis-server did not answer on $redis_port" >&2
  return 1
}
stop_redis() {
  [ -n "$redis_pid" ] || return 0
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
}
trap 'stop_redis; "$dev_service" stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
start_redis
export SWIFT_DEV_REDIS=127.0.0.1:$redis_port

"$source_dir/scripts/swift-dev" start
pids=$(cat "$state"/run/*.pid)
base=http://127.0.0.1:$port
token=$(curl -fsS -D - -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$base/auth/v1.0" |
  tr -d '\r' | awk 'tolower($1) == "x-auth-token:" {print $2}')
[ -n "$token" ]
curl -fsS -X PUT -H "X-Auth-Token: $token" -H 'X-Container-Read: .r:*,.rlistings' "$base/v1/AUTH_test/public"
printf 'hello swift' | curl -fsS -X PUT --data-binary @- -H "X-Auth-Token: $token" "$base/v1/AUTH_test/public/dir/a.txt"
[ "$(curl -fsS "$base/v1/AUTH_test/public/dir/a.txt")" = "hello swift" ]
[ "$(curl -fsS "$base/v1/AUTH_test/public?prefix=dir/&format=json" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')" = dir/a.txt ]
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$base/v1/AUTH_test2/private/x")" = 401 ]
grep -q 'GET /v1/AUTH_test/public/dir/a.txt' "$state/log/proxy.log"
"$source_dir/scripts/swift-dev" status >/dev/null

# ---- write events from the edge_purge middleware ----
# Every event on the stream, one line each: method account container object status settings.
events() {
  /usr/bin/python3 - "$redis_port" <<'PY'
import sys, redis
for _, f in redis.Redis(port=int(sys.argv[1])).xrange("edge:events"):
    f = {k.decode(): v.decode() for k, v in f.items()}
    print(f["method"], f["account"], f["container"] or "-", f["object"] or "-", f["status"], f["settings"] or "-")
PY
}
expect_event() {  # a line of `events` that matches the pattern, within 10 s
  for _ in $(seq 1 100); do
    events | grep -qx -- "$1" && return 0
    sleep 0.1
  done
  echo "no write event matches '$1'; the stream has:" >&2
  events >&2
  return 1
}
expect_no_event() {  # none matches the pattern (checked after a later event was seen)
  if events | grep -q -- "$1"; then echo "unexpected write event: $(events | grep -- "$1")" >&2; return 1; fi
}
swift_cli() { /usr/bin/swift -A "$base/auth/v1.0" -U test:tester -K testing "$@"; }

expect_event 'PUT AUTH_test public - 20[12] x-container-read'
expect_event 'PUT AUTH_test public dir/a.txt 201 -'
# An SLO of three segments, uploaded and deleted with the swift CLI: the manifest and each segment.
head -c 10 /dev/urandom >"$state/big.bin"
(cd "$state" && swift_cli upload --use-slo -S 4 --object-name big.bin videos big.bin >/dev/null)
for segment in 0 1 2; do
  expect_event "PUT AUTH_test videos_segments big.bin/slo/.*/0000000$segment 201 -"
done
expect_event 'PUT AUTH_test videos big.bin 201 -'
swift_cli delete videos big.bin >/dev/null
expect_event 'DELETE AUTH_test videos big.bin 20[04] -'
[ "$(events | grep -c '^DELETE AUTH_test videos_segments ')" = 3 ]
# A bulk delete: one event per object deleted, none for the bulk request itself.
for name in x1 x2; do
  printf '%s' "$name" | curl -fsS -X PUT --data-binary @- -H "X-Auth-Token: $token" "$base/v1/AUTH_test/public/$name"
done
printf 'public/x1\npublic/x2\npublic/never-there\n' | curl -fsS -o /dev/null -X POST --data-binary @- \
  -H "X-Auth-Token: $token" -H 'Content-Type: text/plain' "$base/v1/AUTH_test?bulk-delete"
expect_event 'DELETE AUTH_test public x1 204 -'
expect_event 'DELETE AUTH_test public x2 204 -'
expect_no_event 'never-there'
expect_no_event '^POST AUTH_test - -'
# A COPY reaches the middleware (right of copy) as the PUT of its destination; an expiry set later.
curl -fsS -X COPY -H "X-Auth-Token: $token" -H 'Destination: public/dir/b.txt' "$base/v1/AUTH_test/public/dir/a.txt"
expect_event 'PUT AUTH_test public dir/b.txt 201 -'
curl -fsS -X POST -H "X-Auth-Token: $token" -H 'X-Delete-After: 3600' "$base/v1/AUTH_test/public/dir/b.txt"
expect_event 'POST AUTH_test public dir/b.txt 202 -'
# A failed write is no event.
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE -H "X-Auth-Token: $token" "$base/v1/AUTH_test/public/none")" = 404 ]
expect_no_event ' public none '

# Redis stopped: no edge could hear of a write, so it is refused before Swift sees it (503 with
# Retry-After); once Redis is back, it is done and its event arrives. (The spool, for events that
# cannot be sent after their write, is tested by tests/purge-daemon/swift_middleware_test.py.)
stop_redis
refused=$(printf 'while redis was away' | curl -sS -o /dev/null -D - -w '%{http_code}' -X PUT --data-binary @- \
  -H "X-Auth-Token: $token" "$base/v1/AUTH_test/public/dir/away.txt" | tr -d '\r')
[ "$(tail -n 1 <<<"$refused")" = 503 ]
grep -qi '^retry-after: ' <<<"$refused"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$base/v1/AUTH_test/public/dir/away.txt")" = 404 ]
start_redis
printf 'once redis was back' | curl -fsS -X PUT --data-binary @- -H "X-Auth-Token: $token" \
  "$base/v1/AUTH_test/public/dir/away.txt"
expect_event 'PUT AUTH_test public dir/away.txt 201 -'
[ ! -s "$state/run/edge-purge.spool" ]

"$source_dir/scripts/swift-dev" stop
stop_redis
for pid in $pids; do
  if running "$pid"; then echo "process $pid still running after stop" >&2; exit 1; fi
done
echo "1 passed, 0 failed"
