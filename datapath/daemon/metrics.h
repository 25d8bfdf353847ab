// Prometheus text exposition (version 0.0.4) of the stats snapshot, and the HTTP endpoint that
// serves it (`--metrics ADDR:PORT`, GET /metrics; cpp-httplib). Metric names and labels come from
// the same counter tables as the stats file (README, "Metrics").
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "datapath/daemon/config.h"
#include "datapath/daemon/stats.h"

namespace httplib {
class Server;
}

namespace dnsproxy::daemon {

[[nodiscard]] std::string to_prometheus(const Snapshot& snapshot);

struct HostPort {
  std::string host;  // an address: "127.0.0.1", "::1", "0.0.0.0"
  int port = 0;
};
// "ADDR:PORT" or "[V6ADDR]:PORT"; exit 2 naming --metrics when malformed.
[[nodiscard]] Setup<HostPort> parse_host_port(const std::string& text, const std::string& flag);

// Binds at construction (setup, before the capability drop: a port under 1024 needs
// CAP_NET_BIND_SERVICE), serves from its own thread once start() is called (after the drop, so
// the thread holds no capability), stops and joins on destruction. `render` runs on the server's
// thread and must only read what other threads write atomically.
class MetricsServer {
 public:
  [[nodiscard]] static Setup<std::unique_ptr<MetricsServer>> bind(
      const HostPort& where, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  void start();

 private:
  MetricsServer();
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace dnsproxy::daemon
