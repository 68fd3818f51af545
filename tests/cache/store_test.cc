#include "cache/store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cache/dependencies.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

namespace cache {

namespace {

constexpr uint64_t kMiB = 1 << 20;

// Appends rather than operator+: GCC 12 warns falsely (-Wrestrict, PR 105651) on "lit" + string.
std::string Numbered(std::string_view prefix, int i) {
  std::string out(prefix);
  out += std::to_string(i);
  return out;
}

Key Object(std::string name, std::string container = "public") {
  return Key{KeyKind::kObject, "AUTH_test", std::move(container), std::move(name), ""};
}
Key Listing(std::string prefix, std::string variant = "format=json") {
  return Key{KeyKind::kListing, "AUTH_test", "public", std::move(prefix), std::move(variant)};
}

class Fixture {
 public:
  explicit Fixture(uint64_t zone_bytes = 64 * kMiB, int zone_count = 2) {
    for (int i = 0; i < zone_count; ++i) options_.zones.push_back({dir_ / (Numbered("zone", i)), zone_bytes});
    options_.faults = [this](std::string_view op, int zone) { return fault_ ? fault_(op, zone) : 0; };
  }

  Store& Open() {
    store_.reset();
    auto store = Store::Open(options_, [this] { return now_; });
    REQUIRE(store.ok());
    store_ = std::move(*store);
    return *store_;
  }
  Store& store() { return *store_; }
  void Close() { store_.reset(); }

  EntryMetadata Meta(absl::Duration fresh = absl::Minutes(10), std::vector<std::string> tags = {},
                     std::string tenant = "demo") const {
    EntryMetadata meta;
    meta.tenant = std::move(tenant);
    meta.headers = {{"Content-Type", "text/plain"}};
    meta.stored_at = absl::ToUnixSeconds(now_);
    meta.fresh_until = absl::ToUnixSeconds(now_ + fresh);
    meta.stale_while_revalidate = 60;
    meta.tags = std::move(tags);
    return meta;
  }

  absl::Status Put(const Key& key, std::string_view body, EntryMetadata meta) {
    return Put(key, body, std::move(meta), store_->FenceToken());
  }
  absl::Status Put(const Key& key, std::string_view body, EntryMetadata meta, uint64_t token) {
    auto fill = store_->BeginFill(key, std::move(meta), body.size(), token);
    if (!fill.ok()) return fill.status();
    if (auto status = (*fill)->Append(body); !status.ok()) return status;
    return (*fill)->Commit();
  }
  absl::Status Put(const Key& key, std::string_view body = "hello") { return Put(key, body, Meta()); }

  // The body a hit would send, read the way sendfile would.
  static std::string Body(const Hit& hit) {
    if (const std::optional<std::string_view> in_memory = hit.body_in_memory())
      return std::string(*in_memory);
    std::string body(hit.body_length(), '\0');
    if (!body.empty()) {
      const ssize_t n = ::pread(hit.fd(), body.data(), body.size(), static_cast<off_t>(hit.body_offset()));
      REQUIRE(n == static_cast<ssize_t>(body.size()));
    }
    return body;
  }

  bool Has(const Key& key) { return store_->Lookup(key).has_value(); }

  // Mounts a tmpfs of `options` on zone `zone`'s path. Where mounting is not allowed the test is
  // skipped (false), except under CI=true, which runs as root: there a drill skipped is a failure.
  bool MountZone(int zone, const char* options) {
    const std::string& path = options_.zones[zone].path;
    std::filesystem::create_directories(path);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, options) == 0) return true;
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string_view(ci) == "true")
      FAIL("cannot mount a tmpfs, and CI=true: not skipped");
    MESSAGE("skipped: cannot mount a tmpfs here (needs root)");
    return false;
  }

  StoreOptions options_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  FaultInjector fault_;
  testing_support::TempDir dir_;

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace

TEST_CASE("a miss, a fill, then a hit with the same body and headers") {
  Fixture f;
  Store& store = f.Open();
  CHECK_FALSE(store.Lookup(Object("a.txt")).has_value());
  REQUIRE(f.Put(Object("a.txt"), "hello world").ok());
  std::optional<Hit> hit = store.Lookup(Object("a.txt"));
  REQUIRE(hit.has_value());
  CHECK(Fixture::Body(*hit) == "hello world");
  CHECK(hit->body_offset() % kPageSize == 0);
  CHECK(hit->metadata().headers[0].second == "text/plain");
  CHECK_FALSE(hit->invalidated());
  CHECK(store.GetStats().entries == 1);
}

TEST_CASE("small entries are read once, then served from memory until replaced or invalidated") {
  Fixture f;
  f.options_.memory_bytes = 4 * kMiB;
  Store& store = f.Open();
  REQUIRE(f.Put(Object("small"), "v1").ok());
  REQUIRE(f.Put(Object("large"), std::string(MemoryTier::kMaxEntryBody + 1, 'x')).ok());
  std::optional<Hit> first = store.Lookup(Object("small"));
  REQUIRE(first.has_value());
  CHECK(first->fd() < 0);
  CHECK(Fixture::Body(*first) == "v1");
  CHECK_FALSE(store.Lookup(Object("large"))->body_in_memory().has_value());
  // The file is gone, yet the copy in memory answers: the second hit read nothing from disk.
  for (const auto& file : std::filesystem::recursive_directory_iterator(f.dir_.path())) {
    if (file.is_regular_file() && file.path().parent_path().parent_path().filename() == "data") {
      std::filesystem::remove(file.path());
    }
  }
  CHECK(Fixture::Body(*store.Lookup(Object("small"))) == "v1");
  // A new version is a new file: the old copy is never served for it.
  REQUIRE(f.Put(Object("small"), "v2").ok());
  CHECK(Fixture::Body(*store.Lookup(Object("small"))) == "v2");
  CHECK(Fixture::Body(*store.Lookup(Object("small"))) == "v2");
  store.Apply(Invalidation::Object("AUTH_test", "public", "small", false));
  CHECK_FALSE(store.Lookup(Object("small")).has_value());
  store.Apply(Invalidation::All(true));
  REQUIRE(f.Put(Object("soft"), "s").ok());
  store.Lookup(Object("soft"));
  store.Apply(Invalidation::Object("AUTH_test", "public", "soft", true));
  CHECK(store.Lookup(Object("soft"))->invalidated());
}

TEST_CASE("a larger entry's header is read once: later hits open the file for the body alone") {
  Fixture f;
  f.options_.memory_bytes = 4 * kMiB;
  Store& store = f.Open();
  const std::string v1(MemoryTier::kMaxEntryBody + 1, '1'), v2(MemoryTier::kMaxEntryBody + 2, '2');
  REQUIRE(f.Put(Object("large"), v1).ok());
  auto entry_files = [&f] {
    std::vector<std::filesystem::path> files;
    for (const auto& file : std::filesystem::recursive_directory_iterator(f.dir_.path())) {
      if (file.is_regular_file() && file.path().parent_path().parent_path().filename() == "data")
        files.push_back(file.path());
    }
    return files;
  };
  std::optional<Hit> first = store.Lookup(Object("large"));
  REQUIRE(first.has_value());
  CHECK(first->fd() >= 0);
  CHECK(Fixture::Body(*first) == v1);
  // Wreck the header on disk: the second hit does not read it, and still has it all.
  const std::vector<std::filesystem::path> files = entry_files();
  REQUIRE(files.size() == 1);
  {
    const int fd = ::open(files[0].c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const std::string zeros(64, '\0');
    REQUIRE(::pwrite(fd, zeros.data(), zeros.size(), 0) == 64);
    ::close(fd);
  }
  std::optional<Hit> second = store.Lookup(Object("large"));
  REQUIRE(second.has_value());
  CHECK(second->fd() >= 0);
  CHECK(second->body_offset() == first->body_offset());
  CHECK(second->metadata() == first->metadata());
  CHECK(Fixture::Body(*second) == v1);
  // A new version is a new file, read in full; a file that is gone is a miss, and forgotten.
  REQUIRE(f.Put(Object("large"), v2).ok());
  CHECK(Fixture::Body(*store.Lookup(Object("large"))) == v2);
  for (const auto& file : entry_files()) std::filesystem::remove(file);
  CHECK_FALSE(store.Lookup(Object("large")).has_value());
  CHECK(store.GetStats().entries == 0);
}

TEST_CASE("a larger body is held in memory from its second hit on, and goes with its entry") {
  Fixture f;
  f.options_.memory_bytes = 4 * kMiB;
  f.options_.held_body_bytes = 16 * kMiB;  // bodies of up to 1 MiB each
  Store& store = f.Open();
  std::string v1(600 * 1024, '\0');
  for (size_t i = 0; i < v1.size(); ++i) v1[i] = static_cast<char>(i * 7);
  REQUIRE(f.Put(Object("large"), v1).ok());
  // The first hit may be the only one: nothing is read into memory for it.
  std::optional<Hit> first = store.Lookup(Object("large"));
  REQUIRE(first.has_value());
  CHECK_FALSE(first->read_before());
  CHECK(store.HoldBody(*first) == nullptr);
  CHECK(store.GetStats().held_body_bytes == 0);
  std::optional<Hit> second = store.Lookup(Object("large"));
  REQUIRE(second.has_value());
  CHECK(second->read_before());
  const std::shared_ptr<const CachedEntry> held = store.HoldBody(*second);
  REQUIRE(held != nullptr);
  CHECK(held->body == v1);
  CHECK(store.GetStats().held_body_bytes >= v1.size());
  // Later hits find the same copy, and still open the file for answers that send it (sendfile).
  std::optional<Hit> third = store.Lookup(Object("large"));
  CHECK(third->fd() >= 0);
  CHECK(store.HoldBody(*third) == held);
  // A new version is a new file: the copy of the old one is not its body.
  const std::string v2(700 * 1024, '2');
  REQUIRE(f.Put(Object("large"), v2).ok());
  store.Lookup(Object("large"));
  const std::shared_ptr<const CachedEntry> held_v2 = store.HoldBody(*store.Lookup(Object("large")));
  REQUIRE(held_v2 != nullptr);
  CHECK(held_v2->body == v2);
  CHECK(held->body == v1);  // what was being sent from the old copy stays intact
  // Invalidated, the entry and its copy go.
  store.Apply(Invalidation::Object("AUTH_test", "public", "large", false));
  CHECK_FALSE(store.Lookup(Object("large")).has_value());
  CHECK(store.GetStats().held_body_bytes == 0);
  // A body over a sixteenth of the memory is never held.
  REQUIRE(f.Put(Object("huge"), std::string(kMiB + 1, 'h')).ok());
  store.Lookup(Object("huge"));
  CHECK(store.HoldBody(*store.Lookup(Object("huge"))) == nullptr);
  CHECK(store.GetStats().held_body_bytes == 0);
}

TEST_CASE("a refresh copies a body from its file off the caller's thread, and replaces only its own entry") {
  Fixture f;
  Store& store = f.Open();
  const std::string body(200 * 1024, 'b');
  REQUIRE(f.Put(Object("big"), body, f.Meta(absl::Seconds(10))).ok());
  REQUIRE(f.Put(Object("other"), body).ok());
  auto read = [&](const std::string& name) {
    std::optional<Hit> hit = store.Lookup(Object(name));
    REQUIRE(hit.has_value());
    REQUIRE(hit->fd() >= 0);
    return std::move(*hit);
  };
  auto refreshed = [&](const std::string& name) {
    std::optional<Hit> hit = store.Lookup(Object(name));
    return hit && hit->metadata().headers.size() == 2 && Fixture::Body(*hit) == body;
  };
  EntryMetadata meta = f.Meta(absl::Minutes(5));
  meta.headers.emplace_back("X-Refreshed", "yes");
  store.Refresh(Object("big"), meta, store.FenceToken(), read("big"));
  CHECK(testing_support::Eventually([&] { return refreshed("big"); }));
  // Dropped: invalidated since its fence token, or its entry replaced by a newer one meanwhile.
  // Copies run in order, so once the one queued after them is in, they are done.
  const uint64_t token = store.FenceToken();
  store.Apply(Invalidation::Object("AUTH_test", "public", "big", false));
  REQUIRE(f.Put(Object("big"), body).ok());
  store.Refresh(Object("big"), meta, token, read("big"));
  Hit other = read("other");
  REQUIRE(f.Put(Object("other"), body).ok());
  store.Refresh(Object("other"), meta, store.FenceToken(), std::move(other));
  REQUIRE(f.Put(Object("third"), body).ok());
  store.Refresh(Object("third"), meta, store.FenceToken(), read("third"));
  CHECK(testing_support::Eventually([&] { return refreshed("third"); }));
  CHECK_FALSE(refreshed("big"));
  CHECK_FALSE(refreshed("other"));
  CHECK(Fixture::Body(*store.Lookup(Object("other"))) == body);
  // Closing with a copy queued drops it, and nothing is left half done: no partial file, and
  // every entry whole after a restart.
  store.Refresh(Object("other"), meta, store.FenceToken(), read("other"));
  f.Close();
  for (const auto& zone : f.options_.zones) CHECK(std::filesystem::is_empty(zone.path + "/tmp"));
  Store& reopened = f.Open();
  CHECK(reopened.GetStats().entries == 3);
  for (const char* name : {"big", "other", "third"}) {
    std::optional<Hit> hit = reopened.Lookup(Object(name));
    REQUIRE(hit.has_value());
    CHECK(Fixture::Body(*hit) == body);
  }
}

TEST_CASE("a zone is one process's: a second store on it is refused") {
  Fixture f;
  f.Open();
  auto second = Store::Open(f.options_, [] { return absl::Now(); });
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(second.status().message()).find("in use by another process") != std::string::npos);
  f.Close();
  CHECK(Store::Open(f.options_, [] { return absl::Now(); }).ok());
}

TEST_CASE("an empty body and a multi-megabyte body are stored exactly") {
  Fixture f;
  Store& store = f.Open();
  std::string big(3 * kMiB + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  auto fill = store.BeginFill(Object("big"), f.Meta(), std::nullopt, store.FenceToken());
  REQUIRE(fill.ok());
  for (size_t off = 0; off < big.size(); off += 65536) {
    REQUIRE((*fill)->Append(std::string_view(big).substr(off, 65536)).ok());
  }
  REQUIRE((*fill)->Commit().ok());
  REQUIRE(f.Put(Object("empty"), "").ok());
  CHECK(Fixture::Body(*store.Lookup(Object("big"))) == big);
  CHECK(Fixture::Body(*store.Lookup(Object("empty"))).empty());
}

TEST_CASE("a body written out of order, its end first, is stored whole") {
  Fixture f;
  Store& store = f.Open();
  std::string body(3 * 65536 + 5, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  const size_t seek = 65536 + 3;  // not on a page
  auto fill = store.BeginFill(Object("seeked"), f.Meta(), std::nullopt, store.FenceToken());
  REQUIRE(fill.ok());
  (*fill)->Seek(seek);
  REQUIRE((*fill)->Append(std::string_view(body).substr(seek)).ok());
  CHECK((*fill)->written() == body.size());
  (*fill)->Seek(0);
  REQUIRE((*fill)->Append(std::string_view(body).substr(0, seek)).ok());
  CHECK((*fill)->position() == seek);
  CHECK((*fill)->written() == body.size());
  REQUIRE((*fill)->Commit().ok());
  const std::optional<Hit> hit = store.Lookup(Object("seeked"));
  REQUIRE(hit);
  CHECK(hit->body_length() == body.size());
  CHECK(Fixture::Body(*hit) == body);
}

TEST_CASE("a dropped fill stores nothing and leaves no file") {
  Fixture f;
  Store& store = f.Open();
  {
    auto fill = store.BeginFill(Object("a"), f.Meta(), 5, store.FenceToken());
    REQUIRE(fill.ok());
    REQUIRE((*fill)->Append("hel").ok());
  }
  CHECK_FALSE(f.Has(Object("a")));
  for (const auto& zone : f.options_.zones) CHECK(std::filesystem::is_empty(zone.path + "/tmp"));
  for (const auto& zone : store.GetStats().zones) CHECK(zone.used_bytes == 0);
}

TEST_CASE("a restart is warm, and keeps what was invalidated invalid") {
  Fixture f;
  f.Open();
  for (int i = 0; i < 200; ++i) REQUIRE(f.Put(Object(Numbered("obj", i)), Numbered("body", i)).ok());
  REQUIRE(f.Put(Object("x", "other"), "x").ok());
  CHECK(f.store().Apply(Invalidation::Object("AUTH_test", "public", "obj1", false)) == 1);
  CHECK(f.store().Apply(Invalidation::Object("AUTH_test", "public", "obj2", true)) == 1);
  CHECK(f.store().Apply(Invalidation::Container("AUTH_test", "other", false)) == 1);
  const StoreStats before = f.store().GetStats();

  Store& store = f.Open();
  const StoreStats after = store.GetStats();
  CHECK(after.entries == before.entries - 1);  // the container purge is applied at load
  uint64_t used_before = 0, used_after = 0;
  for (const auto& zone : before.zones) used_before += zone.used_bytes;
  for (const auto& zone : after.zones) used_after += zone.used_bytes;
  CHECK(used_after == used_before - 2 * kPageSize);  // the entry of "other": a header page, a body page
  CHECK(Fixture::Body(*store.Lookup(Object("obj7"))) == "body7");
  CHECK_FALSE(f.Has(Object("obj1")));
  CHECK(store.Lookup(Object("obj2"))->invalidated());
  CHECK_FALSE(f.Has(Object("x", "other")));
  REQUIRE(f.Put(Object("x", "other"), "new").ok());  // new fills after the bump are valid
  CHECK(Fixture::Body(*store.Lookup(Object("x", "other"))) == "new");
}

TEST_CASE("a writer killed before commit leaves nothing behind") {
  Fixture f;
  f.Open();
  REQUIRE(f.Put(Object("kept"), "kept").ok());
  f.Close();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    Store& store = f.Open();
    auto fill = store.BeginFill(Object("torn"), f.Meta(), std::nullopt, store.FenceToken());
    if (fill.ok() && (*fill)->Append(std::string(100000, 'x')).ok()) ::kill(::getpid(), SIGKILL);
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  Store& store = f.Open();
  CHECK_FALSE(f.Has(Object("torn")));
  CHECK(f.Has(Object("kept")));
  for (const auto& zone : f.options_.zones) CHECK(std::filesystem::is_empty(zone.path + "/tmp"));
  (void)store;
}

TEST_CASE("a corrupt or vanished entry file is a miss, never served") {
  Fixture f(64 * kMiB, 1);
  Store& store = f.Open();
  REQUIRE(f.Put(Object("a"), "aaaa").ok());
  REQUIRE(f.Put(Object("b"), "bbbb").ok());
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(f.options_.zones[0].path + "/data")) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  REQUIRE(files.size() == 2);
  {
    std::fstream file(files[0], std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(40);
    file.put('\x7f');
  }
  std::filesystem::remove(files[1]);
  CHECK_FALSE(f.Has(Object("a")));
  CHECK_FALSE(f.Has(Object("b")));
  CHECK(store.GetStats().entries == 0);
}

TEST_CASE("eviction keeps a full zone under its limit before every write") {
  Fixture f(1 * kMiB, 1);
  Store& store = f.Open();
  const std::string body(100 * 1024, 'b');
  for (int i = 0; i < 50; ++i) {
    REQUIRE(f.Put(Object(Numbered("o", i)), body).ok());
    CHECK(store.GetStats().zones[0].used_bytes <= kMiB);
  }
  CHECK(f.Has(Object("o49")));
  CHECK_FALSE(f.Has(Object("o0")));
  CHECK(store.GetStats().entries < 10);
  CHECK(store.BeginFill(Object("huge"), f.Meta(), 2 * kMiB, store.FenceToken()).status().code() ==
        absl::StatusCode::kResourceExhausted);
}

TEST_CASE("a scan of one-time objects does not push out objects that are read again") {
  Fixture f(2 * kMiB, 1);
  Store& store = f.Open();
  const std::string body(60 * 1024, 'b');
  for (int i = 0; i < 5; ++i) REQUIRE(f.Put(Object(Numbered("hot", i)), body).ok());
  for (int scan = 0; scan < 200; ++scan) {
    // The hot set is read between scan writes, as popular objects are.
    for (int i = 0; i < 5; ++i) CHECK(f.Has(Object(Numbered("hot", i))));
    REQUIRE(f.Put(Object(Numbered("scan", scan)), body).ok());
  }
  (void)store;
}

TEST_CASE("dead entries go first, however often they were read") {
  Fixture f(1 * kMiB, 1);
  Store& store = f.Open();
  const std::string body(200 * 1024, 'b');
  EntryMetadata short_lived = f.Meta(absl::Seconds(1));
  short_lived.stale_while_revalidate = 0;
  REQUIRE(f.Put(Object("dead"), body, short_lived).ok());
  for (int i = 0; i < 3; ++i) REQUIRE(f.Put(Object(Numbered("live", i)), body).ok());
  for (int i = 0; i < 3; ++i) {
    CHECK(f.Has(Object("dead")));
    CHECK(f.Has(Object("live0")));
  }
  f.now_ += absl::Seconds(5);
  REQUIRE(f.Put(Object("new"), body).ok());
  REQUIRE(f.Put(Object("new2"), body).ok());
  CHECK(f.Has(Object("live0")));
  CHECK(store.GetStats().zones[0].used_bytes <= kMiB);
}

TEST_CASE("object invalidation removes every variant and the cached 404, nothing else") {
  Fixture f;
  Store& store = f.Open();
  REQUIRE(f.Put(Object("img/a.jpg")).ok());
  REQUIRE(f.Put(Key{KeyKind::kObject, "AUTH_test", "public", "img/a.jpg", "accept-encoding=gzip"}).ok());
  REQUIRE(f.Put(Object("img/a.jpg.bak")).ok());
  REQUIRE(f.Put(Object("img/a.jpg", "other")).ok());
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "public", "img/a.jpg", false)) == 2);
  CHECK_FALSE(f.Has(Object("img/a.jpg")));
  CHECK(f.Has(Object("img/a.jpg.bak")));
  CHECK(f.Has(Object("img/a.jpg", "other")));
  EntryMetadata not_found = f.Meta();
  not_found.status = 404;
  REQUIRE(f.Put(Object("img/new.jpg"), "", not_found).ok());
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "public", "img/new.jpg", false)) == 1);
  CHECK_FALSE(f.Has(Object("img/new.jpg")));
}

TEST_CASE("listing invalidation hits what shows the directory: ancestor and inner listings, pages") {
  Fixture f;
  Store& store = f.Open();
  for (const char* prefix : {"", "images/", "images/party/", "im", "images/party/ba", "images/party/sub/"}) {
    REQUIRE(f.Put(Listing(prefix, "format=json")).ok());
    REQUIRE(f.Put(Listing(prefix, "format=xml")).ok());
  }
  REQUIRE(f.Put(Listing("images/other/")).ok());
  REQUIRE(f.Put(Listing("docs/")).ok());
  REQUIRE(f.Put(Key{KeyKind::kListing, "AUTH_test", "", "", "format=json"}).ok());  // account listing
  REQUIRE(f.Put(Object("images/party/banya.jpg")).ok());
  // staticweb directory pages of the directory and its ancestors, and one that is not.
  for (const char* page : {"", "images/", "images/party/", "docs/"}) REQUIRE(f.Put(Object(page)).ok());
  CHECK(store.Apply(Invalidation::Listings("AUTH_test", "public", "images/party/", false)) == 16);
  CHECK_FALSE(f.Has(Listing("images/party/", "format=xml")));
  CHECK_FALSE(f.Has(Listing("")));
  CHECK_FALSE(f.Has(Listing("images/party/ba")));
  CHECK_FALSE(f.Has(Object("images/")));
  CHECK_FALSE(f.Has(Object("")));
  CHECK(f.Has(Listing("images/other/")));
  CHECK(f.Has(Listing("docs/")));
  CHECK(f.Has(Object("docs/")));
  CHECK(f.Has(Object("images/party/banya.jpg")));
  // The rule fences use agrees.
  KeyParts parts;
  const Invalidation inv = Invalidation::Listings("AUTH_test", "public", "images/party/", false);
  const std::string listing = Listing("images/party/ba").Encode(), page = Object("images/").Encode(),
                    object = Object("images/party/banya.jpg").Encode(), other = Listing("docs/").Encode();
  CHECK((DecodeKey(listing, &parts) && Covers(inv, parts, "demo", {})));
  CHECK((DecodeKey(page, &parts) && Covers(inv, parts, "demo", {})));
  CHECK_FALSE((DecodeKey(object, &parts) && Covers(inv, parts, "demo", {})));
  CHECK_FALSE((DecodeKey(other, &parts) && Covers(inv, parts, "demo", {})));
}

TEST_CASE("prefix invalidation hits objects and listings under the prefix") {
  Fixture f;
  Store& store = f.Open();
  for (int i = 0; i < 10; ++i) REQUIRE(f.Put(Object(Numbered("docs/", i))).ok());
  REQUIRE(f.Put(Listing("docs/")).ok());
  REQUIRE(f.Put(Object("doc")).ok());
  CHECK(store.Apply(Invalidation::Prefix("AUTH_test", "public", "docs/", false)) == 11);
  CHECK(f.Has(Object("doc")));
  CHECK(store.GetStats().entries == 1);
}

TEST_CASE("container, tenant and all are generation bumps that report what they hit") {
  Fixture f;
  Store& store = f.Open();
  REQUIRE(f.Put(Object("a")).ok());
  REQUIRE(f.Put(Object("b")).ok());
  REQUIRE(f.Put(Object("c", "other"), "x", f.Meta(absl::Minutes(1), {}, "shop")).ok());
  CHECK(store.Apply(Invalidation::Container("AUTH_test", "public", false)) == 2);
  CHECK_FALSE(f.Has(Object("a")));
  CHECK(f.Has(Object("c", "other")));
  CHECK(store.Apply(Invalidation::Container("AUTH_test", "public", false)) == 0);

  REQUIRE(f.Put(Object("a")).ok());
  CHECK(store.Apply(Invalidation::Tenant("shop", false)) == 1);
  CHECK_FALSE(f.Has(Object("c", "other")));
  CHECK(f.Has(Object("a")));

  // "b" is dead since the container bump but not removed yet: the O(1) count includes it.
  CHECK(store.Apply(Invalidation::All(true)) == 2);
  std::optional<Hit> hit = store.Lookup(Object("a"));
  REQUIRE(hit.has_value());
  CHECK(hit->invalidated());
  CHECK(f.Has(Object("b")) == false);
  CHECK(store.Apply(Invalidation::All(false)) == 1);
  CHECK_FALSE(f.Has(Object("a")));
}

TEST_CASE("tag invalidation hits the entries that carried the tag") {
  Fixture f;
  Store& store = f.Open();
  REQUIRE(f.Put(Object("a"), "a", f.Meta(absl::Minutes(1), {"product-7", "banner"})).ok());
  REQUIRE(f.Put(Object("b"), "b", f.Meta(absl::Minutes(1), {"product-7"})).ok());
  REQUIRE(f.Put(Object("c"), "c", f.Meta(absl::Minutes(1), {"product-8"})).ok());
  CHECK(store.Apply(Invalidation::Tag("product-7", true)) == 2);
  CHECK(store.Lookup(Object("a"))->invalidated());
  CHECK_FALSE(store.Lookup(Object("c"))->invalidated());
  CHECK(store.Apply(Invalidation::Tag("product-7", false)) == 2);
  CHECK_FALSE(f.Has(Object("b")));
  CHECK(store.Apply(Invalidation::Tag("banner", false)) == 0);  // its entry is gone already
}

TEST_CASE("fences: a fill that began before a covering invalidation is not stored") {
  Fixture f;
  Store& store = f.Open();
  SUBCASE("the invalidation arrives during the fill") {
    auto fill = store.BeginFill(Object("a"), f.Meta(), 3, store.FenceToken());
    REQUIRE(fill.ok());
    REQUIRE((*fill)->Append("old").ok());
    store.Apply(Invalidation::Object("AUTH_test", "public", "a", false));
    CHECK((*fill)->Commit().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_FALSE(f.Has(Object("a")));
  }
  SUBCASE("the invalidation arrives between the origin request and BeginFill") {
    const uint64_t token = store.FenceToken();
    store.Apply(Invalidation::Prefix("AUTH_test", "public", "", true));
    CHECK(f.Put(Object("a"), "old", f.Meta(), token).code() == absl::StatusCode::kFailedPrecondition);
  }
  SUBCASE("generation bumps fence too") {
    const uint64_t token = store.FenceToken();
    store.Apply(Invalidation::Tenant("demo", false));
    CHECK_FALSE(f.Put(Object("a"), "old", f.Meta(), token).ok());
  }
  SUBCASE("an unrelated invalidation does not") {
    const uint64_t token = store.FenceToken();
    store.Apply(Invalidation::Object("AUTH_test", "public", "b", false));
    store.Apply(Invalidation::Tag("nope", false));
    CHECK(f.Put(Object("a"), "new", f.Meta(), token).ok());
    CHECK(f.Has(Object("a")));
  }
  SUBCASE("a fill that began after the invalidation is stored") {
    store.Apply(Invalidation::Object("AUTH_test", "public", "a", false));
    CHECK(f.Put(Object("a"), "new").ok());
    CHECK(f.Has(Object("a")));
  }
}

// A large object's manifest and its segments (dependencies.h): the entry of the manifest goes
// when a segment does, whichever way the invalidation names it.
TEST_CASE("a DLO's entry goes when an object under its segment prefix is written, and only then") {
  Fixture f;
  Store& store = f.Open();
  const auto dlo = [&](std::string prefix) {
    return f.Meta(absl::Minutes(10), {"demo\x1fmovies", SegmentPrefixTag("AUTH_test", "segs", prefix)});
  };
  REQUIRE(f.Put(Object("movie.mp4"), "v1", dlo("movie/")).ok());
  REQUIRE(f.Put(Object("other.mp4"), "v1", dlo("other/")).ok());
  REQUIRE(f.Put(Object("movie/0001", "segs"), "segment").ok());  // a segment cached on its own
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "movies", false)) == 0);
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "public", "movie/0001", false)) == 0);
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0001", false)) == 2);
  CHECK_FALSE(f.Has(Object("movie.mp4")));
  CHECK_FALSE(f.Has(Object("movie/0001", "segs")));
  CHECK(f.Has(Object("other.mp4")));
  // A new segment under the prefix: its listings invalidation (repeated after Swift's asynchronous
  // listing update) reaches the DLO as well.
  REQUIRE(f.Put(Object("movie.mp4"), "v2", dlo("movie/")).ok());
  CHECK(store.Apply(Invalidation::Listings("AUTH_test", "segs", "music/", false)) == 0);
  CHECK(store.Apply(Invalidation::Listings("AUTH_test", "segs", "movie/", true)) == 1);
  CHECK(store.Lookup(Object("movie.mp4"))->invalidated());
  CHECK(store.Apply(Invalidation::Prefix("AUTH_test", "segs", "oth", false)) == 1);
  CHECK_FALSE(f.Has(Object("other.mp4")));
  CHECK(store.Apply(Invalidation::Container("AUTH_test", "segs", false)) >= 1);
  CHECK_FALSE(f.Has(Object("movie.mp4")));
}

TEST_CASE("an SLO's entry goes when its manifest or a segment it lists is written") {
  Fixture f;
  Store& store = f.Open();
  const EntryMetadata slo = f.Meta(absl::Minutes(10), {SegmentTag("AUTH_test", "segs", "movie/0001"),
                                                       SegmentTag("AUTH_test", "segs", "movie/0002")});
  REQUIRE(f.Put(Object("movie.mp4"), "v1", slo).ok());
  REQUIRE(f.Put(Object("trailer.mp4"), "v1", slo).ok());
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0003", false)) == 0);
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0002", true)) == 2);
  CHECK(store.Lookup(Object("movie.mp4"))->invalidated());
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0001", false)) == 2);
  CHECK_FALSE(f.Has(Object("movie.mp4")));
  CHECK_FALSE(f.Has(Object("trailer.mp4")));
  REQUIRE(f.Put(Object("movie.mp4"), "v2", slo).ok());
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "public", "movie.mp4", false)) == 1);  // the manifest
  CHECK_FALSE(f.Has(Object("movie.mp4")));
  REQUIRE(f.Put(Object("movie.mp4"), "v3", slo).ok());
  CHECK(store.Apply(Invalidation::Prefix("AUTH_test", "segs", "movie/", false)) == 1);
  CHECK_FALSE(f.Has(Object("movie.mp4")));
}

TEST_CASE("dependencies survive a restart: the journal brings them back, compacted or not") {
  Fixture f(64 * kMiB, /*zone_count=*/1);
  f.Open();
  const EntryMetadata slo = f.Meta(absl::Minutes(10), {SegmentTag("AUTH_test", "segs", "a/1")});
  const EntryMetadata dlo = f.Meta(absl::Minutes(10), {SegmentPrefixTag("AUTH_test", "segs", "b/")});
  REQUIRE(f.Put(Object("slo"), "s", slo).ok());
  REQUIRE(f.Put(Object("dlo"), "d", dlo).ok());
  SUBCASE("replayed") {}
  SUBCASE("from a compacted journal") {
    // Each overwrite journals an add and a remove: past twice the live entries plus 1024, the
    // journal is rewritten from the index.
    for (int i = 0; i < 600; ++i) REQUIRE(f.Put(Object("churn")).ok());
    const std::string journal = f.dir_ / "zone0/journal";
    const auto before = std::filesystem::file_size(journal);
    f.store().Maintain();
    REQUIRE(std::filesystem::file_size(journal) < before);
  }
  Store& store = f.Open();
  REQUIRE(f.Has(Object("slo")));
  REQUIRE(f.Has(Object("dlo")));
  CHECK(store.Lookup(Object("slo"))->metadata().tags == slo.tags);  // the entry's header holds them too
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "a/1", false)) == 1);
  CHECK(store.Apply(Invalidation::Object("AUTH_test", "segs", "b/7", false)) == 1);
  CHECK_FALSE(f.Has(Object("slo")));
  CHECK_FALSE(f.Has(Object("dlo")));
}

TEST_CASE("fences: a manifest's fill that began before a segment's invalidation is not stored") {
  Fixture f;
  Store& store = f.Open();
  const EntryMetadata dlo = f.Meta(absl::Minutes(10), {SegmentPrefixTag("AUTH_test", "segs", "movie/")});
  const EntryMetadata slo = f.Meta(absl::Minutes(10), {SegmentTag("AUTH_test", "segs", "movie/0001")});
  const Key manifest = Object("movie.mp4");
  const uint64_t token = store.FenceToken();
  SUBCASE("DLO") {
    store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0009", false));
    CHECK(f.Put(manifest, "old", dlo, token).code() == absl::StatusCode::kFailedPrecondition);
    CHECK(store.InvalidatedSince(manifest, "demo", token, &dlo.tags));
  }
  SUBCASE("SLO") {
    store.Apply(Invalidation::Object("AUTH_test", "segs", "movie/0001", false));
    CHECK(f.Put(manifest, "old", slo, token).code() == absl::StatusCode::kFailedPrecondition);
    CHECK(store.InvalidatedSince(manifest, "demo", token, &slo.tags));
  }
  SUBCASE("another segment's invalidation does not fence, nor keep new clients from joining") {
    store.Apply(Invalidation::Object("AUTH_test", "segs", "other/0001", false));
    CHECK_FALSE(store.InvalidatedSince(manifest, "demo", token, &slo.tags));
    // Before the answer's head it may still be any object's manifest in the account.
    CHECK(store.InvalidatedSince(manifest, "demo", token));
    CHECK_FALSE(store.InvalidatedSince(Listing("a/"), "demo", token));
    CHECK(f.Put(manifest, "new", slo, token).ok());
    CHECK(f.Has(manifest));
  }
}

TEST_CASE("a failing zone is taken out, its keys go to the other zone, and it comes back empty") {
  Fixture f;
  Store& store = f.Open();
  for (int i = 0; i < 40; ++i) REQUIRE(f.Put(Object(Numbered("before", i))).ok());
  const uint64_t zone0_entries = store.GetStats().zones[0].entries;
  REQUIRE(zone0_entries > 0);

  f.fault_ = [](std::string_view op, int zone) { return zone == 0 && op != "journal" ? EIO : 0; };
  int failed_fills = 0;
  for (int i = 0; i < 40; ++i) {
    // A failed fill costs the cache an entry, never a client its response.
    if (!f.Put(Object(Numbered("during", i))).ok()) ++failed_fills;
  }
  CHECK(failed_fills <= 3);  // the threshold
  StoreStats stats = store.GetStats();
  CHECK_FALSE(stats.zones[0].healthy);
  CHECK(stats.zones[0].entries == 0);
  // Lookups never fail: what the other zone holds is still served.
  uint64_t before_hits = 0;
  for (int i = 0; i < 40; ++i) before_hits += f.Has(Object(Numbered("before", i)));
  CHECK(before_hits == 40 - zone0_entries);
  CHECK(store.GetStats().entries == 40 - zone0_entries + 40 - failed_fills);

  store.Maintain();  // still failing: stays out
  CHECK_FALSE(store.GetStats().zones[0].healthy);
  f.fault_ = nullptr;
  store.Maintain();
  stats = store.GetStats();
  CHECK(stats.zones[0].healthy);
  CHECK(stats.zones[0].entries == 0);
  for (int i = 0; i < 40; ++i) REQUIRE(f.Put(Object(Numbered("after", i))).ok());
  CHECK(store.GetStats().zones[0].entries > 0);
}

TEST_CASE("running out of descriptors is a miss or a refused fill, never a zone error") {
  Fixture f;
  Store& store = f.Open();
  for (int i = 0; i < 20; ++i) REQUIRE(f.Put(Object(Numbered("o", i))).ok());
  for (const int error : {EMFILE, ENFILE}) {
    f.fault_ = [error](std::string_view op, int) { return op == "open" || op == "read" ? error : 0; };
    for (int i = 0; i < 20; ++i) {
      CHECK_FALSE(f.Has(Object(Numbered("o", i))));
      CHECK_FALSE(f.Put(Object(Numbered("n", i))).ok());
    }
  }
  f.fault_ = nullptr;
  const StoreStats stats = store.GetStats();
  CHECK(stats.zones[0].healthy);
  CHECK(stats.zones[1].healthy);
  CHECK(stats.entries == 20);
  for (int i = 0; i < 20; ++i) CHECK(f.Has(Object(Numbered("o", i))));
}

TEST_CASE("a zone that fails every write leaves service though its hits still succeed") {
  Fixture f;
  Store& store = f.Open();
  for (int i = 0; i < 40; ++i) REQUIRE(f.Put(Object(Numbered("o", i))).ok());
  f.fault_ = [](std::string_view op, int zone) { return zone == 0 && op == "write" ? EIO : 0; };
  for (int i = 0; i < 40; ++i) {
    (void)f.Put(Object(Numbered("n", i)));
    for (int j = 0; j < 40; ++j) f.Has(Object(Numbered("o", j)));  // reads of zone 0 succeed
  }
  CHECK_FALSE(store.GetStats().zones[0].healthy);
  CHECK(store.GetStats().zones[1].healthy);
}

TEST_CASE("a zone's limit when its filesystem is full: what it holds and what is free, less 5%") {
  CHECK(LimitWhenFull(100 * kMiB, 50 * kMiB, 10 * kMiB, 1000 * kMiB) == 57 * kMiB);
  CHECK(LimitWhenFull(100 * kMiB, 50 * kMiB, 1000 * kMiB, 2000 * kMiB) == 100 * kMiB);
  CHECK(LimitWhenFull(100 * kMiB, 0, 0, 1000 * kMiB) == 0);
  // A 13 MB fill reserved whole with 3 MB of it written, on a 20 MB drive holding 8 MB more: the
  // reservation and the filesystem both count the 3 MB, yet the zone may not outgrow its drive
  // (the drive drill once saw a limit of 22.7 MB on 20 MB).
  CHECK(LimitWhenFull(256 * kMiB, 21 * kMiB, 9 * kMiB, 20 * kMiB) == 19 * kMiB);
}

TEST_CASE("zones that add up to more than their filesystem holds are named, per filesystem") {
  const std::vector<ZonePlacement> zones = {
      {"/a", 60 * kMiB, 1, 100 * kMiB}, {"/b", 60 * kMiB, 1, 100 * kMiB}, {"/c", 60 * kMiB, 2, 100 * kMiB}};
  const std::vector<std::string> messages = OvercommittedFilesystems(zones);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].find("cache zones /a, /b add up to 125829120 bytes on a filesystem of 104857600") == 0);
  CHECK(OvercommittedFilesystems(std::span(zones).subspan(1)).empty());
  const std::vector<ZonePlacement> here =
      PlaceZones(std::vector<ZoneConfig>{{"/tmp/no/such/zone", 1}, {"no/such/zone", 1}});
  CHECK(here[0].filesystem_bytes > 0);  // the nearest existing parent's
  CHECK(here[1].filesystem_bytes > 0);  // relative to the working directory
}

TEST_CASE("ENOSPC is a full zone, not a failing one: it stays in service") {
  Fixture f;
  Store& store = f.Open();
  f.fault_ = [](std::string_view op, int) { return op == "write" ? ENOSPC : 0; };
  for (int i = 0; i < 40; ++i) CHECK_FALSE(f.Put(Object(Numbered("n", i))).ok());
  f.fault_ = nullptr;
  const StoreStats stats = store.GetStats();
  CHECK(stats.zones[0].healthy);
  CHECK(stats.zones[1].healthy);
  CHECK(stats.zones[0].errors + stats.zones[1].errors == 0);
  REQUIRE(f.Put(Object("after")).ok());
}

TEST_CASE("a zone on a filesystem smaller than its size shrinks to it, and evicts when it fills up") {
  Fixture f(64 * kMiB, 1);
  const std::string mount_point = f.options_.zones[0].path;
  if (!f.MountZone(0, "size=4m")) return;
  {
    Store& store = f.Open();
    const uint64_t limit = store.GetStats().zones[0].limit_bytes;
    CHECK(limit < 4 * kMiB);
    CHECK(limit > 3 * kMiB);
    for (int i = 0; i < 60; ++i) (void)f.Put(Object(Numbered("o", i)), std::string(100 * 1024, 'x'));
    StoreStats stats = store.GetStats();
    CHECK(stats.zones[0].healthy);
    CHECK(stats.zones[0].used_bytes <= stats.zones[0].limit_bytes);
    CHECK(f.Has(Object("o59")));
    // Something else takes half the filesystem: the next fills find ENOSPC and the zone evicts.
    {
      std::ofstream hog(mount_point + "/hog");
      hog << std::string(2 * kMiB, 'h');
    }
    int stored = 0;
    for (int i = 0; i < 30; ++i) stored += f.Put(Object(Numbered("p", i)), std::string(100 * 1024, 'y')).ok();
    stats = store.GetStats();
    // A journal record that found the filesystem full counts as an error (the journal must be whole
    // for a restart), but the eviction makes room and the zone stays in service.
    CHECK(stats.zones[0].healthy);
    CHECK(stats.zones[0].errors <= 1);
    CHECK(stats.zones[0].full_evictions > 0);
    CHECK(stats.zones[0].limit_bytes < limit);
    CHECK(stored > 20);
    int found = 0;
    for (int i = 0; i < 30; ++i) found += f.Has(Object(Numbered("p", i)));
    CHECK(found > 8);  // the zone serves what it keeps
  }
  f.Close();
  CHECK(::umount2(mount_point.c_str(), MNT_DETACH) == 0);
}

TEST_CASE("a full zone counts its deleted files still open until their last close") {
  Fixture f(64 * kMiB, 1);
  const std::string mount_point = f.options_.zones[0].path;
  if (!f.MountZone(0, "size=4m")) return;
  {
    Store& store = f.Open();
    // Readers hold 24 entries (2.5 MB of the 4 MB drive) while they are purged.
    std::vector<Hit> readers;
    for (int i = 0; i < 24; ++i) {
      REQUIRE(f.Put(Object(Numbered("o", i)), std::string(100 * 1024, 'x')).ok());
      std::optional<Hit> hit = store.Lookup(Object(Numbered("o", i)));
      REQUIRE(hit);
      readers.push_back(std::move(*hit));
    }
    for (int i = 0; i < 24; ++i)
      store.Apply(Invalidation::Object("AUTH_test", "public", Numbered("o", i), false));
    store.Maintain();
    StoreStats stats = store.GetStats();
    CHECK(stats.zones[0].used_bytes == 0);
    CHECK(stats.zones[0].freeing_bytes >= 24 * 100 * 1024);
    // Not counted, their blocks looked like space gone for good: the limit sank to 1.4 MB.
    CHECK(stats.zones[0].limit_bytes > 3 * kMiB);
    // Nor free for a fill: one that does not fit beside them is refused, not cut by ENOSPC.
    CHECK(f.Put(Object("big"), std::string(2 * kMiB, 'y')).code() == absl::StatusCode::kResourceExhausted);
    // A fill that fails while its clients stream it: its file counts at once, before any measure.
    {
      auto fill = store.BeginFill(Object("aborted"), f.Meta(), 200 * 1024, store.FenceToken());
      REQUIRE(fill.ok());
      REQUIRE((*fill)->Append(std::string(200 * 1024, 'z')).ok());
      const int spool = ::dup((*fill)->fd());
      const uint64_t before = store.GetStats().zones[0].freeing_bytes;
      (*fill)->Abort();
      CHECK(store.GetStats().zones[0].freeing_bytes >= before + 200 * 1024);
      store.Maintain();
      CHECK(store.GetStats().zones[0].freeing_bytes >= before + 200 * 1024);  // measured: still open
      ::close(spool);
    }
    readers.clear();  // the last close
    store.Maintain();
    stats = store.GetStats();
    CHECK(stats.zones[0].freeing_bytes == 0);
    CHECK(stats.zones[0].limit_bytes > 3 * kMiB);
    CHECK(f.Put(Object("big"), std::string(2 * kMiB, 'y')).ok());
  }
  f.Close();
  CHECK(::umount2(mount_point.c_str(), MNT_DETACH) == 0);
}

TEST_CASE("a zone directory that vanishes under load costs no request, and is never made anew") {
  Fixture f;
  Store& store = f.Open();
  for (int i = 0; i < 40; ++i) REQUIRE(f.Put(Object(Numbered("o", i))).ok());
  auto served_from_zone0 = [&] {
    int hits = 0;
    for (int i = 0; i < 40; ++i) {
      std::optional<Hit> hit = store.Lookup(Object(Numbered("o", i)));
      if (hit && hit->file().zone == 0 && Fixture::Body(*hit) == "hello") ++hits;
    }
    return hits;
  };
  const int in_zone0 = served_from_zone0();
  REQUIRE(in_zone0 > 0);
  const std::string path = f.options_.zones[1].path;
  std::filesystem::rename(path, path + ".away");  // a drive gone (unmounted, moved)
  int stored = 0;
  for (int i = 0; i < 40; ++i) {
    f.Has(Object(Numbered("o", i)));
    if (f.Put(Object(Numbered("n", i))).ok()) ++stored;
  }
  CHECK_FALSE(store.GetStats().zones[1].healthy);
  CHECK(served_from_zone0() == in_zone0);  // the zone that did not vanish still serves all it holds
  CHECK(stored >= 37);
  store.Maintain();
  // Not re-admitted onto whatever disk the path falls to now.
  CHECK_FALSE(store.GetStats().zones[1].healthy);
  CHECK_FALSE(std::filesystem::exists(path));
  // Another directory there is not the zone either.
  std::filesystem::create_directories(path);
  store.Maintain();
  CHECK_FALSE(store.GetStats().zones[1].healthy);
  std::filesystem::remove(path);
  // The drive comes back: re-admitted, locked again, and empty (it missed invalidations).
  std::filesystem::rename(path + ".away", path);
  store.Maintain();
  CHECK(store.GetStats().zones[1].healthy);
  CHECK(store.GetStats().zones[1].entries == 0);
  CHECK(std::filesystem::exists(path + "/journal"));
  auto second = Store::Open(f.options_, [] { return absl::Now(); });
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);  // the lock is held
}

TEST_CASE("a zone that was away while the others took invalidations is emptied at the next start") {
  for (const bool single : {false, true}) {
    CAPTURE(single);
    Fixture f(64 * kMiB, single ? 1 : 2);
    if (single) f.options_.epoch_file = f.dir_ / "cache-epoch";
    Store& store = f.Open();
    for (int i = 0; i < 40; ++i) REQUIRE(f.Put(Object(Numbered("o", i))).ok());
    const std::string path = f.options_.zones[0].path;
    const uint64_t away_entries = store.GetStats().zones[0].entries;
    REQUIRE(away_entries > 0);
    std::filesystem::rename(path, path + ".away");
    for (int i = 0; i < 20; ++i) (void)f.Put(Object(Numbered("n", i)));  // fills fail: out of service
    REQUIRE_FALSE(store.GetStats().zones[0].healthy);
    // While it is away, its objects are purged (or overwritten).
    for (int i = 0; i < 40; ++i)
      store.Apply(Invalidation::Object("AUTH_test", "public", Numbered("o", i), false));
    f.Close();
    std::filesystem::rename(path + ".away", path);
    Store& reopened = f.Open();
    CHECK(reopened.GetStats().zones[0].healthy);
    CHECK(reopened.GetStats().zones[0].entries == 0);
    for (int i = 0; i < 40; ++i) CHECK_FALSE(f.Has(Object(Numbered("o", i))));
    // A start with every zone in service keeps what they hold.
    REQUIRE(f.Put(Object("kept")).ok());
    Store& again = f.Open();
    CHECK(f.Has(Object("kept")));
    CHECK(again.GetStats().entries >= 1);
  }
}

TEST_CASE("each zone in service keeps the purge-log position applied, written at most once a second") {
  Fixture f(64 * kMiB, 2);
  Store& store = f.Open();
  CHECK(Zone(0, f.options_.zones[0], 3, nullptr).ReadPurgePosition().empty());
  auto kept = [&](int zone) { return Zone(zone, f.options_.zones[zone], 3, nullptr).ReadPurgePosition(); };
  store.NotePurgePosition("17-0 3");
  CHECK(kept(0) == "17-0 3");
  CHECK(kept(1) == "17-0 3");
  store.NotePurgePosition("18-0 4");  // within the second: not written per entry
  CHECK(kept(0) == "17-0 3");
  store.Maintain();  // but not lost either
  CHECK(kept(0) == "18-0 4");
  // A zone out of service keeps the position it left at; the others move on.
  const std::string path = f.options_.zones[1].path;
  std::filesystem::rename(path, path + ".away");
  for (int i = 0; i < 40 && store.GetStats().zones[1].healthy; ++i) (void)f.Put(Object(Numbered("n", i)));
  REQUIRE_FALSE(store.GetStats().zones[1].healthy);
  std::filesystem::rename(path + ".away", path);
  f.fault_ = [](std::string_view op, int zone) { return zone == 1 && op == "open" ? EIO : 0; };
  store.NotePurgePosition("25-0 9");
  store.Maintain();  // zone 1's probe fails: still out
  CHECK_FALSE(store.GetStats().zones[1].healthy);
  CHECK(kept(0) == "25-0 9");
  CHECK(kept(1) == "18-0 4");
  f.fault_ = nullptr;
  store.Maintain();  // re-admits zone 1, emptied: then it has missed nothing
  CHECK(store.GetStats().zones[1].healthy);
  CHECK(kept(1).empty());
  store.NotePurgePosition("26-0 10");
  store.Maintain();
  CHECK(kept(1) == "26-0 10");
}

// Stores objects o0..o39 (with `body`) and returns their names.
std::vector<std::string> PutForty(Fixture& f, std::string_view body = "hello") {
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) {
    names.push_back(Numbered("o", i));
    REQUIRE(f.Put(Object(names.back()), body).ok());
  }
  return names;
}

// Objects whose entries zone `zone` holds, of `names`.
std::vector<std::string> InZone(Store& store, const std::vector<std::string>& names, int zone) {
  std::vector<std::string> in;
  for (const std::string& name : names) {
    std::optional<Hit> hit = store.Lookup(Object(name));
    if (hit && hit->file().zone == zone) in.push_back(name);
  }
  return in;
}

TEST_CASE(
    "a zone that returns with its files catches up: it serves nothing until then, and keeps what no purge "
    "covered") {
  Fixture f(64 * kMiB, 2);
  f.options_.keep_returning_zones = true;
  Store& store = f.Open();
  auto kept = [&](int zone) { return Zone(zone, f.options_.zones[zone], 3, nullptr).ReadPurgePosition(); };
  const std::vector<std::string> names = PutForty(f, "old");
  store.NotePurgePosition("10-0 1");
  const std::vector<std::string> in = InZone(store, names, 0);
  REQUIRE(in.size() >= 5);
  // A transient error takes zone 0 out; its files and journal are intact.
  f.fault_ = [](std::string_view op, int zone) { return zone == 0 && op == "read" ? EIO : 0; };
  for (int i = 0; i < 10 && store.GetStats().zones[0].healthy; ++i) (void)store.Lookup(Object(in[4]));
  REQUIRE_FALSE(store.GetStats().zones[0].healthy);
  f.fault_ = nullptr;
  REQUIRE(f.Put(Object(in[3]), "new").ok());  // stored in zone 1 meanwhile: newer than zone 0's
  // An invalidation applied while its journal is read (the second "open": Probe's, then Open's)
  // reaches its entries all the same.
  int opens = 0;
  f.fault_ = [&](std::string_view op, int zone) {
    if (zone == 0 && op == "open" && ++opens == 2)
      store.Apply(Invalidation::Object("AUTH_test", "public", in[4], false));
    return 0;
  };
  store.Maintain();  // re-admitted, catching up
  f.fault_ = nullptr;
  REQUIRE(opens == 2);
  const std::vector<Store::CatchingUpZone> catching = store.ZonesCatchingUp();
  REQUIRE(catching.size() == 1);
  CHECK(catching[0].zone == 0);
  CHECK(catching[0].position == "10-0 1");
  const uint64_t session = catching[0].session;
  CHECK_FALSE(store.GetStats().zones[0].healthy);  // not serving
  for (const std::string& name : in) {
    if (name != in[3]) CHECK_FALSE(f.Has(Object(name)));
  }
  for (int i = 0; i < 20; ++i) {
    auto fill = store.BeginFill(Object(Numbered("fresh", i)), f.Meta(), 5, store.FenceToken());
    REQUIRE(fill.ok());
    CHECK((*fill)->Commit().ok());
  }
  CHECK(InZone(
            store,
            [] {
              std::vector<std::string> fresh;
              for (int i = 0; i < 20; ++i) fresh.push_back(Numbered("fresh", i));
              return fresh;
            }(),
            0)
            .empty());  // no fills while catching up
  // An invalidation applied meanwhile reaches its entries, as one of the log it missed does.
  store.Apply(Invalidation::Object("AUTH_test", "public", in[1], false));
  const Invalidation missed[] = {Invalidation::Object("AUTH_test", "public", in[0], false)};
  CHECK(store.CatchUp(0, session, missed));
  store.NotePurgePosition("20-0 5");
  store.Maintain();
  CHECK(kept(0) == "10-0 1");  // no position while catching up
  CHECK(kept(1) == "20-0 5");
  CHECK(store.FinishCatchUp(0, session));
  CHECK_FALSE(store.CatchUp(0, session, missed));  // that session is over
  CHECK(store.ZonesCatchingUp().empty());
  CHECK(store.GetStats().zones[0].healthy);
  CHECK_FALSE(f.Has(Object(in[0])));
  CHECK_FALSE(f.Has(Object(in[1])));
  CHECK_FALSE(f.Has(Object(in[4])));
  CHECK(Fixture::Body(*store.Lookup(Object(in[2]))) == "old");
  CHECK(store.Lookup(Object(in[2]))->file().zone == 0);
  CHECK(Fixture::Body(*store.Lookup(Object(in[3]))) == "new");
  store.Maintain();
  CHECK(kept(0) == "20-0 5");
  // Caught up, it is not behind at the next start, and what it dropped stays dropped.
  Store& reopened = f.Open();
  CHECK(reopened.ZonesCatchingUp().empty());
  CHECK_FALSE(f.Has(Object(in[0])));
  CHECK(Fixture::Body(*reopened.Lookup(Object(in[2]))) == "old");
}

TEST_CASE(
    "a zone whose journal lost a record returns emptied, and one keeps the scopes bumped while it was out") {
  for (const bool journal_fails : {true, false}) {
    CAPTURE(journal_fails);
    Fixture f(64 * kMiB, 2);
    f.options_.keep_returning_zones = true;
    Store& store = f.Open();
    const std::vector<std::string> names = PutForty(f);
    store.NotePurgePosition("10-0 1");
    REQUIRE(InZone(store, names, 0).size() >= 2);
    f.fault_ = [journal_fails](std::string_view op, int zone) {
      return zone == 0 && op == (journal_fails ? "journal" : "read") ? EIO : 0;
    };
    for (int i = 0; i < 40 && store.GetStats().zones[0].healthy; ++i) {
      if (journal_fails) {
        store.Apply(Invalidation::Object("AUTH_test", "public", names[i], true));  // a stale mark
      } else {
        (void)f.Has(Object(names[i]));
      }
    }
    REQUIRE_FALSE(store.GetStats().zones[0].healthy);
    f.fault_ = nullptr;
    store.Apply(Invalidation::Container("AUTH_test", "other", false));  // a scope, while it is out
    store.Maintain();
    const std::vector<Store::CatchingUpZone> catching = store.ZonesCatchingUp();
    if (journal_fails) {
      CHECK(catching.empty());
      CHECK(store.GetStats().zones[0].healthy);
      CHECK(store.GetStats().zones[0].entries == 0);
      continue;
    }
    REQUIRE(catching.size() == 1);
    CHECK(store.FinishCatchUp(0, catching[0].session));
    // The scope is in its journal too, for a start where it is the only one left.
    f.Close();
    std::ifstream in(std::filesystem::path(f.options_.zones[0].path) / "journal", std::ios::binary);
    const std::string journal((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(journal.find("other") != std::string::npos);
  }
}

TEST_CASE("a zone behind the others at start with a position catches up, one that cannot is emptied") {
  for (const bool empty : {false, true}) {
    CAPTURE(empty);
    Fixture f(64 * kMiB, 2);
    f.options_.keep_returning_zones = true;
    Store& store = f.Open();
    const std::vector<std::string> names = PutForty(f);
    store.NotePurgePosition("10-0 1");
    const std::vector<std::string> in = InZone(store, names, 0);
    REQUIRE(in.size() >= 2);
    const std::string path = f.options_.zones[0].path;
    std::filesystem::rename(path, path + ".away");
    for (int i = 0; i < 20 && store.GetStats().zones[0].healthy; ++i) (void)f.Put(Object(Numbered("n", i)));
    REQUIRE_FALSE(store.GetStats().zones[0].healthy);
    f.Close();
    std::filesystem::rename(path + ".away", path);
    Store& reopened = f.Open();
    const std::vector<Store::CatchingUpZone> catching = reopened.ZonesCatchingUp();
    REQUIRE(catching.size() == 1);
    CHECK(catching[0].position == "10-0 1");
    for (const std::string& name : in) CHECK_FALSE(f.Has(Object(name)));
    if (empty) {
      CHECK(reopened.EmptyZone(0, catching[0].session));
      CHECK(reopened.GetStats().zones[0].healthy);
      CHECK(reopened.GetStats().zones[0].entries == 0);
      CHECK(Zone(0, f.options_.zones[0], 3, nullptr).ReadPurgePosition().empty());
      for (const std::string& name : in) CHECK_FALSE(f.Has(Object(name)));
    } else {
      const Invalidation missed[] = {Invalidation::Object("AUTH_test", "public", in[0], false)};
      CHECK(reopened.CatchUp(0, catching[0].session, missed));
      CHECK(reopened.FinishCatchUp(0, catching[0].session));
      CHECK_FALSE(f.Has(Object(in[0])));
      for (size_t i = 1; i < in.size(); ++i) CHECK(f.Has(Object(in[i])));
    }
    CHECK(reopened.ZonesCatchingUp().empty());
    CHECK_FALSE(reopened.FinishCatchUp(0, catching[0].session));
  }
}

TEST_CASE("a zone unusable at start gets its identity when its directory appears, and comes in") {
  Fixture f(64 * kMiB, 2);
  const std::string path = f.options_.zones[1].path;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << "not a directory";
  Store& store = f.Open();
  CHECK_FALSE(store.GetStats().zones[1].healthy);
  std::filesystem::remove(path);
  store.Maintain();
  CHECK_FALSE(store.GetStats().zones[1].healthy);  // no directory: none is made
  std::filesystem::create_directories(path);       // the drive is mounted
  store.Maintain();
  CHECK(store.GetStats().zones[1].healthy);
  CHECK(std::filesystem::exists(path + "/zone-id"));
}

TEST_CASE("a zone found on another filesystem than it was made on starts out of service") {
  Fixture f(64 * kMiB, 2);
  f.Open();
  f.Close();
  const std::string marker = f.options_.zones[0].path + "/zone-id";
  std::string id;
  {
    std::ifstream in(marker);
    std::string key;
    in >> key >> id;
  }
  {
    std::ofstream out(marker, std::ios::trunc);
    out << "id " << id << "\nfsid 1234abcd\n";  // as if made on another drive
  }
  Store& store = f.Open();
  CHECK_FALSE(store.GetStats().zones[0].healthy);
  CHECK(store.GetStats().zones[1].healthy);
  store.Maintain();
  CHECK_FALSE(store.GetStats().zones[0].healthy);
}

TEST_CASE("journals are compacted and stay replayable") {
  Fixture f(64 * kMiB, 1);
  Store& store = f.Open();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 600; ++i) REQUIRE(f.Put(Object(Numbered("o", i)), Numbered("v", round)).ok());
  }
  const auto size_before = std::filesystem::file_size(f.options_.zones[0].path + "/journal");
  store.Maintain();
  CHECK(std::filesystem::file_size(f.options_.zones[0].path + "/journal") < size_before / 2);
  Store& reopened = f.Open();
  CHECK(reopened.GetStats().entries == 600);
  CHECK(Fixture::Body(*reopened.Lookup(Object("o5"))) == "v2");
}

TEST_CASE("many threads fill, read and invalidate at once") {
  Fixture f(4 * kMiB, 2);
  Store& store = f.Open();
  std::atomic<int> hits{0}, wrong_bodies{0};
  std::vector<std::thread> threads;
  // Each key has its own body, so a hit that serves another key's bytes is seen.
  auto body_of = [](int n) { return std::string(8000, static_cast<char>('a' + n % 26)); };
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        const int n = (i * 7 + t) % 50;
        const Key key = Object(Numbered("k", n));
        if (std::optional<Hit> hit = store.Lookup(key)) {
          ++(Fixture::Body(*hit) == body_of(n) ? hits : wrong_bodies);
        } else {
          (void)f.Put(key, body_of(n), f.Meta());
        }
        if (i % 50 == t) store.Apply(Invalidation::Prefix("AUTH_test", "public", "k1", false));
        if (i % 97 == t) store.Apply(Invalidation::All(true));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(hits.load() > 0);
  CHECK(wrong_bodies.load() == 0);
  for (const auto& zone : store.GetStats().zones) CHECK(zone.used_bytes <= 4 * kMiB);
}

}  // namespace cache
