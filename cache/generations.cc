#include "cache/generations.h"

#include <algorithm>

namespace cache {

std::string ContainerScopeName(std::string_view account, std::string_view container) {
  std::string name;
  name.reserve(account.size() + 1 + container.size());
  name.append(account).push_back('\0');
  name.append(container);
  return name;
}

Generations::Generations() = default;

uint32_t Generations::CurrentEpoch() const {
  absl::ReaderMutexLock lock(&mu_);
  return epoch_;
}

uint32_t Generations::IdLocked(ScopeKind kind, std::string_view name) {
  auto& ids = kind == ScopeKind::kContainer ? container_ids_ : tenant_ids_;
  auto& scopes = kind == ScopeKind::kContainer ? containers_ : tenants_;
  auto& names = kind == ScopeKind::kContainer ? container_names_ : tenant_names_;
  auto [it, inserted] = ids.try_emplace(std::string(name), static_cast<uint32_t>(scopes.size()));
  if (inserted) {
    scopes.emplace_back();
    names.emplace_back(name);
  }
  return it->second;
}

uint32_t Generations::ContainerId(std::string_view account, std::string_view container) {
  const std::string name = ContainerScopeName(account, container);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = container_ids_.find(name); it != container_ids_.end()) return it->second;
  }
  absl::MutexLock lock(&mu_);
  return IdLocked(ScopeKind::kContainer, name);
}

uint32_t Generations::TenantId(std::string_view tenant) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = tenant_ids_.find(absl::string_view(tenant.data(), tenant.size()));
        it != tenant_ids_.end()) {
      return it->second;
    }
  }
  absl::MutexLock lock(&mu_);
  return IdLocked(ScopeKind::kTenant, tenant);
}

std::string Generations::TenantName(uint32_t tenant_id) const {
  absl::ReaderMutexLock lock(&mu_);
  return tenant_names_[tenant_id];
}

Validity Generations::Check(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch) const {
  absl::ReaderMutexLock lock(&mu_);
  const ScopeEpochs& c = containers_[container_id].epochs;
  const ScopeEpochs& t = tenants_[tenant_id].epochs;
  if (stored_epoch < std::max({all_.epochs.hard, c.hard, t.hard})) return Validity::kGone;
  if (stored_epoch < std::max({all_.epochs.soft, c.soft, t.soft})) return Validity::kStale;
  return Validity::kValid;
}

void Generations::Added(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch) {
  absl::MutexLock lock(&mu_);
  for (Scope* scope : {&all_, &containers_[container_id], &tenants_[tenant_id]}) {
    if (stored_epoch >= scope->epochs.hard) ++scope->live;
  }
}

void Generations::Removed(uint32_t container_id, uint32_t tenant_id, uint32_t stored_epoch) {
  absl::MutexLock lock(&mu_);
  for (Scope* scope : {&all_, &containers_[container_id], &tenants_[tenant_id]}) {
    // An entry stored before the last hard bump was already taken off the count by that bump.
    if (stored_epoch >= scope->epochs.hard && scope->live > 0) --scope->live;
  }
}

Generations::BumpResult Generations::Bump(ScopeKind kind, std::string_view name, bool soft) {
  absl::MutexLock lock(&mu_);
  Scope* scope = &all_;
  if (kind != ScopeKind::kAll) {
    const uint32_t id = IdLocked(kind, name);
    scope = kind == ScopeKind::kContainer ? &containers_[id] : &tenants_[id];
  }
  // Entries stored at the current epoch began before this bump, so they must be covered: the
  // scope takes the current epoch plus one and new fills start from there.
  ++epoch_;
  const uint64_t hit = scope->live;
  if (soft) {
    scope->epochs.soft = epoch_;
  } else {
    scope->epochs.hard = epoch_;
    scope->live = 0;
  }
  return {ScopeRecord{kind, std::string(kind == ScopeKind::kAll ? "" : name), scope->epochs}, hit};
}

void Generations::Restore(const ScopeRecord& record) {
  absl::MutexLock lock(&mu_);
  Scope* scope = &all_;
  if (record.kind != ScopeKind::kAll) {
    const uint32_t id = IdLocked(record.kind, record.name);
    scope = record.kind == ScopeKind::kContainer ? &containers_[id] : &tenants_[id];
  }
  scope->epochs.hard = std::max(scope->epochs.hard, record.epochs.hard);
  scope->epochs.soft = std::max(scope->epochs.soft, record.epochs.soft);
  epoch_ = std::max({epoch_, scope->epochs.hard, scope->epochs.soft});
}

std::vector<ScopeRecord> Generations::Snapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<ScopeRecord> records;
  records.push_back({ScopeKind::kAll, "", all_.epochs});
  for (size_t i = 0; i < containers_.size(); ++i) {
    if (containers_[i].epochs != ScopeEpochs{}) {
      records.push_back({ScopeKind::kContainer, container_names_[i], containers_[i].epochs});
    }
  }
  for (size_t i = 0; i < tenants_.size(); ++i) {
    if (tenants_[i].epochs != ScopeEpochs{}) {
      records.push_back({ScopeKind::kTenant, tenant_names_[i], tenants_[i].epochs});
    }
  }
  return records;
}

}  // namespace cache
