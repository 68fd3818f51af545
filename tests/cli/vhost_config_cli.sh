#!/usr/bin/env bash
# vhost-config as a user runs it: exit codes and output of check, resolve, schema, hash-key.
set -euo pipefail
cli=$1
source_dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$cli" check "$source_dir/examples/vhosts.toml")
[ "$out" = "$source_dir/examples/vhosts.toml: OK, 4 tenants" ] || fail "check example: $out"

printf '[[tenant]]\nname = "x"\ndomains = ["a..b"]\norigin.url = "http://o"\norigin.account = "A"\norigin.container = "c"\ncache.max_ttl = "7 dayz"\n' >"$tmp/bad.toml"
set +e
"$cli" check "$tmp/bad.toml" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "check bad file exit $rc"
[ ! -s "$tmp/out" ] || fail "check bad file wrote to stdout"
grep -qx "$tmp/bad.toml:3: tenant\[0\].domains: \"a..b\" has an empty label" "$tmp/err" || fail "domain error: $(cat "$tmp/err")"
grep -qx "$tmp/bad.toml:7: tenant\[0\].cache.max_ttl: \"7 dayz\" is not a duration (use ms, s, m, h or d, e.g. \"7d\")" "$tmp/err" ||
  fail "duration error: $(cat "$tmp/err")"

# Certificate files are checked with the tenant file, at the lines naming them.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/site.key" -out "$tmp/site.pem" \
  -days 30 -subj /CN=site.test -addext subjectAltName=DNS:site.test 2>/dev/null
tenant='[[tenant]]\nname = "x"\ndomains = ["%s"]\norigin.url = "http://o"\norigin.account = "A"\norigin.container = "c"\n'
printf "$tenant"'[[tenant.tls]]\ncertificate = "site.pem"\nkey = "site.key"\n' site.test >"$tmp/tls.toml"
out=$("$cli" check "$tmp/tls.toml")
[ "$out" = "$tmp/tls.toml: OK, 1 tenants, 1 certificates" ] || fail "check with a certificate: $out"
printf "$tenant"'[[tenant.tls]]\ncertificate = "site.pem"\nkey = "site.key"\n' other.test >"$tmp/tls.toml"
printf "$tenant"'[[tenant.tls]]\ncertificate = "site.pem"\nkey = "missing.key"\n' site.test >"$tmp/nokey.toml"
set +e
"$cli" check "$tmp/tls.toml" >"$tmp/out" 2>"$tmp/err"
rc=$?
"$cli" check "$tmp/nokey.toml" 2>>"$tmp/err"
set -e
[ $rc -eq 1 ] || fail "check bad certificate exit $rc"
grep -qx "$tmp/tls.toml:8: tenant\[0\].tls\[0\].certificate: does not cover \"other.test\" (its DNS names: site.test)" "$tmp/err" ||
  fail "certificate error: $(cat "$tmp/err")"
grep -q "^$tmp/nokey.toml:9: tenant\[0\].tls\[0\].key: \"$tmp/missing.key\" cannot be read" "$tmp/err" ||
  fail "key error: $(cat "$tmp/err")"

out=$("$cli" resolve "$source_dir/examples/vhosts.toml" "http://Demo.Example.Test:80/images/party/banya.jpg")
grep -q "^tenant: *demo$" <<<"$out" || fail "resolve tenant: $out"
grep -q "GET http://127.0.0.1:8080/v1/AUTH_test/public/images/party/banya.jpg" <<<"$out" || fail "resolve url: $out"
set +e
"$cli" resolve "$source_dir/examples/vhosts.toml" "http://unknown.test/x" 2>"$tmp/err"; rc=$?
"$cli" resolve "$source_dir/examples/vhosts.toml" "http://demo.example.test/a/%2e%2e/etc" 2>>"$tmp/err"; rc2=$?
"$cli" frobnicate 2>/dev/null; rc3=$?
set -e
[ $rc -eq 1 ] && [ $rc2 -eq 1 ] && [ $rc3 -eq 2 ] || fail "exit codes $rc $rc2 $rc3"
grep -q 'no tenant serves host "unknown.test"' "$tmp/err" || fail "unknown host message"
grep -q "'..' segment in path" "$tmp/err" || fail "traversal message"

[ "$("$cli" hash-key demo-purge-key)" = "$(printf %s demo-purge-key | sha256sum | cut -d' ' -f1)" ] || fail "hash-key"
# Read whole first: grep -q leaves at its match, and the rest of the output would then meet a closed
# pipe (SIGPIPE, a failed pipeline under pipefail) whenever the CLI is slower than grep.
schema=$("$cli" schema)
grep -q '^| `cache.max_ttl` | duration | "7d" |' <<<"$schema" || fail "schema"
"$cli" --version | grep -q '^vhost-config ' || fail "--version"
"$cli" --help | grep -q 'usage: vhost-config' || fail "--help"
echo "1 passed, 0 failed"
