#include "vhost-config/cache_control.h"

#include <algorithm>
#include <cctype>

namespace vhost {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool IsOws(char c) {
  return c == ' ' || c == '\t';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 9110 5.6.2 tchar.
bool IsTchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Freshness directives take the first occurrence; a value that is not delta-seconds makes them 0.
void SetSeconds(std::optional<int64_t>* field, std::optional<std::string_view> arg) {
  if (*field) return;
  *field = arg ? DeltaSeconds(*arg).value_or(0) : 0;
}

// Stale windows only widen what may be served: an invalid one is ignored.
void SetWindow(std::optional<int64_t>* field, std::optional<std::string_view> arg) {
  if (*field || !arg) return;
  *field = DeltaSeconds(*arg);
}

void Apply(std::string_view name, std::optional<std::string_view> arg, CacheDirectives* d) {
  if (IEquals(name, "no-store")) {
    d->no_store = true;
  } else if (IEquals(name, "no-cache")) {
    d->no_cache = true;
  } else if (IEquals(name, "private")) {
    d->is_private = true;
  } else if (IEquals(name, "public")) {
    d->is_public = true;
  } else if (IEquals(name, "must-revalidate")) {
    d->must_revalidate = true;
  } else if (IEquals(name, "proxy-revalidate")) {
    d->proxy_revalidate = true;
  } else if (IEquals(name, "only-if-cached")) {
    d->only_if_cached = true;
  } else if (IEquals(name, "max-age")) {
    SetSeconds(&d->max_age, arg);
  } else if (IEquals(name, "s-maxage")) {
    SetSeconds(&d->s_maxage, arg);
  } else if (IEquals(name, "min-fresh")) {
    SetSeconds(&d->min_fresh, arg);
  } else if (IEquals(name, "stale-while-revalidate")) {
    SetWindow(&d->stale_while_revalidate, arg);
  } else if (IEquals(name, "stale-if-error")) {
    SetWindow(&d->stale_if_error, arg);
  }
}

// RFC 8941 parsing, as far as a Dictionary of cache directives needs it.
class SfReader {
 public:
  explicit SfReader(std::string_view text) : s_(text) {}

  // 4.2.2: a Dictionary. Members' values go to `member` (key, kind, integer value).
  enum class Kind { kTrue, kFalse, kInteger, kString, kOther };
  template <typename F>
  bool Dictionary(F&& member) {
    SkipSp();
    if (s_.empty()) return false;  // empty: to be ignored as well
    while (true) {
      std::string_view key;
      if (!Key(&key)) return false;
      Kind kind = Kind::kTrue;
      int64_t integer = 0;
      if (Eat('=')) {
        if (Peek() == '(') {
          if (!InnerList()) return false;
          kind = Kind::kOther;
        } else if (!BareItem(&kind, &integer)) {
          return false;
        }
      }
      if (!Parameters()) return false;
      member(key, kind, integer);
      SkipOws();
      if (s_.empty()) return true;
      if (!Eat(',')) return false;
      SkipOws();
      if (s_.empty()) return false;  // a trailing comma
    }
  }

 private:
  char Peek() const { return s_.empty() ? '\0' : s_.front(); }
  bool Eat(char c) {
    if (Peek() != c || s_.empty()) return false;
    s_.remove_prefix(1);
    return true;
  }
  void SkipSp() {
    while (Peek() == ' ') s_.remove_prefix(1);
  }
  void SkipOws() {
    while (!s_.empty() && IsOws(s_.front())) s_.remove_prefix(1);
  }
  bool Key(std::string_view* key) {
    const char c = Peek();
    if (!((c >= 'a' && c <= 'z') || c == '*')) return false;
    size_t n = 1;
    while (n < s_.size() && ((s_[n] >= 'a' && s_[n] <= 'z') || (s_[n] >= '0' && s_[n] <= '9') ||
                             s_[n] == '_' || s_[n] == '-' || s_[n] == '.' || s_[n] == '*')) {
      ++n;
    }
    *key = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  bool BareItem(Kind* kind, int64_t* integer) {
    const char c = Peek();
    *kind = Kind::kOther;
    if (c == '-' || (c >= '0' && c <= '9')) return Number(kind, integer);
    if (c == '"') {
      *kind = Kind::kString;
      s_.remove_prefix(1);
      while (!s_.empty()) {
        const char d = s_.front();
        s_.remove_prefix(1);
        if (d == '"') return true;
        if (d == '\\') {
          if (s_.empty() || (s_.front() != '"' && s_.front() != '\\')) return false;
          s_.remove_prefix(1);
        } else if (d < 0x20 || d > 0x7e) {
          return false;
        }
      }
      return false;
    }
    if (c == '?') {
      s_.remove_prefix(1);
      if (Eat('1')) {
        *kind = Kind::kTrue;
        return true;
      }
      *kind = Kind::kFalse;
      return Eat('0');
    }
    if (c == ':') {  // a byte sequence: base64 between colons
      s_.remove_prefix(1);
      while (!s_.empty() && s_.front() != ':') {
        const char d = s_.front();
        if (!(std::isalnum(static_cast<unsigned char>(d)) || d == '+' || d == '/' || d == '=')) return false;
        s_.remove_prefix(1);
      }
      return Eat(':');
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '*') {  // a token
      size_t n = 1;
      while (n < s_.size() && (IsTchar(s_[n]) || s_[n] == ':' || s_[n] == '/')) ++n;
      s_.remove_prefix(n);
      return true;
    }
    return false;
  }
  // 4.2.4: an Integer (at most 15 digits) or a Decimal (12 and 3).
  bool Number(Kind* kind, int64_t* integer) {
    const bool negative = Eat('-');
    size_t digits = 0, fraction = 0;
    bool decimal = false;
    int64_t n = 0;
    while (!s_.empty()) {
      const char c = s_.front();
      if (c >= '0' && c <= '9') {
        if (decimal) {
          if (++fraction > 3) return false;
        } else {
          if (++digits > 15) return false;
          n = n * 10 + (c - '0');
        }
      } else if (c == '.' && !decimal && digits > 0) {
        if (digits > 12) return false;
        decimal = true;
      } else {
        break;
      }
      s_.remove_prefix(1);
    }
    if (digits == 0 || (decimal && fraction == 0)) return false;
    *kind = decimal ? Kind::kOther : Kind::kInteger;
    *integer = negative ? -n : n;
    return true;
  }
  bool Parameters() {
    while (Eat(';')) {
      SkipSp();
      std::string_view key;
      if (!Key(&key)) return false;
      Kind kind;
      int64_t integer;
      if (Eat('=') && !BareItem(&kind, &integer)) return false;
    }
    return true;
  }
  bool InnerList() {
    Eat('(');
    while (true) {
      SkipSp();
      if (Eat(')')) return Parameters();
      Kind kind;
      int64_t integer;
      if (!BareItem(&kind, &integer) || !Parameters()) return false;
      if (Peek() != ' ' && Peek() != ')') return false;
    }
  }

  std::string_view s_;
};

}  // namespace

std::optional<int64_t> DeltaSeconds(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  if (text.empty()) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = std::min(kMaxDeltaSeconds, n * 10 + (c - '0'));
  }
  return n;
}

void ParseCacheControl(std::string_view line, CacheDirectives* out) {
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    while (i < n && (IsOws(line[i]) || line[i] == ',')) ++i;
    if (i == n) break;
    const size_t name_start = i;
    while (i < n && IsTchar(line[i])) ++i;
    const std::string_view name = line.substr(name_start, i - name_start);
    std::optional<std::string_view> arg;
    bool malformed = name.empty();
    if (i < n && line[i] == '=') {
      const size_t arg_start = ++i;
      if (i < n && line[i] == '"') {  // quoted-string: a comma inside does not end the directive
        ++i;
        while (i < n && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
        if (i >= n) {
          malformed = true;
          i = n;
        } else {
          ++i;
        }
      } else {
        while (i < n && IsTchar(line[i])) ++i;
        if (i == arg_start) malformed = true;
      }
      arg = line.substr(arg_start, std::min(i, n) - arg_start);
    }
    while (i < n && IsOws(line[i])) ++i;
    if (i < n && line[i] != ',') {
      // "max-age =60", "max-age= 60": not the grammar. The directive still counts, with a value
      // that is not one (so a freshness directive makes the response stale, no-store still holds).
      malformed = true;
      while (i < n && line[i] != ',') ++i;
    }
    if (!name.empty()) Apply(name, malformed ? std::optional<std::string_view>("") : arg, out);
  }
}

CacheDirectives ResponseCacheControl(HeaderViews headers) {
  CacheDirectives d;
  for (const auto& [name, value] : headers) {
    if (IEquals(name, "cache-control")) ParseCacheControl(value, &d);
  }
  return d;
}

bool ParseTargetedField(std::string_view value, CacheDirectives* out) {
  CacheDirectives d;
  bool typed = true;
  auto boolean = [&](bool* field, SfReader::Kind kind, bool string_allowed) {
    if (kind == SfReader::Kind::kTrue || (string_allowed && kind == SfReader::Kind::kString)) {
      *field = true;
    } else if (kind != SfReader::Kind::kFalse) {
      typed = false;
    }
  };
  auto seconds = [&](std::optional<int64_t>* field, SfReader::Kind kind, int64_t n) {
    if (kind != SfReader::Kind::kInteger || n < 0) {
      typed = false;
    } else {
      *field = std::min(n, kMaxDeltaSeconds);  // a Dictionary's last member of a name wins
    }
  };
  const bool valid = SfReader(value).Dictionary([&](std::string_view key, SfReader::Kind kind, int64_t n) {
    if (key == "no-store") {
      boolean(&d.no_store, kind, false);
    } else if (key == "no-cache") {
      boolean(&d.no_cache, kind, true);
    } else if (key == "private") {
      boolean(&d.is_private, kind, true);
    } else if (key == "public") {
      boolean(&d.is_public, kind, false);
    } else if (key == "must-revalidate") {
      boolean(&d.must_revalidate, kind, false);
    } else if (key == "proxy-revalidate") {
      boolean(&d.proxy_revalidate, kind, false);
    } else if (key == "max-age") {
      seconds(&d.max_age, kind, n);
    } else if (key == "s-maxage") {
      seconds(&d.s_maxage, kind, n);
    } else if (key == "stale-while-revalidate") {
      seconds(&d.stale_while_revalidate, kind, n);
    } else if (key == "stale-if-error") {
      seconds(&d.stale_if_error, kind, n);
    }
  });
  if (!valid || !typed) return false;
  *out = d;
  return true;
}

std::string CombinedField(HeaderViews headers, std::string_view name) {
  std::string combined;
  bool first = true;
  for (const auto& [n, v] : headers) {
    if (!IEquals(n, name)) continue;
    if (!first) combined += ',';
    combined += v;
    first = false;
  }
  return combined;
}

size_t FieldLines(HeaderViews headers, std::string_view name) {
  return static_cast<size_t>(
      std::count_if(headers.begin(), headers.end(), [&](const auto& h) { return IEquals(h.first, name); }));
}

int64_t AgeSeconds(HeaderViews headers) {
  for (const auto& [name, value] : headers) {
    if (IEquals(name, "age")) return DeltaSeconds(Trim(value.substr(0, value.find(',')))).value_or(0);
  }
  return 0;
}

}  // namespace vhost
