// The tenant model: who a request belongs to, where its files come from, how long they are kept,
// and who may purge them. Values only; loading and validation are in loader.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace vhost {

// kSwift: a tenant's own domains mapped onto one account and container (or the first path
// segment). kSwiftApi: the Swift API host itself, paths are /v1/{account}/{container}/{object}.
// kHttp: any HTTP server, cached as an RFC 9111 shared cache.
enum class OriginKind { kSwift, kSwiftApi, kHttp };

struct Origin {
  OriginKind kind = OriginKind::kSwift;
  std::string url;        // the Swift proxy, or the http origin's base URL, e.g. "http://127.0.0.1:8080"
  std::string account;    // swift-api: the only account served, or empty for any
  std::string container;  // empty when container_from_path
  bool container_from_path = false;  // "/photos/a.jpg" -> container "photos", object "a.jpg"
  std::string prefix;                // prepended to every object name ("" or ending in "/")
  // The Swift cluster behind `url` (swift and swift-api origins): part of the cache identity, so
  // that equal account names on two clusters never share entries, while the proxies of one
  // cluster do. Empty: the default cluster.
  std::string cluster;
};

struct PathRule {
  std::string glob;  // matched against the request path; '*' any run of characters, '?' one
  bool bypass = false;
  absl::Duration ttl;  // when not bypass
};

struct CachePolicy {
  absl::Duration default_ttl = absl::Minutes(5);
  absl::Duration min_ttl = absl::ZeroDuration();
  absl::Duration max_ttl = absl::Hours(24 * 7);
  bool honour_origin = true;
  // Heuristic freshness (10% of the age of Last-Modified) when the origin says nothing. Off for
  // Swift origins: their writes purge the cache, so default_ttl applies to a just-written object
  // instead of a lifetime near zero.
  bool heuristic_freshness = true;
  // The longest heuristic lifetime (as Traffic Server's heuristic_max_lifetime); default_ttl does
  // not bound it, so a tenant that stores nothing without freshness information (default_ttl 0,
  // RFC 9111's behaviour) still gets heuristics.
  absl::Duration heuristic_max = absl::Hours(24);
  // A targeted field (RFC 9213) of the tenant's own, e.g. "Edge-Cache-Control": read before
  // CDN-Cache-Control, which is read before Cache-Control. Empty for none.
  std::string targeted_cache_control;
  bool listings = false;  // a path ending in "/" is a container listing of that prefix
  absl::Duration listing_ttl = absl::Seconds(30);
  absl::Duration negative_ttl = absl::Seconds(10);
  absl::Duration stale_while_revalidate = absl::Seconds(30);
  absl::Duration stale_if_error = absl::Minutes(5);
  std::vector<PathRule> rules;  // first match wins
  // Objects larger than slice_threshold are fetched with Range and stored in slices of
  // slice_size bytes (edge/slices.h); slice_size 0 stores every object whole.
  uint64_t slice_size = 4 << 20;
  uint64_t slice_threshold = 16 << 20;
};

struct PurgeAccess {
  std::vector<std::string> key_hashes;  // lowercase hex SHA-256 of each API key
  double rate = 10;                     // purge requests per second
  int burst = 20;
};

// A certificate chain and its key, serving some of a tenant's domains over TLS (chosen by SNI).
struct TlsCertificate {
  std::string certificate;           // PEM chain file, leaf first; resolved against the tenant file
  std::string key;                   // PEM private key file
  std::vector<std::string> domains;  // the tenant's domains it serves (all of them unless listed)
  // Where the tenant file names the files, for "file:line: field: message" about them.
  int certificate_line = 0;
  int key_line = 0;
  std::string field;  // "tenant[0].tls[1]"
};

struct Tenant {
  std::string name;
  std::vector<std::string> domains;  // lowercase; "*.suffix" for wildcards
  Origin origin;
  CachePolicy cache;
  PurgeAccess purge;
  std::vector<TlsCertificate> certificates;  // no domain is served by two
  bool https_redirect = false;               // plain HTTP requests get 308 to https://
  std::string hsts;                          // Strict-Transport-Security on HTTPS responses; empty: none
};

}  // namespace vhost
