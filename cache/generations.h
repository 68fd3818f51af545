// Generation scopes: container, tenant and all. Invalidating a scope bumps its epoch, O(1); an
// entry stored before its scope's hard epoch is gone, before its soft epoch is stale.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace cache {

enum class ScopeKind : uint8_t { kContainer = 1, kTenant = 2, kAll = 3 };

struct ScopeEpochs {
  uint32_t hard = 0;
  uint32_t soft = 0;
  bool operator==(const ScopeEpochs&) const = default;
};

// One scope's state, as the journal records it.
struct ScopeRecord {
  ScopeKind kind;
  std::string name;  // "account\0container" for containers, the tenant name, empty for all
  ScopeEpochs epochs;
};

enum class Validity { kValid, kStale, kGone };

// Thread-safe. Ids are dense and stable for the life of the process, so entries carry 4-byte ids
// instead of names.
class Generations {
 public:
  Generations();

  // The epoch a fill records when it begins. An invalidation applied after that moment has a
  // higher epoch, so the entry is covered by it.
  uint32_t CurrentEpoch() const;
  uint32_t ContainerId(std::string_view account, std::string_view container);
  uint32_t TenantId(std::string_view tenant);
  std::string TenantName(uint32_t tenant_id) const;

  Validity Check(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch) const;

  // Live-entry counts per scope, so a bump can say how many entries it hit without a scan.
  void Added(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch);
  void Removed(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch);

  struct BumpResult {
    ScopeRecord record;  // to journal
    uint64_t entries_hit;
  };
  BumpResult Bump(ScopeKind kind, std::string_view name, bool soft);
  // Restores a journaled scope; keeps the higher epochs if the scope is already known.
  void Restore(const ScopeRecord& record);
  std::vector<ScopeRecord> Snapshot() const;

 private:
  uint32_t IdLocked(ScopeKind kind, std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  uint32_t epoch_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, uint32_t> container_ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> tenant_ids_ ABSL_GUARDED_BY(mu_);
  struct Scope {
    ScopeEpochs epochs;
    uint64_t live = 0;  // entries stored since the last hard bump
  };
  std::vector<Scope> containers_ ABSL_GUARDED_BY(mu_);
  std::vector<Scope> tenants_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> container_names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tenant_names_ ABSL_GUARDED_BY(mu_);
  Scope all_ ABSL_GUARDED_BY(mu_);
};

std::string ContainerScopeName(std::string_view account, std::string_view container);

}  // namespace cache
