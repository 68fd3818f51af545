#include "vhost-config/loader.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "vhost-config/duration.h"
#include "vhost-config/schema.h"
#include "vhost-config/toml_read.h"

namespace vhost {

namespace {

// Smaller slices would make a large object a great many entries, each an origin request.
constexpr uint64_t kMinSliceSize = 64 << 10;

// Keyed by dotted key; std::less<> allows lookups by string_view (config loading is not a hot path).
using Values = std::map<std::string, const toml::node*, std::less<>>;

bool IsHostLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// "" if `domain` (already lowercase) is a valid exact or wildcard name, else what is wrong.
std::string DomainProblem(std::string_view domain) {
  std::string_view name = domain;
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.find('*') != std::string_view::npos)
    return "a wildcard is allowed only as the whole first label (\"*.example.com\")";
  if (name.empty() || name.size() > 253) return "is not a host name";
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return "has an empty label";
      label = 0;
    } else if (!IsHostLabelChar(c)) {
      return absl::StrCat("has an invalid character '", std::string(1, c), "'");
    } else if (++label > 63) {
      return "has a label longer than 63 characters";
    }
  }
  if (label == 0) return "has an empty label";
  if (domain.starts_with("*.") && name.find('.') == std::string_view::npos) {
    return "wildcard would match a top-level domain";
  }
  return "";
}

// A targeted field (RFC 9213) is a field name (a token, RFC 9110 5.1) other than Cache-Control,
// whose directives it would replace.
bool IsTargetedFieldName(std::string_view s) {
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos)) {
      return false;
    }
  }
  return !absl::EqualsIgnoreCase(absl::string_view(s.data(), s.size()), "cache-control");
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A Strict-Transport-Security value (RFC 6797 6.1) must hold max-age, and is one header line.
std::string HstsProblem(std::string_view value) {
  if (value.find_first_of("\r\n") != std::string_view::npos) return "must be one line";
  bool max_age = false;
  for (absl::string_view directive : absl::StrSplit(absl::string_view(value.data(), value.size()), ';')) {
    directive = absl::StripAsciiWhitespace(directive);
    if (!absl::StartsWithIgnoreCase(directive, "max-age")) continue;
    absl::string_view seconds = absl::StripAsciiWhitespace(directive.substr(7));
    if (!absl::ConsumePrefix(&seconds, "=")) continue;
    seconds = absl::StripAsciiWhitespace(seconds);
    if (seconds.size() >= 2 && seconds.front() == '"' && seconds.back() == '"')
      seconds = seconds.substr(1, seconds.size() - 2);
    if (seconds.empty() || seconds.find_first_not_of("0123456789") != absl::string_view::npos) {
      return absl::StrCat("\"", std::string(value), "\": max-age must be a number of seconds");
    }
    max_age = true;
  }
  return max_age ? ""
                 : absl::StrCat("\"", std::string(value), "\" has no max-age (e.g. \"max-age=31536000\")");
}

class Builder {
 public:
  explicit Builder(std::string_view file) : file_(std::string(file)) { table.file = file_; }

  void Load(const toml::table& root) {
    for (auto&& [key, value] : root) {
      if (key.str() != "defaults" && key.str() != "tenant") {
        Error(Line(value), std::string(key.str()), "unknown key (expected [defaults] or [[tenant]])");
      }
    }
    if (const toml::node* defaults = root.get("defaults")) {
      if (const toml::table* table = defaults->as_table()) {
        Collect(*table, "", "defaults.", TenantKeys(), &defaults_, true);
      } else {
        Error(Line(*defaults), "defaults", "must be a table");
      }
    }
    const toml::node* tenants = root.get("tenant");
    const toml::array* array = tenants ? tenants->as_array() : nullptr;
    if (tenants == nullptr) {
      Error(1, "tenant", "no [[tenant]] is defined");
      return;
    }
    if (array == nullptr) {
      Error(Line(*tenants), "tenant", "must be an array of tables ([[tenant]])");
      return;
    }
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::table* table = (*array)[i].as_table();
      if (table == nullptr) {
        Error(Line((*array)[i]), absl::StrCat("tenant[", i, "]"), "must be a table");
        continue;
      }
      BuildTenant(*table, i);
    }
  }

  std::vector<std::pair<int, std::string>> errors;  // line, message
  TenantTable table;

 private:
  static int Line(const toml::node& node) { return NodeLine(node); }

  void Error(int line, std::string_view field, std::string_view message) {
    errors.emplace_back(line,
                        absl::StrCat(file_, ":", line, ": ", std::string(field), ": ", std::string(message)));
  }

  // Flattens a table's keys ("cache.max_ttl") into `out`, reporting unknown keys.
  void Collect(const toml::table& table, const std::string& prefix, const std::string& field_prefix,
               std::span<const KeySpec> keys, Values* out, bool defaults) {
    for (auto&& [k, value] : table) {
      const std::string key = prefix + std::string(k.str());
      const KeySpec* spec = FindKey(keys, key);
      if (spec == nullptr && value.is_table()) {
        bool is_group = false;
        for (const KeySpec& candidate : keys) is_group |= candidate.key.starts_with(key + ".");
        if (is_group) {
          Collect(*value.as_table(), key + ".", field_prefix, keys, out, defaults);
          continue;
        }
      }
      if (spec == nullptr) {
        Error(Line(value), field_prefix + key, "unknown key");
      } else if (defaults && !spec->in_defaults) {
        Error(Line(value), field_prefix + key, "cannot be set in [defaults]");
      } else {
        (*out)[key] = &value;
      }
    }
  }

  // Typed access to one tenant's values, falling back to [defaults] and then the schema default.
  struct Scope {
    Builder* builder;
    const Values* values;
    std::string field_prefix;
    int line;  // of the tenant table, for missing keys

    const toml::node* Node(std::string_view key) const {
      if (auto it = values->find(key); it != values->end()) return it->second;
      if (auto it = builder->defaults_.find(key); it != builder->defaults_.end()) return it->second;
      return nullptr;
    }
    std::string Field(std::string_view key) const {
      return values->contains(key) || !builder->defaults_.contains(key) ? field_prefix + std::string(key)
                                                                        : "defaults." + std::string(key);
    }
    void Error(const toml::node* node, std::string_view key, std::string_view message) const {
      builder->Error(node ? Line(*node) : line, Field(key), message);
    }
    bool Has(std::string_view key) const { return Node(key) != nullptr; }

    template <typename T, typename Reader>
    T Read(std::string_view key, T fallback, Reader reader) const {
      const toml::node* node = Node(key);
      if (node == nullptr) return fallback;
      std::string error;
      if (std::optional<T> value = reader(*node, &error)) return *value;
      Error(node, key, error);
      return fallback;
    }
    std::string String(std::string_view key, std::string_view fallback = "") const {
      return Read(key, std::string(fallback), ReadString);
    }
    bool Bool(std::string_view key, bool fallback) const { return Read(key, fallback, ReadBool); }
    absl::Duration Duration(std::string_view key, absl::Duration fallback) const {
      return Read(key, fallback, ReadDuration);
    }
    double Number(std::string_view key, double fallback) const { return Read(key, fallback, ReadNumber); }
    int64_t Integer(std::string_view key, int64_t fallback) const { return Read(key, fallback, ReadInteger); }
    uint64_t Bytes(std::string_view key, uint64_t fallback) const { return Read(key, fallback, ReadBytes); }
    std::vector<std::pair<std::string, int>> Strings(std::string_view key) const {
      std::vector<std::pair<std::string, int>> out;
      const toml::node* node = Node(key);
      if (node == nullptr) return out;
      const toml::array* array = node->as_array();
      if (array == nullptr) {
        Error(node, key, "must be a list of strings");
        return out;
      }
      for (const toml::node& item : *array) {
        if (!item.is_string()) {
          Error(&item, key, "must be a list of strings");
          continue;
        }
        out.emplace_back(*item.value<std::string>(), Line(item));
      }
      return out;
    }
  };

  void BuildTenant(const toml::table& source, size_t index) {
    Values values;
    const std::string field_prefix = absl::StrCat("tenant[", index, "].");
    Collect(source, "", field_prefix, TenantKeys(), &values, false);
    const Scope s{this, &values, field_prefix, Line(source)};
    Tenant t;
    const int tenant_index = static_cast<int>(table.tenants.size());

    t.name = s.String("name");
    if (!s.Has("name") || t.name.empty()) {
      s.Error(s.Node("name"), "name", "is required");
    } else if (t.name.find_first_not_of(
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
               std::string::npos) {
      // It appears in metrics labels, log fields and cache tags: no room for separators there.
      s.Error(s.Node("name"), "name",
              absl::StrCat("\"", t.name, "\" may hold only letters, digits, '.', '-' and '_'"));
    } else if (auto [it, inserted] = names_.emplace(t.name, s.Node("name") ? Line(*s.Node("name")) : 0);
               !inserted) {
      s.Error(s.Node("name"), "name",
              absl::StrCat("duplicate tenant name \"", t.name, "\" (first at line ", it->second, ")"));
    }

    if (!s.Has("domains")) s.Error(nullptr, "domains", "is required");
    for (auto& [domain, line] : s.Strings("domains")) {
      for (char& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (const std::string problem = DomainProblem(domain); !problem.empty()) {
        Error(line, field_prefix + "domains", absl::StrCat("\"", domain, "\" ", problem));
        continue;
      }
      if (auto [it, inserted] = domain_owners_.emplace(domain, std::make_pair(t.name, line)); !inserted) {
        Error(line, field_prefix + "domains",
              absl::StrCat("\"", domain, "\" is already claimed by tenant \"", it->second.first, "\" (line ",
                           it->second.second, ")"));
        continue;
      }
      table.hosts.Add(domain, tenant_index);
      t.domains.push_back(domain);
    }
    if (s.Has("domains") && t.domains.empty() && s.Strings("domains").empty()) {
      s.Error(s.Node("domains"), "domains", "must name at least one domain");
    }

    const std::string kind = s.String("origin.kind", "swift");
    t.origin.url = s.String("origin.url");
    if (kind != "swift" && kind != "swift-api" && kind != "http") {
      s.Error(s.Node("origin.kind"), "origin.kind",
              absl::StrCat("\"", kind, "\" is not swift, swift-api or http"));
    }
    t.origin.kind = kind == "http"        ? OriginKind::kHttp
                    : kind == "swift-api" ? OriginKind::kSwiftApi
                                          : OriginKind::kSwift;
    if (!s.Has("origin.url")) {
      s.Error(nullptr, "origin.url", "is required");
    } else if (!(t.origin.url.starts_with("http://") || t.origin.url.starts_with("https://")) ||
               t.origin.url.find_first_of(" \t\r\n") != std::string::npos ||
               t.origin.url.size() <= t.origin.url.find("//") + 2) {
      s.Error(s.Node("origin.url"), "origin.url",
              absl::StrCat("\"", t.origin.url, "\" is not an http:// or https:// URL"));
    }
    while (t.origin.url.ends_with("/")) t.origin.url.pop_back();
    t.origin.account = s.String("origin.account");
    t.origin.container = s.String("origin.container");
    t.origin.container_from_path = s.Bool("origin.container_from_path", false);
    t.origin.prefix = s.String("origin.prefix");
    if (t.origin.kind == OriginKind::kSwift) {
      if (t.origin.account.empty())
        s.Error(s.Node("origin.account"), "origin.account",
                "is required for a swift origin and must not be empty");
      if (t.origin.account.find('/') != std::string::npos)
        s.Error(s.Node("origin.account"), "origin.account", "must not contain '/'");
      if (t.origin.container_from_path && s.Has("origin.container")) {
        s.Error(s.Node("origin.container"), "origin.container",
                "cannot be set with origin.container_from_path");
      } else if (!t.origin.container_from_path && t.origin.container.empty()) {
        s.Error(s.Node("origin.container"), "origin.container",
                "is required (or set origin.container_from_path) and must not be empty");
      }
      if (t.origin.container.find('/') != std::string::npos)
        s.Error(s.Node("origin.container"), "origin.container", "must not contain '/'");
      if (!t.origin.prefix.empty() && (t.origin.prefix.front() == '/' || !t.origin.prefix.ends_with("/"))) {
        s.Error(s.Node("origin.prefix"), "origin.prefix", "must not start with '/' and must end with '/'");
      }
    } else if (t.origin.kind == OriginKind::kSwiftApi) {
      if (t.origin.account.find('/') != std::string::npos)
        s.Error(s.Node("origin.account"), "origin.account", "must not contain '/'");
      for (std::string_view key : {"origin.container", "origin.container_from_path", "origin.prefix"}) {
        if (values.contains(key)) s.Error(s.Node(key), key, "does not apply to a swift-api origin");
      }
    } else {
      for (std::string_view key : {"origin.account", "origin.container", "origin.container_from_path",
                                   "origin.prefix", "origin.cluster"}) {
        if (values.contains(key)) s.Error(s.Node(key), key, "applies to swift origins only");
      }
    }
    if (t.origin.kind != OriginKind::kHttp) CheckCluster(s, t);

    CachePolicy& c = t.cache;
    c.default_ttl = s.Duration("cache.default_ttl", c.default_ttl);
    c.min_ttl = s.Duration("cache.min_ttl", c.min_ttl);
    c.max_ttl = s.Duration("cache.max_ttl", c.max_ttl);
    c.honour_origin = s.Bool("cache.honour_origin", c.honour_origin);
    c.heuristic_freshness = t.origin.kind == OriginKind::kHttp;
    c.heuristic_max = s.Duration("cache.heuristic_max", c.heuristic_max);
    c.targeted_cache_control = s.String("cache.targeted_cache_control");
    if (!c.targeted_cache_control.empty() && !IsTargetedFieldName(c.targeted_cache_control)) {
      s.Error(
          s.Node("cache.targeted_cache_control"), "cache.targeted_cache_control",
          absl::StrCat("\"", c.targeted_cache_control,
                       "\" is not a response field name other than Cache-Control (e.g. Edge-Cache-Control)"));
    }
    c.listings = s.Bool("cache.listings", c.listings);
    c.listing_ttl = s.Duration("cache.listing_ttl", c.listing_ttl);
    c.negative_ttl = s.Duration("cache.negative_ttl", c.negative_ttl);
    c.stale_while_revalidate = s.Duration("cache.stale_while_revalidate", c.stale_while_revalidate);
    c.stale_if_error = s.Duration("cache.stale_if_error", c.stale_if_error);
    if (c.min_ttl > c.max_ttl) {
      s.Error(s.Node("cache.min_ttl"), "cache.min_ttl",
              absl::StrCat(vhost::DurationText(c.min_ttl), " is greater than cache.max_ttl (",
                           vhost::DurationText(c.max_ttl), ")"));
    }
    if (c.listings && t.origin.kind != OriginKind::kSwift) {
      s.Error(s.Node("cache.listings"), "cache.listings",
              "applies to swift origins only (swift-api hosts always cache listings)");
    }
    c.slice_size = s.Bytes("cache.slice_size", c.slice_size);
    c.slice_threshold = s.Bytes("cache.slice_threshold", c.slice_threshold);
    if (c.slice_size != 0 && c.slice_size < kMinSliceSize) {
      s.Error(s.Node("cache.slice_size"), "cache.slice_size", "must be 0 (off) or at least 64K");
    } else if (c.slice_size != 0 && c.slice_threshold < c.slice_size) {
      s.Error(s.Node("cache.slice_threshold"), "cache.slice_threshold",
              "must be at least cache.slice_size (the first answer for an object must hold a whole slice)");
    }
    if (const toml::node* rules = s.Node("cache.rule")) BuildRules(*rules, s, &c);

    for (auto& [hash, line] : s.Strings("purge.key_hashes")) {
      if (!IsSha256Hex(hash)) {
        Error(line, field_prefix + "purge.key_hashes",
              "must be 64 lowercase hex digits (a SHA-256 from `vhost-config hash-key`), never a plain key");
      } else {
        t.purge.key_hashes.push_back(hash);
      }
    }
    t.purge.rate = s.Number("purge.rate", t.purge.rate);
    t.purge.burst = static_cast<int>(s.Integer("purge.burst", t.purge.burst));
    if (!(t.purge.rate > 0)) s.Error(s.Node("purge.rate"), "purge.rate", "must be greater than 0");
    if (t.purge.burst < 1) s.Error(s.Node("purge.burst"), "purge.burst", "must be at least 1");

    t.https_redirect = s.Bool("https_redirect", false);
    t.hsts = s.String("hsts");
    if (s.Has("hsts") && s.Node("hsts")->is_string()) {
      if (const std::string problem = HstsProblem(t.hsts); !problem.empty())
        s.Error(s.Node("hsts"), "hsts", problem);
    }
    if (const toml::node* tls = s.Node("tls")) BuildTls(*tls, s, &t);

    table.tenants.push_back(std::move(t));
  }

  void BuildRules(const toml::node& node, const Scope& s, CachePolicy* c) {
    const toml::array* array = node.as_array();
    if (array == nullptr) {
      s.Error(&node, "cache.rule", "must be an array of tables ([[tenant.cache.rule]])");
      return;
    }
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::table* rule_table = (*array)[i].as_table();
      const std::string prefix = absl::StrCat(s.field_prefix, "cache.rule[", i, "].");
      if (rule_table == nullptr) {
        Error(Line((*array)[i]), prefix, "must be a table");
        continue;
      }
      Values values;
      Collect(*rule_table, "", prefix, RuleKeys(), &values, false);
      const Scope r{this, &values, prefix, Line(*rule_table)};
      PathRule rule;
      rule.glob = r.String("path");
      rule.bypass = r.Bool("bypass", false);
      if (values.contains("ttl")) rule.ttl = r.Duration("ttl", absl::ZeroDuration());
      if (!rule.glob.starts_with("/")) r.Error(r.Node("path"), "path", "is required and must start with '/'");
      if (rule.bypass == values.contains("ttl"))
        r.Error(nullptr, "ttl", "give exactly one of ttl or bypass = true");
      c->rules.push_back(std::move(rule));
    }
  }

  // The tenant's certificates: each serves the domains it lists (all of the tenant's when it lists
  // none), and no domain has two, so SNI picks one. The files are read by CheckCertificates.
  void BuildTls(const toml::node& node, const Scope& s, Tenant* t) {
    const toml::array* array = node.as_array();
    if (array == nullptr) {
      s.Error(&node, "tls", "must be an array of tables ([[tenant.tls]])");
      return;
    }
    absl::flat_hash_map<std::string, size_t> served;  // domain -> the entry serving it
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::table* tls_table = (*array)[i].as_table();
      const std::string field = absl::StrCat(s.field_prefix, "tls[", i, "]");
      if (tls_table == nullptr) {
        Error(Line((*array)[i]), field, "must be a table");
        continue;
      }
      Values values;
      Collect(*tls_table, "", field + ".", TlsKeys(), &values, false);
      const Scope r{this, &values, field + ".", Line(*tls_table)};
      TlsCertificate c;
      c.field = field;
      for (std::string_view key : {"certificate", "key"}) {
        const int line = r.Node(key) ? Line(*r.Node(key)) : Line(*tls_table);
        (key == "key" ? c.key_line : c.certificate_line) = line;
        std::string path = r.String(key);
        if (path.empty()) {
          r.Error(r.Node(key), key, "is required (a PEM file)");
        } else if (path.front() != '/') {
          // As the edge's settings do: relative to the file that names it, wherever it is read from.
          path = (std::filesystem::path(file_).parent_path() / path).lexically_normal().string();
        }
        (key == "key" ? c.key : c.certificate) = std::move(path);
      }
      if (!values.contains("domains")) {
        c.domains = t->domains;
      } else {
        for (auto& [domain, line] : r.Strings("domains")) {
          for (char& ch : domain) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (std::find(t->domains.begin(), t->domains.end(), domain) == t->domains.end()) {
            Error(line, field + ".domains",
                  absl::StrCat("\"", domain, "\" is not one of the tenant's domains"));
            continue;
          }
          c.domains.push_back(domain);
        }
        if (c.domains.empty() && r.Strings("domains").empty()) {
          r.Error(r.Node("domains"), "domains",
                  "must name at least one domain (or be left out: all of them)");
        }
      }
      for (const std::string& domain : c.domains) {
        if (auto [it, inserted] = served.emplace(domain, i); !inserted) {
          r.Error(r.Node("domains"), "domains",
                  absl::StrCat("\"", domain, "\" already has a certificate (", s.field_prefix, "tls[",
                               it->second, "])"));
        }
      }
      t->certificates.push_back(std::move(c));
    }
  }

  // Two Swift proxies under one cluster name must be meant as one cluster: the default name (unset)
  // stands for one proxy URL only, or two clusters' equal account names would share entries.
  void CheckCluster(const Scope& s, Tenant& t) {
    t.origin.cluster = s.String("origin.cluster");
    if (t.origin.cluster.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != std::string::npos) {
      s.Error(s.Node("origin.cluster"), "origin.cluster",
              absl::StrCat("\"", t.origin.cluster, "\" may hold only letters, digits, '.', '-' and '_'"));
      return;
    }
    if (s.Has("origin.cluster") && t.origin.cluster.empty()) {
      s.Error(s.Node("origin.cluster"), "origin.cluster",
              "must not be empty (leave it unset for the default)");
      return;
    }
    if (s.Has("origin.cluster") || t.origin.url.empty()) return;
    if (default_cluster_.first.empty()) {
      default_cluster_ = {t.origin.url, t.name};
    } else if (default_cluster_.first != t.origin.url) {
      s.Error(s.Node("origin.url"), "origin.url",
              absl::StrCat("\"", t.origin.url, "\" is another Swift proxy than tenant \"",
                           default_cluster_.second, "\"'s (\"", default_cluster_.first,
                           "\") in the default cluster: name each cluster with origin.cluster (the same name "
                           "for proxies of one cluster)"));
    }
  }

  std::string file_;
  std::pair<std::string, std::string> default_cluster_;  // the default cluster's proxy URL, and who set it
  Values defaults_;
  absl::flat_hash_map<std::string, int> names_;
  absl::flat_hash_map<std::string, std::pair<std::string, int>> domain_owners_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const TenantTable>> LoadTenantText(std::string_view text,
                                                                  std::string_view file_name) {
  Builder builder(file_name);
  try {
    const toml::table root = toml::parse(text, file_name);
    builder.Load(root);
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(file_name), ":", error.source().begin.line,
                                                   ": ", std::string(error.description())));
  }
  if (!builder.errors.empty()) {
    // In file order, whatever order the checks ran in.
    std::stable_sort(builder.errors.begin(), builder.errors.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> lines;
    for (auto& [line, message] : builder.errors) lines.push_back(std::move(message));
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  return std::make_shared<const TenantTable>(std::move(builder.table));
}

absl::StatusOr<std::shared_ptr<const TenantTable>> LoadTenantFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  std::ostringstream text;
  text << in.rdbuf();
  return LoadTenantText(text.str(), path);
}

}  // namespace vhost
