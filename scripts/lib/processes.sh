# Sourced by the scripts and tests that start processes: checking and stopping them by PID.

# running PID: the process is there and has not exited. A zombie has exited: its parent, often
# PID 1 once the starting script is gone, may take seconds to reap it, and kill -0 counts it.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # after the command name, which may hold spaces and parentheses
  [ "${stat%% *}" != Z ]
}

# stop_pids SECONDS PID...: SIGTERM to every one at once, up to SECONDS for all of them to exit,
# then SIGKILL to any left.
stop_pids() {
  local seconds=$1 pid left
  shift
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 $((seconds * 10))); do
    left=0
    for pid in "$@"; do running "$pid" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
}
