#include "policy/policy_file.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace dnsproxy::policy {
namespace {

using Labels = std::map<std::string, std::string>;

// Every parse error goes through here so it carries "source:line:column".
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  tl::unexpected<Error> error_at(const YAML::Node& node, const std::string& message) const {
    const YAML::Mark mark = node.Mark();
    return fail(source_, ":", std::to_string(mark.line + 1), ":", std::to_string(mark.column + 1),
                ": ", message);
  }

  // Rejects keys outside `allowed`: a typo ("matchname") must not silently drop a rule.
  Result<void> only_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                         std::string_view what) const {
    if (!map.IsMap()) return error_at(map, std::string(what) + " must be a mapping");
    for (const auto& entry : map) {
      const std::string key = entry.first.as<std::string>();
      bool known = false;
      for (std::string_view a : allowed) known |= key == a;
      if (!known)
        return error_at(entry.first, "unknown key \"" + key + "\" in " + std::string(what));
    }
    return {};
  }

  Result<std::string> scalar(const YAML::Node& node, std::string_view what) const {
    if (!node.IsScalar()) return error_at(node, std::string(what) + " must be a scalar");
    return node.Scalar();
  }

  Result<uint64_t> number(const YAML::Node& node, std::string_view what, uint64_t max) const {
    auto text = scalar(node, what);
    if (!text) return tl::unexpected(text.error());
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value > max) {
      return error_at(node, std::string(what) + " must be a number 0.." + std::to_string(max) +
                                ", not \"" + *text + "\"");
    }
    return value;
  }

  Result<std::vector<YAML::Node>> sequence(const YAML::Node& node, std::string_view what) const {
    if (!node.IsDefined() || node.IsNull()) return std::vector<YAML::Node>{};
    if (!node.IsSequence()) return error_at(node, std::string(what) + " must be a list");
    return std::vector<YAML::Node>(node.begin(), node.end());
  }

  Result<Labels> labels(const YAML::Node& node, std::string_view what) const {
    Labels out;
    if (!node.IsDefined() || node.IsNull()) return out;
    if (!node.IsMap()) return error_at(node, std::string(what) + " must be a mapping of labels");
    for (const auto& entry : node) {
      auto value = scalar(entry.second, "a label value");
      if (!value) return tl::unexpected(value.error());
      out[entry.first.as<std::string>()] = *value;
    }
    return out;
  }

  // A selector: {matchLabels: {...}}; {} selects everything.
  Result<Labels> selector(const YAML::Node& node, std::string_view what) const {
    if (node.IsNull()) return Labels{};
    if (auto ok = only_keys(node, {"matchLabels"}, what); !ok) return tl::unexpected(ok.error());
    return labels(node["matchLabels"], "matchLabels");
  }

  Result<DefaultAction> action(const YAML::Node& node, std::string_view what) const {
    auto text = scalar(node, what);
    if (!text) return tl::unexpected(text.error());
    if (*text == "refuse") return DefaultAction::kRefuse;
    if (*text == "allow") return DefaultAction::kAllow;
    return error_at(node,
                    std::string(what) + " must be \"refuse\" or \"allow\", not \"" + *text + "\"");
  }

  Result<NamePattern> name_rule(const YAML::Node& node, std::string_view what) const {
    if (auto ok = only_keys(node, {"matchName", "matchPattern"}, what); !ok)
      return tl::unexpected(ok.error());
    const bool has_name = node["matchName"].IsDefined();
    const bool has_pattern = node["matchPattern"].IsDefined();
    if (has_name == has_pattern)
      return error_at(node, std::string(what) + " needs exactly one of matchName, matchPattern");
    const YAML::Node value = has_name ? node["matchName"] : node["matchPattern"];
    auto text = scalar(value, has_name ? "matchName" : "matchPattern");
    if (!text) return tl::unexpected(text.error());
    auto pattern = has_name ? parse_match_name(*text) : parse_match_pattern(*text);
    if (!pattern) return error_at(value, pattern.error().message);
    return pattern;
  }

 private:
  std::string source_;
};

bool selects(const Labels& selector, const Labels& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

struct LabelledIdentity {
  uint32_t identity;
  Labels labels;
};

struct LabelledEndpoint {
  uint32_t id;
  Labels labels;
};

Result<void> parse_settings(const Parser& p, const YAML::Node& node, PolicyFile& out) {
  if (!node.IsDefined() || node.IsNull()) return {};
  if (auto ok = p.only_keys(node, {"unknownSource", "portWithoutRules", "fqdn"}, "settings"); !ok)
    return ok;
  if (node["unknownSource"]) {
    auto a = p.action(node["unknownSource"], "settings.unknownSource");
    if (!a) return tl::unexpected(a.error());
    out.spec.defaults.unknown_source = *a;
  }
  if (node["portWithoutRules"]) {
    auto a = p.action(node["portWithoutRules"], "settings.portWithoutRules");
    if (!a) return tl::unexpected(a.error());
    out.spec.defaults.port_without_rules = *a;
  }
  if (const YAML::Node fqdn = node["fqdn"]) {
    if (auto ok = p.only_keys(fqdn, {"maxIpsPerName", "maxMappings", "minTtl"}, "settings.fqdn");
        !ok)
      return ok;
    if (fqdn["maxIpsPerName"]) {
      auto n = p.number(fqdn["maxIpsPerName"], "maxIpsPerName", 1u << 20);
      if (!n) return tl::unexpected(n.error());
      out.fqdn_limits.max_ips_per_name = *n;
    }
    if (fqdn["maxMappings"]) {
      auto n = p.number(fqdn["maxMappings"], "maxMappings", uint64_t{1} << 32);
      if (!n) return tl::unexpected(n.error());
      out.fqdn_limits.max_mappings = *n;
    }
    if (fqdn["minTtl"]) {
      auto n = p.number(fqdn["minTtl"], "minTtl (seconds)", 7 * 24 * 3600);
      if (!n) return tl::unexpected(n.error());
      out.fqdn_limits.min_ttl = std::chrono::seconds(*n);
    }
  }
  return {};
}

Result<std::vector<LabelledIdentity>> parse_identities(const Parser& p, const YAML::Node& node,
                                                       PolicyFile& out) {
  auto items = p.sequence(node, "identities");
  if (!items) return tl::unexpected(items.error());
  std::vector<LabelledIdentity> identities;
  for (const YAML::Node& item : *items) {
    if (auto ok = p.only_keys(item, {"id", "labels", "cidrs"}, "an identity"); !ok)
      return tl::unexpected(ok.error());
    if (!item["id"]) return p.error_at(item, "an identity needs an id");
    auto id = p.number(item["id"], "identity id", UINT32_MAX);
    if (!id) return tl::unexpected(id.error());
    auto labels = p.labels(item["labels"], "labels");
    if (!labels) return tl::unexpected(labels.error());
    identities.push_back({static_cast<uint32_t>(*id), *labels});
    auto cidrs = p.sequence(item["cidrs"], "cidrs");
    if (!cidrs) return tl::unexpected(cidrs.error());
    for (const YAML::Node& cidr : *cidrs) {
      auto text = p.scalar(cidr, "a CIDR");
      if (!text) return tl::unexpected(text.error());
      auto prefix = IpPrefix::parse(*text);
      if (!prefix) return p.error_at(cidr, prefix.error().message);
      out.ipcache.push_back({*prefix, static_cast<uint32_t>(*id)});
    }
  }
  return identities;
}

Result<std::vector<LabelledEndpoint>> parse_endpoints(const Parser& p, const YAML::Node& node,
                                                      PolicyFile& out,
                                                      std::vector<LabelledIdentity>& identities) {
  auto items = p.sequence(node, "endpoints");
  if (!items) return tl::unexpected(items.error());
  std::vector<LabelledEndpoint> endpoints;
  std::set<uint32_t> ids;
  std::set<IpAddress> addresses;
  for (const YAML::Node& item : *items) {
    if (auto ok = p.only_keys(item, {"id", "identity", "labels", "ips"}, "an endpoint"); !ok)
      return tl::unexpected(ok.error());
    if (!item["id"] || !item["identity"])
      return p.error_at(item, "an endpoint needs an id and an identity");
    auto id = p.number(item["id"], "endpoint id", UINT32_MAX);
    if (!id) return tl::unexpected(id.error());
    if (*id == 0) return p.error_at(item["id"], "endpoint id 0 is reserved (no endpoint)");
    if (!ids.insert(static_cast<uint32_t>(*id)).second)
      return p.error_at(item["id"], "endpoint id " + std::to_string(*id) + " appears twice");
    auto identity = p.number(item["identity"], "endpoint identity", UINT32_MAX);
    if (!identity) return tl::unexpected(identity.error());
    auto labels = p.labels(item["labels"], "labels");
    if (!labels) return tl::unexpected(labels.error());
    endpoints.push_back({static_cast<uint32_t>(*id), *labels});
    identities.push_back({static_cast<uint32_t>(*identity), *labels});
    auto ips = p.sequence(item["ips"], "ips");
    if (!ips) return tl::unexpected(ips.error());
    for (const YAML::Node& ip_node : *ips) {
      auto text = p.scalar(ip_node, "an IP");
      if (!text) return tl::unexpected(text.error());
      auto ip = IpAddress::parse(*text);
      if (!ip) return p.error_at(ip_node, ip.error().message);
      if (!addresses.insert(*ip).second)
        return p.error_at(ip_node, "address " + *text + " belongs to two endpoints");
      const EndpointInfo info{static_cast<uint32_t>(*id), static_cast<uint32_t>(*identity)};
      out.endpoints.push_back({*ip, info});
      out.ipcache.push_back(
          {IpPrefix{*ip, static_cast<uint8_t>(ip->max_prefix_length())}, info.identity});
    }
  }
  return endpoints;
}

// One egress rule -> DNS rules (one per toPorts[].ports[] entry) and toFQDNs patterns.
Result<void> parse_egress_rule(const Parser& p, const YAML::Node& rule,
                               const std::vector<LabelledIdentity>& identities,
                               EndpointPolicy& into) {
  if (auto ok = p.only_keys(rule, {"toEndpoints", "toPorts", "toFQDNs"}, "an egress rule"); !ok)
    return ok;
  ServerSelector servers;  // no toEndpoints: any DNS server
  if (rule["toEndpoints"]) {
    auto selectors = p.sequence(rule["toEndpoints"], "toEndpoints");
    if (!selectors) return tl::unexpected(selectors.error());
    servers.any = false;
    for (const YAML::Node& s : *selectors) {
      auto labels = p.selector(s, "a toEndpoints selector");
      if (!labels) return tl::unexpected(labels.error());
      if (labels->empty()) servers.any = true;  // {}: every endpoint and identity
      for (const LabelledIdentity& identity : identities)
        if (selects(*labels, identity.labels)) servers.identities.push_back(identity.identity);
    }
  }
  auto to_ports = p.sequence(rule["toPorts"], "toPorts");
  if (!to_ports) return tl::unexpected(to_ports.error());
  for (const YAML::Node& to_port : *to_ports) {
    if (auto ok = p.only_keys(to_port, {"ports", "rules"}, "a toPorts entry"); !ok) return ok;
    std::vector<NamePattern> patterns;
    if (const YAML::Node rules = to_port["rules"]) {
      if (auto ok = p.only_keys(rules, {"dns"}, "rules"); !ok) return ok;
      auto dns = p.sequence(rules["dns"], "rules.dns");
      if (!dns) return tl::unexpected(dns.error());
      for (const YAML::Node& d : *dns) {
        auto pattern = p.name_rule(d, "a rules.dns entry");
        if (!pattern) return tl::unexpected(pattern.error());
        patterns.push_back(std::move(*pattern));
      }
    }
    auto ports = p.sequence(to_port["ports"], "ports");
    if (!ports) return tl::unexpected(ports.error());
    if (ports->empty()) return p.error_at(to_port, "a toPorts entry needs at least one port");
    for (const YAML::Node& port_node : *ports) {
      if (auto ok = p.only_keys(port_node, {"port", "protocol"}, "a port"); !ok) return ok;
      if (!port_node["port"]) return p.error_at(port_node, "a port needs \"port\"");
      auto port = p.number(port_node["port"], "port", 65535);
      if (!port) return tl::unexpected(port.error());
      Protocol protocol = Protocol::kAny;
      if (port_node["protocol"]) {
        auto text = p.scalar(port_node["protocol"], "protocol");
        if (!text) return tl::unexpected(text.error());
        if (*text == "UDP")
          protocol = Protocol::kUdp;
        else if (*text == "TCP")
          protocol = Protocol::kTcp;
        else if (*text != "ANY")
          return p.error_at(port_node["protocol"],
                            "protocol must be UDP, TCP or ANY, not \"" + *text + "\"");
      }
      into.dns_rules.push_back({static_cast<uint16_t>(*port), protocol, servers, patterns});
    }
  }
  auto fqdns = p.sequence(rule["toFQDNs"], "toFQDNs");
  if (!fqdns) return tl::unexpected(fqdns.error());
  for (const YAML::Node& f : *fqdns) {
    auto pattern = p.name_rule(f, "a toFQDNs entry");
    if (!pattern) return tl::unexpected(pattern.error());
    into.to_fqdns.push_back(std::move(*pattern));
  }
  return {};
}

Result<void> parse_policies(const Parser& p, const YAML::Node& node,
                            const std::vector<LabelledEndpoint>& endpoints,
                            const std::vector<LabelledIdentity>& identities, PolicyFile& out) {
  auto items = p.sequence(node, "policies");
  if (!items) return tl::unexpected(items.error());
  std::map<uint32_t, EndpointPolicy> by_endpoint;
  for (const YAML::Node& item : *items) {
    if (auto ok = p.only_keys(item, {"name", "endpointSelector", "egress"}, "a policy"); !ok)
      return ok;
    if (!item["endpointSelector"]) return p.error_at(item, "a policy needs an endpointSelector");
    auto selector = p.selector(item["endpointSelector"], "endpointSelector");
    if (!selector) return tl::unexpected(selector.error());
    EndpointPolicy rules;
    auto egress = p.sequence(item["egress"], "egress");
    if (!egress) return tl::unexpected(egress.error());
    for (const YAML::Node& rule : *egress)
      if (auto ok = parse_egress_rule(p, rule, identities, rules); !ok) return ok;
    // Policies selecting the same endpoint add up, as CiliumNetworkPolicies do.
    for (const LabelledEndpoint& e : endpoints) {
      if (!selects(*selector, e.labels)) continue;
      EndpointPolicy& target = by_endpoint[e.id];
      target.endpoint_id = e.id;
      target.dns_rules.insert(target.dns_rules.end(), rules.dns_rules.begin(),
                              rules.dns_rules.end());
      target.to_fqdns.insert(target.to_fqdns.end(), rules.to_fqdns.begin(), rules.to_fqdns.end());
    }
  }
  for (auto& [id, policy] : by_endpoint) out.spec.endpoints.push_back(std::move(policy));
  return {};
}

}  // namespace

Result<PolicyFile> parse_policy_file(std::string_view yaml, std::string_view source) {
  const Parser p(source);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    PolicyFile out;
    if (root.IsNull()) {  // an empty file: no endpoints, no rules
      out.rules = std::make_shared<const RuleSet>();
      return out;
    }
    if (auto ok =
            p.only_keys(root, {"settings", "identities", "endpoints", "policies"}, "the file");
        !ok)
      return tl::unexpected(ok.error());
    if (auto ok = parse_settings(p, root["settings"], out); !ok) return tl::unexpected(ok.error());
    auto identities = parse_identities(p, root["identities"], out);
    if (!identities) return tl::unexpected(identities.error());
    auto endpoints = parse_endpoints(p, root["endpoints"], out, *identities);
    if (!endpoints) return tl::unexpected(endpoints.error());
    if (auto ok = parse_policies(p, root["policies"], *endpoints, *identities, out); !ok)
      return tl::unexpected(ok.error());
    // Compile once here so a rule the matcher cannot take is reported as a file error too.
    auto rules = RuleSet::compile(out.spec);
    if (!rules) return fail(source, ": ", rules.error().message);
    out.rules = std::make_shared<const RuleSet>(std::move(*rules));
    return out;
  } catch (const YAML::Exception& e) {
    return fail(source, ":", std::to_string(e.mark.line + 1), ":",
                std::to_string(e.mark.column + 1), ": ", e.msg);
  }
}

Result<PolicyFile> load_policy_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_policy_file(text.str(), path);
}

Result<PolicyFile> apply_policy_file(const std::string& path, SnapshotStore& store) {
  auto file = load_policy_file(path);
  if (!file) return file;
  store.replace({file->rules, std::make_shared<const EndpointTable>(file->endpoints),
                 std::make_shared<const IpCache>(file->ipcache), nullptr});
  return file;
}

}  // namespace dnsproxy::policy
