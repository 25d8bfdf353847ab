// The netns helpers themselves: namespaces, veth pairs, commands and the per-thread setns guard,
// each checked against what the kernel reports, including cleanup after a failure.
#include "test/support/netns.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/stat.h>

#include <string>

#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

bool netns_exists(const std::string& name) {
  struct stat st {};
  return stat(("/run/netns/" + name).c_str(), &st) == 0;
}

TEST(NetNsTest, CreatesUniqueNamespacesAndDeletesThemOnDestruction) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  std::string first_name;
  {
    auto first = NetNs::create("support");
    ASSERT_TRUE(first) << first.error().message;
    auto second = NetNs::create("support");
    ASSERT_TRUE(second) << second.error().message;
    first_name = first->name();
    EXPECT_NE(first->name(), second->name());
    EXPECT_NE(first->name().find(std::to_string(getpid())), std::string::npos);
    EXPECT_TRUE(netns_exists(first->name()));
    auto lo = first->ip({"-o", "link", "show", "dev", "lo"});
    ASSERT_TRUE(lo) << lo.error().message;
    EXPECT_NE(lo->find("UP"), std::string::npos) << *lo;
  }
  EXPECT_FALSE(netns_exists(first_name));
}

TEST(NetNsTest, CommandFailuresCarryTheCommandAndItsOutput) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto ns = NetNs::create("support");
  ASSERT_TRUE(ns) << ns.error().message;

  auto run = ns->run({"ip", "link", "show", "dev", "nosuchdev"});
  ASSERT_TRUE(run) << run.error().message;  // started fine; the non-zero exit is data
  EXPECT_NE(run->exit_code, 0);
  EXPECT_NE(run->output.find("nosuchdev"), std::string::npos) << run->output;

  auto exec = ns->exec({"ip", "link", "show", "dev", "nosuchdev"});
  ASSERT_FALSE(exec);
  EXPECT_NE(exec.error().message.find("ip link show dev nosuchdev"), std::string::npos);
  EXPECT_NE(exec.error().message.find(ns->name()), std::string::npos);

  auto missing = ns->run({"/nonexistent/binary"});
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_EQ(missing->exit_code, 127);
}

TEST(VethPairTest, ConnectsTwoNamespacesOverIPv4AndIPv6) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto client = NetNs::create("client");
  ASSERT_TRUE(client) << client.error().message;
  auto node = NetNs::create("node");
  ASSERT_TRUE(node) << node.error().message;
  auto veth = VethPair::create({.name_a = "eth0",
                                .ns_a = &*client,
                                .name_b = "cli0",
                                .ns_b = &*node,
                                .mac_a = "02:00:00:00:00:0a",
                                .mac_b = "02:00:00:00:00:01"});
  ASSERT_TRUE(veth) << veth.error().message;
  EXPECT_EQ(*client->ifindex("eth0"), veth->ifindex_a());
  EXPECT_EQ(*node->ifindex("cli0"), veth->ifindex_b());
  EXPECT_EQ(*client->mac("eth0"), "02:00:00:00:00:0a");
  EXPECT_EQ(*node->mac("cli0"), "02:00:00:00:00:01");

  ASSERT_TRUE(client->add_address("eth0", "192.0.2.10/24"));
  ASSERT_TRUE(node->add_address("cli0", "192.0.2.1/24"));
  ASSERT_TRUE(client->add_address("eth0", "2001:db8:c::10/64"));
  ASSERT_TRUE(node->add_address("cli0", "2001:db8:c::1/64"));
  auto ping4 = client->exec({"ping", "-c", "1", "-W", "2", "192.0.2.1"});
  EXPECT_TRUE(ping4) << ping4.error().message;
  auto ping6 = client->exec({"ping", "-6", "-c", "1", "-W", "2", "2001:db8:c::1"});
  EXPECT_TRUE(ping6) << ping6.error().message;
}

TEST(VethPairTest, CreatesMultiQueuePairs) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto a = NetNs::create("mq");
  ASSERT_TRUE(a) << a.error().message;
  auto b = NetNs::create("mq");
  ASSERT_TRUE(b) << b.error().message;
  auto veth =
      VethPair::create({.name_a = "mq0", .ns_a = &*a, .name_b = "mq1", .ns_b = &*b, .queues = 4});
  ASSERT_TRUE(veth) << veth.error().message;
  for (auto [ns, name] : {std::pair{&*a, "mq0"}, std::pair{&*b, "mq1"}}) {
    auto details = ns->ip({"-d", "link", "show", "dev", name});
    ASSERT_TRUE(details) << details.error().message;
    EXPECT_NE(details->find("numtxqueues 4 numrxqueues 4"), std::string::npos) << *details;
  }
}

TEST(VethPairTest, DestructionDeletesTheLinkAndFailuresLeaveNothing) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto a = NetNs::create("veth");
  ASSERT_TRUE(a) << a.error().message;
  auto b = NetNs::create("veth");
  ASSERT_TRUE(b) << b.error().message;
  {
    auto veth = VethPair::create({.name_a = "x0", .ns_a = &*a, .name_b = "x1", .ns_b = &*b});
    ASSERT_TRUE(veth) << veth.error().message;
    // Same name again in ns_a: refused by the kernel, reported with the command.
    auto again = VethPair::create({.name_a = "x0", .ns_a = &*a, .name_b = "y1", .ns_b = &*b});
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("link add x0"), std::string::npos)
        << again.error().message;
  }
  EXPECT_FALSE(a->ifindex("x0"));
  EXPECT_FALSE(b->ifindex("x1"));
  EXPECT_FALSE(b->ifindex("y1"));

  auto too_long =
      VethPair::create({.name_a = "a-much-too-long-name", .ns_a = &*a, .name_b = "z", .ns_b = &*b});
  EXPECT_FALSE(too_long);
}

TEST(VethPairTest, OutlivingItsNamespaceObjectsIsSafe) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  std::optional<VethPair> veth;
  {
    auto a = NetNs::create("order");
    ASSERT_TRUE(a) << a.error().message;
    auto b = NetNs::create("order");
    ASSERT_TRUE(b) << b.error().message;
    auto created = VethPair::create({.name_a = "o0", .ns_a = &*a, .name_b = "o1", .ns_b = &*b});
    ASSERT_TRUE(created) << created.error().message;
    veth.emplace(std::move(*created));
  }
  veth.reset();  // namespaces already deleted by name: still no crash, no leak
}

TEST(ScopedNetnsTest, MovesOnlyThisThreadAndReturns) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto ns = NetNs::create("scoped");
  ASSERT_TRUE(ns) << ns.error().message;
  auto peer = NetNs::create("scoped");
  ASSERT_TRUE(peer) << peer.error().message;
  auto veth =
      VethPair::create({.name_a = "inside0", .ns_a = &*ns, .name_b = "peer0", .ns_b = &*peer});
  ASSERT_TRUE(veth) << veth.error().message;

  EXPECT_EQ(if_nametoindex("inside0"), 0u);
  {
    auto inside = ScopedNetns::enter(*ns);
    ASSERT_TRUE(inside) << inside.error().message;
    EXPECT_EQ(if_nametoindex("inside0"), veth->ifindex_a());
    // Nested entry (as NetNs::ifindex does) returns to the outer namespace, not the root.
    EXPECT_EQ(*peer->ifindex("peer0"), veth->ifindex_b());
    EXPECT_EQ(if_nametoindex("inside0"), veth->ifindex_a());
  }
  EXPECT_EQ(if_nametoindex("inside0"), 0u);
}

TEST(BackgroundProcessTest, RunsInsideTheNamespaceAndStopsOnDestruction) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto ns = NetNs::create("bg");
  ASSERT_TRUE(ns) << ns.error().message;
  const std::string log = testing::TempDir() + "netns_bg_" + std::to_string(getpid()) + ".log";

  auto sleeper = BackgroundProcess::start({"sleep", "60"}, &*ns, log);
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  EXPECT_TRUE(sleeper->running());
  EXPECT_EQ(sleeper->stop(), 128 + SIGTERM);
  EXPECT_FALSE(sleeper->running());

  auto lister = BackgroundProcess::start({"ip", "-o", "link", "show"}, &*ns, log);
  ASSERT_TRUE(lister) << lister.error().message;
  while (lister->running()) usleep(10'000);
  EXPECT_EQ(lister->stop(), 0);
  std::FILE* file = std::fopen(log.c_str(), "r");
  ASSERT_NE(file, nullptr);
  char line[512] = {};
  ASSERT_NE(std::fgets(line, sizeof(line), file), nullptr);
  std::fclose(file);
  EXPECT_NE(std::string(line).find("lo:"), std::string::npos) << line;  // only lo in there
  std::remove(log.c_str());
}

}  // namespace
}  // namespace dnsproxy::test
