// The test topology on its own: the node forwards DNS in the kernel (no dnsproxyd), which is
// also the benchmark's baseline path.
#include "test/support/topology.h"

#include <gtest/gtest.h>

#include "test/support/app_servers.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

TEST(TopologyTest, ClientResolvesThroughTheKernelForwardingNode) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto topology = Topology::create();
  ASSERT_TRUE(topology) << topology.error().message;
  auto knotd = Knotd::start((*topology)->upstream(), 10);
  ASSERT_TRUE(knotd) << knotd.error().message;

  auto v4 = (*topology)->client().exec(
      {"kdig", "@198.51.100.53", "+short", "+time=2", "host3.example.test", "A"});
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(*v4, "203.0.113.4\n");
  auto v6 = (*topology)->client().exec(
      {"kdig", "@2001:db8:5::53", "+short", "+time=2", "host3.example.test", "AAAA"});
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(*v6, "2001:db8:e::4\n");
}

// The resolve-then-connect client against the kernel-forwarding node: every trial connects to a
// distinct address at once; with the servers' range blackholed on the node, every trial fails
// as a connect failure (so the count is a real measurement, not a constant).
TEST(TopologyTest, ResolveThenConnectReachesEveryResolvedAddress) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto topology = Topology::create();
  ASSERT_TRUE(topology) << topology.error().message;
  auto knotd = Knotd::start((*topology)->upstream(), 300);
  ASSERT_TRUE(knotd) << knotd.error().message;
  auto servers = AppServers::start(**topology);
  ASSERT_TRUE(servers) << servers.error().message;
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) names.push_back("host" + std::to_string(i) + ".example.test");

  for (const char* server : {Topology::kUpstreamV6, Topology::kUpstreamV4}) {
    auto report = resolve_then_connect((*topology)->client(), names, {.server = server});
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->trials, 300u);
    EXPECT_EQ(report->connected, 300u) << report->failed_names.front();
    EXPECT_EQ(report->resolve_to_connect_ms.size(), 300u);
  }
  EXPECT_EQ((*servers)->wait_accepted(600, std::chrono::seconds(2)), 600u);

  auto blackholed =
      (*topology)->node().ip({"-6", "route", "replace", "blackhole", "2001:db8:e::/64"});
  ASSERT_TRUE(blackholed) << blackholed.error().message;
  const std::vector<std::string> few(names.begin(), names.begin() + 3);
  auto report = resolve_then_connect(
      (*topology)->client(), few,
      {.server = Topology::kUpstreamV4, .connect_timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->connect_failures, 3u);
  EXPECT_EQ(report->failures(), 3u);
  EXPECT_EQ(report->failed_names, few);
}

}  // namespace
}  // namespace dnsproxy::test
