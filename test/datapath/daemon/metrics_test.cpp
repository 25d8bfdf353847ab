// The Prometheus exposition of a snapshot, checked by promtool itself (Debian package prometheus),
// and the ADDR:PORT parser of --metrics.
#include "datapath/daemon/metrics.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "datapath/worker.h"
#include "test/support/netns.h"

namespace dnsproxy::daemon {
namespace {

Snapshot two_workers() {
  Snapshot snapshot;
  snapshot.mode = "forward_all";
  snapshot.uptime_ms = 1500;
  for (unsigned cpu : {0u, 1u}) {
    datapath::WorkerCounters<datapath::ForwardDrop> counters;
    counters.packets.add(datapath::WorkerCounter::kTxPackets, 10 + cpu);
    counters.handler_drops.add(datapath::ForwardDrop::kTtlExceeded, 2);
    WorkerSnapshot worker;
    worker.cpu = cpu;
    append_counters(counters.packets, worker.counters);
    append_counters(counters.worker_drops, worker.drops);
    append_counters(counters.handler_drops, worker.drops);
    worker.frames.total = 8;
    worker.sockets.push_back(SocketSnapshot{"cli0", 3, cpu, false, "native", false, {}});
    snapshot.workers.push_back(std::move(worker));
  }
  snapshot.dns_steer = datapath::SteerCounters{};
  return snapshot;
}

Snapshot with_agent_policy() {
  Snapshot snapshot = two_workers();
  snapshot.mode = "policy";
  snapshot.policy = PolicySnapshot{
      .source = "persisted", .version = "5f0c1d2e3a4b5c6d", .resources = 12, .last_nack = ""};
  return snapshot;
}

// promtool's verdict on `text`: its exit code and output (promtool reads the exposition on stdin).
std::pair<int, std::string> promtool_check(const std::string& text) {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("dnsproxy-metrics-" + std::to_string(getpid()) + ".txt");
  std::ofstream(path) << text;
  auto out = test::run_command({"sh", "-c", "promtool check metrics < " + path});
  std::filesystem::remove(path);
  if (!out) return {-1, out.error().message};
  return {out->exit_code, out->output};
}

TEST(MetricsTest, TheExpositionPassesPromtool) {
  const std::string text = to_prometheus(two_workers());
  EXPECT_NE(text.find("dnsproxy_worker_tx_packets_total{worker=\"1\",cpu=\"1\"} 11\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("dnsproxy_worker_drops_total{worker=\"0\",cpu=\"0\",reason=\"ttl_exceeded\"} 2"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("dnsproxy_socket_info{worker=\"0\",interface=\"cli0\",queue=\"0\","
                      "bind_mode=\"copy\",xdp_mode=\"native\",busy_poll=\"false\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dnsproxy_dns_steer_packets_total{counter=\"redirect\"} 0"),
            std::string::npos);
  const auto [status, output] = promtool_check(text);
  EXPECT_EQ(status, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << "no lint findings";
}

// Where the policy came from is a scrape away: a proxy serving its persisted policy while the
// agent is down says so.
TEST(MetricsTest, ThePolicySourceAndResourcesAreGauges) {
  const std::string text = to_prometheus(with_agent_policy());
  EXPECT_NE(
      text.find("dnsproxy_policy_info{source=\"persisted\",version=\"5f0c1d2e3a4b5c6d\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("dnsproxy_policy_resources 12\n"), std::string::npos) << text;
  EXPECT_EQ(to_prometheus(two_workers()).find("dnsproxy_policy_info"), std::string::npos)
      << "forward-all mode has no policy";
  const auto [status, output] = promtool_check(text);
  EXPECT_EQ(status, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << "no lint findings";
}

// promtool does find something wrong: the check is not vacuous.
TEST(MetricsTest, PromtoolRejectsABrokenExposition) {
  const auto [status, output] =
      promtool_check("# TYPE dnsproxy_bad counter\ndnsproxy_bad{x=\"1\" 1\n");
  EXPECT_NE(status, 0) << output;
}

TEST(MetricsTest, HostPortParsing) {
  auto v4 = parse_host_port("127.0.0.1:9253", "--metrics");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9253);
  auto v6 = parse_host_port("[::1]:80", "--metrics");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 80);
  for (const char* bad : {"", "9253", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
                          ":80", "::1:80", "[::1]80", "[::1]:x"}) {
    auto parsed = parse_host_port(bad, "--metrics");
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code, kExitBadConfig);
    EXPECT_NE(parsed.error().message.find("--metrics"), std::string::npos);
  }
}

}  // namespace
}  // namespace dnsproxy::daemon
