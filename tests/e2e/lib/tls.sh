# Sourced by the TLS e2e tests: a local CA in $tls (made here) and certificates it signs, with
# the openssl CLI. Needs $tls (a directory) and $source_dir; `client` runs tests/e2e/edge_tls.py
# with the CA.
client() { python3 "$source_dir/tests/e2e/edge_tls.py" "$tls/ca.pem" "$@"; }
# A local CA; `openssl ca` (not `x509 -req`) because it can also date a certificate in the past.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/ca.key" 2>/dev/null
openssl req -x509 -key "$tls/ca.key" -subj "/CN=edge_tls test CA" -days 30 -out "$tls/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
: >"$tls/index.txt"
echo 1000 >"$tls/serial"
cat >"$tls/ca.cnf" <<CONF
[ca]
default_ca = test
[test]
database = $tls/index.txt
new_certs_dir = $tls
serial = $tls/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CONF
certificate() {  # FILE-NAME DATES DNS-NAMES...: DATES is "-days 30" or "-startdate X -enddate Y"
  local name=$1 dates=$2 san=""
  shift 2
  for n in "$@"; do san="${san}DNS:$n,"; done
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/$name.key" 2>/dev/null
  openssl req -new -key "$tls/$name.key" -subj "/CN=$1" -out "$tls/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "${san%,}" >"$tls/$name.ext"
  # shellcheck disable=SC2086
  openssl ca -batch -notext -config "$tls/ca.cnf" -cert "$tls/ca.pem" -keyfile "$tls/ca.key" $dates \
    -extfile "$tls/$name.ext" -in "$tls/$name.csr" -out "$tls/$name.pem" 2>/dev/null
}
serial() { openssl x509 -in "$tls/$1.pem" -noout -serial | cut -d= -f2; }
