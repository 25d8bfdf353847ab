// The Policy stream end to end (issue 12): dnsproxyd --agent takes its DNS policy from the
// reference agent dnsproxy-agent (which reads the fixture's policy file), ACKs or NACKs each
// update, keeps the last good policy when an update is bad, resyncs only the difference on a new
// stream, and persists what it accepted (--policy-state) so that a restart without the agent
// serves it. Real processes, kdig for single answers, counters from the stats files.
// Under load (dnsperf at a fixed rate from the client namespace, losses from its report):
//   - the NACKed update is pushed and refused while dnsperf queries names the old policy allows:
//     none lost, every answer NOERROR;
//   - the restart without the agent: the names plumbed before it, at a fixed rate right after
//     it: none lost, all NOERROR, none parked or slow (the daemon's counters, dnsperf's max
//     latency).
// Every query is AAAA, as in agent_resilience_test.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "test/e2e/agent_fixture.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

using namespace std::chrono_literals;

const std::string kCtl = DNSPROXYCTL_PATH;
constexpr unsigned kNames = 20;  // host0 .. host19, every one allowed by the fixture's policy
// Long enough that a parked response is told apart from one released at once, whatever the load.
constexpr int kMaxDelayMs = 300;

class AgentPolicyTest : public AgentFixture {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    ASSERT_NO_FATAL_FAILURE(build_with_agent({.names = kNames}));
  }
  // The rcode kdig reports for `name` (AAAA, through the proxy to knotd).
  std::string rcode(const std::string& name) {
    const std::string answer = kdig(Topology::kUpstreamV6, name, "AAAA");
    const auto at = answer.find("status: ");
    if (at == std::string::npos) return "no answer: " + answer;
    return answer.substr(at + 8, answer.find_first_of(",;\n", at) - at - 8);
  }
  // The agent's policy file again, with www.example.test allowed beside the hostN names; SIGHUP.
  void allow_www_and_reload() {
    (void)write_file(
        "policy.yaml",
        frontend_policy(
            R"([{matchPattern: "host*.example.test"}, {matchName: "www.example.test"}])",
            R"([{matchPattern: "host*.example.test"}])"));
    ASSERT_EQ(::kill(agent_->pid(), SIGHUP), 0);
  }
  bool wait_control(const char* name, uint64_t want) {
    return wait_stats([&](const nlohmann::json& s) { return control(s, name) == want; });
  }
};

// A NACKed update: the agent's next update carries an invalid resource (--nack-next-update); the
// proxy refuses it whole, says why in its stats, and the old policy keeps deciding: pushed and
// NACKed under dnsperf at a fixed rate for names the old policy allows, none lost and every
// answer NOERROR; a name only the new policy allows stays REFUSED. The same change without the
// fault is then accepted, so the refusal was the bad resource's.
TEST_F(AgentPolicyTest, ANackedUpdateLeavesTheOldPolicyDeciding) {
  ASSERT_NO_FATAL_FAILURE(start_agent({"--nack-next-update"}));
  const std::string admin = "/tmp/dnsproxyd-policy-admin-" + std::to_string(::getpid()) + ".sock";
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent({"--admin-socket", admin}));
  EXPECT_EQ(rcode("host1.example.test"), "NOERROR");
  EXPECT_EQ(rcode("www.example.test"), "REFUSED");
  const std::string version = policy_field(stats(), "version");

  // 400 q/s for 2 s; the update goes out once the load is flowing (its names plumbed and
  // released at once) and is NACKed while it still runs.
  auto load = resolve_at_in_background(queries(0, kNames), 400, 2);
  ASSERT_TRUE(load);
  ASSERT_TRUE(wait_stats(
      [](const nlohmann::json& s) { return counter(s, "released_plumbed") >= 2 * kNames; }, 2s))
      << daemon_->log();
  ASSERT_NO_FATAL_FAILURE(allow_www_and_reload());
  ASSERT_TRUE(wait_control("policy_updates_nacked", 1)) << daemon_->log() << agent_log();
  EXPECT_TRUE(load->process.running()) << "the NACK must fall within the load";
  EXPECT_EQ(rcode("www.example.test"), "REFUSED") << "the bad update must not be in force";
  const DnsperfReport report = load->finish();
  EXPECT_GE(report.sent, 720u) << report.output;
  EXPECT_EQ(report.lost, 0u) << report.output;
  EXPECT_EQ(report.completed, report.sent) << report.output;
  EXPECT_EQ(report.rcode("NOERROR"), report.sent) << report.output;
  EXPECT_EQ(rcode("www.example.test"), "REFUSED");
  EXPECT_EQ(rcode("host2.example.test"), "NOERROR");
  const nlohmann::json refused = stats();
  EXPECT_EQ(control(refused, "policy_updates_nacked"), 1u) << refused.dump(2);
  EXPECT_EQ(control(refused, "policy_updates_acked"), 1u) << refused.dump(2);
  EXPECT_EQ(policy_field(refused, "version"), version);
  EXPECT_NE(policy_field(refused, "last_nack").find("rule 2: port 70000 is not 0..65535"),
            std::string::npos)
      << refused.dump(2);
  // The operator sees the same in `dnsproxyctl status`.
  auto status = run_command({kCtl, "status", "--json", "--socket", admin});
  ASSERT_TRUE(status && status->exit_code == 0) << (status ? status->output : "");
  const nlohmann::json shown = nlohmann::json::parse(status->output, nullptr, false);
  EXPECT_EQ(shown.at("policy").value("source", ""), "agent") << status->output;
  EXPECT_EQ(shown.at("policy").value("last_nack", ""), policy_field(refused, "last_nack"));

  // The fault is spent: the same change again (another SIGHUP) is good and taken.
  ASSERT_EQ(::kill(agent_->pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_control("policy_updates_acked", 2)) << daemon_->log() << agent_log();
  EXPECT_NE(rcode("www.example.test"), "REFUSED");
  EXPECT_NE(policy_field(stats(), "version"), version);

  // A policy file the agent cannot read: its SIGHUP changes nothing (SIGHUP is dequeued before
  // the SIGTERM below, so it is handled first).
  (void)write_file("policy.yaml", "endpoints: [not valid");
  ASSERT_EQ(::kill(agent_->pid(), SIGHUP), 0);
  EXPECT_EQ(stop_agent(), 0) << agent_log();
  const nlohmann::json counters = agent_counters();
  EXPECT_EQ(counters.value("policy_reloads_failed", 0u), 1u) << counters.dump(2);
  EXPECT_EQ(counters.value("policy_nacks", 0u), 1u);
  EXPECT_EQ(counters.value("policy_acks", 0u), 2u);
  EXPECT_EQ(control(stats(), "policy_updates_acked"), 2u);
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
}

// The agent restarted with the same policy: the proxy's first request on the new stream names the
// versions it holds, so the agent's first response is empty (and ACKed); nothing is resent.
TEST_F(AgentPolicyTest, AReconnectResendsOnlyTheDifference) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent());
  const nlohmann::json first = stats();
  const uint64_t received = control(first, "policy_resources_received");
  EXPECT_EQ(received, 4u) << first.dump(2);  // settings, identity/101, dns/101, fqdn/101
  EXPECT_EQ(policy_field(first, "resources"), "4");

  ASSERT_NO_FATAL_FAILURE(kill_agent());
  ASSERT_NO_FATAL_FAILURE(start_agent());
  ASSERT_TRUE(wait_control("policy_updates_acked", 2)) << daemon_->log() << agent_log();
  const nlohmann::json again = stats();
  EXPECT_EQ(control(again, "link_up"), 2u);
  EXPECT_EQ(control(again, "policy_resources_received"), received) << again.dump(2);
  EXPECT_EQ(control(again, "policy_resources_removed"), 0u);
  EXPECT_EQ(control(again, "policy_updates_nacked"), 0u);
  EXPECT_EQ(rcode("host3.example.test"), "NOERROR");
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
  EXPECT_EQ(stop_agent(), 0) << agent_log();
  const nlohmann::json counters = agent_counters();
  EXPECT_EQ(counters.value("policy_updates_sent", 0u), 1u) << counters.dump(2);
  EXPECT_EQ(counters.value("policy_resources_sent", 99u), 0u) << counters.dump(2);
}

// dnsproxyd restarted while the agent is down: the policy it persisted and the agent's pinned
// maps are in force at once (policy.source "persisted"): right after the restart, the names
// plumbed before at a fixed rate resolve with none lost and none waiting for the agent; a name
// the policy denies is refused.
TEST_F(AgentPolicyTest, ARestartWithoutTheAgentServesThePersistedPolicy) {
  ASSERT_NO_FATAL_FAILURE(start_agent());
  const std::vector<std::string> max_delay = {"--max-delay", std::to_string(kMaxDelayMs)};
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent(max_delay));
  const DnsperfReport first = resolve_once(queries(0, kNames));
  ASSERT_EQ(first.completed, kNames) << first.output;
  ASSERT_TRUE(wait_stats([](const nlohmann::json& s) {
    return counter(s, "released_on_ack") == kNames && control(s, "policy_state_written") == 1;
  })) << daemon_->log();
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  ASSERT_NO_FATAL_FAILURE(kill_agent());

  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent(max_delay, false));
  const nlohmann::json start = stats();
  EXPECT_EQ(policy_field(start, "source"), "persisted") << start.dump(2);
  EXPECT_EQ(policy_field(start, "resources"), "4");
  EXPECT_EQ(control(start, "policy_state_corrupt"), 0u);
  EXPECT_EQ(control(start, "inherited_plumbed"), kNames) << "one (endpoint, AAAA) pair per name";
  ASSERT_NO_FATAL_FAILURE(expect_resolved_at_once(queries(0, kNames), 500, 2, kMaxDelayMs));
  EXPECT_EQ(rcode("www.example.test"), "REFUSED");
  const nlohmann::json served = stats();
  EXPECT_EQ(control(served, "link_up"), 0u) << "served without the agent";
  EXPECT_EQ(policy_field(served, "source"), "persisted");
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
}

// A state file that is not one: counted, and the daemon starts with the empty policy (every query
// from the endpoint refused, policy.source "none") until the agent sends its policy, which is
// then written over the bad file.
TEST_F(AgentPolicyTest, ACorruptStateFileMeansTheEmptyPolicyUntilTheAgentAnswers) {
  ASSERT_NO_FATAL_FAILURE(start_agent());  // its pins, which dnsproxyd needs
  ASSERT_EQ(stop_agent(), 0) << agent_log();
  {
    std::ofstream out(policy_state_, std::ios::binary);
    out << "\xff\xff\xff not a policy state";
  }
  ASSERT_NO_FATAL_FAILURE(start_daemon_with_agent({}, false));
  const nlohmann::json start = stats();
  EXPECT_EQ(policy_field(start, "source"), "none") << start.dump(2);
  EXPECT_EQ(control(start, "policy_state_corrupt"), 1u);
  EXPECT_EQ(rcode("host5.example.test"), "REFUSED");

  ASSERT_NO_FATAL_FAILURE(start_agent());
  ASSERT_TRUE(wait_stats([](const nlohmann::json& s) {
    return policy_field(s, "source") == "agent" && control(s, "policy_state_written") == 1;
  })) << daemon_->log();
  EXPECT_EQ(rcode("host5.example.test"), "NOERROR");
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
}

}  // namespace
}  // namespace dnsproxy::test
