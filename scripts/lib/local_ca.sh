# Sourced by scripts/run and the benchmarks: a local CA and the certificates it signs (EC P-256),
# made with the openssl CLI and kept across runs (a file already there is not made again).
#   local_ca DIR                     DIR/ca.pem and DIR/ca.key
#   local_certificate DIR NAME DNS-NAMES...
#                                    DIR/NAME.pem and DIR/NAME.key, for 90 days, signed by DIR's CA
local_ca() {
  local dir=$1
  [ -s "$dir/ca.pem" ] && return
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -key "$dir/ca.key" -subj "/CN=edge local CA" -days 3650 -out "$dir/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
local_certificate() {
  local dir=$1 name=$2 san
  shift 2
  [ -s "$dir/$name.pem" ] && return
  san=$(printf 'DNS:%s,' "$@")
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  openssl req -new -key "$dir/$name.key" -subj "/CN=$1" -out "$dir/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "${san%,}" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 90 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
}
