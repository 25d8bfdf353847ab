// The Policy stream's resources without a link (datapath/agent/policy_resources.h): the agent's
// encoding of a policy file and its delta against what a proxy holds, and the proxy's state:
// applied whole, removals, a bad response refused with the old policy kept, the persisted form.
#include "datapath/agent/policy_resources.h"

#include <gtest/gtest.h>

#include "test/policy/test_names.h"
#include "test/support/policy_text.h"

namespace dnsproxy::datapath::agent {
namespace {

using policy::test::wire;

policy::PolicyFile file_of(std::string_view dns, std::string_view to_fqdns = "") {
  auto file = policy::parse_policy_file(test::frontend_policy(dns, to_fqdns), "test.yaml");
  EXPECT_TRUE(file) << file.error().message;
  return file ? std::move(*file) : policy::PolicyFile{};
}

// Does endpoint 101 (the frontend) have a port-53 rule that lets it ask for `name`?
bool allows(const PolicyState& state, std::string_view name) {
  const policy::EndpointRules* rules = state.policy().rules->find(101);
  if (!rules) return false;
  for (const policy::PortRule& port : rules->ports)
    if (port.applies_to(53, policy::Protocol::kUdp))
      for (const policy::SelectorRule& selector : port.selectors)
        if (selector.names.matches(wire(name))) return true;
  return false;
}

PolicyState apply_ok(const PolicyState& state, const v1::PolicyResponse& response) {
  auto next = state.applied(response);
  EXPECT_TRUE(next) << next.error().message;
  return next ? std::move(*next) : state;
}

const PolicyResources kHosts = encode_policy(file_of(R"([{matchPattern: "host*.example.test"}])",
                                                     R"([{matchPattern: "host*.example.test"}])"));

TEST(PolicyResourcesTest, APolicyFileBecomesOneResourcePerEndpointAndKind) {
  EXPECT_EQ(kHosts.size(), 4u);  // settings, identity/101, dns/101, fqdn/101
  for (const char* name : {"settings", "identity/101", "dns/101", "fqdn/101"})
    EXPECT_TRUE(kHosts.contains(name)) << name;
  EXPECT_EQ(kHosts.at("identity/101").identity().identity(), 10001u);
  EXPECT_EQ(kHosts.at("identity/101").identity().addresses_size(), 2);
  // Content-hashed: the same file gives the same versions, another file another dns/ version.
  EXPECT_EQ(encode_policy(file_of(R"([{matchPattern: "host*.example.test"}])",
                                  R"([{matchPattern: "host*.example.test"}])"))
                .at("dns/101")
                .version(),
            kHosts.at("dns/101").version());
  const PolicyResources other = encode_policy(file_of(R"([{matchName: "other.example.test"}])",
                                                      R"([{matchPattern: "host*.example.test"}])"));
  EXPECT_NE(other.at("dns/101").version(), kHosts.at("dns/101").version());
  EXPECT_EQ(other.at("identity/101").version(), kHosts.at("identity/101").version());
  EXPECT_NE(policy_version(other), policy_version(kHosts));
}

TEST(PolicyResourcesTest, TheFirstDeltaCarriesEverythingAndAppliesToThePolicyOfTheFile) {
  const v1::PolicyResponse delta = policy_delta({}, kHosts);
  EXPECT_EQ(delta.resources_size(), 4);
  EXPECT_EQ(delta.removed_resources_size(), 0);
  const PolicyState state = apply_ok(PolicyState(), delta);
  EXPECT_EQ(state.resource_count(), 4u);
  EXPECT_EQ(state.version(), policy_version(kHosts));
  EXPECT_TRUE(allows(state, "host7.example.test"));
  EXPECT_FALSE(allows(state, "other.example.test"));
  EXPECT_EQ(state.identity_of(101), 10001u);
  EXPECT_EQ(state.identity_of(102), 0u);
  EXPECT_EQ(state.policy().endpoints.size(), 2u);
  ASSERT_NE(state.policy().rules->find(101), nullptr);
  EXPECT_TRUE(state.policy().rules->find(101)->has_to_fqdns);
}

TEST(PolicyResourcesTest, TheDeltaAgainstWhatIsHeldIsOnlyTheDifference) {
  const PolicyState state = apply_ok(PolicyState(), policy_delta({}, kHosts));
  EXPECT_EQ(state.versions().size(), 4u);
  EXPECT_EQ(state.versions().at("dns/101"), kHosts.at("dns/101").version());
  const v1::PolicyResponse same = policy_delta(state.versions(), kHosts);
  EXPECT_EQ(same.resources_size(), 0);
  EXPECT_EQ(same.removed_resources_size(), 0);

  // Another dns/ rule, no toFQDNs: one resource changed, one removed.
  const PolicyResources next = encode_policy(file_of(R"([{matchName: "other.example.test"}])"));
  const v1::PolicyResponse delta = policy_delta(state.versions(), next);
  ASSERT_EQ(delta.resources_size(), 1);
  EXPECT_EQ(delta.resources(0).name(), "dns/101");
  ASSERT_EQ(delta.removed_resources_size(), 1);
  EXPECT_EQ(delta.removed_resources(0), "fqdn/101");
  const PolicyState after = apply_ok(state, delta);
  EXPECT_EQ(after.resource_count(), 3u);
  EXPECT_TRUE(allows(after, "other.example.test"));
  EXPECT_FALSE(allows(after, "host7.example.test"));
  EXPECT_FALSE(after.policy().rules->find(101)->has_to_fqdns);
  EXPECT_EQ(after.versions(), ResourceVersions({{"dns/101", next.at("dns/101").version()},
                                                {"identity/101", next.at("identity/101").version()},
                                                {"settings", next.at("settings").version()}}));
}

// Each bad response is refused whole: the error names the resource, the state stays as it was.
TEST(PolicyResourcesTest, ABadResponseIsRefusedAndTheOldPolicyStays) {
  const PolicyState state = apply_ok(PolicyState(), policy_delta({}, kHosts));
  const auto refused = [&](const std::function<void(v1::PolicyResponse&)>& spoil,
                           std::string_view reason) {
    v1::PolicyResponse response =
        policy_delta({}, encode_policy(file_of(R"([{matchName: "other.example.test"}])")));
    spoil(response);
    auto next = state.applied(response);
    ASSERT_FALSE(next) << reason;
    EXPECT_NE(next.error().message.find(reason), std::string::npos) << next.error().message;
    EXPECT_TRUE(allows(state, "host7.example.test"));
    EXPECT_FALSE(allows(state, "other.example.test"));
  };
  const auto dns = [](v1::PolicyResponse& r) -> v1::PolicyResource& {
    for (v1::PolicyResource& resource : *r.mutable_resources())
      if (resource.name() == "dns/101") return resource;
    ADD_FAILURE() << "no dns/101";
    return *r.mutable_resources(0);
  };
  refused([&](auto& r) { dns(r).mutable_dns()->mutable_rules(0)->set_port(70000); },
          "resource dns/101: rule 1: port 70000 is not 0..65535");
  refused([&](auto& r) { dns(r).mutable_dns()->mutable_rules(0)->set_protocol(1); },
          "protocol 1 is not");
  refused(
      [&](auto& r) {
        dns(r).mutable_dns()->mutable_rules(0)->mutable_patterns(0)->set_text("bad name!");
      },
      "resource dns/101: rule 1:");
  refused(
      [&](auto& r) { dns(r).mutable_dns()->mutable_rules(0)->mutable_patterns(0)->clear_kind(); },
      "neither matchName nor matchPattern");
  refused([&](auto& r) { dns(r).mutable_dns()->set_endpoint_id(102); },
          "resource dns/101: its body is for endpoint 102");
  refused([&](auto& r) { dns(r).set_name("dns/x"); }, "is not an endpoint id");
  refused([&](auto& r) { dns(r).set_name("rbac/101"); }, "unknown kind");
  refused([&](auto& r) { dns(r).mutable_identity(); }, "its body is not of the kind its name says");
  refused([&](auto& r) { *r.add_resources() = dns(r); }, "appears twice");
  const auto settings = [](v1::PolicyResponse& r) -> v1::PolicySettings& {
    for (v1::PolicyResource& resource : *r.mutable_resources())
      if (resource.name() == "settings") return *resource.mutable_settings();
    ADD_FAILURE() << "no settings";
    return *r.mutable_resources(0)->mutable_settings();
  };
  refused([&](auto& r) { settings(r).set_max_ips_per_name(0); },
          "resource settings: max_ips_per_name must be at least 1");
  refused([&](auto& r) { settings(r).set_max_mappings(0); }, "max_mappings must be at least 1");
  refused([&](auto& r) { settings(r).set_min_ttl_seconds(8 * 24 * 3600); }, "more than 7 days");
  refused(
      [&](auto& r) {
        v1::PolicyResource& other = *r.add_resources();
        other.set_name("identity/102");
        other.mutable_identity()->set_endpoint_id(102);
        other.mutable_identity()->add_addresses(std::string("\xc0\x00\x02\x0a", 4));
      },
      "address 192.0.2.10 belongs to two endpoints");
}

// The FQDN cache's bounds travel in "settings": the file's settings.fqdn reach the proxy, and an
// agent that sends none leaves the proxy's defaults.
TEST(PolicyResourcesTest, TheFqdnCacheBoundsTravelInTheSettings) {
  policy::PolicyFile file = file_of(R"([{matchPattern: "host*.example.test"}])");
  file.fqdn_limits = {
      .max_ips_per_name = 7, .max_mappings = 5000, .min_ttl = std::chrono::seconds(30)};
  const PolicyResources resources = encode_policy(file);
  EXPECT_NE(resources.at("settings").version(), kHosts.at("settings").version());
  const PolicyState state = apply_ok(PolicyState(), policy_delta({}, resources));
  EXPECT_EQ(state.policy().fqdn_limits.max_ips_per_name, 7u);
  EXPECT_EQ(state.policy().fqdn_limits.max_mappings, 5000u);
  EXPECT_EQ(state.policy().fqdn_limits.min_ttl, std::chrono::seconds(30));

  v1::PolicyResponse bare = policy_delta({}, kHosts);
  for (v1::PolicyResource& resource : *bare.mutable_resources())
    if (resource.name() == "settings") {
      resource.mutable_settings()->clear_max_ips_per_name();
      resource.mutable_settings()->clear_max_mappings();
      resource.mutable_settings()->clear_min_ttl_seconds();
    }
  const PolicyState defaults = apply_ok(PolicyState(), bare);
  EXPECT_EQ(defaults.policy().fqdn_limits.max_ips_per_name,
            policy::FqdnCacheLimits{}.max_ips_per_name);
  EXPECT_EQ(defaults.policy().fqdn_limits.max_mappings, policy::FqdnCacheLimits{}.max_mappings);
  EXPECT_EQ(defaults.policy().fqdn_limits.min_ttl, std::chrono::seconds(0));
}

TEST(PolicyResourcesTest, ThePersistedStateParsesBackToTheSamePolicy) {
  const PolicyState state = apply_ok(PolicyState(), policy_delta({}, kHosts));
  auto back = PolicyState::parse(state.serialize(), "state.pb");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->versions(), state.versions());
  EXPECT_EQ(back->version(), state.version());
  EXPECT_TRUE(allows(*back, "host7.example.test"));
  EXPECT_EQ(back->identity_of(101), 10001u);

  auto corrupt = PolicyState::parse("\xff\xff\xff garbage", "state.pb");
  ASSERT_FALSE(corrupt);
  EXPECT_NE(corrupt.error().message.find("state.pb: not a policy state"), std::string::npos)
      << corrupt.error().message;
  const std::string empty = PolicyState().serialize();
  auto nothing = PolicyState::parse(empty, "state.pb");
  ASSERT_TRUE(nothing) << nothing.error().message;
  EXPECT_EQ(nothing->resource_count(), 0u);
}

}  // namespace
}  // namespace dnsproxy::datapath::agent
