# Sourced by the e2e tests: runs scripts/<service> in a fresh state directory on a free loopback
# port, and stops it (by the PID it recorded) and removes the directory when the test exits.
#   use_dev_service SERVICE VAR_PREFIX   e.g. use_dev_service swift-dev SWIFT_DEV
# Sets: state, port.
source "$source_dir/scripts/lib/processes.sh"
use_dev_service() {
  dev_service=$source_dir/scripts/$1
  state=$(mktemp -d)
  # Five: swift-dev's servers take the four ports after the proxy's.
  port=$(python3 "$source_dir/tests/support/free_ports.py" 5)
  export "$2_DIR=$state" "$2_PORT=$port"
  trap '"$dev_service" stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
  # A test stopped by a signal (ctest's timeout) still stops what it started.
  trap 'exit 143' TERM INT
}
