#include "policy/tables.h"

#include <gtest/gtest.h>

#include <random>

namespace dnsproxy::policy {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : IpAddress{};
}

IpPrefix prefix(std::string_view text) {
  auto p = IpPrefix::parse(text);
  EXPECT_TRUE(p) << text << ": " << (p ? "" : p.error().message);
  return p ? *p : IpPrefix{};
}

TEST(IpAddressTest, ParsesAndPrints) {
  EXPECT_EQ(ip("192.0.2.1").to_string(), "192.0.2.1");
  EXPECT_EQ(ip("2001:db8:c::1").to_string(), "2001:db8:c::1");
  EXPECT_EQ(ip("2001:db8:c::1").family, Family::kV6);
  EXPECT_FALSE(IpAddress::parse("192.0.2.256"));
  EXPECT_EQ(prefix("10.0.0.0/8").to_string(), "10.0.0.0/8");
  EXPECT_EQ(prefix("192.0.2.7").length, 32);
  EXPECT_NE(IpPrefix::parse("10.0.0.1/8").error().message.find("host bits"), std::string::npos);
  EXPECT_NE(IpPrefix::parse("10.0.0.0/33").error().message.find("0..32"), std::string::npos);
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/8x"));
}

TEST(EndpointTableTest, ExactMatchBothFamilies) {
  const std::vector<EndpointEntry> entries = {{ip("192.0.2.10"), {101, 10001}},
                                              {ip("2001:db8:c::10"), {101, 10001}},
                                              {ip("192.0.2.11"), {102, 10002}}};
  const EndpointTable table(entries);
  EXPECT_EQ(table.size(), 3u);
  ASSERT_NE(table.find(ip("192.0.2.10")), nullptr);
  EXPECT_EQ(*table.find(ip("192.0.2.11")), (EndpointInfo{102, 10002}));
  EXPECT_EQ(table.find(ip("2001:db8:c::10"))->endpoint_id, 101u);
  EXPECT_EQ(table.find(ip("192.0.2.12")), nullptr);
  EXPECT_EQ(table.find(ip("::ffff:192.0.2.10")), nullptr);
  EXPECT_EQ(table.entries().size(), 3u);
}

TEST(IpCacheTest, LongestPrefixWinsAndWorldIsTheDefault) {
  const std::vector<IpCacheEntry> entries = {
      {prefix("0.0.0.0/0"), 9},           {prefix("198.51.100.0/24"), 100},
      {prefix("198.51.100.53/32"), 153},  {prefix("198.51.100.128/25"), 125},
      {prefix("2001:db8:5::/64"), 600},   {prefix("2001:db8:5::53/128"), 653},
      {prefix("2001:db8::/32"), 632}};
  const IpCache cache(entries);
  EXPECT_EQ(cache.lookup(ip("198.51.100.53")), 153u);
  EXPECT_EQ(cache.lookup(ip("198.51.100.54")), 100u);
  EXPECT_EQ(cache.lookup(ip("198.51.100.200")), 125u);
  EXPECT_EQ(cache.lookup(ip("203.0.113.1")), 9u);
  EXPECT_EQ(cache.lookup(ip("2001:db8:5::53")), 653u);
  EXPECT_EQ(cache.lookup(ip("2001:db8:5::54")), 600u);
  EXPECT_EQ(cache.lookup(ip("2001:db8:e::1")), 632u);
  EXPECT_EQ(cache.lookup(ip("2001:db9::1")), kWorldIdentity);  // no ::/0
  EXPECT_EQ(IpCache{}.lookup(ip("192.0.2.1")), kWorldIdentity);
}

// Randomized against a linear scan over the same prefixes.
TEST(IpCacheTest, AgreesWithLinearScan) {
  std::mt19937 rng(7);
  std::vector<IpCacheEntry> entries;
  for (uint32_t i = 0; i < 2000; ++i) {
    IpAddress a;
    a.family = rng() % 2 ? Family::kV4 : Family::kV6;
    for (unsigned b = 0; b < (a.family == Family::kV4 ? 4u : 16u); ++b)
      a.bytes[b] = static_cast<uint8_t>(b < 2 ? 10 : rng() % 4);
    const unsigned length = rng() % (a.max_prefix_length() + 1);
    for (unsigned bit = length; bit < a.max_prefix_length(); ++bit)
      a.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
    entries.push_back({IpPrefix{a, static_cast<uint8_t>(length)}, i + 100});
  }
  // Keep the last entry per prefix, as the table does.
  const IpCache cache(entries);
  for (int n = 0; n < 5000; ++n) {
    IpAddress q;
    q.family = rng() % 2 ? Family::kV4 : Family::kV6;
    for (unsigned b = 0; b < (q.family == Family::kV4 ? 4u : 16u); ++b)
      q.bytes[b] = static_cast<uint8_t>(b < 2 ? 10 : rng() % 4);
    uint32_t expected = kWorldIdentity;
    int best = -1;
    for (const IpCacheEntry& e : entries) {
      if (e.prefix.address.family != q.family) continue;
      bool covers = true;
      for (unsigned bit = 0; bit < e.prefix.length && covers; ++bit) {
        const uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
        covers = (q.bytes[bit / 8] & m) == (e.prefix.address.bytes[bit / 8] & m);
      }
      if (covers && static_cast<int>(e.prefix.length) >= best) {
        best = e.prefix.length;
        expected = e.identity;
      }
    }
    ASSERT_EQ(cache.lookup(q), expected) << q.to_string();
  }
}

}  // namespace
}  // namespace dnsproxy::policy
