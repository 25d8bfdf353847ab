// Decisions through a Snapshot, and publishing through a SnapshotStore.
#include "policy/snapshot.h"

#include <gtest/gtest.h>

#include "test/policy/test_names.h"

namespace dnsproxy::policy {
namespace {

using test::name_pattern;
using test::pattern;
using test::wire;

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

constexpr uint32_t kDnsIdentity = 20001;

struct Fixture {
  QsbrDomain domain;
  SnapshotStore store{domain};

  explicit Fixture(PolicySpec spec) {
    auto rules = RuleSet::compile(spec);
    EXPECT_TRUE(rules) << rules.error().message;
    store.replace({.rules = std::make_shared<RuleSet>(std::move(*rules))});
    const std::vector<EndpointEntry> endpoints = {{ip("192.0.2.10"), {101, 10001}},
                                                  {ip("2001:db8:c::10"), {101, 10001}},
                                                  {ip("192.0.2.11"), {102, 10002}}};
    store.replace({.endpoints = std::make_shared<EndpointTable>(endpoints)});
    const std::vector<IpCacheEntry> ipcache = {
        {*IpPrefix::parse("198.51.100.53/32"), kDnsIdentity},
        {*IpPrefix::parse("2001:db8:5::53/128"), kDnsIdentity}};
    store.replace({.ipcache = std::make_shared<IpCache>(ipcache)});
  }

  Decision decide(std::string_view client, std::string_view server, std::string_view name,
                  uint16_t port = 53, Protocol protocol = Protocol::kUdp) {
    return store.acquire()->decide(ip(client), ip(server), port, protocol, wire(name));
  }
};

PolicySpec frontend_policy() {
  PolicySpec spec;
  EndpointPolicy frontend{101, {}, {}};
  DnsRule to_cluster_dns{53,
                         Protocol::kAny,
                         {false, {kDnsIdentity}},
                         {name_pattern("api.example.com"), pattern("*.svc.cluster.local")}};
  DnsRule anywhere_tcp{5353, Protocol::kTcp, {}, {pattern("**.example.org")}};
  frontend.dns_rules = {to_cluster_dns, anywhere_tcp};
  spec.endpoints.push_back(frontend);
  return spec;
}

TEST(SnapshotDecideTest, AllowsWhatTheRulesAllow) {
  Fixture f(frontend_policy());
  Decision d = f.decide("192.0.2.10", "198.51.100.53", "api.example.com");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.endpoint_id, 101u);
  EXPECT_TRUE(f.decide("2001:db8:c::10", "2001:db8:5::53", "db.svc.cluster.local").allowed);
  EXPECT_TRUE(
      f.decide("192.0.2.10", "198.51.100.9", "a.example.org", 5353, Protocol::kTcp).allowed);
}

TEST(SnapshotDecideTest, EachDenyHasItsReason) {
  Fixture f(frontend_policy());
  auto reason = [](Decision d) {
    return d.allowed ? std::string("allowed") : std::string(to_string(d.reason));
  };
  EXPECT_EQ(reason(f.decide("192.0.2.99", "198.51.100.53", "api.example.com")), "unknown_source");
  EXPECT_EQ(reason(f.decide("192.0.2.10", "198.51.100.53", "api.example.com", 54)),
            "no_rule_for_port");
  EXPECT_EQ(reason(f.decide("192.0.2.10", "198.51.100.9", "a.example.org", 5353, Protocol::kUdp)),
            "no_rule_for_port");
  EXPECT_EQ(reason(f.decide("192.0.2.11", "198.51.100.53", "api.example.com")), "no_rule_for_port");
  EXPECT_EQ(reason(f.decide("192.0.2.10", "198.51.100.54", "api.example.com")),
            "server_not_selected");
  EXPECT_EQ(reason(f.decide("192.0.2.10", "198.51.100.53", "www.example.com")), "name_not_allowed");
  EXPECT_EQ(reason(f.decide("192.0.2.10", "198.51.100.53", "a.b.svc.cluster.local")),
            "name_not_allowed");
}

TEST(SnapshotDecideTest, DefaultsAreConfigurable) {
  PolicySpec spec = frontend_policy();
  spec.defaults = {DefaultAction::kAllow, DefaultAction::kAllow};
  Fixture f(spec);
  EXPECT_TRUE(f.decide("192.0.2.99", "198.51.100.53", "anything.example").allowed);
  EXPECT_TRUE(f.decide("192.0.2.11", "198.51.100.53", "anything.example").allowed);
  EXPECT_TRUE(f.decide("192.0.2.10", "198.51.100.53", "anything.example", 54).allowed);
  // Rules for the port still bind.
  EXPECT_FALSE(f.decide("192.0.2.10", "198.51.100.53", "anything.example").allowed);
}

TEST(SnapshotDecideTest, RulesWithTheSameSelectorAreMerged) {
  PolicySpec spec;
  EndpointPolicy e{101, {}, {}};
  e.dns_rules.push_back({53, Protocol::kUdp, {}, {name_pattern("a.example")}});
  e.dns_rules.push_back({53, Protocol::kUdp, {}, {name_pattern("b.example")}});
  e.dns_rules.push_back({53, Protocol::kUdp, {false, {5, 6}}, {}});  // no patterns: every name
  spec.endpoints.push_back(e);
  auto rules = RuleSet::compile(spec);
  ASSERT_TRUE(rules);
  const EndpointRules* r = rules->find(101);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->ports.size(), 1u);
  EXPECT_EQ(r->ports[0].selectors.size(), 2u);
  EXPECT_EQ(rules->find(102), nullptr);
}

TEST(SnapshotDecideTest, DuplicateEndpointIsRejected) {
  PolicySpec spec;
  spec.endpoints = {EndpointPolicy{7, {}, {}}, EndpointPolicy{7, {}, {}}};
  auto rules = RuleSet::compile(spec);
  ASSERT_FALSE(rules);
  EXPECT_NE(rules.error().message.find("endpoint 7"), std::string::npos);
}

TEST(SnapshotStoreTest, ReplacingOnePartKeepsTheOthers) {
  Fixture f(frontend_policy());
  const Snapshot* before = f.store.acquire();
  const uint64_t version = before->version;
  auto ipcache = before->ipcache;
  f.store.replace({.plumbed = std::make_shared<PlumbedSet>()});
  const Snapshot* after = f.store.acquire();
  EXPECT_EQ(after->version, version + 1);
  EXPECT_EQ(after->ipcache, ipcache);
  // No reader registered: nothing holds the old roots back.
  EXPECT_EQ(f.store.reclaim(), 0u);
}

TEST(SnapshotStoreTest, RetiredRootsWaitForEveryOnlineReader) {
  Fixture f(frontend_policy());
  auto reader = f.domain.register_reader();
  ASSERT_TRUE(reader);
  f.store.replace({.plumbed = std::make_shared<PlumbedSet>()});
  EXPECT_EQ(f.store.reclaim(), 1u);  // the reader may still use the previous root
  reader->quiescent();
  EXPECT_EQ(f.store.reclaim(), 0u);
  f.store.replace({.plumbed = std::make_shared<PlumbedSet>()});
  reader->offline();  // an offline reader holds nothing back
  EXPECT_EQ(f.store.reclaim(), 0u);
  reader->online();
}

}  // namespace
}  // namespace dnsproxy::policy
