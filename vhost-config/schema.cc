#include "vhost-config/schema.h"

#include <array>

namespace vhost {

namespace {

constexpr std::array kTenantKeys = {
    KeySpec{"name", KeyType::kString, "", false,
            "Tenant name: unique, used in logs, metrics and purge jobs; letters, digits, `.`, `-` and `_`."},
    KeySpec{"domains", KeyType::kStringList, "", false,
            "Host names served for the tenant: exact (`img.example.com`) or wildcard (`*.example.com`, which "
            "matches any name below it but not `example.com`). A name may belong to one tenant only."},
    KeySpec{"origin.kind", KeyType::kString, "\"swift\"", true,
            "`swift` (an OpenStack Swift container on the tenant's own domains), `swift-api` (the Swift API "
            "host itself: paths are `/v1/{account}/{container}/{object}`, writes are proxied and purge the "
            "cache) or `http` (any HTTP server, cached as an RFC 9111 shared cache)."},
    KeySpec{"origin.url", KeyType::kString, "", true,
            "Base URL of the origin: the Swift proxy (`http://127.0.0.1:8080`) or the HTTP server."},
    KeySpec{"origin.account", KeyType::kString, "-", false,
            "Swift account, e.g. `AUTH_test` (swift origins; for swift-api the only account the host serves, "
            "any account when unset)."},
    KeySpec{"origin.container", KeyType::kString, "-", false,
            "Swift container (swift origins), unless `origin.container_from_path` is set."},
    KeySpec{"origin.container_from_path", KeyType::kBool, "false", false,
            "Take the container from the first path segment: `/photos/a.jpg` is object `a.jpg` of container "
            "`photos` (for an API-style host)."},
    KeySpec{"origin.prefix", KeyType::kString, "\"\"", false,
            "Prefix put before every object name: `site/` serves `/a.jpg` from object `site/a.jpg`. Empty or "
            "ending in `/`."},
    KeySpec{
        "origin.cluster", KeyType::kString, "\"\"", true,
        "Name of the Swift cluster behind `origin.url` (swift and swift-api origins; letters, digits, `.`, "
        "`-`, `_`). Entries and purges are per cluster and account: give each cluster its own name, and the "
        "same name to every proxy URL of one cluster. Unset is the default cluster, which only one proxy "
        "URL may use. Entries stored under another name are never served again (eviction reclaims them)."},
    KeySpec{"cache.default_ttl", KeyType::kDuration, "\"5m\"", true,
            "Freshness when the origin says nothing (or always, when `cache.honour_origin` is false)."},
    KeySpec{"cache.min_ttl", KeyType::kDuration, "\"0s\"", true, "Lower bound of any freshness lifetime."},
    KeySpec{"cache.max_ttl", KeyType::kDuration, "\"7d\"", true, "Upper bound of any freshness lifetime."},
    KeySpec{
        "cache.honour_origin", KeyType::kBool, "true", true,
        "Follow the origin's Cache-Control, Expires and Age (RFC 9111, shared cache), clamped by min/max. "
        "When false the tenant's TTLs apply, but `no-store` and `private` still prevent storing."},
    KeySpec{"cache.heuristic_max", KeyType::kDuration, "\"1d\"", true,
            "Longest heuristic freshness (10% of the time since `Last-Modified`, http origins, when the "
            "origin gives no freshness); not bounded by `cache.default_ttl`."},
    KeySpec{"cache.targeted_cache_control", KeyType::kString, "\"\"", true,
            "A response field of the tenant's own with CDN-Cache-Control's syntax and meaning (RFC 9213), "
            "e.g. `Edge-Cache-Control`: read first, then `CDN-Cache-Control`, then `Cache-Control`."},
    KeySpec{"cache.listings", KeyType::kBool, "false", true,
            "A path ending in `/` is a container listing of that prefix (swift origins)."},
    KeySpec{"cache.listing_ttl", KeyType::kDuration, "\"30s\"", true, "Freshness of cached listings."},
    KeySpec{"cache.negative_ttl", KeyType::kDuration, "\"10s\"", true, "Freshness of cached 404 answers."},
    KeySpec{"cache.stale_while_revalidate", KeyType::kDuration, "\"30s\"", true,
            "How long past its freshness an entry may be served while it is revalidated."},
    KeySpec{"cache.stale_if_error", KeyType::kDuration, "\"5m\"", true,
            "How long past its freshness an entry may be served when the origin fails."},
    KeySpec{"cache.slice_size", KeyType::kBytes, "\"4M\"", true,
            "Objects above `cache.slice_threshold` are fetched with `Range` and stored in slices of this "
            "size, each cached, evicted and fetched on its own, so a seek into a large object costs one "
            "slice from the origin; 0 stores every object whole. At least 64K."},
    KeySpec{"cache.slice_threshold", KeyType::kBytes, "\"16M\"", true,
            "Objects up to this size are stored whole: the first fetch of an object asks for this many "
            "bytes, so a smaller one comes in that one answer. At least `cache.slice_size`."},
    KeySpec{"cache.rule", KeyType::kRuleList, "-", false,
            "Per-path rules, `[[tenant.cache.rule]]` tables, first match wins; see the rule keys below."},
    KeySpec{
        "purge.key_hashes", KeyType::kStringList, "[]", false,
        "SHA-256 (64 lowercase hex digits) of each purge API key; `vhost-config hash-key KEY` prints one. "
        "Plain keys are never stored."},
    KeySpec{"purge.rate", KeyType::kNumber, "10", true, "Purge requests per second allowed for the tenant."},
    KeySpec{"purge.burst", KeyType::kInteger, "20", true, "Purge requests allowed at once above the rate."},
    KeySpec{"tls", KeyType::kRuleList, "-", false,
            "Certificates for HTTPS, `[[tenant.tls]]` tables, chosen by the name the client sends (SNI); see "
            "the TLS keys below. A domain without one gets the edge's `tls.default_certificate`, if any."},
    KeySpec{"https_redirect", KeyType::kBool, "false", true,
            "Answer plain HTTP requests with `308` to the same path and query on `https://` (the edge's "
            "`tls.redirect_port`)."},
    KeySpec{"hsts", KeyType::kString, "-", true,
            "`Strict-Transport-Security` value sent on the tenant's HTTPS responses, e.g. "
            "`max-age=31536000; includeSubDomains`; must hold `max-age`. Unset: none."},
};

constexpr std::array kTlsKeys = {
    KeySpec{"certificate", KeyType::kString, "", false,
            "PEM file with the certificate chain, leaf first, then each intermediate in order; relative to "
            "the tenant file's directory. `vhost-config check` and `edge --check` read it: the key must "
            "match, each certificate must be issued by the next, none expired (within 14 days: a warning), "
            "and its DNS names must cover every domain it serves."},
    KeySpec{"key", KeyType::kString, "", false, "PEM file with the leaf's private key; relative as above."},
    KeySpec{"domains", KeyType::kStringList, "-", false,
            "The tenant's domains this certificate serves (all of them when unset); a domain may have one "
            "certificate only. A wildcard domain (`*.example.com`) needs a wildcard certificate."},
};

constexpr std::array kRuleKeys = {
    KeySpec{
        "path", KeyType::kString, "", false,
        "Glob matched against the request path as the edge maps it, decoded and normalised "
        "(`//%70rivate/./x` "
        "is `/private/x`), so no spelling of a path escapes its rule: `*` matches any run of characters, `?` "
        "one."},
    KeySpec{"ttl", KeyType::kDuration, "-", false,
            "Freshness for matching paths (instead of `cache.default_ttl`)."},
    KeySpec{"bypass", KeyType::kBool, "false", false, "Never store matching paths."},
};

}  // namespace

std::string KeysMarkdown(std::span<const KeySpec> keys, bool with_defaults_column) {
  std::string result;
  std::string* out = &result;
  *out += with_defaults_column
              ? "| key | type | default | in `[defaults]` | meaning |\n|---|---|---|---|---|\n"
              : "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const KeySpec& k : keys) {
    *out += "| `";
    *out += k.key;
    *out += "` | ";
    *out += TypeName(k.type);
    *out += " | ";
    *out += k.default_value.empty() ? std::string_view("(required)") : k.default_value;
    *out += " | ";
    if (with_defaults_column) {
      *out += k.in_defaults ? "yes" : "no";
      *out += " | ";
    }
    *out += k.doc;
    *out += " |\n";
  }
  return result;
}

std::span<const KeySpec> TenantKeys() {
  return kTenantKeys;
}
std::span<const KeySpec> RuleKeys() {
  return kRuleKeys;
}
std::span<const KeySpec> TlsKeys() {
  return kTlsKeys;
}

const KeySpec* FindKey(std::span<const KeySpec> keys, std::string_view key) {
  for (const KeySpec& k : keys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

std::string_view TypeName(KeyType type) {
  switch (type) {
    case KeyType::kString:
      return "string";
    case KeyType::kStringList:
      return "list of strings";
    case KeyType::kBool:
      return "boolean";
    case KeyType::kDuration:
      return "duration";
    case KeyType::kInteger:
      return "integer";
    case KeyType::kNumber:
      return "number";
    case KeyType::kBytes:
      return "size";
    case KeyType::kRuleList:
      return "array of tables";
  }
  return "?";
}

std::string SchemaMarkdown() {
  std::string out = "### Tenant keys (`[[tenant]]`, and `[defaults]` where marked)\n\n";
  out += KeysMarkdown(kTenantKeys, true);
  out += "\n### Rule keys (`[[tenant.cache.rule]]`)\n\n";
  out += KeysMarkdown(kRuleKeys);
  out += "\n### TLS keys (`[[tenant.tls]]`)\n\n";
  out += KeysMarkdown(kTlsKeys);
  return out;
}

}  // namespace vhost
