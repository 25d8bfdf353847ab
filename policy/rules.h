// The L7 DNS rule model: endpoint id -> (port, protocol) -> DNS-server selector -> name
// patterns, in the shape of a CiliumNetworkPolicy's egress `toPorts[].rules.dns[]`.
//
// PolicySpec is the plain, editable form (what the policy file or the agent produces);
// RuleSet is its compiled, immutable form that workers read through a Snapshot. Compiling merges
// every rule with the same (endpoint, port, protocol, selector) into one NameMatcher, so the
// cost of a decision grows with neither the number of patterns nor the number of rules that
// repeat a selector.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/name_matcher.h"
#include "policy/name_pattern.h"

namespace dnsproxy::policy {

enum class Protocol : uint8_t { kAny = 0, kTcp = 6, kUdp = 17 };  // IANA numbers

[[nodiscard]] std::string_view to_string(Protocol protocol) noexcept;

// Which DNS servers a rule covers: any, or those whose ipcache identity is in the set.
struct ServerSelector {
  bool any = true;
  std::vector<uint32_t> identities;  // used when !any
};

struct DnsRule {
  uint16_t port = 53;  // 0: every port
  Protocol protocol = Protocol::kAny;
  ServerSelector servers;
  std::vector<NamePattern> patterns;  // empty: every name
};

struct EndpointPolicy {
  uint32_t endpoint_id = 0;
  std::vector<DnsRule> dns_rules;
  // toFQDNs: the names whose learned IPs the (embedded) agent may plumb as L3 destinations.
  std::vector<NamePattern> to_fqdns;
};

// What a query gets when no rule speaks about it (Cilium refuses both).
enum class DefaultAction : uint8_t { kRefuse, kAllow };

struct PolicyDefaults {
  DefaultAction unknown_source = DefaultAction::kRefuse;      // client IP not in the endpoint table
  DefaultAction port_without_rules = DefaultAction::kRefuse;  // endpoint has no rule for the port
};

struct PolicySpec {
  PolicyDefaults defaults;
  std::vector<EndpointPolicy> endpoints;
};

// ---- Compiled form (read by workers). ----

struct SelectorRule {
  bool any_server = true;
  std::vector<uint32_t> server_identities;  // sorted
  NameMatcher names;

  [[nodiscard]] bool selects(uint32_t server_identity) const noexcept;
};

struct PortRule {
  uint16_t port = 0;
  Protocol protocol = Protocol::kAny;
  std::vector<SelectorRule> selectors;

  [[nodiscard]] bool applies_to(uint16_t query_port, Protocol query_protocol) const noexcept {
    return (port == 0 || port == query_port) &&
           (protocol == Protocol::kAny || protocol == query_protocol);
  }
};

struct EndpointRules {
  uint32_t endpoint_id = 0;
  std::vector<PortRule> ports;
  bool has_to_fqdns = false;
  NameMatcher to_fqdns;
};

class RuleSet {
 public:
  RuleSet() = default;
  // Cold path. Fails when an endpoint appears twice or a rule's wildcards exceed the automaton
  // cap; the message names the endpoint and port.
  [[nodiscard]] static Result<RuleSet> compile(const PolicySpec& spec);

  [[nodiscard]] const EndpointRules* find(uint32_t endpoint_id) const noexcept;
  [[nodiscard]] const PolicyDefaults& defaults() const noexcept { return defaults_; }
  [[nodiscard]] size_t endpoint_count() const noexcept { return endpoints_.size(); }
  [[nodiscard]] size_t memory_bytes() const noexcept;

 private:
  struct IdSlot {
    uint32_t endpoint_id = 0;
    uint32_t index_plus_one = 0;  // 0: empty slot
  };
  PolicyDefaults defaults_;
  std::vector<EndpointRules> endpoints_;
  std::vector<IdSlot> id_slots_;  // power-of-two size, load <= 1/2
};

}  // namespace dnsproxy::policy
