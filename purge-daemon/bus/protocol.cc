#include "purge-daemon/bus/protocol.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "purge-daemon/planner.h"

namespace bus {

namespace {

using nlohmann::json;
using Kind = cache::Invalidation::Kind;

constexpr std::pair<Kind, std::string_view> kKindNames[] = {
    {Kind::kObject, "object"}, {Kind::kListings, "listings"},
    {Kind::kPrefix, "prefix"}, {Kind::kContainer, "container"},
    {Kind::kTenant, "tenant"}, {Kind::kTag, "tag"},
    {Kind::kAll, "all"},
};

std::string_view KindName(Kind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "?";
}

const std::string* Field(const Fields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return &v;
  }
  return nullptr;
}

bool ParseInt(std::string_view text, int64_t* out) {
  return !text.empty() && std::from_chars(text.data(), text.data() + text.size(), *out).ec == std::errc();
}

// Every byte a digit: a damaged number ("0x", "-3", "7 ") is no number.
bool ParseNumber(std::string_view digits, uint64_t* out) {
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return !digits.empty() && error == std::errc() && end == digits.data() + digits.size();
}

// The event's fields as a JSON object, its numbers as numbers.
json EventObject(const WriteEvent& e) {
  json object = json::object();
  for (auto& [name, value] : EventFields(e)) object[name] = std::move(value);
  object["status"] = e.status;
  object["time_ms"] = e.time_ms;
  return object;
}

}  // namespace

std::string JobKey(std::string_view id) {
  return absl::StrCat("edge:job:", std::string(id));
}

std::string JobAppliedKey(std::string_view id) {
  return absl::StrCat("edge:job:", std::string(id), ":applied");
}

std::string StreamId::ToString() const {
  return absl::StrCat(ms, "-", seq);
}

absl::StatusOr<StreamId> ParseStreamId(std::string_view text) {
  StreamId id;
  const size_t dash = text.find('-');
  const std::string_view ms = text.substr(0, dash);
  const std::string_view seq = dash == std::string_view::npos ? "0" : text.substr(dash + 1);
  if (!ParseNumber(ms, &id.ms) || !ParseNumber(seq, &id.seq)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text), "\" is not a stream id"));
  }
  return id;
}

std::string CursorFileText(const SavedCursor& cursor) {
  return absl::StrCat(cursor.id.ToString(), " ", cursor.seq, "\n");
}

absl::StatusOr<SavedCursor> ParseCursorFile(std::string_view text) {
  // Two words: the id, then its entry's number.
  constexpr std::string_view kSpace = " \t\r\n";
  auto next_word = [&text, kSpace] {
    const size_t start = std::min(text.find_first_not_of(kSpace), text.size());
    const size_t end = std::min(text.find_first_of(kSpace, start), text.size());
    const std::string_view word = text.substr(start, end - start);
    text.remove_prefix(end);
    return word;
  };
  const std::string_view id_word = next_word();
  if (id_word.empty()) return absl::InvalidArgumentError("the cursor file holds no cursor");
  absl::StatusOr<StreamId> id = ParseStreamId(id_word);
  if (!id.ok()) return id.status();
  SavedCursor cursor{*id, 0};
  if (!ParseNumber(next_word(), &cursor.seq)) cursor.seq = 0;
  return cursor;
}

Fields EventFields(const WriteEvent& e) {
  Fields fields{{"node", e.node},
                {"method", e.method},
                {"account", e.account},
                {"container", e.container},
                {"object", e.object},
                {"destination_account", e.destination_account},
                {"destination", e.destination},
                {"query", e.query},
                {"status", std::to_string(e.status)},
                {"time_ms", std::to_string(e.time_ms)},
                {"transaction", e.transaction},
                {"settings", e.settings}};
  if (!e.confirm.empty()) fields.emplace_back("confirm", e.confirm);
  if (!e.paths.empty()) fields.emplace_back("paths", e.paths);
  // Last, and only when named: the default cluster's events are what they were before clusters.
  if (!e.cluster.empty()) fields.emplace_back("cluster", e.cluster);
  return fields;
}

absl::StatusOr<WriteEvent> ParseEvent(const Fields& fields) {
  WriteEvent e;
  for (auto [name, target] : {std::pair<std::string_view, std::string*>{"node", &e.node},
                              {"method", &e.method},
                              {"cluster", &e.cluster},
                              {"account", &e.account},
                              {"container", &e.container},
                              {"object", &e.object},
                              {"destination_account", &e.destination_account},
                              {"destination", &e.destination},
                              {"query", &e.query},
                              {"transaction", &e.transaction},
                              {"settings", &e.settings},
                              {"confirm", &e.confirm},
                              {"paths", &e.paths}}) {
    if (const std::string* value = Field(fields, name)) *target = *value;
  }
  int64_t status = 0;
  const std::string* status_text = Field(fields, "status");
  const std::string* time_text = Field(fields, "time_ms");
  if (e.method.empty() || e.account.empty() || status_text == nullptr || !ParseInt(*status_text, &status) ||
      time_text == nullptr || !ParseInt(*time_text, &e.time_ms)) {
    return absl::InvalidArgumentError("write event without method, account, status or time");
  }
  e.status = static_cast<int>(status);
  return e;
}

std::string SettingHeaders(std::span<const std::string_view> header_names) {
  // What Swift's account and container servers keep (X-Container-Meta-*, X-Container-Read,
  // X-Versions-Location, X-History-Location, X-Account-Meta-*, ...), and their X-Remove-* forms.
  static constexpr std::string_view kPrefixes[] = {"container-", "account-", "versions-", "history-"};
  std::vector<std::string> names;
  for (std::string_view header : header_names) {
    std::string name(header);
    for (char& c : name) c = c == '_' ? '-' : absl::ascii_tolower(c);
    std::string_view rest = name;
    if (!rest.starts_with("x-")) continue;
    rest.remove_prefix(2);
    if (rest.starts_with("remove-")) rest.remove_prefix(7);
    // System metadata is what middlewares to the left write for a client's header (versioned_writes
    // adds X-Container-Sysmeta-Versions-* for X-Versions-Location): the client's name says it.
    if (rest.find("-sysmeta-") != std::string_view::npos) continue;
    if (std::any_of(std::begin(kPrefixes), std::end(kPrefixes),
                    [&](std::string_view prefix) { return rest.starts_with(prefix); })) {
      names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return absl::StrJoin(names, ",");
}

std::string EventJson(const WriteEvent& event) {
  return EventObject(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<WriteEvent> ParseEventJson(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("spooled write event is not a JSON object");
  Fields fields;
  for (auto it = j.begin(); it != j.end(); ++it) {
    fields.emplace_back(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
  }
  return ParseEvent(fields);
}

std::string InvalidationsJson(const std::vector<cache::Invalidation>& invalidations) {
  json list = json::array();
  for (const cache::Invalidation& inv : invalidations) {
    json item{{"kind", KindName(inv.kind)}, {"soft", inv.soft}};
    if (!inv.account.empty()) item["account"] = inv.account;
    if (!inv.container.empty()) item["container"] = inv.container;
    if (!inv.name.empty()) item["name"] = inv.name;
    if (!inv.tenant.empty()) item["tenant"] = inv.tenant;
    if (!inv.tag.empty()) item["tag"] = inv.tag;
    list.push_back(std::move(item));
  }
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::vector<cache::Invalidation>> ParseInvalidationsJson(std::string_view text) {
  const json list = json::parse(text, nullptr, false);
  if (!list.is_array()) return absl::InvalidArgumentError("invalidations are not a JSON array");
  std::vector<cache::Invalidation> out;
  for (const json& item : list) {
    if (!item.is_object() || !item.contains("kind") || !item["kind"].is_string()) {
      return absl::InvalidArgumentError("an invalidation without a kind");
    }
    cache::Invalidation inv;
    const std::string kind = item["kind"].get<std::string>();
    bool known = false;
    for (const auto& [k, name] : kKindNames) {
      if (name == kind) {
        inv.kind = k;
        known = true;
      }
    }
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown invalidation kind \"", kind, "\""));
    auto text_field = [&](const char* name, std::string* target) {
      if (auto it = item.find(name); it != item.end() && it->is_string()) *target = it->get<std::string>();
    };
    text_field("account", &inv.account);
    text_field("container", &inv.container);
    text_field("name", &inv.name);
    text_field("tenant", &inv.tenant);
    text_field("tag", &inv.tag);
    if (auto it = item.find("soft"); it != item.end() && it->is_boolean()) inv.soft = it->get<bool>();
    out.push_back(std::move(inv));
  }
  return out;
}

Fields LogFields(const LogEntry& entry) {
  return {{"job", entry.job},
          {"track", entry.track ? "1" : "0"},
          {"inv", InvalidationsJson(entry.invalidations)}};
}

absl::StatusOr<LogEntry> ParseLogEntry(const Fields& fields) {
  LogEntry entry;
  const std::string* inv = Field(fields, "inv");
  if (inv == nullptr) return absl::InvalidArgumentError("log entry without invalidations");
  absl::StatusOr<std::vector<cache::Invalidation>> invalidations = ParseInvalidationsJson(*inv);
  if (!invalidations.ok()) return invalidations.status();
  entry.invalidations = std::move(*invalidations);
  if (const std::string* job = Field(fields, "job")) entry.job = *job;
  if (const std::string* track = Field(fields, "track")) entry.track = *track == "1";
  int64_t seq = 0;
  if (const std::string* text = Field(fields, "seq"); text != nullptr && ParseInt(*text, &seq) && seq > 0) {
    entry.seq = static_cast<uint64_t>(seq);
  }
  return entry;
}

std::string ProgressJson(const EdgeProgress& p) {
  return json{{"cursor", p.cursor.ToString()},
              {"heartbeat_ms", p.heartbeat_ms},
              {"trusted", p.trusted},
              {"lease_ms", p.lease_ms},
              {"lease_granted_ms", p.lease_granted_ms}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<EdgeProgress> ParseProgressJson(std::string_view node, std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("cursor") || !j["cursor"].is_string() || !j.contains("heartbeat_ms") ||
      !j["heartbeat_ms"].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("progress of ", std::string(node), " is malformed"));
  }
  EdgeProgress p;
  p.node = std::string(node);
  absl::StatusOr<StreamId> cursor = ParseStreamId(j["cursor"].get<std::string>());
  if (!cursor.ok()) return cursor.status();
  p.cursor = *cursor;
  // Times in ms are kept within [0, 2^50] (35 000 years), so that sums of them cannot overflow.
  static constexpr int64_t kLatestMs = int64_t{1} << 50;
  const auto milliseconds = [](const json& value) {
    return std::clamp<int64_t>(value.get<int64_t>(), 0, kLatestMs);
  };
  p.heartbeat_ms = milliseconds(j["heartbeat_ms"]);
  p.trusted = j.contains("trusted") && j["trusted"].is_boolean() && j["trusted"].get<bool>();
  // An edge older than leases reports none: it is taken to trust its cache while it beats (10 s).
  const auto integer = [&j, &milliseconds](const char* name, int64_t otherwise) {
    return j.contains(name) && j[name].is_number_integer() ? milliseconds(j[name]) : otherwise;
  };
  p.lease_ms = integer("lease_ms", 10000);
  p.lease_granted_ms = integer("lease_granted_ms", p.heartbeat_ms);
  return p;
}

bool MayServeOlder(const EdgeProgress& edge, StreamId entry, int64_t now_ms, absl::Duration margin) {
  if (edge.cursor >= entry) return false;
  return now_ms <= edge.lease_granted_ms + edge.lease_ms + absl::ToInt64Milliseconds(margin);
}

std::string ConfirmKey(std::string_view confirm) {
  return absl::StrCat("edge:confirm:", std::string(confirm));
}

std::vector<StreamEntry> StreamEntries(const RedisReply& reply) {
  std::vector<StreamEntry> out;
  // An entry is [id, [field, value, ...]]; anything else is a level of nesting to look into.
  std::function<void(const RedisReply&)> visit = [&](const RedisReply& r) {
    if (r.type != RedisReply::Type::kArray) return;
    if (r.elements.size() == 2 && r.elements[0].type == RedisReply::Type::kString &&
        r.elements[1].type == RedisReply::Type::kArray && ParseStreamId(r.elements[0].text).ok() &&
        r.elements[1].elements.size() % 2 == 0 &&
        (r.elements[1].elements.empty() || r.elements[1].elements[0].type == RedisReply::Type::kString)) {
      StreamEntry entry{r.elements[0].text, {}};
      const auto& kv = r.elements[1].elements;
      for (size_t i = 0; i + 1 < kv.size(); i += 2) entry.fields.emplace_back(kv[i].text, kv[i + 1].text);
      out.push_back(std::move(entry));
      return;
    }
    for (const RedisReply& element : r.elements) visit(element);
  };
  visit(reply);
  return out;
}

std::vector<std::string> XAddArgs(std::string_view stream, const Fields& fields, uint64_t max_length) {
  std::vector<std::string> args = {"XADD", std::string(stream)};
  if (max_length > 0) {
    args.insert(args.end(), {"MAXLEN", "~", std::to_string(max_length)});
  }
  args.push_back("*");
  for (const auto& [name, value] : fields) {
    args.push_back(name);
    args.push_back(value);
  }
  return args;
}

}  // namespace bus

namespace bus {

const char kAppendToLogLua[] = R"lua(
local seq = redis.call('INCR', KEYS[2])
local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'seq', seq}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
)lua";

absl::StatusOr<StreamId> AppendToLog(RedisConnection& redis, const LogEntry& entry, uint64_t max_length) {
  std::vector<std::string> args = {"EVAL",
                                   kAppendToLogLua,
                                   "2",
                                   std::string(kPurgeLog),
                                   std::string(kLogSequence),
                                   std::to_string(max_length)};
  for (auto& [name, value] : LogFields(entry)) {
    args.push_back(std::move(name));
    args.push_back(std::move(value));
  }
  absl::StatusOr<RedisReply> added = redis.Command(args);
  if (!added.ok()) return added.status();
  return ParseStreamId(added->text);
}

namespace {

// Redis's clock in ms, in Lua.
constexpr char kNowLua[] = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
)lua";

}  // namespace

absl::Status ReportProgress(RedisConnection& redis, const EdgeProgress& progress, bool grants_lease) {
  // KEYS[1]: the edges hash; ARGV: node, progress JSON, "1" when the report grants a lease.
  static const std::string script = absl::StrCat(kNowLua, R"lua(
local p = cjson.decode(ARGV[2])
p.heartbeat_ms = now
if ARGV[3] == '1' then
  p.lease_granted_ms = now
else
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  local ok, previous = pcall(cjson.decode, old or '')
  p.lease_granted_ms = (ok and type(previous) == 'table' and previous.lease_granted_ms) or 0
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(p))
return now
)lua");
  absl::StatusOr<RedisReply> reply =
      redis.Command({"EVAL", script, "1", std::string(kEdgesHash), progress.node, ProgressJson(progress),
                     grants_lease ? "1" : "0"});
  return reply.status();
}

absl::StatusOr<EdgesView> ReadEdges(RedisConnection& redis) {
  static const std::string script = absl::StrCat(kNowLua, "return {now, redis.call('HGETALL', KEYS[1])}\n");
  absl::StatusOr<RedisReply> reply = redis.Command({"EVAL", script, "1", std::string(kEdgesHash)});
  if (!reply.ok()) return reply.status();
  if (reply->elements.size() != 2) return absl::InternalError("an unexpected answer to the edges' script");
  EdgesView view;
  view.now_ms = reply->elements[0].integer;
  const std::vector<RedisReply>& pairs = reply->elements[1].elements;
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    // A malformed report is an edge that cannot be waited for: it is left out.
    if (absl::StatusOr<EdgeProgress> p = ParseProgressJson(pairs[i].text, pairs[i + 1].text); p.ok()) {
      view.edges.push_back(std::move(*p));
    }
  }
  return view;
}

absl::Status Mark(RedisConnection& redis, std::string_view set, std::string_view name, absl::Duration ttl) {
  static const std::string script =
      absl::StrCat(kNowLua, "return redis.call('ZADD', KEYS[1], now + ARGV[2], ARGV[1])\n");
  return redis
      .Command({"EVAL", script, "1", std::string(set), std::string(name),
                std::to_string(absl::ToInt64Milliseconds(ttl))})
      .status();
}

absl::Status Unmark(RedisConnection& redis, std::string_view set, std::string_view name) {
  return redis.Command({"ZREM", std::string(set), std::string(name)}).status();
}

absl::StatusOr<bool> AnyMarked(RedisConnection& redis, std::string_view set) {
  static const std::string script =
      absl::StrCat(kNowLua, "return redis.call('ZCOUNT', KEYS[1], now, '+inf')\n");
  absl::StatusOr<RedisReply> count = redis.Command({"EVAL", script, "1", std::string(set)});
  if (!count.ok()) return count.status();
  return count->integer > 0;
}

absl::StatusOr<StreamId> AppendPlan(RedisConnection& redis, std::string_view job,
                                    std::vector<cache::Invalidation> invalidations, uint64_t max_length,
                                    absl::Duration repeat_delay) {
  const std::vector<cache::Invalidation> listings = purge::ListingsOf(invalidations);
  LogEntry entry;
  entry.job = std::string(job);
  entry.invalidations = std::move(invalidations);
  absl::StatusOr<StreamId> added = AppendToLog(redis, entry, max_length);
  if (!added.ok() || listings.empty()) return added;
  const int64_t due = absl::ToUnixMillis(absl::Now() + repeat_delay);
  absl::StatusOr<RedisReply> scheduled =
      redis.Command({"ZADD", std::string(kRepeatSet), std::to_string(due),
                     absl::StrCat(std::string(job), "-repeat|", InvalidationsJson(listings))});
  if (!scheduled.ok()) return scheduled.status();
  return added;
}

}  // namespace bus
