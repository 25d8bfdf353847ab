// dnsproxyd --agent unix:PATH with the reference agent dnsproxy-agent (issue 12), end to end: the
// agent owns the pinned maps (endpoints, ipcache, the L3 allow map l3_guard enforces), dnsproxyd
// opens its pins and sends every new mapping over the gRPC stream; a response is released when
// the agent's ACK says its addresses are plumbed, so the client's connect right after the answer
// passes l3_guard. With the agent killed, names plumbed before still resolve at once and connect;
// a new name waits for --max-delay. Counters from the stats files, never from the logs.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/app_servers.h"
#include "test/support/bpffs.h"
#include "test/support/privileges.h"
#include "test/support/topology.h"

namespace dnsproxy::test {
namespace {

using namespace std::chrono_literals;

const std::string kDaemon = DNSPROXYD_PATH;
const std::string kAgent = DNSPROXY_AGENT_PATH;
constexpr unsigned kNames = 500;

// The client is endpoint 101; every hostN name is allowed and selected by toFQDNs.
constexpr const char* kPolicy = R"(identities:
  - {id: 20001, labels: {k8s-app: kube-dns}, cidrs: [198.51.100.53/32, "2001:db8:5::53/128"]}
endpoints:
  - {id: 101, identity: 10001, labels: {app: frontend}, ips: [192.0.2.10, "2001:db8:c::10"]}
policies:
  - name: frontend
    endpointSelector: {matchLabels: {app: frontend}}
    egress:
      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]
        toPorts:
          - ports: [{port: "53", protocol: ANY}]
            rules:
              dns: [{matchPattern: "host*.example.test"}]
      - toFQDNs: [{matchPattern: "host*.example.test"}]
)";

class AgentLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("dnsproxy-agent-link-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
    std::ofstream(policy()) << kPolicy;
    socket_ = "unix:" + (directory_ / "agent.sock").string();
  }
  void TearDown() override {
    daemon_.reset();
    agent_.reset();
    std::filesystem::remove_all(directory_);
  }
  std::string policy() const { return (directory_ / "policy.yaml").string(); }
  std::string pin_dir() const { return bpffs_->path() + "/dnsproxy"; }

  void build() {
    auto topology = Topology::create({});
    ASSERT_TRUE(topology) << topology.error().message;
    topology_ = std::move(*topology);
    auto knotd = Knotd::start(topology_->upstream(), kNames + 100);
    ASSERT_TRUE(knotd) << knotd.error().message;
    knotd_ = std::move(*knotd);
    auto servers = AppServers::start(*topology_);
    ASSERT_TRUE(servers) << servers.error().message;
    servers_ = std::move(*servers);
    auto bpffs = BpfFsMount::create();
    ASSERT_TRUE(bpffs) << bpffs.error().message;
    bpffs_ = std::make_unique<BpfFsMount>(std::move(*bpffs));
  }

  // dnsproxy-agent in the root namespace (it needs none: a unix socket and pinned maps), its
  // maps pinned where dnsproxyd pins dns_steer's.
  void start_agent(const std::string& agent_pin_dir) {
    auto agent = BackgroundProcess::start(
        {kAgent, "--listen", socket_, "--policy", policy(), "--pin-dir", agent_pin_dir,
         "--stats-file", (directory_ / "agent-stats.json").string()},
        nullptr, (directory_ / "agent.log").string());
    ASSERT_TRUE(agent) << agent.error().message;
    agent_ = std::make_unique<BackgroundProcess>(std::move(*agent));
    for (int i = 0; i < 200 && !std::filesystem::exists(directory_ / "agent.sock"); ++i)
      std::this_thread::sleep_for(25ms);
    ASSERT_TRUE(std::filesystem::exists(directory_ / "agent.sock")) << agent_log();
  }
  std::string agent_log() const {
    std::ifstream in(directory_ / "agent.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  void start_daemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "-i", "cli0", "-i", "up0", "--policy", policy(), "--agent", socket_, "--stats-interval",
        "100"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto daemon = Dnsproxyd::start(kDaemon, topology_->node(), args, pin_dir());
    ASSERT_TRUE(daemon) << daemon.error().message << "\nagent:\n" << agent_log();
    daemon_ = std::move(*daemon);
  }

  static std::vector<std::string> names(unsigned first, unsigned count) {
    std::vector<std::string> out;
    for (unsigned i = first; i < first + count; ++i)
      out.push_back("host" + std::to_string(i) + ".example.test");
    return out;
  }
  static uint64_t total(const nlohmann::json& stats, const char* name) {
    return stats.at("totals").at("counters").value(name, uint64_t{0});
  }
  static uint64_t control(const nlohmann::json& stats, const char* name) {
    return stats.at("control").value(name, uint64_t{0});
  }
  // Waits (up to 5 s) for the daemon's stats file to show control counter `name` >= `want`.
  bool wait_control(const char* name, uint64_t want) {
    for (int i = 0; i < 100; ++i) {
      if (auto stats = daemon_->stats(); stats && control(*stats, name) >= want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::filesystem::path directory_;
  std::string socket_;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<Knotd> knotd_;
  std::unique_ptr<AppServers> servers_;
  std::unique_ptr<BpfFsMount> bpffs_;
  std::unique_ptr<BackgroundProcess> agent_;
  std::unique_ptr<Dnsproxyd> daemon_;
};

// Every trial to an address never plumbed before: the response waited for the agent's ACK, and
// the first SYN got through l3_guard, which reads the agent's allow map.
TEST_F(AgentLinkTest, ResolveThenConnectThroughTheExternalAgentNeverFails) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  ASSERT_NO_FATAL_FAILURE(start_agent(pin_dir()));
  ASSERT_NO_FATAL_FAILURE(start_daemon());

  auto report = resolve_then_connect(topology_->client(), names(0, kNames),
                                     {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->trials, kNames);
  EXPECT_EQ(report->failures(), 0u)
      << report->dns_timeouts << " DNS timeouts, " << report->dns_errors << " DNS errors, "
      << report->connect_failures << " connect failures, first: "
      << (report->failed_names.empty() ? "" : report->failed_names.front());

  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  auto stats = daemon_->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(total(*stats, "responses_parked"), kNames) << stats->dump(2);
  EXPECT_EQ(total(*stats, "released_on_ack"), kNames);
  EXPECT_EQ(total(*stats, "released_at_max_delay"), 0u);
  EXPECT_EQ(control(*stats, "link_up"), 1u);
  EXPECT_EQ(control(*stats, "link_down"), 0u);
  EXPECT_EQ(control(*stats, "link_batches_acked"), control(*stats, "link_batches_sent"));
  EXPECT_EQ(control(*stats, "link_batches_nacked") + control(*stats, "link_batches_interrupted"),
            0u);
  EXPECT_GE(stats->at("l3_guard").value("pass_allowed", uint64_t{0}), kNames);
  EXPECT_EQ(stats->at("frame_check"), "ok");

  // The agent wrote every address, and keeps its pins when it stops.
  EXPECT_EQ(agent_->stop(), 0) << agent_log();
  std::ifstream in(directory_ / "agent-stats.json");
  const nlohmann::json agent_stats = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(agent_stats.is_discarded()) << agent_log();
  EXPECT_EQ(agent_stats.at("counters").value("agent_addresses_plumbed", 0u), kNames);
  EXPECT_TRUE(std::filesystem::exists(pin_dir() + "/dnsproxy_fqdn_allow"));
}

// The agent killed: DNS keeps working for names plumbed before (released at once, and the
// connect passes: the allow map outlives the agent); a new name is released at the max delay
// (--on-max-delay release), counted, and its connect is dropped (nobody plumbed it).
TEST_F(AgentLinkTest, WithTheAgentKilledPlumbedNamesKeepResolvingAndNewOnesWaitTheMaxDelay) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  ASSERT_NO_FATAL_FAILURE(start_agent(pin_dir()));
  ASSERT_NO_FATAL_FAILURE(start_daemon({"--max-delay", "100"}));
  constexpr unsigned kBefore = 20;
  auto before = resolve_then_connect(topology_->client(), names(0, kBefore),
                                     {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_EQ(before->failures(), 0u);

  ASSERT_EQ(::kill(agent_->pid(), SIGKILL), 0);
  ASSERT_TRUE(wait_control("link_down", 1)) << daemon_->log();

  auto again = resolve_then_connect(topology_->client(), names(0, kBefore),
                                    {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->failures(), 0u)
      << again->dns_timeouts << " DNS timeouts, " << again->connect_failures << " connect failures";
  auto fresh = resolve_then_connect(
      topology_->client(), names(kBefore, 3),
      {.server = Topology::kUpstreamV6, .connect_timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(fresh->dns_timeouts + fresh->dns_errors, 0u);
  EXPECT_EQ(fresh->connect_failures, 3u);  // not plumbed: l3_guard drops the SYN

  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  auto stats = daemon_->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(total(*stats, "released_on_ack"), kBefore) << stats->dump(2);
  EXPECT_EQ(total(*stats, "released_plumbed"), kBefore);
  EXPECT_EQ(total(*stats, "released_at_max_delay"), 3u);
  EXPECT_EQ(control(*stats, "link_down"), 1u);
  // The new names' batches are kept for an agent that never comes back.
  EXPECT_GE(control(*stats, "link_batches_kept") + control(*stats, "link_batches_interrupted"), 1u);
  EXPECT_GE(control(*stats, "link_batches_waiting"), 1u);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// The agent's pins are what dnsproxyd cannot start without (exit 4, before anything is
// attached): no agent ever ran here, or it pins its maps elsewhere. A socket nobody listens on is
// not an error (the link keeps trying: agent_resilience_test.cpp).
TEST_F(AgentLinkTest, TheAgentsMissingPinsAreAClearError) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::vector<std::string> args = {kDaemon, "-i",        "cli0",   "-i",
                                         "up0",   "--policy",  policy(), "--agent",
                                         socket_, "--pin-dir", pin_dir()};
  auto never_ran = run_command(args, &topology_->node());
  ASSERT_TRUE(never_ran) << never_ran.error().message;
  EXPECT_EQ(never_ran->exit_code, 4) << never_ran->output;

  ASSERT_NO_FATAL_FAILURE(start_agent(bpffs_->path() + "/elsewhere"));
  auto no_pins = run_command(args, &topology_->node());
  ASSERT_TRUE(no_pins) << no_pins.error().message;
  EXPECT_EQ(no_pins->exit_code, 4) << no_pins->output;
  EXPECT_NE(no_pins->output.find("does dnsproxy-agent run with --pin-dir " + pin_dir()),
            std::string::npos)
      << no_pins->output;
}

}  // namespace
}  // namespace dnsproxy::test
