#!/usr/bin/env bash
# scripts/swift-dev runs a real Swift: start it on free loopback ports, upload, read back, list,
# check a private account stays private, then stop it and check its processes are gone.
set -euo pipefail
source_dir=$1
source "$source_dir/tests/e2e/lib/dev_service.sh"
use_dev_service swift-dev SWIFT_DEV

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

"$source_dir/scripts/swift-dev" stop
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then echo "process $pid still running after stop" >&2; exit 1; fi
done
echo "1 passed, 0 failed"
