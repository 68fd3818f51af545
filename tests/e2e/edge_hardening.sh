#!/usr/bin/env bash
# The holes a prober found, as end-to-end requests against the real edge, a real Swift and the
# shipped sample tenant file: the sample http tenant is a web site (not Swift's object server), an
# encoded temp-URL signature is a credential, no spelling of a bypassed path is cached, an
# absolute-form target's authority picks the tenant, lax Host values are refused, fields named in
# Connection never reach Swift, HTTP/1.0 keep-alive is said, origin failures show no address, a
# large object's entry goes when its segments are written.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/dev_service.sh"
source "$source_dir/tests/e2e/lib/edge.sh"
use_dev_service swift-dev SWIFT_DEV
export SITE_DEV_DIR=$state/site SITE_DEV_PORT
SITE_DEV_PORT=$(free_port)
trap 'stop_started; "$source_dir/scripts/site-dev" stop >/dev/null 2>&1 || true;
      "$dev_service" stop >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

"$source_dir/scripts/swift-dev" start >/dev/null
"$source_dir/scripts/site-dev" start >/dev/null
swift=http://127.0.0.1:$port
token=$(swift_token "$swift")
auth=(-H "X-Auth-Token: $token")
curl -fsS -o /dev/null -X PUT "${auth[@]}" -H 'X-Container-Read: .r:*,.rlistings' "$swift/v1/AUTH_test/public"
curl -fsS -o /dev/null -X PUT "${auth[@]}" "$swift/v1/AUTH_test/private"
put() { printf '%s' "$2" | curl -fsS -o /dev/null -X PUT --data-binary @- "${auth[@]}" "$swift/v1/AUTH_test/$1"; }
put public/index.html 'the public index'
put public/private/x.txt 'not for caches'
put private/secret.txt 'secret'
curl -fsS -o /dev/null -X POST "${auth[@]}" -H 'X-Account-Meta-Temp-URL-Key: e2e-key' "$swift/v1/AUTH_test"

edge_dir=$state/edge
mkdir -p "$edge_dir"
edge_port=$(free_port)
admin_port=$(free_port)
closed_port=$(free_port)  # nothing listens there
# The shipped sample, on this test's ports, and one tenant whose origin is down.
sed -e "s#http://127.0.0.1:8080#$swift#" -e "s#http://127.0.0.1:8070#http://127.0.0.1:$SITE_DEV_PORT#" \
  "$source_dir/examples/vhosts.toml" >"$edge_dir/vhosts.toml"
cat >>"$edge_dir/vhosts.toml" <<CONF
[[tenant]]
name = "down"
domains = ["down.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:$closed_port"
CONF
cat >"$edge_dir/edge.toml" <<CONF
node_id = "e2e"
tenants = "vhosts.toml"
listen.port = $edge_port
admin.port = $admin_port
[[cache.zone]]
path = "zone"
size = "64M"
CONF
"$build_dir/edge" --check --config "$edge_dir/edge.toml" >/dev/null
start_edge "$edge_dir"
e=http://127.0.0.1:$edge_port
get() {  # get HOST TARGET [curl args...] -> "status x-cache", the body in $state/body
  local host=$1 target=$2
  shift 2
  # In $(...) set -e is off: a failed curl prints nothing, so its check fails, never judged from
  # an earlier request's files.
  rm -f "$state/body" "$state/head"
  curl -sS -o "$state/body" -D "$state/head" -H "Host: $host" --path-as-is "$@" "$e$target" >/dev/null ||
    { echo "FAIL: curl $host$target exited $?" >&2; return 1; }
  echo "$(awk 'NR==1 {print $2}' "$state/head") $(tr -d '\r' <"$state/head" | awk 'tolower($1)=="x-cache:" {print $2}')"
}
swift_status() { curl -sS -o /dev/null -w '%{http_code}' --path-as-is "$swift$1"; }

# 1. The sample http tenant fronts a web site; Swift's storage servers are not reachable through it.
check "docs site" "200 MISS" "$(get docs.example.test /)"
grep -q "docs-site" "$state/body" || { echo "FAIL: the docs tenant does not serve the docs site" >&2; exit 1; }
check "no object-server paths" "404 MISS" "$(get docs.example.test /d1/0/AUTH_test/private/secret.txt)"
for p in 1 2 3; do  # no http tenant of the sample points at Swift's object, container or account server
  if grep -q "127.0.0.1:$((8080 + p))\"" "$source_dir/examples/vhosts.toml"; then
    echo "FAIL: examples/vhosts.toml points at swift-dev's port $((8080 + p))" >&2
    exit 1
  fi
done

# 2. A temp URL is a credential however its parameter names are spelled: relayed, never cached.
path=/v1/AUTH_test/private/secret.txt
expires=$(($(date +%s) + 3))
sig=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(b"e2e-key", ("GET\n%s\n%s" % (sys.argv[1], sys.argv[2])).encode(), hashlib.sha256).hexdigest())' "$expires" "$path")
encoded="$path?temp%5Furl%5Fsig=$sig&temp%5Furl%5Fexpires=$expires"
check "Swift takes the encoded temp URL" 200 "$(swift_status "$encoded")"
check "encoded temp URL relayed" "200 BYPASS" "$(get swift.example.test "$encoded")"
check "encoded temp URL relayed again" "200 BYPASS" "$(get swift.example.test "$encoded")"
check "plain temp URL relayed" "200 BYPASS" "$(get swift.example.test "$path?temp_url_sig=$sig&temp_url_expires=$expires")"
swift_refuses() { [ "$(swift_status "$encoded")" = 401 ]; }
eventually "Swift refuses the expired temp URL" swift_refuses
check "expired temp URL refused, not served stale" "401 BYPASS" "$(get swift.example.test "$encoded")"

# 3. The sample's "/private/*" bypass rule holds for every spelling of the path.
for spelling in /private/x.txt //private/x.txt /%70rivate/x.txt /./private/x.txt /private//x.txt; do
  check "bypass $spelling" "200 BYPASS" "$(get demo.example.test "$spelling")"
  check "bypass $spelling again" "200 BYPASS" "$(get demo.example.test "$spelling")"
done
check "bypass in absolute form" "200 BYPASS" \
  "$(get demo.example.test /x --request-target "http://demo.example.test/%70rivate/x.txt")"

# 4. Absolute form: the target's authority names the tenant (the scheme in any case).
check "absolute form picks by-container" "200 MISS" \
  "$(get demo.example.test /x --request-target "http://files.example.test/public/index.html")"
check "absolute-form body" "the public index" "$(cat "$state/body")"
check "upper-case scheme" "200 HIT" \
  "$(get demo.example.test /x --request-target "HTTP://files.example.test/public/index.html")"
check "same Host, origin form: demo's own object" "404 MISS" "$(get demo.example.test /public/index.html)"

# 5. Host values a parser could read two ways are refused.
for host in files.example.test:demo.example.test .cdn.example.test a..cdn.example.test 'demo.example.test:80x'; do
  check "Host $host" "400 " "$(get "$host" /index.html)"
done
check "a wildcard name (the entry by-container stored)" "200 HIT" "$(get x.cdn.example.test /index.html)"

# 6. Fields named in Connection are hop-by-hop: Swift never sees them.
curl -fsS -o /dev/null -X PUT "${auth[@]}" -H 'X-Object-Meta-Color: red' -H 'Connection: X-Object-Meta-Color' \
  --data-binary 'hop' -H 'Host: swift.example.test' "$e/v1/AUTH_test/public/hop.txt"
check "write went through" 200 "$(swift_status /v1/AUTH_test/public/hop.txt)"
stored_head=$(curl -fsS -I "${auth[@]}" "$swift/v1/AUTH_test/public/hop.txt")
if grep -qi '^x-object-meta-color' <<<"$stored_head"; then
  echo "FAIL: a field named in Connection reached Swift" >&2
  exit 1
fi
passed=$((passed + 1))

# 7. HTTP/1.0 keep-alive: the edge says it keeps the connection, and does.
check "HTTP/1.0 keep-alive" "2 keep-alive" "$(python3 - "$edge_port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
said, answers = "", 0
for _ in range(2):
    s.sendall(b"GET / HTTP/1.0\r\nHost: docs.example.test\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
    answers += 1
    said = [l for l in head.decode().split("\r\n") if l.lower().startswith("connection:")][0].split(":")[1].strip()
print(answers, said)
PY
)"

# 8. An origin that is down: 502, said in the client's terms, without the origin's address.
check "origin down" "502 " "$(get down.test /x)"
if grep -q "127.0.0.1\|$closed_port" "$state/body"; then
  echo "FAIL: the 502 body shows the origin's address: $(cat "$state/body")" >&2
  exit 1
fi
passed=$((passed + 1))

# 9. The standard Swift client logs in through the edge and its writes go through the edge: the
# storage URL it is handed is the edge's. The sample names resolve to loopback in a private mount
# namespace (/etc/hosts bind-mounted), as nothing else on the machine may be touched.
{ cat /etc/hosts; echo "127.0.0.1 swift.example.test demo.example.test"; } >"$state/hosts"
if unshare -m true 2>/dev/null; then
  cli() {
    unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$state/hosts" \
      swift -A "http://swift.example.test:$edge_port/auth/v1.0" -U test:tester -K testing "$@"
  }
  check "auth answer names the edge" "http://swift.example.test:$edge_port/v1/AUTH_test" \
    "$(cli --verbose stat | awk '$1 == "StorageURL:" {print $2}')"
  printf 'first version' >"$state/cli.txt"
  (cd "$state" && cli upload public cli.txt >/dev/null)
  check "read the upload" "200 MISS" "$(get demo.example.test /cli.txt)"
  check "cached" "200 HIT" "$(get demo.example.test /cli.txt)"
  printf 'second version' >"$state/cli.txt"
  (cd "$state" && cli upload public cli.txt >/dev/null)
  check "the overwrite purged the edge" "second version" "$(get demo.example.test /cli.txt >/dev/null; cat "$state/body")"
  # swift upload PUTs the (existing) container before each object: that 202 purges nothing else.
  check "the container PUT left other entries cached" "200 HIT" "$(get demo.example.test /index.html)"
  check "listed through the edge" "cli.txt" "$(cli list public | grep -x cli.txt)"
  check "downloaded through the edge" "second version" "$(cd "$state" && cli download public cli.txt -o - )"
  cli delete public cli.txt >/dev/null
  check "the delete purged the edge" "404 MISS" "$(get demo.example.test /cli.txt)"
  check "Swift agrees" 404 "$(swift_status /v1/AUTH_test/public/cli.txt)"
  grep -q "PUT /v1/AUTH_test/public/cli.txt" "$state/log/proxy.log" ||
    { echo "FAIL: the uploads did not reach Swift" >&2; exit 1; }
elif [ "${CI:-}" = true ]; then
  echo "FAIL: cannot make a mount namespace (unshare -m) to run the swift CLI" >&2
  exit 1
else
  echo "skipped: the swift CLI through the edge needs unshare -m (run as root)"
fi

# 10. Large objects: an entry assembled from segments goes when a segment is written through the
# edge. A DLO is every object under its X-Object-Manifest prefix (a new one too); an SLO is what its
# manifest lists (Swift checks each segment's ETag against the manifest, so after an overwrite the
# edge must relay what Swift now says, not the old body).
put public/dlo-segs/1 'aaa'
put public/dlo-segs/2 'bbb'
curl -fsS -o /dev/null -X PUT "${auth[@]}" -H 'X-Object-Manifest: public/dlo-segs/' --data-binary '' \
  "$swift/v1/AUTH_test/public/big.dlo"
put public/slo-segs/1 'ccc'
put public/slo-segs/2 'ddd'
curl -fsS -o /dev/null -X PUT "${auth[@]}" \
  --data-binary '[{"path": "/public/slo-segs/1"}, {"path": "/public/slo-segs/2"}]' \
  "$swift/v1/AUTH_test/public/big.slo?multipart-manifest=put"
edge_put() { printf '%s' "$2" | curl -fsS -o /dev/null -X PUT --data-binary @- "${auth[@]}" \
  -H 'Host: swift.example.test' "$e/v1/AUTH_test/$1"; }
check "DLO assembled" "200 MISS aaabbb" "$(get demo.example.test /big.dlo) $(cat "$state/body")"
check "DLO cached" "200 HIT aaabbb" "$(get demo.example.test /big.dlo) $(cat "$state/body")"
check "SLO assembled" "200 MISS cccddd" "$(get demo.example.test /big.slo) $(cat "$state/body")"
check "SLO cached" "200 HIT cccddd" "$(get demo.example.test /big.slo) $(cat "$state/body")"
edge_put public/dlo-segs/2 'BBB'
check "a DLO segment overwritten" "200 MISS aaaBBB" "$(get demo.example.test /big.dlo) $(cat "$state/body")"
check "cached again" "200 HIT aaaBBB" "$(get demo.example.test /big.dlo) $(cat "$state/body")"
edge_put public/dlo-segs/3 'ccc'
check "a DLO segment added" "200 MISS aaaBBBccc" "$(get demo.example.test /big.dlo) $(cat "$state/body")"
edge_put public/slo-segs/2 'DDD'
swift_says=$(curl -sS -o "$state/swift-body" -w '%{http_code}' "$swift/v1/AUTH_test/public/big.slo" || true)
edge_says=$(get demo.example.test /big.slo || true)
case "$edge_says" in
  *HIT) echo "FAIL: an SLO whose segment was overwritten is still a HIT" >&2; exit 1 ;;
esac
check "after an SLO segment's overwrite, the edge answers what Swift answers" \
  "$swift_says $(md5sum <"$state/swift-body")" "${edge_says%% *} $(md5sum <"$state/body")"
# A new manifest over the same segments: the SLO is whole again, and cached again.
curl -fsS -o /dev/null -X PUT "${auth[@]}" -H 'Host: swift.example.test' \
  --data-binary '[{"path": "/public/slo-segs/1"}, {"path": "/public/slo-segs/2"}]' \
  "$e/v1/AUTH_test/public/big.slo?multipart-manifest=put"
check "the SLO's new manifest" "200 MISS cccDDD" "$(get demo.example.test /big.slo) $(cat "$state/body")"
check "and cached" "200 HIT cccDDD" "$(get demo.example.test /big.slo) $(cat "$state/body")"

echo "$passed passed, 0 failed"
