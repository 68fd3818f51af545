#!/usr/bin/env bash
# HTTPS as clients and attackers meet it (issue 13), against two real edges sharing a ticket key
# file, in front of a small static site, with certificates of a local CA made by the openssl CLI:
# the certificate chosen by SNI (a tenant's, the default for a wrong name and for no name, refused
# without SNI where the edge says so), an expired certificate refused by `edge --check` and by a
# SIGHUP reload, a good one taken by a reload under kept-alive load, resumption on the other edge,
# ALPN, TLS 1.1 refused, the HTTPS redirect, HSTS, SNI/Host mismatch, the edge_tls_* metrics and a
# 2 MiB body over TLS, and a client that never sends its ClientHello cut at the header timeout.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/edge.sh"
state=$(mktemp -d)
trap 'stop_started; rm -rf "$state"' EXIT
tls=$state/tls
mkdir -p "$tls"
source "$source_dir/tests/e2e/lib/tls.sh"
certificate alpha "-days 30" a.test '*.a.test'
certificate beta "-days 30" b.test
certificate default "-days 30" localhost
certificate alpha-expired "-startdate 20200101000000Z -enddate 20200201000000Z" a.test '*.a.test'
certificate alpha-new "-days 30" a.test '*.a.test'
openssl rand 80 >"$state/ticket.key"

# The origin: a static site; its files are old, so the edge keeps them a while (heuristic TTL).
mkdir -p "$state/site"
echo "small file" >"$state/site/small.txt"
head -c $((2 << 20)) /dev/urandom >"$state/site/big.bin"
touch -d 2020-01-01 "$state/site/small.txt" "$state/site/big.bin"
origin_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$state/site" "$origin_port" >"$state/origin.log" 2>&1 &
started_pids+=("$!")
eventually "origin up" curl -fs -o /dev/null "http://127.0.0.1:$origin_port/small.txt"

# alpha: a wildcard certificate and HSTS; beta: HTTPS only (plain HTTP is redirected), HSTS too;
# gamma: no certificate of its own (the default's) and no HSTS.
tenant_file() {  # the certificate files of alpha
  cat <<CONF
[[tenant]]
name = "alpha"
domains = ["a.test", "*.a.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:$origin_port"
hsts = "max-age=600"
  [[tenant.tls]]
  certificate = "$tls/$1.pem"
  key = "$tls/$1.key"
  domains = ["a.test", "*.a.test"]

[[tenant]]
name = "beta"
domains = ["b.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:$origin_port"
https_redirect = true
hsts = "max-age=900; includeSubDomains"
  [[tenant.tls]]
  certificate = "$tls/beta.pem"
  key = "$tls/beta.key"
  domains = ["b.test"]

[[tenant]]
name = "gamma"
domains = ["c.test"]
origin.kind = "http"
origin.url = "http://127.0.0.1:$origin_port"
CONF
}
tenant_file alpha >"$state/vhosts.toml"

# Two edges on the same tenant file and ticket key; edge 2 refuses clients without SNI.
declare -A http_port tls_port admin
for i in 1 2; do
  dir=$state/edge$i
  mkdir -p "$dir"
  http_port[$i]=$(free_port)
  tls_port[$i]=$(free_port)
  admin[$i]=$(free_port)
  cat >"$dir/edge.toml" <<CONF
node_id = "tls-$i"
tenants = "$state/vhosts.toml"
admin.port = ${admin[$i]}
timeouts.header = "1s"
server.max_connections = 1000
[[listen]]
port = ${http_port[$i]}
[[listen]]
port = ${tls_port[$i]}
tls = true
[[cache.zone]]
path = "zone"
size = "64M"
[tls]
default_certificate = "$tls/default.pem"
default_key = "$tls/default.key"
ticket_key_file = "$state/ticket.key"
redirect_port = ${tls_port[$i]}
$([ "$i" = 2 ] && echo 'without_sni = "refuse"')
CONF
  "$build_dir/edge" --check --config "$dir/edge.toml" >/dev/null
  admin_port=${admin[$i]}
  start_edge "$dir"
  declare "edge${i}_pid=$edge_pid"
done
t1=${tls_port[1]}
t2=${tls_port[2]}
metric() {  # EDGE NAME{LABELS}: its value
  curl -fsS "http://127.0.0.1:${admin[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'
}
https() {  # NAME PORT CURL-ARGS... (verified against the CA, for NAME)
  local name=$1 port=$2
  shift 2
  curl -sS --cacert "$tls/ca.pem" --resolve "$name:$port:127.0.0.1" "$@"
}

# SNI picks each tenant's certificate, verified with the CA for its name (curl checks the name).
check "alpha over https" "200" "$(https a.test "$t1" -o /dev/null -w '%{http_code}' "https://a.test:$t1/small.txt")"
check "alpha's wildcard" "200" "$(https x.a.test "$t1" -o /dev/null -w '%{http_code}' "https://x.a.test:$t1/small.txt")"
check "beta over https" "200" "$(https b.test "$t1" -o /dev/null -w '%{http_code}' "https://b.test:$t1/small.txt")"
check "alpha's certificate" "$(serial alpha) a.test" "$(client peer "$t1" a.test)"
check "beta's certificate" "$(serial beta) b.test" "$(client peer "$t1" b.test)"
# A name no certificate serves and no name at all: the default certificate.
check "wrong name: default" "$(serial default) localhost" "$(client peer "$t1" nobody.test)"
check "gamma (no certificate): default" "$(serial default) localhost" "$(client peer "$t1" c.test)"
check "no SNI: default" "$(serial default) localhost" "$(client peer "$t1" -)"
check "wrong name on edge 2: default" "$(serial default) localhost" "$(client peer "$t2" nobody.test)"
# Edge 2 refuses a client without SNI with the alert unrecognized_name.
refused_before=$(metric 2 'edge_tls_handshake_failures_total{reason="unrecognized_name"}')
out=$(openssl s_client -connect "127.0.0.1:$t2" -noservername -CAfile "$tls/ca.pem" </dev/null 2>&1 || true)
check "no SNI on edge 2: alert" "1" "$(grep -c 'unrecognized name.*alert number 112' <<<"$out" || true)"
check "no SNI on edge 2: counted" "$((refused_before + 1))" \
  "$(metric 2 'edge_tls_handshake_failures_total{reason="unrecognized_name"}')"
echo "ok: certificates by SNI"

# ALPN: http/1.1 chosen when h2 is offered too (h2 is not served yet).
check "alpn" "http/1.1" "$(client alpn "$t1" a.test)"
check "curl's alpn" "1.1" "$(https a.test "$t1" -o /dev/null -w '%{http_version}' "https://a.test:$t1/small.txt")"

# TLS 1.1 refused by the edge (the client's own floor lowered, so the edge is what refuses).
version_before=$(metric 1 'edge_tls_handshake_failures_total{reason="protocol_version"}')
if openssl s_client -connect "127.0.0.1:$t1" -servername a.test -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
  </dev/null >"$state/tls11.out" 2>&1; then
  echo "FAIL: a TLS 1.1 handshake succeeded" >&2
  cat "$state/tls11.out" >&2
  exit 1
fi
check "TLS 1.1 counted as protocol_version" "$((version_before + 1))" \
  "$(metric 1 'edge_tls_handshake_failures_total{reason="protocol_version"}')"
echo "ok: alpn, TLS 1.1 refused"

# Resumption: a session (ticket) from edge 1 resumes on edge 2, TLS 1.3 and 1.2.
resumed_before=$(metric 2 edge_tls_resumed_handshakes_total)
check "TLS 1.3 resumed on edge 2" "reused" "$(client resume "$t1" "$t2" a.test 1.3)"
check "TLS 1.2 resumed on edge 2" "reused" "$(client resume "$t1" "$t2" a.test 1.2)"
out=$(openssl s_client -connect "127.0.0.1:$t1" -servername b.test -tls1_2 -sess_out "$state/sess" \
  -CAfile "$tls/ca.pem" </dev/null 2>&1)
out=$(openssl s_client -connect "127.0.0.1:$t2" -servername b.test -tls1_2 -sess_in "$state/sess" \
  -CAfile "$tls/ca.pem" </dev/null 2>&1)
check "openssl s_client: Reused on edge 2" "1" "$(grep -c '^Reused' <<<"$out" || true)"
check "edge 2 counted the resumptions" "$((resumed_before + 3))" "$(metric 2 edge_tls_resumed_handshakes_total)"
echo "ok: resumption across edges"

# Plain HTTP to beta: 308 to https with path and query, no HSTS; alpha's plain HTTP has no HSTS.
p1=http://127.0.0.1:${http_port[1]}
curl -sS -o /dev/null -D "$state/h" -H 'Host: b.test' "$p1/dir/small.txt?x=1&y=%20z"
check "redirect status" "308" "$(awk 'NR == 1 {print $2}' "$state/h")"
check "redirect location" "https://b.test:$t1/dir/small.txt?x=1&y=%20z" \
  "$(tr -d '\r' <"$state/h" | awk 'tolower($1) == "location:" {print $2}')"
check "no HSTS on the redirect" "0" "$(grep -ci '^strict-transport-security' "$state/h" || true)"
check "no redirect for alpha" "200" "$(curl -sS -o /dev/null -D "$state/h" -w '%{http_code}' -H 'Host: a.test' "$p1/small.txt")"
check "no HSTS on plain HTTP" "0" "$(grep -ci '^strict-transport-security' "$state/h" || true)"
hsts() { https "$1" "$t1" -o /dev/null -D - "https://$1:$t1/small.txt" | tr -d '\r' |
  awk 'tolower($1) == "strict-transport-security:" {$1 = ""; print substr($0, 2)}'; }
check "alpha's HSTS over https" "max-age=600" "$(hsts a.test)"
check "alpha's HSTS on a hit too" "max-age=600" "$(hsts a.test)"
check "beta's HSTS over https" "max-age=900; includeSubDomains" "$(hsts b.test)"
check "gamma has none" "" "$(https c.test "$t1" -k -o /dev/null -D - "https://c.test:$t1/small.txt" |
  grep -i '^strict-transport-security' || true)"
echo "ok: redirect, HSTS"

# A Host of another tenant than the TLS name chose: 421; the same tenant's other name is fine.
check "SNI a.test, Host b.test" "421" \
  "$(https a.test "$t1" -o /dev/null -w '%{http_code}' -H 'Host: b.test' "https://a.test:$t1/small.txt")"
check "SNI a.test, Host x.a.test" "200" \
  "$(https a.test "$t1" -o /dev/null -w '%{http_code}' -H 'Host: x.a.test' "https://a.test:$t1/small.txt")"
echo "ok: SNI/Host mismatch"

# A 2 MiB body over TLS, arriving whole; its hit is a file body sent by SSL_write in pieces (no
# kernel TLS here), and the counters of its path move by its size.
want=$(sha256sum <"$state/site/big.bin" | cut -d' ' -f1)
https a.test "$t1" -fo "$state/big1" "https://a.test:$t1/big.bin"
check "2 MiB miss intact" "$want" "$(sha256sum <"$state/big1" | cut -d' ' -f1)"
sleep 0.2  # the fill is committed after the answer's last byte
written_before=$(metric 1 'edge_tls_body_bytes_total{path="ssl_write"}')
ktls_before=$(metric 1 'edge_tls_body_bytes_total{path="ktls"}')
https a.test "$t1" -fo "$state/big2" -D "$state/h" "https://a.test:$t1/big.bin"
check "2 MiB hit intact" "$want" "$(sha256sum <"$state/big2" | cut -d' ' -f1)"
written=$(($(metric 1 'edge_tls_body_bytes_total{path="ssl_write"}') - written_before))
ktls=$(($(metric 1 'edge_tls_body_bytes_total{path="ktls"}') - ktls_before))
check "file body bytes over TLS (ssl_write + ktls)" "$((2 << 20))" "$((written + ktls))"
echo "ok: 2 MiB over TLS (ssl_write $written, ktls $ktls bytes)"
# From the entry's second hit on, an HTTPS hit (without kernel TLS) is encrypted from a copy held
# in memory; plain HTTP still sends the file (sendfile), and does not read it into memory.
if [ "$ktls" -eq 0 ]; then
  memory_before=$(metric 1 'edge_tls_body_bytes_total{path="memory"}')
  https a.test "$t1" -fo "$state/big3" "https://a.test:$t1/big.bin"
  check "2 MiB hit from memory intact" "$want" "$(sha256sum <"$state/big3" | cut -d' ' -f1)"
  check "body bytes over TLS from memory" "$((2 << 20))" \
    "$(($(metric 1 'edge_tls_body_bytes_total{path="memory"}') - memory_before))"
  held=$(metric 1 'edge_cache_memory_bytes{tier="https_bodies"}')
  [ "$held" -ge $((2 << 20)) ] || { echo "FAIL: $held bytes held in memory, want the 2 MiB body" >&2; exit 1; }
  curl -fsS -o "$state/big4" -H 'Host: a.test' "http://127.0.0.1:${http_port[1]}/big.bin"
  check "2 MiB plain hit intact" "$want" "$(sha256sum <"$state/big4" | cut -d' ' -f1)"
  check "plain hit not from the TLS memory" "$((2 << 20))" \
    "$(($(metric 1 'edge_tls_body_bytes_total{path="memory"}') - memory_before))"
  echo "ok: the third HTTPS hit encrypted from memory ($held bytes held)"
fi

# An expired certificate: refused by --check, and by a SIGHUP reload (the old one keeps serving).
tenant_file alpha-expired >"$state/vhosts.toml"
if "$build_dir/edge" --check --config "$state/edge1/edge.toml" >"$state/check.out" 2>&1; then
  echo "FAIL: edge --check accepted an expired certificate" >&2
  exit 1
fi
check "--check names the expiry" "1" "$(grep -c 'tenant\[0\].tls\[0\].certificate: .*expired' "$state/check.out" || true)"
refused=$(grep -c "reload refused" "$state/edge1/edge.log" || true)
kill -HUP "$edge1_pid"
eventually "expired reload refused" grown "reload refused" "$state/edge1/edge.log" "$refused"
check "old certificate still served" "$(serial alpha) a.test" "$(client peer "$t1" a.test)"
echo "ok: expired certificate refused"

# A good new certificate, reloaded while 4 kept-alive connections make requests: none fails, none
# is dropped, and new handshakes get the new certificate.
client keepalive "$t1" a.test a.test /small.txt "$state/stop" >"$state/keepalive.out" 2>&1 &
loop=$!
started_pids+=("$loop")
sleep 0.5
tenant_file alpha-new >"$state/vhosts.toml"
"$build_dir/edge" --check --config "$state/edge1/edge.toml" >/dev/null
reloaded=$(grep -c "^.*reloaded " "$state/edge1/edge.log" || true)
kill -HUP "$edge1_pid"
eventually "good reload" grown "reloaded " "$state/edge1/edge.log" "$reloaded"
check "new handshakes: the new certificate" "$(serial alpha-new) a.test" "$(client peer "$t1" a.test)"
sleep 0.5
touch "$state/stop"
wait "$loop" && rc=0 || rc=$?
cat "$state/keepalive.out"
check "kept-alive requests across the reload" "0" "$rc"
check "no reconnect" "0" "$(awk '{print $6}' "$state/keepalive.out")"
echo "ok: reload under load"

# A client that opens TCP and never sends its ClientHello is cut at the header timeout (1 s).
timeouts_before=$(metric 1 'edge_tls_handshake_failures_total{reason="timeout"}')
held=$(client silent "$t1")
echo "silent client closed after $held s"
check "cut near the header timeout, not left open" "1" "$(awk -v s="$held" 'BEGIN {print (s >= 0.5 && s < 5) ? 1 : 0}')"
check "counted as timeout" "$((timeouts_before + 1))" "$(metric 1 'edge_tls_handshake_failures_total{reason="timeout"}')"

# The handshake counters moved, and both edges are still up.
echo "edge 1: $(metric 1 edge_tls_handshakes_total) handshakes, edge 2: $(metric 2 edge_tls_handshakes_total)"
check "handshakes counted" "1" "$(awk -v n="$(metric 1 edge_tls_handshakes_total)" 'BEGIN {print (n >= 15) ? 1 : 0}')"
for i in 1 2; do
  check "edge $i up" "200" "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:${admin[$i]}/healthz")"
done
echo "edge_tls: $passed checks passed in $SECONDS s"
