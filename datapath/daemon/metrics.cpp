#include "datapath/daemon/metrics.h"

#include <httplib.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace dnsproxy::daemon {
namespace {

// One metric family: its HELP and TYPE lines, then its samples.
class Family {
 public:
  Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view labels, uint64_t value) {
    out_ += fmt::format("{}{{{}}} {}\n", name_, labels, value);
  }

 private:
  std::string& out_;
  std::string name_;
};

std::string worker_labels(size_t w, const WorkerSnapshot& worker) {
  return fmt::format("worker=\"{}\",cpu=\"{}\"", w, worker.cpu);
}

}  // namespace

std::string to_prometheus(const Snapshot& snapshot) {
  std::string out;
  {
    Family uptime(out, "dnsproxy_uptime_seconds", "gauge", "Seconds since the workers started.");
    out += fmt::format("dnsproxy_uptime_seconds {}\n", snapshot.uptime_ms / 1000.0);
  }
  // One family per worker counter (the worker's counter table), labelled by worker.
  if (!snapshot.workers.empty()) {
    for (size_t c = 0; c < snapshot.workers[0].counters.size(); ++c) {
      const std::string name =
          fmt::format("dnsproxy_worker_{}_total", snapshot.workers[0].counters[c].first);
      Family family(out, name, "counter",
                    fmt::format("Worker counter {}.", snapshot.workers[0].counters[c].first));
      for (size_t w = 0; w < snapshot.workers.size(); ++w)
        family.sample(worker_labels(w, snapshot.workers[w]),
                      snapshot.workers[w].counters[c].second);
    }
  }
  {
    Family drops(out, "dnsproxy_worker_drops_total", "counter",
                 "Packets a worker dropped, by reason (the worker's and its handler's).");
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      for (const auto& [reason, value] : snapshot.workers[w].drops)
        drops.sample(fmt::format("{},reason=\"{}\"", worker_labels(w, snapshot.workers[w]), reason),
                     value);
  }
  {
    Family frames(out, "dnsproxy_worker_umem_frames", "gauge",
                  "UMEM frames by place (approximate while the workers run).");
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      for (size_t p = 0; p < xsk::kFramePlaceCount; ++p)
        frames.sample(fmt::format("{},place=\"{}\"", worker_labels(w, snapshot.workers[w]),
                                  counter_name(static_cast<xsk::FramePlace>(p))),
                      snapshot.workers[w].frames.in_place[p]);
  }
  {
    Family violations(out, "dnsproxy_worker_frame_violations_total", "counter",
                      "Frame moves from a wrong place (checked builds; a bug if not 0).");
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      violations.sample(worker_labels(w, snapshot.workers[w]),
                        snapshot.workers[w].frames.violations);
  }
  {
    Family info(out, "dnsproxy_socket_info", "gauge",
                "One per AF_XDP socket: its interface, queue and the modes achieved.");
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      for (const SocketSnapshot& socket : snapshot.workers[w].sockets)
        info.sample(
            fmt::format("worker=\"{}\",interface=\"{}\",queue=\"{}\",bind_mode=\"{}\","
                        "xdp_mode=\"{}\",busy_poll=\"{}\"",
                        w, socket.interface, socket.queue, socket.zero_copy ? "zerocopy" : "copy",
                        socket.xdp_mode, socket.busy_poll ? "true" : "false"),
            1);
  }
  for (const auto& [name, member] : {std::pair{"rx_packets", &SocketSnapshot::rx_packets},
                                     std::pair{"tx_packets", &SocketSnapshot::tx_packets}}) {
    Family family(out, fmt::format("dnsproxy_socket_{}_total", name), "counter",
                  fmt::format("Packets {} on one AF_XDP socket (interface and queue).",
                              member == &SocketSnapshot::rx_packets ? "received" : "transmitted"));
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      for (const SocketSnapshot& socket : snapshot.workers[w].sockets)
        family.sample(fmt::format("worker=\"{}\",interface=\"{}\",queue=\"{}\"", w,
                                  socket.interface, socket.queue),
                      socket.*member);
  }
  for (const auto& [stat, member] : kernel_stat_fields()) {
    Family family(out, fmt::format("dnsproxy_socket_{}_total", stat), "counter",
                  fmt::format("AF_XDP socket kernel statistic {} (XDP_STATISTICS).", stat));
    for (size_t w = 0; w < snapshot.workers.size(); ++w)
      for (const SocketSnapshot& socket : snapshot.workers[w].sockets)
        family.sample(fmt::format("worker=\"{}\",interface=\"{}\",queue=\"{}\"", w,
                                  socket.interface, socket.queue),
                      socket.kernel.*member);
  }
  if (snapshot.dns_steer) {
    Family steer(out, "dnsproxy_dns_steer_packets_total", "counter",
                 "dns_steer verdicts (pass_*, drop_*, redirect) and, for redirected packets, FIB "
                 "results (fib_*).");
    for_each_bpf_counter<dns_steer_stat>(*snapshot.dns_steer,
                                         [&](std::string_view name, uint64_t value) {
                                           steer.sample(fmt::format("counter=\"{}\"", name), value);
                                         });
  }
  for (const auto& [name, value] : snapshot.control) {
    Family family(out, fmt::format("dnsproxy_control_{}_total", name), "counter",
                  fmt::format("Control-thread counter {} (plumbing pipeline, agent).", name));
    out += fmt::format("dnsproxy_control_{}_total {}\n", name, value);
  }
  for (const HistogramSnapshot& h : snapshot.histograms) {
    const std::string name = fmt::format("dnsproxy_{}_latency_seconds", h.name);
    Family family(out, name, "histogram", fmt::format("Latency of {}, in seconds.", h.name));
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      const std::string le = i < LatencyHistogram::kBoundsUs.size()
                                 ? fmt::format("{}", LatencyHistogram::kBoundsUs[i] / 1e6)
                                 : std::string("+Inf");
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
    }
    out += fmt::format("{}_sum {}\n{}_count {}\n", name, h.sum_us / 1e6, name, h.count);
  }
  if (snapshot.agent) {
    {
      Family info(out, "dnsproxy_agent_info", "gauge",
                  "The agent that plumbs (kind) and its link state (up, connecting, down).");
      info.sample(
          fmt::format("kind=\"{}\",link=\"{}\"", snapshot.agent->kind, snapshot.agent->link), 1);
    }
    Family version(out, "dnsproxy_policy_version", "gauge",
                   "Version of the policy in force (policy files applied; with --agent, the "
                   "persisted one and each update accepted).");
    out += fmt::format("dnsproxy_policy_version {}\n", snapshot.agent->policy_version);
  }
  if (snapshot.policy) {
    {
      Family info(out, "dnsproxy_policy_info", "gauge",
                  "Where the policy in force came from (source: file; with --agent none, "
                  "persisted or agent) and its version (with --agent, the agent's).");
      info.sample(fmt::format("source=\"{}\",version=\"{}\"", snapshot.policy->source,
                              snapshot.policy->version),
                  1);
    }
    Family resources(out, "dnsproxy_policy_resources", "gauge",
                     "With --agent: the policy resources held (0 with a policy file).");
    out += fmt::format("dnsproxy_policy_resources {}\n", snapshot.policy->resources);
  }
  if (snapshot.l3_guard) {
    Family guard(out, "dnsproxy_l3_guard_packets_total", "counter",
                 "l3_guard verdicts on the non-DNS traffic of policed endpoints (pass_*, drop_*).");
    for_each_bpf_counter<l3_guard_stat>(*snapshot.l3_guard,
                                        [&](std::string_view name, uint64_t value) {
                                          guard.sample(fmt::format("counter=\"{}\"", name), value);
                                        });
  }
  return out;
}

Setup<HostPort> parse_host_port(const std::string& text, const std::string& flag) {
  const auto bad = [&] {
    return failure(kExitBadConfig,
                   fmt::format("{} {}: expected ADDR:PORT or [V6ADDR]:PORT", flag, text));
  };
  HostPort out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad();
    out.host = text.substr(1, close - 1);
    port = std::string_view(text).substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return bad();
    out.host = text.substr(0, colon);
    port = std::string_view(text).substr(colon + 1);
  }
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (out.host.empty() || error != std::errc() || end != port.data() + port.size() ||
      out.port <= 0 || out.port > 65535)
    return bad();
  return out;
}

MetricsServer::MetricsServer() : server_(std::make_unique<httplib::Server>()) {}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

Setup<std::unique_ptr<MetricsServer>> MetricsServer::bind(const HostPort& where,
                                                          std::function<std::string()> render) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->server_->Get("/metrics", [render = std::move(render)](const httplib::Request&,
                                                                httplib::Response& response) {
    response.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  errno = 0;
  if (!server->server_->bind_to_port(where.host, where.port)) {
    // httplib keeps the cause to itself; errno still holds the failed bind's or listen's.
    const std::string why = errno != 0 ? std::strerror(errno) : "the address does not resolve";
    return failure(kExitSocket, fmt::format("--metrics: cannot listen on {}:{}: {}", where.host,
                                            where.port, why));
  }
  return server;
}

void MetricsServer::start() {
  thread_ = std::thread([this] { (void)server_->listen_after_bind(); });
}

}  // namespace dnsproxy::daemon
