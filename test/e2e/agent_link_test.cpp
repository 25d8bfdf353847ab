// dnsproxyd --agent unix:PATH with the reference agent dnsproxy-agent (issue 12), end to end: the
// agent owns the pinned maps (endpoints, ipcache, the L3 allow map l3_guard enforces), dnsproxyd
// opens its pins and sends every new mapping over the gRPC stream; a response is released when
// the agent's ACK says its addresses are plumbed, so the client's connect right after the answer
// passes l3_guard. With the agent killed, names plumbed before still resolve at once and connect;
// a new name waits for --max-delay. Counters from the stats files, never from the logs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test/e2e/agent_fixture.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kNames = 500;

class AgentLinkTest : public AgentFixture {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    ASSERT_NO_FATAL_FAILURE(build_with_agent({.names = kNames + 100, .app_servers = true}));
  }
};

// Every trial to an address never plumbed before: the response waited for the agent's ACK, and
// the first SYN got through l3_guard, which reads the agent's allow map.
TEST_F(AgentLinkTest, ResolveThenConnectThroughTheExternalAgentNeverFails) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent());

  auto report = resolve_then_connect(topology_->client(), host_names(0, kNames),
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
  EXPECT_EQ(counter(*stats, "responses_parked"), kNames) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "released_on_ack"), kNames);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 0u);
  EXPECT_EQ(control(*stats, "link_up"), 1u);
  EXPECT_EQ(control(*stats, "link_down"), 0u);
  EXPECT_EQ(control(*stats, "link_batches_acked"), control(*stats, "link_batches_sent"));
  EXPECT_EQ(control(*stats, "link_batches_nacked") + control(*stats, "link_batches_interrupted"),
            0u);
  EXPECT_GE(l3_guard(*stats, "pass_allowed"), kNames);
  EXPECT_EQ(stats->at("frame_check"), "ok");

  // The agent wrote every address, and keeps its pins when it stops.
  EXPECT_EQ(stop_agent(), 0) << agent_log();
  EXPECT_EQ(agent_counters().value("agent_addresses_plumbed", 0u), kNames) << agent_log();
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/dnsproxy_fqdn_allow"));
}

// The agent killed: DNS keeps working for names plumbed before (released at once, and the
// connect passes: the allow map outlives the agent); a new name is released at the max delay
// (--on-max-delay release), counted, and its connect is dropped (nobody plumbed it).
TEST_F(AgentLinkTest, WithTheAgentKilledPlumbedNamesKeepResolvingAndNewOnesWaitTheMaxDelay) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent({"--max-delay", "100"}));
  constexpr unsigned kBefore = 20;
  auto before = resolve_then_connect(topology_->client(), host_names(0, kBefore),
                                     {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_EQ(before->failures(), 0u);

  ASSERT_NO_FATAL_FAILURE(kill_agent());
  ASSERT_TRUE(wait_stats([](const nlohmann::json& s) { return control(s, "link_down") == 1; }))
      << daemon_->log();

  auto again = resolve_then_connect(topology_->client(), host_names(0, kBefore),
                                    {.server = Topology::kUpstreamV6});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->failures(), 0u)
      << again->dns_timeouts << " DNS timeouts, " << again->connect_failures << " connect failures";
  auto fresh = resolve_then_connect(
      topology_->client(), host_names(kBefore, 3),
      {.server = Topology::kUpstreamV6, .connect_timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(fresh->dns_timeouts + fresh->dns_errors, 0u);
  EXPECT_EQ(fresh->connect_failures, 3u);  // not plumbed: l3_guard drops the SYN

  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  auto stats = daemon_->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(counter(*stats, "released_on_ack"), kBefore) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "released_plumbed"), kBefore);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 3u);
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
  const std::vector<std::string> args = {
      DNSPROXYD_PATH, "-i",     "cli0",           "-i",         "up0", "--agent", agent_target_,
      "--pin-dir",    pin_dir_, "--policy-state", policy_state_};
  auto never_ran = run_command(args, &topology_->node());
  ASSERT_TRUE(never_ran) << never_ran.error().message;
  EXPECT_EQ(never_ran->exit_code, 4) << never_ran->output;

  ASSERT_NO_FATAL_FAILURE(start_agent({}, pin_dir_ + "-elsewhere"));
  auto no_pins = run_command(args, &topology_->node());
  ASSERT_TRUE(no_pins) << no_pins.error().message;
  EXPECT_EQ(no_pins->exit_code, 4) << no_pins->output;
  EXPECT_NE(no_pins->output.find("does dnsproxy-agent run with --pin-dir " + pin_dir_),
            std::string::npos)
      << no_pins->output;
}

}  // namespace
}  // namespace dnsproxy::test
