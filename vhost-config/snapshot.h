// The loaded tenant table as an immutable snapshot, replaced atomically on reload: readers on
// other threads hold the table they took until they drop it, and never see half a config.
#pragma once

#include <atomic>
#include <memory>

#include "vhost-config/loader.h"

namespace vhost {

class TenantSnapshot {
 public:
  explicit TenantSnapshot(std::shared_ptr<const TenantTable> table) : table_(std::move(table)) {}
  std::shared_ptr<const TenantTable> Current() const { return table_.load(std::memory_order_acquire); }
  void Replace(std::shared_ptr<const TenantTable> table) {
    table_.store(std::move(table), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const TenantTable>> table_;
};

}  // namespace vhost
