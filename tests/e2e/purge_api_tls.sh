#!/usr/bin/env bash
# The purge API over HTTPS (api.certificate, api.key): clients verify it against its CA; SIGHUP
# puts a renewed certificate in service for new handshakes, and a bad one is refused with the one
# in use kept.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/release}
source "$source_dir/tests/e2e/lib/edge.sh"
state=$(mktemp -d)
trap 'stop_started; rm -rf "$state"' EXIT

# A CA and two certificates for 127.0.0.1 in its name: the one served at start, and its renewal.
cd "$state"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
  -subj /CN=purge-test-ca 2>/dev/null
issue() {  # issue NAME SERIAL
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj /CN=purge.test 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$2" -days 30 -out "$1.pem" \
    -extfile <(printf 'subjectAltName=DNS:purge.test,IP:127.0.0.1') 2>/dev/null
}
issue first 1001
issue renewed 1002
cp first.pem api.pem
cp first.key api.key

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >redis.log 2>&1 &
started_pids+=($!)
redis_up() { redis-cli -p "$redis_port" ping >/dev/null 2>&1; }
eventually "redis answers" redis_up
api_port=$(free_port)
admin_port=$(free_port)
cp "$source_dir/examples/vhosts.toml" vhosts.toml
cat >purge-daemon.toml <<CONF
node_id = "purge-tls"
tenants = "vhosts.toml"
redis = "127.0.0.1:$redis_port"
[api]
port = $api_port
certificate = "api.pem"
key = "api.key"
[admin]
port = $admin_port
CONF
"$build_dir/purge-daemon" --config purge-daemon.toml </dev/null >daemon.log 2>&1 &
started_pids+=($!)
daemon_pid=$!
eventually "the daemon serves /healthz" curl -fs -m 1 -o /dev/null "http://127.0.0.1:$admin_port/healthz"

serial() {  # the serial number of the certificate a new handshake gets
  openssl s_client -connect "127.0.0.1:$api_port" -CAfile ca.pem -verify_return_error </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}
status() { curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem "https://127.0.0.1:$api_port/v1/purge/none"; }

check "verified against its CA: an unauthenticated job lookup is refused" 401 "$(status)"
check "the first certificate is served" "serial=03E9" "$(serial)"
check "plain HTTP to the API's TLS port is told so" 400 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/v1/purge/none")"

cp renewed.pem api.pem
cp renewed.key api.key
kill -HUP "$daemon_pid"
renewed() { [ "$(serial)" = "serial=03EA" ]; }
eventually "the renewed certificate is served after SIGHUP" renewed
check "and verifies" 401 "$(status)"

# A key that is not the certificate's: refused, the renewed certificate stays in service.
cp first.key api.key
kill -HUP "$daemon_pid"
eventually "the bad reload is refused" grep -q "certificate reload refused" daemon.log
check "the certificate in use is kept" "serial=03EA" "$(serial)"
check "and still verifies" 401 "$(status)"
running "$daemon_pid"
echo "purge_api_tls: $passed checks passed"
