#include "policy/tables.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <optional>
#include <random>
#include <string>

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
      {prefix("0.0.0.0/0"), 9},          {prefix("198.51.100.0/24"), 100},
      {prefix("198.51.100.53/32"), 153}, {prefix("198.51.100.128/25"), 125},
      {prefix("2001:db8:5::/64"), 600},  {prefix("2001:db8:5::53/128"), 653},
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

// Addresses and prefixes under 10.0/16 and 0a00::/16 with few distinct bits, so prefixes nest
// and collide often.
IpAddress random_address(std::mt19937& rng) {
  IpAddress a;
  a.family = rng() % 2 ? Family::kV4 : Family::kV6;
  for (unsigned b = 0; b < (a.family == Family::kV4 ? 4u : 16u); ++b)
    a.bytes[b] = static_cast<uint8_t>(b < 2 ? 10 : rng() % 4);
  return a;
}

IpPrefix random_prefix(std::mt19937& rng) {
  IpAddress a = random_address(rng);
  const unsigned length = rng() % (a.max_prefix_length() + 1);
  for (unsigned bit = length; bit < a.max_prefix_length(); ++bit)
    a.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return IpPrefix{a, static_cast<uint8_t>(length)};
}

// Randomized against a linear scan over the same prefixes.
TEST(IpCacheTest, AgreesWithLinearScan) {
  std::mt19937 rng(7);
  std::vector<IpCacheEntry> entries;
  for (uint32_t i = 0; i < 2000; ++i) entries.push_back({random_prefix(rng), i + 100});
  // Keep the last entry per prefix, as the table does.
  const IpCache cache(entries);
  for (int n = 0; n < 5000; ++n) {
    const IpAddress q = random_address(rng);
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

TEST(IpCacheTest, WithChangesEditsACopy) {
  const std::vector<IpCacheEntry> entries = {{prefix("198.51.100.0/24"), 100},
                                             {prefix("198.51.100.53/32"), 153},
                                             {prefix("2001:db8:5::/64"), 600}};
  const IpCache before(entries);
  const std::vector<IpCacheChange> changes = {
      {prefix("198.51.100.53/32"), std::nullopt},  // the only /32: lookups fall back to the /24
      {prefix("198.51.100.0/24"), 124},            // new identity
      {prefix("0.0.0.0/0"), 9},                    // new length
      {prefix("2001:db8:5::/64"), std::nullopt},
      {prefix("2001:db8:5::/64"), 664},           // a later change to a prefix wins
      {prefix("203.0.113.0/24"), std::nullopt}};  // removing an absent prefix: nothing
  const IpCache after = before.with_changes(changes);
  EXPECT_EQ(after.size(), 3u);
  EXPECT_EQ(after.lookup(ip("198.51.100.53")), 124u);
  EXPECT_EQ(after.lookup(ip("203.0.113.1")), 9u);
  EXPECT_EQ(after.lookup(ip("2001:db8:5::1")), 664u);
  EXPECT_EQ(after.find(prefix("198.51.100.53/32")), nullptr);
  ASSERT_NE(after.find(prefix("0.0.0.0/0")), nullptr);
  EXPECT_EQ(*after.find(prefix("0.0.0.0/0")), 9u);
  // The original is untouched: published snapshots keep reading it.
  EXPECT_EQ(before.size(), 3u);
  EXPECT_EQ(before.lookup(ip("198.51.100.53")), 153u);
  EXPECT_EQ(before.lookup(ip("203.0.113.1")), kWorldIdentity);
  EXPECT_EQ(before.lookup(ip("2001:db8:5::1")), 600u);
  // Removing everything leaves an empty cache that answers WORLD.
  std::vector<IpCacheChange> remove_all;
  for (const IpCacheEntry& e : after.entries()) remove_all.push_back({e.prefix, std::nullopt});
  const IpCache empty = after.with_changes(remove_all);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.lookup(ip("198.51.100.53")), kWorldIdentity);
}

// Randomized: batches of upserts and removals (nested, repeated, absent prefixes) applied as
// deltas agree with a cache rebuilt from scratch after every batch.
TEST(IpCacheTest, WithChangesAgreesWithARebuild) {
  std::mt19937 rng(11);
  std::map<std::string, IpCacheEntry> model;
  IpCache cache;
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<IpCacheChange> changes;
    const int count = batch == 0 ? 3000 : 1 + static_cast<int>(rng() % 200);
    for (int n = 0; n < count; ++n) {
      const IpPrefix p = random_prefix(rng);
      if (rng() % 3 == 0) {
        changes.push_back({p, std::nullopt});
        model.erase(p.to_string());
      } else {
        const uint32_t identity = 1000 + rng() % 50;
        changes.push_back({p, identity});
        model[p.to_string()] = {p, identity};
      }
    }
    cache = cache.with_changes(changes);
    std::vector<IpCacheEntry> expected_entries;
    for (const auto& [text, e] : model) expected_entries.push_back(e);
    const IpCache rebuilt(expected_entries);
    ASSERT_EQ(cache.size(), rebuilt.size()) << "batch " << batch;
    for (const IpCacheChange& c : changes) {
      const uint32_t* found = cache.find(c.prefix);
      const auto it = model.find(c.prefix.to_string());
      ASSERT_EQ(found != nullptr, it != model.end()) << c.prefix.to_string();
      if (found != nullptr) {
        ASSERT_EQ(*found, it->second.identity);
      }
    }
    for (int n = 0; n < 500; ++n) {
      const IpAddress q = random_address(rng);
      ASSERT_EQ(cache.lookup(q), rebuilt.lookup(q)) << "batch " << batch << " " << q.to_string();
    }
  }
  EXPECT_EQ(cache.entries().size(), model.size());
}

// Backward-shift deletion in a small, crowded table: every other key stays findable.
TEST(AddressTableTest, EraseKeepsTheRestFindable) {
  std::mt19937 rng(3);
  AddressTable<uint32_t> table(8);  // 16 slots
  std::map<uint32_t, uint32_t> model;
  auto key_of = [](uint32_t n) {
    const std::array<uint8_t, 4> a = {192, 0, 2, static_cast<uint8_t>(n)};
    return address_key(IpAddress::v4(a), 32);
  };
  for (int step = 0; step < 20000; ++step) {
    const uint32_t n = rng() % 24;
    if (model.size() < 8 && rng() % 2) {
      EXPECT_EQ(table.insert_or_assign(key_of(n), n + 1), !model.contains(n));
      model[n] = n + 1;
    } else {
      EXPECT_EQ(table.erase(key_of(n)), model.erase(n) == 1);
    }
    ASSERT_EQ(table.size(), model.size());
    for (uint32_t k = 0; k < 24; ++k) {
      const uint32_t* found = table.find(key_of(k));
      ASSERT_EQ(found != nullptr, model.contains(k)) << "step " << step << " key " << k;
      if (found != nullptr) {
        ASSERT_EQ(*found, model[k]);
      }
    }
  }
}

}  // namespace
}  // namespace dnsproxy::policy
