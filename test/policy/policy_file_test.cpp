#include "policy/policy_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "test/policy/test_names.h"

namespace dnsproxy::policy {
namespace {

using test::wire;

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

std::string error_of(std::string_view yaml) {
  auto file = parse_policy_file(yaml, "p.yaml");
  return file ? "parsed" : file.error().message;
}

TEST(PolicyFileTest, ExampleFileParsesAndDecides) {
  auto file = load_policy_file(std::string(DNSPROXY_SOURCE_DIR) + "/tools/policy.example.yaml");
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->endpoints.size(), 3u);
  EXPECT_EQ(file->ipcache.size(), 5u);  // two server CIDRs + three endpoint addresses
  EXPECT_EQ(file->fqdn_limits.max_ips_per_name, 1000u);
  ASSERT_EQ(file->spec.endpoints.size(), 2u);

  QsbrDomain domain;
  SnapshotStore store(domain);
  store.replace({file->rules, std::make_shared<EndpointTable>(file->endpoints),
                 std::make_shared<IpCache>(file->ipcache), nullptr});
  const Snapshot& s = *store.acquire();
  auto allowed = [&](std::string_view client, std::string_view server, std::string_view name) {
    return s.decide(ip(client), ip(server), 53, Protocol::kUdp, wire(name)).allowed;
  };
  EXPECT_TRUE(allowed("192.0.2.10", "198.51.100.53", "api.example.com"));
  EXPECT_TRUE(allowed("2001:db8:c::10", "2001:db8:5::53", "db.svc.cluster.local"));
  EXPECT_TRUE(allowed("192.0.2.10", "198.51.100.53", "a.b.cdn.example.net"));
  EXPECT_FALSE(allowed("192.0.2.10", "198.51.100.99", "api.example.com"));  // not kube-dns
  EXPECT_FALSE(allowed("192.0.2.10", "198.51.100.53", "evil.example.com"));
  EXPECT_TRUE(allowed("192.0.2.11", "198.51.100.99", "anything.example"));
  EXPECT_FALSE(
      s.decide(ip("192.0.2.11"), ip("198.51.100.99"), 53, Protocol::kTcp, wire("anything.example"))
          .allowed);
  const EndpointRules* frontend = file->rules->find(101);
  ASSERT_NE(frontend, nullptr);
  EXPECT_TRUE(frontend->has_to_fqdns);
  EXPECT_TRUE(frontend->to_fqdns.matches(wire("x.cdn.example.net")));
  EXPECT_FALSE(frontend->to_fqdns.matches(wire("db.svc.cluster.local")));
}

TEST(PolicyFileTest, EmptyFileIsAnEmptyPolicy) {
  auto file = parse_policy_file("", "empty.yaml");
  ASSERT_TRUE(file);
  EXPECT_TRUE(file->spec.endpoints.empty());
  EXPECT_NE(file->rules, nullptr);
}

TEST(PolicyFileTest, ErrorsCarryLineAndColumn) {
  EXPECT_NE(error_of("endpoints: [\n  {id: 1").find("p.yaml:2:1: end of map flow not found"),
            std::string::npos);
  EXPECT_EQ(error_of("settings:\n  unknownSource: drop\n"),
            "p.yaml:2:18: settings.unknownSource must be \"refuse\" or \"allow\", not \"drop\"");
  EXPECT_EQ(error_of("endpoint: []\n"), "p.yaml:1:1: unknown key \"endpoint\" in the file");
  const std::string bad_pattern = R"(endpoints:
  - {id: 1, identity: 5, labels: {a: b}, ips: [192.0.2.1]}
policies:
  - endpointSelector: {matchLabels: {a: b}}
    egress:
      - toPorts:
          - ports: [{port: 53}]
            rules:
              dns:
                - matchPattern: "a+b.example"
)";
  EXPECT_EQ(error_of(bad_pattern),
            "p.yaml:10:33: matchPattern \"a+b.example\": character '+' at offset 1 is not allowed "
            "(only a-z, 0-9, '-', '_', '.' and '*')");
  EXPECT_NE(error_of("identities:\n  - {id: 7, cidrs: [10.0.0.1/8]}\n")
                .find("p.yaml:2:21: \"10.0.0.1/8\": host bits set"),
            std::string::npos);
  EXPECT_NE(error_of("endpoints:\n  - {id: 1, identity: 5, ips: [192.0.2.1]}\n"
                     "  - {id: 1, identity: 6}\n")
                .find("p.yaml:3:10: endpoint id 1 appears twice"),
            std::string::npos);
  EXPECT_NE(error_of("endpoints:\n  - {id: 1, identity: 5, ips: [192.0.2.1]}\n"
                     "  - {id: 2, identity: 6, ips: [192.0.2.1]}\n")
                .find("two endpoints"),
            std::string::npos);
  EXPECT_NE(error_of("endpoints:\n  - {id: x, identity: 5}\n")
                .find("p.yaml:2:10: endpoint id must be a number"),
            std::string::npos);
  const std::string bad_protocol = R"(policies:
  - endpointSelector: {}
    egress:
      - toPorts: [{ports: [{port: 53, protocol: SCTP}]}]
)";
  EXPECT_NE(error_of(bad_protocol).find("p.yaml:4:49: protocol must be UDP, TCP or ANY"),
            std::string::npos);
  EXPECT_NE(error_of("policies:\n  - egress: []\n").find("needs an endpointSelector"),
            std::string::npos);
  EXPECT_NE(error_of("policies:\n  - endpointSelector: {}\n    egress:\n      - toFQDNs: "
                     "[{matchName: a, matchPattern: b}]\n")
                .find("exactly one of"),
            std::string::npos);
}

TEST(PolicyFileTest, BadFileLeavesThePolicyInForce) {
  const std::string path = "/tmp/dnsproxy-policy-test-" + std::to_string(getpid()) + ".yaml";
  QsbrDomain domain;
  SnapshotStore store(domain);
  { std::ofstream(path) << "endpoints:\n  - {id: 1, identity: 5, ips: [192.0.2.1]}\n"; }
  ASSERT_TRUE(apply_policy_file(path, store));
  const uint64_t version = store.current().version;
  { std::ofstream(path) << "endpoints:\n  - {id: 1, identity: 5, ips: [192.0.2.1/33]}\n"; }
  auto bad = apply_policy_file(path, store);
  std::remove(path.c_str());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(path + ":2:"), std::string::npos) << bad.error().message;
  EXPECT_EQ(store.current().version, version);
  ASSERT_NE(store.current().endpoints->find(ip("192.0.2.1")), nullptr);
  EXPECT_FALSE(apply_policy_file("/nonexistent/policy.yaml", store));
}

}  // namespace
}  // namespace dnsproxy::policy
