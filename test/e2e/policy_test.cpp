// dnsproxyd --policy end to end: the real binary in the node namespace between a client and
// knotd, with a policy file. Every assertion on the daemon reads its stats file (README, "Stats
// file"); what the client saw comes from kdig.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test/support/daemon_fixture.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

const std::string kDaemon = DNSPROXYD_PATH;

// The client (192.0.2.10, 2001:db8:c::10) is endpoint 101; knotd is the kube-dns identity. Names
// host*.example.test are allowed (www.example.test is not), host1.example.test is toFQDNs-selected.
const std::string kPolicy = frontend_policy(R"([{matchPattern: "host*.example.test"}])",
                                            "[{matchName: host1.example.test}]");

class PolicyTest : public DaemonFixture {
 protected:
  std::unique_ptr<Dnsproxyd> start_daemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--policy",      write_file("policy.yaml", kPolicy),
                                     "--umem-frames", "4096",
                                     "--ring-size",   "1024"};
    args.insert(args.end(), extra.begin(), extra.end());
    return DaemonFixture::start_daemon(args);
  }
};

TEST_F(PolicyTest, AllowedNamesResolveAndDeniedNamesAreRefusedOverV4AndV6) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  const std::string allowed4 = kdig(Topology::kUpstreamV4, "host3.example.test", "A");
  EXPECT_NE(allowed4.find("status: NOERROR"), std::string::npos) << allowed4;
  EXPECT_NE(allowed4.find("203.0.113.4"), std::string::npos) << allowed4;
  const std::string allowed6 = kdig(Topology::kUpstreamV6, "host3.example.test", "AAAA");
  EXPECT_NE(allowed6.find("2001:db8:e::4"), std::string::npos) << allowed6;
  for (const char* server : {Topology::kUpstreamV4, Topology::kUpstreamV6}) {
    const std::string denied = kdig(server, "www.example.test", "A");
    EXPECT_NE(denied.find("status: REFUSED"), std::string::npos) << denied;
  }
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->at("mode"), "policy");
  EXPECT_EQ(counter(*stats, "allowed"), 2u) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "denied_name_not_allowed"), 2u);
  EXPECT_EQ(counter(*stats, "replied"), 2u);
  EXPECT_EQ(counter(*stats, "responses"), 2u);
  EXPECT_EQ(counter(*stats, "released_no_selector"), 2u);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

TEST_F(PolicyTest, DeniedNamesGetNxdomainWhenConfigured) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon({"--deny-rcode", "nxdomain"});
  ASSERT_TRUE(daemon);
  const std::string denied = kdig(Topology::kUpstreamV4, "www.example.test", "A");
  EXPECT_NE(denied.find("status: NXDOMAIN"), std::string::npos) << denied;
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(counter(*stats, "denied_name_not_allowed"), 1u);
}

// DNS over TCP is not policed yet, so the client (an endpoint under DNS rules, in
// dns_steer_sources from the policy) gets nothing over TCP by default: dns_steer drops it in XDP,
// even for an allowed name. --tcp-dns pass lets it through unchecked, a denied name included.
TEST_F(PolicyTest, TcpDnsOfAnEndpointUnderDnsRulesIsDroppedUnlessPassed) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const auto kdig_tcp = [&](const std::string& server, const char* name) {
    auto out = topology_->client().run(
        {"kdig", "+tcp", "+short", "+time=1", "+retry=0", "@" + server, name, "A"});
    return out ? out->output : out.error().message;
  };
  {
    auto daemon = start_daemon();
    ASSERT_TRUE(daemon);
    for (const char* server : {Topology::kUpstreamV4, Topology::kUpstreamV6})
      EXPECT_EQ(kdig_tcp(server, "host3.example.test").find("203.0.113.4"), std::string::npos)
          << server;
    // UDP DNS of the same endpoint is still served.
    EXPECT_NE(kdig(Topology::kUpstreamV4, "host3.example.test", "A").find("203.0.113.4"),
              std::string::npos);
    ASSERT_EQ(daemon->stop(), 0) << daemon->log();
    auto stats = daemon->stats();
    ASSERT_TRUE(stats) << stats.error().message;
    const auto& steer = stats->at("dns_steer");
    // At least each family's SYN (kdig may retransmit it within its timeout).
    EXPECT_GE(steer.at("drop_tcp_dns"), 2u) << steer.dump(2);
    EXPECT_EQ(steer.at("pass_tcp_dns"), 0u) << steer.dump(2);
    EXPECT_EQ(counter(*stats, "allowed"), 1u) << "the UDP query only";
  }
  auto daemon = start_daemon({"--tcp-dns", "pass"});
  ASSERT_TRUE(daemon);
  EXPECT_EQ(kdig_tcp(Topology::kUpstreamV4, "www.example.test"), "203.0.113.80\n");
  EXPECT_EQ(kdig_tcp(Topology::kUpstreamV6, "www.example.test"), "203.0.113.80\n");
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->at("dns_steer").at("drop_tcp_dns"), 0u);
  EXPECT_GE(stats->at("dns_steer").at("pass_tcp_dns"), 2u) << stats->at("dns_steer").dump(2);
  EXPECT_EQ(counter(*stats, "denied_name_not_allowed"), 0u) << "TCP is not seen";
}

// A response whose new address a toFQDNs selector selects is parked until the embedded agent
// wrote the address into the allow map and ACKed, then released; the next response for the same
// name is released at once (plumbed already), with no second round trip.
TEST_F(PolicyTest, ASelectedResponseIsReleasedByTheAgentsAckThenAtOnce) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon({"--max-delay", "5000"});
  ASSERT_TRUE(daemon);
  for (int i = 0; i < 2; ++i) {
    const std::string answer = kdig(Topology::kUpstreamV4, "host1.example.test", "A");
    EXPECT_NE(answer.find("203.0.113.2"), std::string::npos) << answer;
  }
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(counter(*stats, "responses_parked"), 1u) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "released_on_ack"), 1u);
  EXPECT_EQ(counter(*stats, "released_plumbed"), 1u);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 0u);
  EXPECT_EQ(stats->at("control").value("agent_addresses_plumbed", uint64_t{0}), 1u);
  EXPECT_EQ(stats->at("control").value("batches_acked", uint64_t{0}), 1u);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// An agent slower than the max delay (--agent-plumb-delay): the parked response goes out at the
// max delay (or becomes SERVFAIL), counted; its mapping reached the control thread.
TEST_F(PolicyTest, ASelectedResponseWaitsForPlumbingUntilTheMaxDelay) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  for (const char* action : {"release", "servfail"}) {
    SCOPED_TRACE(action);
    auto daemon = start_daemon(
        {"--max-delay", "50", "--on-max-delay", action, "--agent-plumb-delay", "1000"});
    ASSERT_TRUE(daemon);
    const std::string answer = kdig(Topology::kUpstreamV4, "host1.example.test", "A");
    if (std::string(action) == "release")
      EXPECT_NE(answer.find("203.0.113.2"), std::string::npos) << answer;
    else
      EXPECT_NE(answer.find("status: SERVFAIL"), std::string::npos) << answer;
    ASSERT_EQ(daemon->stop(), 0) << daemon->log();
    auto stats = daemon->stats();
    ASSERT_TRUE(stats);
    EXPECT_EQ(counter(*stats, "responses_parked"), 1u) << stats->dump(2);
    EXPECT_EQ(counter(*stats, std::string(action) == "release" ? "released_at_max_delay"
                                                               : "servfail_at_max_delay"),
              1u);
    EXPECT_EQ(stats->at("control").value("notices", uint64_t{0}), 1u);
    EXPECT_EQ(stats->at("frame_check"), "ok");
  }
}

// A response to a query the proxy never forwarded (sent from the upstream side, from port 53 of
// another upstream address) never reaches the client.
TEST_F(PolicyTest, AnUnsolicitedResponseIsDropped) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  auto daemon = start_daemon();
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(topology_->upstream().exec({"ip", "addr", "add", "198.51.100.54/24", "dev", "eth0"}));
  // Response "host1.example.test A 203.0.113.2" with ID 0x1234, to the client's port 40000.
  const char* script = R"(import socket, struct
name = b"".join(bytes([len(l)]) + l for l in b"host1.example.test".split(b".")) + b"\0"
msg = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + name + struct.pack("!HH", 1, 1)
msg += struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + bytes([203, 0, 113, 2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.54", 53))
for _ in range(3): s.sendto(msg, ("192.0.2.10", 40000))
)";
  ASSERT_TRUE(topology_->upstream().exec({"python3", "-c", script}));
  // A kdig afterwards proves the path works and orders the stats after the forged packets.
  EXPECT_NE(kdig(Topology::kUpstreamV4, "host3.example.test", "A").find("203.0.113.4"),
            std::string::npos);
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(drop(*stats, "response_unmatched"), 3u) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "responses"), 1u);
}

TEST_F(PolicyTest, BadPolicyFlagsExitTwo) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  for (std::vector<std::string> args :
       {std::vector<std::string>{"-i", "lo", "--policy", "/nonexistent.yaml"},
        std::vector<std::string>{"-i", "lo", "--policy", "x.yaml", "--forward-all"},
        std::vector<std::string>{"-i", "lo"},
        std::vector<std::string>{"-i", "lo", "--forward-all", "--deny-rcode", "servfail"},
        std::vector<std::string>{"-i", "lo", "--forward-all", "--on-max-delay", "drop"}}) {
    args.insert(args.begin(), kDaemon);
    auto out = run_command(args);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->exit_code, 2) << out->output;
  }
}

}  // namespace
}  // namespace dnsproxy::test
