// dnsproxyd end to end: the real binary as a subprocess in the node namespace, between a client
// and knotd, over veth in copy mode. Checks what an operator relies on: DNS over v4 and v6 goes
// through the workers, nothing is lost under load, other traffic is untouched, SIGTERM leaves no
// program and no pin behind, a crashed run's program is replaced, and errors exit with the
// documented codes.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "test/support/daemon_fixture.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

const std::string kDaemon = DNSPROXYD_PATH;

class DnsproxydTest : public DaemonFixture {
 protected:
  void build(unsigned queues = 1) { DaemonFixture::build({.names = 1000, .queues = queues}); }

  std::unique_ptr<Dnsproxyd> start_daemon(std::vector<std::string> extra = {},
                                          std::string pin_dir = "") {
    std::vector<std::string> args = {"--forward-all", "--umem-frames", "4096", "--ring-size",
                                     "1024"};
    args.insert(args.end(), extra.begin(), extra.end());
    return DaemonFixture::start_daemon(args, pin_dir);
  }

  // One of the node's per-queue veth counters from `ethtool -S IF` (e.g.
  // "rx_queue_1_xdp_redirect"), or nullopt if the driver does not report it.
  std::optional<uint64_t> node_nic_stat(const std::string& ifname, const std::string& key) {
    auto out = topology_->node().exec({"ethtool", "-S", ifname});
    if (!out) return std::nullopt;
    std::istringstream lines(*out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string name;
      uint64_t value = 0;
      if (fields >> name >> value && name == key + ":") return value;
    }
    return std::nullopt;
  }

  // The answer's addresses only (kdig +short).
  std::string kdig(const std::string& server, const std::string& name, const std::string& type) {
    return DaemonFixture::kdig(server, name, type, {"+short", "+time=2", "+retry=1"});
  }

  // dns_steer is attached to both node interfaces while the daemon runs.
  void expect_attached() {
    for (const char* ifname : {"cli0", "up0"}) {
      auto link = topology_->node().ip({"-d", "link", "show", "dev", ifname});
      ASSERT_TRUE(link) << link.error().message;
      EXPECT_NE(link->find("prog/xdp"), std::string::npos) << *link;
    }
  }

  // Nothing of ours is left on the node: no XDP program on either interface, no pin directory;
  // and the final stats snapshot says every frame came back.
  void expect_clean(const Dnsproxyd& daemon) {
    auto stats = daemon.stats();
    ASSERT_TRUE(stats) << stats.error().message;
    EXPECT_EQ(stats->at("final"), true) << stats->dump(2);
    EXPECT_EQ(stats->at("frame_check"), "ok") << stats->dump(2);
    for (const char* ifname : {"cli0", "up0"}) {
      auto link = topology_->node().ip({"-d", "link", "show", "dev", ifname});
      ASSERT_TRUE(link) << link.error().message;
      EXPECT_EQ(link->find("prog/xdp"), std::string::npos) << *link;
    }
    EXPECT_FALSE(std::filesystem::exists(daemon.pin_dir())) << daemon.pin_dir();
  }
};

TEST_F(DnsproxydTest, KdigOverV4AndV6IsForwardedByTheWorkers) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  expect_attached();
  EXPECT_EQ(kdig(Topology::kUpstreamV4, "host3.example.test", "A"), "203.0.113.4\n");
  EXPECT_EQ(kdig(Topology::kUpstreamV6, "host3.example.test", "AAAA"), "2001:db8:e::4\n");
  EXPECT_TRUE(daemon->report_counters()) << "SIGUSR1 writes a snapshot while running:\n"
                                         << daemon->log();
  EXPECT_GE(daemon->transmitted(), 4u) << daemon->log();
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  // Two queries and two responses, each one descriptor move through a worker.
  EXPECT_GE(daemon->transmitted(), 4u) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  for (const auto& socket : stats->at("workers").at(0).at("sockets"))
    EXPECT_EQ(socket.at("bind_mode"), "copy") << "achieved mode is reported: " << socket.dump();
  expect_clean(*daemon);
}

TEST_F(DnsproxydTest, HundredThousandDnsperfQueriesLoseNone) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto queries = knotd_->write_query_file(1000);
  ASSERT_TRUE(queries) << queries.error().message;
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  // 1000 names x 100 passes; -l bounds the run, -q keeps the offered load within the rings.
  auto perf = topology_->client().run({"dnsperf", "-s", Topology::kUpstreamV4, "-d", *queries, "-n",
                                       "100", "-l", "120", "-q", "64", "-c", "2", "-t", "5"});
  ASSERT_TRUE(perf) << perf.error().message;
  EXPECT_NE(perf->output.find("Queries sent:         100000"), std::string::npos) << perf->output;
  EXPECT_NE(perf->output.find("Queries completed:    100000"), std::string::npos) << perf->output;
  EXPECT_NE(perf->output.find("Queries lost:         0 "), std::string::npos) << perf->output;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  EXPECT_GE(daemon->transmitted(), 200000u) << daemon->log();
  expect_clean(*daemon);
}

// The stats file (README, "Stats file"): rewritten every --stats-interval while running, every
// counter of each table present by name, and a final snapshot at exit with the frame check.
TEST_F(DnsproxydTest, TheStatsFileNamesEveryCounterAndEndsFinal) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon({"--stats-interval", "100"});
  ASSERT_TRUE(daemon);
  auto first = daemon->stats();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->at("final"), false);
  EXPECT_TRUE(first->at("frame_check").is_null()) << "no frame check while the workers run";
  EXPECT_EQ(kdig(Topology::kUpstreamV4, "www.example.test", "A"), "203.0.113.80\n");
  // Interval snapshots follow each other (100 ms apart).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto later = daemon->stats();
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_GE(later->at("sequence").get<uint64_t>(), first->at("sequence").get<uint64_t>() + 2);
  EXPECT_EQ(later->at("reason"), "interval");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  auto last = daemon->stats();
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(last->at("reason"), "exit");
  EXPECT_EQ(last->at("mode"), "forward_all");
  const auto& worker = last->at("workers").at(0);
  for (const char* name : {"rx_packets", "tx_packets", "forwarded", "replied", "to_kernel",
                           "parked", "released", "iterations", "idle_waits", "leaked_frames"})
    EXPECT_TRUE(worker.at("counters").contains(name)) << name << " in " << worker.dump(2);
  for (const char* name :
       {"no_egress_port", "tx_ring_full", "to_kernel_failed", "invalid_release", "invalid_length",
        "not_forwarded", "ttl_exceeded", "malformed", "short_dns"})
    EXPECT_EQ(worker.at("drops").at(name), 0u) << name << " in " << worker.dump(2);
  // One query and its response: two forwards through the worker.
  EXPECT_EQ(worker.at("counters").at("forwarded"), 2u) << worker.dump(2);
  EXPECT_EQ(last->at("totals").at("counters").at("tx_packets"), 2u) << last->dump(2);
  const auto& frames = worker.at("frames");
  EXPECT_EQ(frames.at("total"), 4096u);
  EXPECT_EQ(frames.at("worker"), 0u);
  EXPECT_EQ(frames.at("parked"), 0u);
  EXPECT_EQ(frames.at("violations"), 0u);
  ASSERT_EQ(worker.at("sockets").size(), 2u);
  EXPECT_EQ(worker.at("sockets").at(0).at("interface"), "cli0");
  EXPECT_TRUE(worker.at("sockets").at(0).at("kernel").contains("rx_ring_full"));
  // dns_steer redirected the query on cli0 and the response on up0.
  EXPECT_EQ(last->at("dns_steer").at("redirect"), 2u) << last->at("dns_steer").dump(2);
  expect_clean(*daemon);
}

// The settings from a YAML file (--config, keys = long flag names), flags on the command line
// (here the helper's --pin-dir and --stats-file) on top; --print-config shows the result.
TEST_F(DnsproxydTest, AConfigFileServesLikeFlags) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string path = "/tmp/dnsproxyd-e2e-config-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path) << "interfaces: [cli0, up0]\nforward-all: true\numem-frames: 4096\n"
                         "ring-size: 1024\nbatch-size: 32\n";
  auto printed = run_command({kDaemon, "--config", path, "--batch-size", "16", "--print-config"},
                             &topology_->node());
  ASSERT_TRUE(printed) << printed.error().message;
  EXPECT_EQ(printed->exit_code, 0) << printed->output;
  EXPECT_NE(printed->output.find("interfaces: [cli0, up0]"), std::string::npos) << printed->output;
  EXPECT_NE(printed->output.find("batch-size: 16"), std::string::npos) << "the flag overrides";
  auto daemon = Dnsproxyd::start(kDaemon, topology_->node(), {"--config", path}, new_pin_dir());
  std::filesystem::remove(path);
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(kdig(Topology::kUpstreamV4, "www.example.test", "A"), "203.0.113.80\n");
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  auto stats = (*daemon)->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->at("workers").at(0).at("sockets").size(), 2u) << "both interfaces from the file";
  EXPECT_EQ(stats->at("workers").at(0).at("frames").at("total"), 4096u);
  EXPECT_GE((*daemon)->transmitted(), 2u);
  expect_clean(**daemon);
}

// SIGTERM while dnsperf keeps the workers busy: exit 0 within 1 s, the program detached, and the
// final snapshot says every frame came back (issue 14). A bound an operator relies on (systemd's
// TimeoutStopSec), not a speed figure.
TEST_F(DnsproxydTest, SigtermUnderLoadExitsCleanlyWithinOneSecond) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto queries = knotd_->write_query_file(1000);
  ASSERT_TRUE(queries) << queries.error().message;
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  const std::string perf_log = "/tmp/dnsproxyd-e2e-load-" + std::to_string(getpid()) + ".log";
  auto load = BackgroundProcess::start({"dnsperf", "-s", Topology::kUpstreamV4, "-d", *queries,
                                        "-l", "30", "-q", "64", "-c", "2", "-t", "2"},
                                       &topology_->client(), perf_log);
  ASSERT_TRUE(load) << load.error().message;
  // Under load: the workers have forwarded a good number of packets before the signal.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (daemon->transmitted() < 20000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(daemon->transmitted(), 20000u) << daemon->log();
  const auto signalled = std::chrono::steady_clock::now();
  const int code = daemon->stop();
  const auto took = std::chrono::steady_clock::now() - signalled;
  load->stop();
  std::filesystem::remove(perf_log);
  EXPECT_EQ(code, 0) << daemon->log();
  EXPECT_LT(took, std::chrono::seconds(1))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n"
      << daemon->log();
  expect_clean(*daemon);
}

// SIGHUP reads the --config file again: the log level applies live, other changes are named as
// needing a restart, and a bad file changes nothing; the stats file's "reloads" says which.
TEST_F(DnsproxydTest, ASighupReloadsTheConfigFile) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string path = "/tmp/dnsproxyd-e2e-reload-" + std::to_string(getpid()) + ".yaml";
  const std::string base = "interfaces: [cli0, up0]\nforward-all: true\numem-frames: 4096\n";
  std::ofstream(path) << base << "ring-size: 1024\n";
  auto started = Dnsproxyd::start(kDaemon, topology_->node(),
                                  {"--config", path, "--stats-interval", "100"}, new_pin_dir());
  ASSERT_TRUE(started) << started.error().message;
  Dnsproxyd& daemon = **started;
  // The reloads object once the daemon wrote a snapshot with `applied + failed == n`.
  auto reloads_after = [&](uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto stats = daemon.stats();
      if (stats && stats->at("reloads").at("applied").get<uint64_t>() +
                           stats->at("reloads").at("failed").get<uint64_t>() >=
                       n)
        return stats->at("reloads");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nlohmann::json();
  };
  std::ofstream(path) << base << "ring-size: 2048\nverbose: true\n";
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  auto reloads = reloads_after(1);
  ASSERT_FALSE(reloads.is_null()) << daemon.log();
  EXPECT_EQ(reloads.at("applied"), 1u);
  EXPECT_EQ(reloads.at("restart_needed"), nlohmann::json::array({"ring-size"})) << reloads.dump();
  std::ofstream(path) << base << "ring-size: lots\n";
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  reloads = reloads_after(2);
  ASSERT_FALSE(reloads.is_null()) << daemon.log();
  EXPECT_EQ(reloads.at("failed"), 1u);
  EXPECT_EQ(reloads.at("restart_needed"), nlohmann::json::array({"ring-size"})) << reloads.dump();
  EXPECT_EQ(kdig(Topology::kUpstreamV4, "www.example.test", "A"), "203.0.113.80\n")
      << "still serving after a bad reload";
  std::filesystem::remove(path);
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
  expect_clean(daemon);
}

// The node has no neighbour entry for the upstream: dns_steer still redirects the query
// (fib_no_neigh), and the worker hands it to the node's stack (to_kernel), which forwards it and
// resolves the neighbour; the answer comes back through the worker, and the next query finds the
// neighbour and is forwarded by the worker itself.
TEST_F(DnsproxydTest, AQueryToAnUnresolvedNextHopGoesThroughTheKernelAndIsAnswered) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  // The topology's entries are permanent, which `ip neigh flush` keeps: delete them.
  for (const char* upstream : {Topology::kUpstreamV4, Topology::kUpstreamV6}) {
    auto deleted = topology_->node().ip({"neigh", "del", upstream, "dev", "up0"});
    ASSERT_TRUE(deleted) << deleted.error().message;
  }
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  // The counts below are exact: one query each, no retry (a retry on a loaded machine would
  // count twice), and time enough for the kernel's neighbour resolution.
  const auto once = [&](const char* server, const char* name, const char* type) {
    return DaemonFixture::kdig(server, name, type, {"+short", "+time=5", "+retry=0"});
  };
  EXPECT_EQ(once(Topology::kUpstreamV4, "host3.example.test", "A"), "203.0.113.4\n");
  EXPECT_EQ(once(Topology::kUpstreamV6, "host3.example.test", "AAAA"), "2001:db8:e::4\n");
  EXPECT_EQ(once(Topology::kUpstreamV4, "www.example.test", "A"), "203.0.113.80\n");
  EXPECT_EQ(once(Topology::kUpstreamV6, "www.example.test", "A"), "203.0.113.80\n");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  const auto& steer = stats->at("dns_steer");
  EXPECT_EQ(steer.at("redirect"), 8u) << steer.dump(2);
  EXPECT_EQ(steer.at("fib_no_neigh"), 2u) << "the first query of each family" << steer.dump(2);
  const auto& counters = stats->at("workers").at(0).at("counters");
  EXPECT_EQ(counters.at("to_kernel"), 2u) << counters.dump(2);
  EXPECT_EQ(counters.at("forwarded"), 6u)
      << "4 responses and the second queries" << counters.dump(2);
  for (const auto& [name, value] : stats->at("workers").at(0).at("drops").items())
    EXPECT_EQ(value, 0u) << name;
  expect_clean(*daemon);
}

TEST_F(DnsproxydTest, PingAndTcpAreLeftToTheKernel) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  const NetNs& client = topology_->client();
  auto ping4 = client.run({"ping", "-c", "3", "-i", "0.2", "-W", "2", Topology::kUpstreamV4});
  ASSERT_TRUE(ping4);
  EXPECT_EQ(ping4->exit_code, 0) << ping4->output;
  auto ping6 = client.run({"ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", Topology::kUpstreamV6});
  ASSERT_TRUE(ping6);
  EXPECT_EQ(ping6->exit_code, 0) << ping6->output;
  // DNS over TCP to knotd: TCP port 53 is not steered (UDP only), the kernel forwards it.
  auto tcp = client.run({"kdig", "+tcp", "+short", "+time=2",
                         std::string("@") + Topology::kUpstreamV4, "www.example.test", "A"});
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->output, "203.0.113.80\n");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  EXPECT_EQ(daemon->transmitted(), 0u) << "no UDP DNS was sent, so the workers forwarded nothing";
  // No endpoint is under DNS rules in forward-all mode: TCP DNS passes, counted as such.
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_GE(stats->at("dns_steer").at("pass_tcp_dns"), 1u) << stats->at("dns_steer").dump(2);
  EXPECT_EQ(stats->at("dns_steer").at("drop_tcp_dns"), 0u);
  expect_clean(*daemon);
}

TEST_F(DnsproxydTest, TwoWorkersServeAMultiQueueVeth) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build(2));
  auto queries = knotd_->write_query_file(1000);
  ASSERT_TRUE(queries) << queries.error().message;
  auto daemon = start_daemon({"--cpus", "0,1"});
  ASSERT_TRUE(daemon);
  const std::string log = daemon->log();
  for (const char* socket : {"worker 0 (cpu 0): cli0 queue 0", "worker 1 (cpu 1): cli0 queue 1",
                             "worker 0 (cpu 0): up0 queue 0", "worker 1 (cpu 1): up0 queue 1"})
    EXPECT_NE(log.find(socket), std::string::npos) << socket << " in\n" << log;
  // One dnsperf pinned to each CPU: with XPS, CPU q sends on the client's TX queue q, which
  // veth delivers to cli0's RX queue q, so each worker gets queries by construction, not by hash.
  auto steered = topology_->steer_tx_queues_by_cpu();
  ASSERT_TRUE(steered) << steered.error().message;
  auto dnsperf_on = [&](const char* cpu) {
    return topology_->client().run({"taskset", "-c", cpu, "dnsperf", "-s", Topology::kUpstreamV4,
                                    "-d", *queries, "-n", "5", "-l", "60", "-q", "64", "-c", "4",
                                    "-t", "5"});
  };
  auto on_cpu1 = std::async(std::launch::async, dnsperf_on, "1");
  const auto perf_cpu0 = dnsperf_on("0");
  const auto perf_cpu1 = on_cpu1.get();
  for (const auto* perf : {&perf_cpu0, &perf_cpu1}) {
    ASSERT_TRUE(*perf) << perf->error().message;
    EXPECT_NE((*perf)->output.find("Queries lost:         0 "), std::string::npos)
        << (*perf)->output;
  }
  // Each dnsperf sent exactly its 5,000 queries to the queue of its CPU.
  EXPECT_EQ(node_nic_stat(Topology::kNodeClientSide, "rx_queue_0_xdp_redirect"), 5000u);
  EXPECT_EQ(node_nic_stat(Topology::kNodeClientSide, "rx_queue_1_xdp_redirect"), 5000u);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  EXPECT_GE(daemon->transmitted(), 20000u) << daemon->log();
  const auto by_worker = daemon->transmitted_by_worker();
  ASSERT_EQ(by_worker.size(), 2u) << daemon->log();
  // Each worker forwarded at least the 5,000 queries of the dnsperf on its CPU (the responses
  // land wherever knotd's threads send them from).
  EXPECT_GE(by_worker.at(0), 5000u) << daemon->log();
  EXPECT_GE(by_worker.at(1), 5000u) << daemon->log();
  expect_clean(*daemon);
}

TEST_F(DnsproxydTest, AProgramLeftByACrashedRunIsReplaced) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto crashed = start_daemon();
  ASSERT_TRUE(crashed);
  crashed->kill_hard();
  expect_attached();  // a crash leaves the program behind
  auto daemon = start_daemon({}, crashed->pin_dir());
  ASSERT_TRUE(daemon);
  EXPECT_NE(daemon->log().find("stale"), std::string::npos) << daemon->log();
  EXPECT_EQ(kdig(Topology::kUpstreamV4, "www.example.test", "A"), "203.0.113.80\n");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  expect_clean(*daemon);
  EXPECT_FALSE(std::filesystem::exists(crashed->pin_dir()));
}

TEST_F(DnsproxydTest, ErrorsExitWithTheDocumentedCodes) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const NetNs& node = topology_->node();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const Case cases[] = {
      {{"-i", "nosuch0", "--forward-all"}, 3, "interface nosuch0 not found"},
      {{"-i", "cli0"}, 2, "give exactly one of --forward-all, --policy FILE and --agent unix:PATH"},
      {{"-i", "cli0", "--policy", "p.yaml", "--agent", "unix:/run/agent.sock"},
       2,
       "--policy and --agent exclude each other"},
      {{"-i", "cli0", "--forward-all", "--frame-size", "3000"}, 2, "frame size 3000"},
      {{"-i", "cli0", "--forward-all", "--bind-mode", "fast"}, 2, "--bind-mode"},
      {{"-i", "cli0", "--forward-all", "--xdp-mode", "turbo"}, 2, "turbo"},
      {{"-i", "cli0", "-i", "up0", "--forward-all", "--bind-mode", "zerocopy", "--umem-frames",
        "4096", "--ring-size", "1024", "--pin-dir", new_pin_dir()},
       6,
       "zero-copy"},
  };
  // Without CAP_IPC_LOCK a 32 MiB UMEM exceeds the 8 MiB RLIMIT_MEMLOCK of the test machines.
  const Case no_ipc_lock = {
      {"setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock", kDaemon, "-i", "cli0", "-i",
       "up0", "--forward-all", "--umem-frames", "16384", "--pin-dir", new_pin_dir()},
      5,
      "CAP_IPC_LOCK"};
  const std::string bad_file = "/tmp/dnsproxyd-e2e-bad-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(bad_file) << "interfaces: [cli0]\nforward-all: true\nring-sise: 1024\n";
  std::vector<Case> all(std::begin(cases), std::end(cases));
  all.push_back({{"--config", bad_file}, 2, ":3: key 'ring-sise': unknown key"});
  all.push_back({{"--config", bad_file + ".missing"}, 2, "cannot read the file"});
  for (const Case& c : all) {
    std::vector<std::string> argv = {kDaemon};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto out = run_command(argv, &node);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->exit_code, c.exit_code) << out->output;
    EXPECT_NE(out->output.find(c.message), std::string::npos) << out->output;
  }
  std::filesystem::remove(bad_file);
  // Without CAP_NET_RAW the AF_XDP socket behind the UMEM is refused (EPERM): the message says
  // so instead of blaming locked memory.
  const Case no_net_raw = {
      {"setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", kDaemon, "-i", "cli0", "-i",
       "up0", "--forward-all", "--umem-frames", "4096", "--pin-dir", new_pin_dir()},
      5,
      "AF_XDP sockets need CAP_NET_RAW"};
  for (const Case* c : {&no_ipc_lock, &no_net_raw}) {
    auto out = run_command(c->args, &node);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->exit_code, c->exit_code) << out->output;
    EXPECT_NE(out->output.find(c->message), std::string::npos) << out->output;
  }
  // The failed starts detached what they attached.
  auto link = node.ip({"-d", "link", "show", "dev", "cli0"});
  ASSERT_TRUE(link);
  EXPECT_EQ(link->find("prog/xdp"), std::string::npos) << *link;
}

}  // namespace
}  // namespace dnsproxy::test
