#!/usr/bin/env bash
# The edge process and its signals, against a small origin of the test's own: SIGUSR1 reopens the
# access log (after a rotation, lines go to the new file), SIGTERM lets a request in flight finish
# within shutdown.grace and exits 0.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/edge.sh"
state=$(mktemp -d)
trap 'stop_started; rm -rf "$state"' EXIT

# The origin: /slow answers after 1.5 s, and says in origin.log when a request arrived.
origin_port=$(free_port)
python3 - "$origin_port" "$state/origin.log" <<'PY' &
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as log:
            log.write(self.path + "\n")
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        body = ("body of " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
started_pids+=("$!")
eventually "origin up" curl -fs -o /dev/null "http://127.0.0.1:$origin_port/up"

edge_dir=$state/edge
mkdir -p "$edge_dir"
edge_port=$(free_port)
admin_port=$(free_port)
cat >"$edge_dir/vhosts.toml" <<CONF
[[tenant]]
name = "site"
domains = ["site.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:$origin_port"
CONF
cat >"$edge_dir/edge.toml" <<CONF
node_id = "e2e"
tenants = "vhosts.toml"
listen.port = $edge_port
admin.port = $admin_port
log.access = "$edge_dir/access.log"
shutdown.grace = "10s"
[[cache.zone]]
path = "zone"
size = "16M"
CONF
start_edge "$edge_dir"
e=http://127.0.0.1:$edge_port
get() { curl -sS -o "$state/body" -w '%{http_code}' -H 'Host: site.test' "$e$1"; }

# SIGUSR1: the access log is rotated away, reopened, and the next line is in the new file.
check "before rotation" 200 "$(get /before)"
eventually "line logged" grep -qs /before "$edge_dir/access.log"
mv "$edge_dir/access.log" "$edge_dir/access.log.1"
reopened=$(grep -c "access log reopened" "$edge_dir/edge.log" || true)
kill -USR1 "$edge_pid"
eventually "SIGUSR1 handled" grown "access log reopened" "$edge_dir/edge.log" "$reopened"
check "after rotation" 200 "$(get /after)"
eventually "line in the new file" grep -qs /after "$edge_dir/access.log"
check "old file untouched" 0 "$(grep -c /after "$edge_dir/access.log.1" || true)"

# SIGTERM with a request in flight: it gets its whole answer, then the edge exits 0.
curl -sS -o "$state/slow" -w '%{http_code}' -H 'Host: site.test' "$e/slow" >"$state/slow.status" &
slow=$!
eventually "slow request at the origin" grep -q /slow "$state/origin.log"
kill -TERM "$edge_pid"
wait "$slow" || true
check "in flight finished" 200 "$(cat "$state/slow.status")"
check "its whole body" "body of /slow" "$(cat "$state/slow")"
wait "$edge_pid" && rc=0 || rc=$?
check "exit after draining" 0 "$rc"
echo "edge_signals: $passed checks passed"
