#include "policy/fqdn_cache.h"

#include <gtest/gtest.h>

#include "test/policy/test_names.h"

namespace dnsproxy::policy {
namespace {

using std::chrono::seconds;
using test::wire;

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

const Clock::time_point t0{seconds(1000)};

TEST(FqdnCacheTest, LearnReturnsWhatIsNotPlumbedYet) {
  FqdnCache cache;
  const std::vector<IpAddress> ips = {ip("203.0.113.1"), ip("2001:db8:e::1"), ip("203.0.113.1")};
  auto unplumbed = cache.learn(101, wire("api.example.com"), ips, seconds(60), t0);
  EXPECT_EQ(unplumbed.size(), 2u);
  EXPECT_EQ(cache.mapping_count(), 2u);
  cache.mark_plumbed(101, ip("203.0.113.1"));
  EXPECT_TRUE(cache.is_plumbed(101, ip("203.0.113.1"), t0));
  EXPECT_FALSE(cache.is_plumbed(102, ip("203.0.113.1"), t0));  // per endpoint
  unplumbed = cache.learn(101, wire("api.example.com"), ips, seconds(60), t0 + seconds(1));
  ASSERT_EQ(unplumbed.size(), 1u);
  EXPECT_EQ(unplumbed[0], ip("2001:db8:e::1"));
  EXPECT_EQ(cache.lookup(101, wire("api.example.com"), t0).size(), 2u);
  EXPECT_TRUE(cache.lookup(102, wire("api.example.com"), t0).empty());
}

TEST(FqdnCacheTest, ExpiryDropsMappingsAndPlumbing) {
  FqdnCache cache;
  const std::vector<IpAddress> one = {ip("203.0.113.1")};
  (void)cache.learn(101, wire("a.example"), one, seconds(10), t0);
  (void)cache.learn(101, wire("b.example"), one, seconds(30), t0);
  cache.mark_plumbed(101, one[0]);
  cache.expire(t0 + seconds(10));
  EXPECT_TRUE(cache.lookup(101, wire("a.example"), t0).empty());
  EXPECT_TRUE(cache.is_plumbed(101, one[0], t0 + seconds(20)));  // b.example still maps it
  cache.expire(t0 + seconds(30));
  EXPECT_EQ(cache.mapping_count(), 0u);
  EXPECT_FALSE(cache.is_plumbed(101, one[0], t0));
  // Relearned after expiry: needs plumbing again.
  EXPECT_EQ(cache.learn(101, wire("a.example"), one, seconds(10), t0 + seconds(40)).size(), 1u);
}

TEST(FqdnCacheTest, MinimumTtlRaisesShortTtls) {
  FqdnCache cache({.min_ttl = seconds(300)});
  const std::vector<IpAddress> one = {ip("203.0.113.1")};
  (void)cache.learn(101, wire("a.example"), one, seconds(0), t0);
  cache.expire(t0 + seconds(299));
  EXPECT_EQ(cache.mapping_count(), 1u);
  cache.expire(t0 + seconds(300));
  EXPECT_EQ(cache.mapping_count(), 0u);
}

TEST(FqdnCacheTest, CapPerNameEvictsTheEarliestExpiring) {
  FqdnCache cache({.max_ips_per_name = 2});
  (void)cache.learn(101, wire("a.example"), std::vector{ip("203.0.113.1")}, seconds(100), t0);
  (void)cache.learn(101, wire("a.example"), std::vector{ip("203.0.113.2")}, seconds(10), t0);
  (void)cache.learn(101, wire("a.example"), std::vector{ip("203.0.113.3")}, seconds(50), t0);
  auto ips = cache.lookup(101, wire("a.example"), t0);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0], ip("203.0.113.1"));
  EXPECT_EQ(ips[1], ip("203.0.113.3"));
}

TEST(FqdnCacheTest, TotalCapEvictsAcrossNames) {
  FqdnCache cache({.max_mappings = 3});
  for (int i = 0; i < 5; ++i) {
    const std::string name = "n" + std::to_string(i) + ".example";
    (void)cache.learn(101, wire(name), std::vector{ip("203.0.113.1")}, seconds(10 + i), t0);
  }
  EXPECT_EQ(cache.mapping_count(), 3u);
  EXPECT_TRUE(cache.lookup(101, wire("n0.example"), t0).empty());
  EXPECT_EQ(cache.lookup(101, wire("n4.example"), t0).size(), 1u);
}

TEST(FqdnCacheTest, PlumbedSetIsWhatWorkersRead) {
  FqdnCache cache;
  const std::vector<IpAddress> ips = {ip("203.0.113.1"), ip("203.0.113.2")};
  (void)cache.learn(101, wire("a.example"), ips, seconds(60), t0);
  EXPECT_FALSE(cache.plumbed_changed()) << "learning alone plumbs nothing";
  cache.mark_plumbed(101, ips[0]);
  EXPECT_TRUE(cache.plumbed_changed());
  const PlumbedSet set = cache.plumbed_set();
  EXPECT_FALSE(cache.plumbed_changed());
  EXPECT_EQ(set.size(), 1u);
  EXPECT_TRUE(set.is_plumbed(101, ips[0], t0 + seconds(59)));
  EXPECT_FALSE(set.is_plumbed(101, ips[0], t0 + seconds(60)));
  EXPECT_FALSE(set.is_plumbed(101, ips[1], t0));
}

// The set is kept up to date change by change: a later TTL extends a plumbed pair, expiry
// removes it, and a set published before keeps what it showed (workers may still read it).
TEST(FqdnCacheTest, PlumbedSetFollowsEveryChangeAndOldSetsStayAsTheyWere) {
  FqdnCache cache;
  const IpAddress a = ip("203.0.113.1");
  (void)cache.learn(101, wire("a.example"), std::vector{a}, seconds(60), t0);
  cache.mark_plumbed(101, a);
  const PlumbedSet first = cache.plumbed_set();
  (void)cache.learn(101, wire("b.example"), std::vector{a}, seconds(120), t0);
  EXPECT_TRUE(cache.plumbed_changed()) << "a longer TTL for a plumbed pair";
  const PlumbedSet extended = cache.plumbed_set();
  EXPECT_TRUE(extended.is_plumbed(101, a, t0 + seconds(119)));
  EXPECT_FALSE(first.is_plumbed(101, a, t0 + seconds(61))) << "the old set is unchanged";
  cache.expire(t0 + seconds(121));
  EXPECT_EQ(cache.plumbed_set().size(), 0u);
  EXPECT_EQ(extended.size(), 1u);
  EXPECT_TRUE(first.is_plumbed(101, a, t0 + seconds(59)));
}

// New bounds from an agent: the mapping bound evicts at once, soonest expiry first, and what it
// evicts leaves the PlumbedSet.
TEST(FqdnCacheTest, ALowerMappingBoundEvictsAtOnce) {
  FqdnCache cache;
  for (int i = 0; i < 4; ++i) {
    const IpAddress address = ip("203.0.113." + std::to_string(i + 1));
    (void)cache.learn(101, wire("n" + std::to_string(i) + ".example"), std::vector{address},
                      seconds(10 + i), t0);
    cache.mark_plumbed(101, address);
  }
  EXPECT_EQ(cache.plumbed_set().size(), 4u);
  cache.set_limits({.max_ips_per_name = 1000, .max_mappings = 2, .min_ttl = seconds(0)});
  EXPECT_EQ(cache.mapping_count(), 2u);
  EXPECT_EQ(cache.limits().max_mappings, 2u);
  const PlumbedSet& set = cache.plumbed_set();
  EXPECT_EQ(set.size(), 2u);
  EXPECT_FALSE(set.is_plumbed(101, ip("203.0.113.1"), t0)) << "the soonest to expire went first";
  EXPECT_TRUE(set.is_plumbed(101, ip("203.0.113.4"), t0));
}

// Many pairs over many shards: every one of them found, and only those.
TEST(FqdnCacheTest, PlumbedSetHoldsThousandsOfPairs) {
  FqdnCache cache;
  std::vector<IpAddress> ips;
  for (int i = 0; i < 5000; ++i) {
    const IpAddress address = ip("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250));
    ips.push_back(address);
    (void)cache.learn(101, wire("n" + std::to_string(i) + ".example"), std::vector{address},
                      seconds(60), t0);
    if (i % 2 == 0) cache.mark_plumbed(101, address);
    if (i % 97 == 0) (void)cache.plumbed_set();  // republished along the way
  }
  const PlumbedSet& set = cache.plumbed_set();
  EXPECT_EQ(set.size(), 2500u);
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(set.is_plumbed(101, ips[i], t0), i % 2 == 0) << i;
  EXPECT_FALSE(set.is_plumbed(102, ips[0], t0)) << "another endpoint";
}

}  // namespace
}  // namespace dnsproxy::policy
