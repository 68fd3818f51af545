#!/usr/bin/env bash
# scripts/redis-dev runs a real redis-server on a free loopback port and stops exactly it.
set -euo pipefail
source_dir=$1
source "$source_dir/tests/e2e/lib/dev_service.sh"
use_dev_service redis-dev REDIS_DEV

"$source_dir/scripts/redis-dev" start
pid=$(cat "$state/redis.pid")
[ "$(redis-cli -p "$port" XADD edge:test '*' k v | grep -c -- -)" = 1 ]
[ "$(redis-cli -p "$port" XLEN edge:test)" = 1 ]
"$source_dir/scripts/redis-dev" status >/dev/null
"$source_dir/scripts/redis-dev" stop
if running "$pid"; then echo "redis-server $pid still running" >&2; exit 1; fi
echo "1 passed, 0 failed"
