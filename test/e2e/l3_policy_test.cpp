// Plumb before release, end to end (issue 11): a client resolves a name through dnsproxyd --policy
// and connects to the address at once. l3_guard drops the client's traffic to any address the
// embedded agent has not plumbed for it, so a response released before its plumbing makes the
// first SYN die and the connect time out (under the kernel's 1 s SYN retransmission). Counters
// come from the daemon's stats file; what the client saw from the resolve-then-connect client.
#include <signal.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/daemon_fixture.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

const std::string kCtl = DNSPROXYCTL_PATH;
constexpr unsigned kNames = 10000;  // AAAA: 2001:db8:e::1 .. ::2710, each a new address

// Every hostN name is allowed and selected by toFQDNs.
const std::string kPolicy = frontend_policy(R"([{matchPattern: "host*.example.test"}])",
                                            R"([{matchPattern: "host*.example.test"}])");

class L3PolicyTest : public DaemonFixture {
 protected:
  void SetUp() override { policy_path_ = write_file("policy.yaml", kPolicy); }

  void build() { DaemonFixture::build({.names = kNames, .app_servers = true}); }
  std::unique_ptr<Dnsproxyd> start_daemon(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--policy", policy_path_});
    return DaemonFixture::start_daemon(extra);
  }

  std::string policy_path_;
};

// 10,000 trials, each to an address never plumbed before: every response waited for its ACK, and
// every first SYN got through. A connection to an address never resolved is dropped.
TEST_F(L3PolicyTest, ResolveThenConnectAtOnceNeverFails) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  // The order (plumbed, then released) is what this test checks, not the machine's speed: on a
  // loaded 2-core machine (ctest runs suites side by side, sanitizers) the control thread can
  // miss the default 100 ms for a few of 10,000 responses, which are then released unplumbed by
  // design. A longer max delay keeps that out; any response released without its ACK still
  // fails the test (released_at_max_delay must stay 0).
  auto daemon = start_daemon({"--max-delay", "2000"});
  ASSERT_TRUE(daemon);

  // Never resolved: l3_guard drops the SYN (and its retransmissions).
  const NetNs& client = topology_->client();
  auto unresolved = client.run({"python3", "-c",
                                "import socket; s = socket.socket(socket.AF_INET6); "
                                "s.settimeout(0.3); s.connect_ex(('2001:db8:e::ffff', 80))"});
  ASSERT_TRUE(unresolved) << unresolved.error().message;

  auto report =
      resolve_then_connect(client, host_names(0, kNames), {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->trials, kNames);
  EXPECT_EQ(report->failures(), 0u)
      << report->dns_timeouts << " DNS timeouts, " << report->dns_errors << " DNS errors, "
      << report->connect_failures << " connect failures, first: "
      << (report->failed_names.empty() ? "" : report->failed_names.front());

  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(counter(*stats, "responses_parked"), kNames) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "released_on_ack"), kNames);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 0u);
  EXPECT_EQ(counter(*stats, "released_before_plumb"), 0u);
  EXPECT_EQ(stats->at("control").value("agent_addresses_plumbed", uint64_t{0}), kNames);
  const nlohmann::json& latency = stats->at("histograms").at("mapping_to_ack_us");
  EXPECT_EQ(latency.at("count"), kNames);
  EXPECT_TRUE(latency.at("p99").is_number()) << latency.dump();  // under 1 s
  EXPECT_EQ(stats->at("histograms").at("release_on_ack_us").at("count"), kNames);
  // Every connect's SYN passed; the unresolved address's SYN did not.
  EXPECT_GE(l3_guard(*stats, "pass_allowed"), kNames);
  EXPECT_GE(l3_guard(*stats, "drop_not_plumbed"), 1u);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// The ablation that shows the test above can fail: responses released before the (slower)
// agent plumbed their address, so the client's first SYN finds no allow entry.
TEST_F(L3PolicyTest, ReleasingBeforePlumbingMakesConnectsFail) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon({"--release-before-plumb", "--agent-plumb-delay", "20"});
  ASSERT_TRUE(daemon);
  constexpr unsigned kTrials = 20;
  auto report = resolve_then_connect(
      topology_->client(), host_names(0, kTrials),
      {.server = Topology::kUpstreamV6, .connect_timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->trials, kTrials);
  EXPECT_EQ(report->dns_timeouts + report->dns_errors, 0u);
  EXPECT_GT(report->connect_failures, kTrials / 2);

  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(counter(*stats, "released_before_plumb"), kTrials) << stats->dump(2);
  EXPECT_GE(l3_guard(*stats, "drop_not_plumbed"), report->connect_failures);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// --no-l3-guard: nothing drops the client's traffic; the policy still parks and releases.
TEST_F(L3PolicyTest, WithoutTheGuardNothingIsDroppedAtL3) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon =
      start_daemon({"--no-l3-guard", "--release-before-plumb", "--agent-plumb-delay", "20"});
  ASSERT_TRUE(daemon);
  auto report = resolve_then_connect(topology_->client(), host_names(0, 20),
                                     {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->failures(), 0u);
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_TRUE(stats->at("l3_guard").is_null()) << stats->dump(2);
}

// SIGHUP reads the policy file again: a newly allowed name resolves, a bad file changes nothing
// (the stats file's agent section counts both).
TEST_F(L3PolicyTest, SighupReloadsThePolicyFileAndABadOneChangesNothing) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon({"--stats-interval", "100"});
  ASSERT_TRUE(daemon);
  const auto www = [&] {
    auto out = topology_->client().run({"kdig", std::string("@") + Topology::kUpstreamV4, "+time=2",
                                        "+retry=0", "www.example.test", "A"});
    return out ? out->output : out.error().message;
  };
  const auto policy_version = [&] {
    auto stats = daemon->stats();
    return stats ? stats->at("agent").value("policy_version", uint64_t{0}) : 0;
  };
  EXPECT_NE(www().find("status: REFUSED"), std::string::npos);
  std::ofstream(policy_path_) << frontend_policy(
      R"([{matchPattern: "host*.example.test"}, {matchName: www.example.test}])", "");
  ASSERT_EQ(::kill(daemon->pid(), SIGHUP), 0);
  for (int i = 0; i < 50 && policy_version() != 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(policy_version(), 2u);
  EXPECT_NE(www().find("status: NOERROR"), std::string::npos);

  std::ofstream(policy_path_) << "policies: [{name: broken, endpointSelector: 7}]\n";
  ASSERT_EQ(::kill(daemon->pid(), SIGHUP), 0);
  ASSERT_TRUE(daemon->report_counters());
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->at("agent").at("policy_reloads_failed"), 1u) << stats->dump(2);
  EXPECT_EQ(stats->at("agent").at("policy_version"), 2u);
  EXPECT_NE(www().find("status: NOERROR"), std::string::npos) << "the good policy stays";
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// dnsproxyctl cache / policy show / status against the policy daemon: the learned mapping and
// whether it is plumbed, the rules in force, the agent link.
TEST_F(L3PolicyTest, DnsproxyctlShowsTheCacheThePolicyAndTheAgent) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string socket = "/tmp/dnsproxyd-l3-admin-" + std::to_string(getpid()) + ".sock";
  auto daemon = start_daemon(
      {"--admin-socket", socket, "--agent-plumb-delay", "5", "--metrics", "127.0.0.1:9255"});
  ASSERT_TRUE(daemon);
  auto report = resolve_then_connect(topology_->client(), host_names(7, 1),
                                     {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->connected, 1u);
  const auto ask = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), kCtl);
    argv.insert(argv.end(), {"--json", "--socket", socket});
    auto out = run_command(argv);
    EXPECT_TRUE(out && out->exit_code == 0) << (out ? out->output : out.error().message);
    return out ? nlohmann::json::parse(out->output, nullptr, false) : nlohmann::json();
  };
  const nlohmann::json cache = ask({"cache"});
  ASSERT_EQ(cache.value("count", 0), 1) << cache.dump(2);
  EXPECT_EQ(cache.at("mappings").at(0).at("name"), "host7.example.test.");
  EXPECT_EQ(cache.at("mappings").at(0).at("ip"), "2001:db8:e::8");
  EXPECT_EQ(cache.at("mappings").at(0).at("endpoint"), 101);
  EXPECT_EQ(cache.at("mappings").at(0).at("plumbed"), true);
  const nlohmann::json policy = ask({"policy", "show"});
  ASSERT_EQ(policy.at("endpoints").size(), 1u) << policy.dump(2);
  EXPECT_EQ(policy.at("endpoints").at(0).at("to_fqdns").at(0), "host*.example.test.");
  const nlohmann::json status = ask({"status"});
  EXPECT_EQ(status.at("agent").at("kind"), "embedded") << status.dump(2);
  EXPECT_EQ(status.at("agent").at("link"), "up");
  EXPECT_EQ(status.at("l3_guard"), true);
  // The same on Prometheus: the agent, the policy version, the mapping -> ACK histogram (one
  // mapping, waited at least the 5 ms plumb delay), and promtool accepts the exposition.
  std::string body;
  {
    auto inside = ScopedNetns::enter(topology_->node());
    ASSERT_TRUE(inside) << inside.error().message;
    auto response = httplib::Client("127.0.0.1", 9255).Get("/metrics");
    ASSERT_TRUE(response) << "no answer on 127.0.0.1:9255";
    body = response->body;
  }
  EXPECT_NE(body.find("dnsproxy_agent_info{kind=\"embedded\",link=\"up\"} 1\n"), std::string::npos)
      << body;
  EXPECT_NE(body.find("dnsproxy_policy_version 1\n"), std::string::npos);
  EXPECT_NE(body.find("dnsproxy_policy_info{source=\"file\",version=\"1\"} 1\n"), std::string::npos)
      << body;
  EXPECT_NE(body.find("dnsproxy_mapping_to_ack_latency_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(body.find("dnsproxy_mapping_to_ack_latency_seconds_bucket{le=\"0.0025\"} 0\n"),
            std::string::npos);
  EXPECT_NE(body.find("dnsproxy_l3_guard_packets_total{counter=\"pass_allowed\"}"),
            std::string::npos);
  const std::string scrape = "/tmp/dnsproxyd-l3-scrape-" + std::to_string(getpid()) + ".txt";
  std::ofstream(scrape) << body;
  auto check = run_command({"sh", "-c", "promtool check metrics < " + scrape});
  std::filesystem::remove(scrape);
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_EQ(check->exit_code, 0) << check->output;

  auto text = run_command({kCtl, "cache", "--socket", socket});
  ASSERT_TRUE(text);
  EXPECT_NE(text->output.find("endpoint 101 host7.example.test. 2001:db8:e::8"), std::string::npos)
      << text->output;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace dnsproxy::test
