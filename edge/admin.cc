#include "edge/admin.h"

namespace edge {

void AdminHandler::OnRequest(http::Exchange& exchange) {
  const http::Request& request = exchange.request();
  const std::string_view path = request.target.substr(0, request.target.find('?'));
  if (request.method != "GET" && request.method != "HEAD") {
    exchange.Reply(405, "text/plain", "GET only\n");
  } else if (path == "/metrics") {
    exchange.Reply(200, "text/plain; version=0.0.4", metrics_());
  } else if (path == "/healthz") {
    const std::string reason = unhealthy_reason_();
    if (reason.empty()) {
      exchange.Reply(200, "text/plain", "ok\n");
    } else {
      exchange.Reply(503, "text/plain", reason + "\n");
    }
  } else {
    exchange.Reply(404, "text/plain", "try /metrics or /healthz\n");
  }
}

}  // namespace edge
