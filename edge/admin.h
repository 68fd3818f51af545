// The admin listener's handler: /healthz (200 while the edge serves, 503 while it drains or when no
// cache zone is in service) and /metrics (Prometheus text).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "edge/http/server.h"

namespace edge {

class AdminHandler : public http::Handler {
 public:
  // `metrics` renders the exposition; `healthy` says whether to answer 200, and why not.
  AdminHandler(std::function<std::string()> metrics, std::function<std::string()> unhealthy_reason)
      : metrics_(std::move(metrics)), unhealthy_reason_(std::move(unhealthy_reason)) {}

  void OnRequest(http::Exchange& exchange) override;

 private:
  std::function<std::string()> metrics_;
  std::function<std::string()> unhealthy_reason_;
};

}  // namespace edge
