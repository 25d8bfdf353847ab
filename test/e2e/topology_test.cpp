// The test topology on its own: the node forwards DNS in the kernel (no dnsproxyd), which is
// also the benchmark's baseline path.
#include "test/support/topology.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dnsproxy::test
