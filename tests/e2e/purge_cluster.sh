#!/usr/bin/env bash
# The purge service on a local cluster (see purge_cluster.py): real Swift and Redis, two purge
# daemons, three edges, python-swiftclient writing through one edge, faults injected.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
# Debian's python3, which has python3-swiftclient.
exec /usr/bin/python3 "$source_dir/tests/e2e/purge_cluster.py" "$source_dir" "$build_dir"
