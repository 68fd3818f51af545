#!/usr/bin/env bash
# `purge-daemon --check`: 0 for the shipped sample, 1 for a bad setting or a bad tenant file (with
# the reason on stderr), 2 for a command line it cannot use.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/edge.sh"
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
daemon=$build_dir/purge-daemon
cp "$source_dir/examples/purge-daemon.toml" "$source_dir/examples/vhosts.toml" "$state/"
exit_of() { "$@" >"$state/out" 2>"$state/err" && echo 0 || echo $?; }

check "the sample is valid" 0 "$(exit_of "$daemon" --check --config "$state/purge-daemon.toml")"
sed 's/^node_id = .*/node_id = 12/' "$state/purge-daemon.toml" >"$state/bad-setting.toml"
check "a setting of the wrong type" 1 "$(exit_of "$daemon" --check --config "$state/bad-setting.toml")"
grep -q node_id "$state/err" || { echo "FAIL: the bad setting is not named" >&2; exit 1; }
echo 'not toml [' >"$state/vhosts.toml"
check "a bad tenant file" 1 "$(exit_of "$daemon" --check --config "$state/purge-daemon.toml")"
check "a missing file" 1 "$(exit_of "$daemon" --check --config "$state/none.toml")"
check "no --config" 2 "$(exit_of "$daemon" --check)"
echo "purge_daemon_check: $passed checks passed"
