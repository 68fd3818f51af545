# Sourced by the e2e tests: helpers to run the project's binaries on free loopback ports and stop
# them by PID when the test exits. Needs $source_dir; the binaries are those of the build the test
# belongs to (its second argument), else of the release build.
build_dir=${build_dir:-$source_dir/build/release}
started_pids=()
source "$source_dir/scripts/lib/processes.sh"

free_port() {
  python3 "$source_dir/tests/support/free_ports.py"
}

stop_started() {
  [ ${#started_pids[@]} -eq 0 ] || stop_pids 5 "${started_pids[@]}"
}

# start_edge DIR: runs build/edge with DIR/edge.toml, output to DIR/edge.log; waits for /healthz on
# $admin_port. Sets edge_pid. A free port can be taken between free_port and the edge's bind: then
# new ports are written into DIR/edge.toml (and $edge_port, $admin_port) and the start is retried.
start_edge() {
  local attempt
  for attempt in 1 2 3; do
    "$build_dir/edge" --config "$1/edge.toml" </dev/null >>"$1/edge.log" 2>&1 &
    edge_pid=$!
    started_pids+=("$edge_pid")
    for _ in $(seq 1 100); do
      curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$admin_port/healthz" 2>/dev/null && return 0
      running "$edge_pid" || break
      sleep 0.1
    done
    if ! running "$edge_pid" && tail -3 "$1/edge.log" | grep -q "cannot listen on"; then
      edge_port=$(free_port)
      admin_port=$(free_port)
      sed -i -e "s/^listen.port = .*/listen.port = $edge_port/" -e "s/^admin.port = .*/admin.port = $admin_port/" \
        "$1/edge.toml"
      continue
    fi
    break
  done
  echo "edge did not start:" >&2
  cat "$1/edge.log" >&2
  return 1
}

# Swift credentials for test:tester.
swift_token() {
  curl -fsS -D - -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$1/auth/v1.0" |
    tr -d '\r' | awk 'tolower($1) == "x-auth-token:" {print $2}'
}

# eventually DESCRIPTION COMMAND...: runs COMMAND until it succeeds, for up to 20 s, and fails the
# test if it never does: waits on an event itself (a signal handled, a log flushed), not a guess.
eventually() {
  local what=$1
  shift
  for _ in $(seq 1 400); do
    "$@" && return 0
    sleep 0.05
  done
  echo "FAIL: $what: not within 20 s" >&2
  exit 1
}

# grown PATTERN FILE COUNT: FILE has more than COUNT lines matching PATTERN.
grown() { [ "$(grep -c -- "$1" "$2" || true)" -gt "$3" ]; }

passed=0
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1: expected '$2', got '$3'" >&2
    exit 1
  fi
  passed=$((passed + 1))
}
