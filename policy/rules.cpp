#include "policy/rules.h"

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <tuple>

namespace dnsproxy::policy {
namespace {

size_t id_slot_of(uint32_t id, size_t mask) noexcept {
  return static_cast<size_t>((uint64_t{id} * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

// Rules that share this key are merged into one matcher.
using MergeKey = std::tuple<uint16_t, Protocol, bool, std::vector<uint32_t>>;

struct MergedPatterns {
  bool every_name = false;  // some rule had no patterns
  std::vector<NamePattern> patterns;
};

Result<EndpointRules> compile_endpoint(const EndpointPolicy& policy) {
  std::map<MergeKey, MergedPatterns> merged;
  for (const DnsRule& rule : policy.dns_rules) {
    std::vector<uint32_t> identities =
        rule.servers.any ? std::vector<uint32_t>{} : rule.servers.identities;
    std::sort(identities.begin(), identities.end());
    identities.erase(std::unique(identities.begin(), identities.end()), identities.end());
    MergedPatterns& m = merged[{rule.port, rule.protocol, rule.servers.any, std::move(identities)}];
    if (rule.patterns.empty()) m.every_name = true;
    m.patterns.insert(m.patterns.end(), rule.patterns.begin(), rule.patterns.end());
  }
  EndpointRules out;
  out.endpoint_id = policy.endpoint_id;
  for (auto& [key, m] : merged) {
    auto& [port, protocol, any, identities] = key;
    auto matcher = m.every_name ? Result<NameMatcher>(NameMatcher::match_everything())
                                : NameMatcher::build(m.patterns);
    if (!matcher) {
      return fail("endpoint ", std::to_string(policy.endpoint_id), " port ", std::to_string(port),
                  "/", std::string(to_string(protocol)), ": ", matcher.error().message);
    }
    if (out.ports.empty() || out.ports.back().port != port || out.ports.back().protocol != protocol)
      out.ports.push_back(PortRule{port, protocol, {}});
    out.ports.back().selectors.push_back(SelectorRule{any, identities, std::move(*matcher)});
  }
  if (!policy.to_fqdns.empty()) {
    auto matcher = NameMatcher::build(policy.to_fqdns);
    if (!matcher) {
      return fail("endpoint ", std::to_string(policy.endpoint_id),
                  " toFQDNs: ", matcher.error().message);
    }
    out.has_to_fqdns = true;
    out.to_fqdns = std::move(*matcher);
  }
  return out;
}

}  // namespace

std::string_view to_string(Protocol protocol) noexcept {
  switch (protocol) {
    case Protocol::kAny:
      return "ANY";
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
  }
  return "?";
}

bool SelectorRule::selects(uint32_t server_identity) const noexcept {
  return any_server ||
         std::binary_search(server_identities.begin(), server_identities.end(), server_identity);
}

Result<RuleSet> RuleSet::compile(const PolicySpec& spec) {
  RuleSet set;
  set.defaults_ = spec.defaults;
  std::set<uint32_t> seen;
  for (const EndpointPolicy& policy : spec.endpoints) {
    if (!seen.insert(policy.endpoint_id).second)
      return fail("endpoint ", std::to_string(policy.endpoint_id), " has two policies; merge them");
    auto rules = compile_endpoint(policy);
    if (!rules) return tl::unexpected(rules.error());
    set.endpoints_.push_back(std::move(*rules));
  }
  set.id_slots_.resize(std::bit_ceil(std::max<size_t>(16, set.endpoints_.size() * 2)));
  const size_t mask = set.id_slots_.size() - 1;
  for (size_t i = 0; i < set.endpoints_.size(); ++i) {
    size_t slot = id_slot_of(set.endpoints_[i].endpoint_id, mask);
    while (set.id_slots_[slot].index_plus_one != 0) slot = (slot + 1) & mask;
    set.id_slots_[slot] = {set.endpoints_[i].endpoint_id, static_cast<uint32_t>(i + 1)};
  }
  return set;
}

const EndpointRules* RuleSet::find(uint32_t endpoint_id) const noexcept {
  if (id_slots_.empty()) return nullptr;
  const size_t mask = id_slots_.size() - 1;
  for (size_t slot = id_slot_of(endpoint_id, mask);; slot = (slot + 1) & mask) {
    const IdSlot& s = id_slots_[slot];
    if (s.index_plus_one == 0) return nullptr;
    if (s.endpoint_id == endpoint_id) return &endpoints_[s.index_plus_one - 1];
  }
}

size_t RuleSet::memory_bytes() const noexcept {
  size_t bytes = sizeof(*this) + id_slots_.capacity() * sizeof(IdSlot);
  for (const EndpointRules& e : endpoints_) {
    bytes += sizeof(e) + e.to_fqdns.memory_bytes();
    for (const PortRule& p : e.ports)
      for (const SelectorRule& s : p.selectors)
        bytes += sizeof(s) + s.names.memory_bytes() + s.server_identities.capacity() * 4;
  }
  return bytes;
}

}  // namespace dnsproxy::policy
