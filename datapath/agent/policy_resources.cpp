#include "datapath/agent/policy_resources.h"

#include <charconv>
#include <set>

#include <fmt/format.h>

namespace dnsproxy::datapath::agent {
namespace {

constexpr std::string_view kDns = "dns/";
constexpr std::string_view kIdentity = "identity/";
constexpr std::string_view kFqdn = "fqdn/";
constexpr std::string_view kSettings = "settings";

std::string hash_text(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", hash);
}

// The kind a name's prefix says; the body must be of it.
v1::PolicyResource::BodyCase body_for(std::string_view name) {
  if (name.starts_with(kDns)) return v1::PolicyResource::kDns;
  if (name.starts_with(kIdentity)) return v1::PolicyResource::kIdentity;
  if (name.starts_with(kFqdn)) return v1::PolicyResource::kFqdn;
  if (name == kSettings) return v1::PolicyResource::kSettings;
  return v1::PolicyResource::BODY_NOT_SET;
}

Result<uint32_t> endpoint_of(std::string_view name) {
  const std::string_view id = name.substr(name.find('/') + 1);
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (error != std::errc() || end != id.data() + id.size() || value == 0)
    return fail("resource ", name, ": \"", id, "\" is not an endpoint id 1..4294967295");
  return value;
}

// The name and the body agree: the body's kind is the name's, and its endpoint id the name's.
Result<void> check_name(const v1::PolicyResource& resource) {
  const std::string& name = resource.name();
  const auto expected = body_for(name);
  if (expected == v1::PolicyResource::BODY_NOT_SET)
    return fail("resource \"", name, "\": unknown kind (not dns/, identity/, fqdn/ or settings)");
  if (resource.body_case() != expected)
    return fail("resource ", name, ": its body is not of the kind its name says");
  if (expected == v1::PolicyResource::kSettings) return {};
  auto id = endpoint_of(name);
  if (!id) return tl::unexpected(id.error());
  const uint32_t body_id = expected == v1::PolicyResource::kDns ? resource.dns().endpoint_id()
                           : expected == v1::PolicyResource::kIdentity
                               ? resource.identity().endpoint_id()
                               : resource.fqdn().endpoint_id();
  if (body_id != *id)
    return fail("resource ", name, ": its body is for endpoint ", std::to_string(body_id));
  return {};
}

Result<policy::NamePattern> decode_pattern(const v1::NamePattern& pattern) {
  switch (pattern.kind()) {
    case v1::NamePattern::KIND_MATCH_NAME:
      return policy::parse_match_name(pattern.text());
    case v1::NamePattern::KIND_MATCH_PATTERN:
      return policy::parse_match_pattern(pattern.text());
    default:
      return fail("\"", pattern.text(), "\": neither matchName nor matchPattern");
  }
}

Result<std::vector<policy::NamePattern>> decode_patterns(
    const google::protobuf::RepeatedPtrField<v1::NamePattern>& patterns) {
  std::vector<policy::NamePattern> out;
  for (const v1::NamePattern& pattern : patterns) {
    auto decoded = decode_pattern(pattern);
    if (!decoded) return tl::unexpected(decoded.error());
    out.push_back(std::move(*decoded));
  }
  return out;
}

Result<policy::DnsRule> decode_rule(const v1::DnsRule& rule) {
  if (rule.port() > 65535) return fail("port ", std::to_string(rule.port()), " is not 0..65535");
  policy::DnsRule out;
  out.port = static_cast<uint16_t>(rule.port());
  switch (rule.protocol()) {
    case 0:
      out.protocol = policy::Protocol::kAny;
      break;
    case 6:
      out.protocol = policy::Protocol::kTcp;
      break;
    case 17:
      out.protocol = policy::Protocol::kUdp;
      break;
    default:
      return fail("protocol ", std::to_string(rule.protocol()), " is not 0 (any), 6 or 17");
  }
  out.servers.any = rule.any_server();
  out.servers.identities.assign(rule.server_identities().begin(), rule.server_identities().end());
  auto patterns = decode_patterns(rule.patterns());
  if (!patterns) return tl::unexpected(patterns.error());
  out.patterns = std::move(*patterns);
  return out;
}

Result<policy::IpAddress> decode_address(const std::string& bytes) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() == 4) return policy::IpAddress::v4(std::span<const uint8_t, 4>(data, 4));
  if (bytes.size() == 16) return policy::IpAddress::v6(std::span<const uint8_t, 16>(data, 16));
  return fail("an address of ", std::to_string(bytes.size()), " bytes (not 4 or 16)");
}

policy::DefaultAction decode_action(v1::DefaultAction action) {
  return action == v1::DEFAULT_ACTION_ALLOW ? policy::DefaultAction::kAllow
                                            : policy::DefaultAction::kRefuse;
}

v1::DefaultAction encode_action(policy::DefaultAction action) {
  return action == policy::DefaultAction::kAllow ? v1::DEFAULT_ACTION_ALLOW
                                                 : v1::DEFAULT_ACTION_REFUSE;
}

// The policy file's patterns keep only their normalized text: one with a star can only have been
// a matchPattern, and one without means the same as a matchName.
void encode_patterns(const std::vector<policy::NamePattern>& patterns,
                     google::protobuf::RepeatedPtrField<v1::NamePattern>& out) {
  for (const policy::NamePattern& pattern : patterns) {
    v1::NamePattern& encoded = *out.Add();
    encoded.set_kind(pattern.text.find('*') == std::string::npos
                         ? v1::NamePattern::KIND_MATCH_NAME
                         : v1::NamePattern::KIND_MATCH_PATTERN);
    encoded.set_text(pattern.text);
  }
}

// The bodies hold no map fields, so their serialization is deterministic: equal content, equal
// bytes, equal version.
void add(PolicyResources& resources, v1::PolicyResource resource) {
  resource.set_version(hash_text(resource.SerializeAsString()));
  std::string name = resource.name();
  resources.insert_or_assign(std::move(name), std::move(resource));
}

// The FQDN cache's bounds a settings resource gives, each absent one the default.
Result<policy::FqdnCacheLimits> decode_fqdn_limits(const v1::PolicySettings& settings) {
  constexpr uint32_t kMaxMinTtl = 7 * 24 * 3600;  // as a policy file's settings.fqdn.minTtl
  policy::FqdnCacheLimits limits;
  if (settings.has_max_ips_per_name()) {
    if (settings.max_ips_per_name() == 0) return fail("max_ips_per_name must be at least 1");
    limits.max_ips_per_name = settings.max_ips_per_name();
  }
  if (settings.has_max_mappings()) {
    if (settings.max_mappings() == 0) return fail("max_mappings must be at least 1");
    limits.max_mappings = settings.max_mappings();
  }
  if (settings.has_min_ttl_seconds()) {
    if (settings.min_ttl_seconds() > kMaxMinTtl)
      return fail("min_ttl_seconds ", std::to_string(settings.min_ttl_seconds()),
                  " is more than 7 days");
    limits.min_ttl = std::chrono::seconds(settings.min_ttl_seconds());
  }
  return limits;
}

}  // namespace

PolicyState::PolicyState() {
  policy_.rules = std::make_shared<const policy::RuleSet>();
}

Result<PolicyState> PolicyState::applied(const v1::PolicyResponse& response) const {
  PolicyResources resources = resources_;
  std::set<std::string_view> named;
  for (const v1::PolicyResource& resource : response.resources()) {
    if (!named.insert(resource.name()).second)
      return fail("resource ", resource.name(), " appears twice in one response");
    if (auto ok = check_name(resource); !ok) return tl::unexpected(ok.error());
    resources.insert_or_assign(resource.name(), resource);
  }
  // Removing what is not held is no error (xDS): the agent's view may be a step behind.
  for (const std::string& name : response.removed_resources()) resources.erase(name);
  return build(std::move(resources), response.system_version_info());
}

Result<PolicyState> PolicyState::build(PolicyResources resources, std::string version) {
  PolicyState state;
  state.version_ = std::move(version);
  policy::PolicyFile& file = state.policy_;
  std::map<uint32_t, policy::EndpointPolicy> endpoints;
  std::set<policy::IpAddress> addresses;
  for (const auto& [name, resource] : resources) {
    const auto error = [&name](const Error& e) { return fail("resource ", name, ": ", e.message); };
    switch (resource.body_case()) {
      case v1::PolicyResource::kSettings: {
        const v1::PolicySettings& settings = resource.settings();
        file.spec.defaults = {decode_action(settings.unknown_source()),
                              decode_action(settings.port_without_rules())};
        auto limits = decode_fqdn_limits(settings);
        if (!limits) return error(limits.error());
        file.fqdn_limits = *limits;
        break;
      }
      case v1::PolicyResource::kIdentity: {
        const v1::EndpointIdentity& identity = resource.identity();
        state.identities_[identity.endpoint_id()] = identity.identity();
        for (const std::string& bytes : identity.addresses()) {
          auto address = decode_address(bytes);
          if (!address) return error(address.error());
          if (!addresses.insert(*address).second)
            return fail("resource ", name, ": address ", address->to_string(),
                        " belongs to two endpoints");
          file.endpoints.push_back({*address, {identity.endpoint_id(), identity.identity()}});
        }
        break;
      }
      case v1::PolicyResource::kDns: {
        policy::EndpointPolicy& endpoint = endpoints[resource.dns().endpoint_id()];
        endpoint.endpoint_id = resource.dns().endpoint_id();
        for (int i = 0; i < resource.dns().rules_size(); ++i) {
          auto rule = decode_rule(resource.dns().rules(i));
          if (!rule)
            return fail("resource ", name, ": rule ", std::to_string(i + 1), ": ",
                        rule.error().message);
          endpoint.dns_rules.push_back(std::move(*rule));
        }
        break;
      }
      case v1::PolicyResource::kFqdn: {
        policy::EndpointPolicy& endpoint = endpoints[resource.fqdn().endpoint_id()];
        endpoint.endpoint_id = resource.fqdn().endpoint_id();
        auto patterns = decode_patterns(resource.fqdn().selectors());
        if (!patterns) return error(patterns.error());
        endpoint.to_fqdns = std::move(*patterns);
        break;
      }
      case v1::PolicyResource::BODY_NOT_SET:
        return fail("resource ", name, ": no body");
    }
  }
  for (auto& [id, endpoint] : endpoints) file.spec.endpoints.push_back(std::move(endpoint));
  auto rules = policy::RuleSet::compile(file.spec);
  if (!rules) return fail("the policy does not compile: ", rules.error().message);
  file.rules = std::make_shared<const policy::RuleSet>(std::move(*rules));
  state.resources_ = std::move(resources);
  return state;
}

std::string PolicyState::serialize() const {
  v1::PolicyState out;
  out.set_system_version_info(version_);
  for (const auto& [name, resource] : resources_) *out.add_resources() = resource;
  return out.SerializeAsString();
}

Result<PolicyState> PolicyState::parse(std::string_view bytes, std::string_view source) {
  v1::PolicyState in;
  if (!in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return fail(source, ": not a policy state (no PolicyState message)");
  PolicyResources resources;
  for (const v1::PolicyResource& resource : in.resources()) {
    if (auto ok = check_name(resource); !ok) return fail(source, ": ", ok.error().message);
    resources.insert_or_assign(resource.name(), resource);
  }
  auto state = build(std::move(resources), in.system_version_info());
  if (!state) return fail(source, ": ", state.error().message);
  return state;
}

ResourceVersions PolicyState::versions() const {
  ResourceVersions out;
  for (const auto& [name, resource] : resources_) out.emplace(name, resource.version());
  return out;
}

uint32_t PolicyState::identity_of(uint32_t endpoint_id) const noexcept {
  const auto found = identities_.find(endpoint_id);
  return found == identities_.end() ? 0 : found->second;
}

PolicyResources encode_policy(const policy::PolicyFile& file) {
  PolicyResources resources;
  v1::PolicyResource settings;
  settings.set_name(std::string(kSettings));
  settings.mutable_settings()->set_unknown_source(encode_action(file.spec.defaults.unknown_source));
  settings.mutable_settings()->set_port_without_rules(
      encode_action(file.spec.defaults.port_without_rules));
  settings.mutable_settings()->set_max_ips_per_name(
      static_cast<uint32_t>(file.fqdn_limits.max_ips_per_name));
  settings.mutable_settings()->set_max_mappings(file.fqdn_limits.max_mappings);
  settings.mutable_settings()->set_min_ttl_seconds(
      static_cast<uint32_t>(file.fqdn_limits.min_ttl.count()));
  add(resources, std::move(settings));
  std::map<uint32_t, v1::PolicyResource> identities;
  for (const policy::EndpointEntry& entry : file.endpoints) {
    v1::PolicyResource& resource = identities[entry.info.endpoint_id];
    resource.set_name(fmt::format("{}{}", kIdentity, entry.info.endpoint_id));
    v1::EndpointIdentity& identity = *resource.mutable_identity();
    identity.set_endpoint_id(entry.info.endpoint_id);
    identity.set_identity(entry.info.identity);
    const size_t length = entry.address.family == policy::Family::kV4 ? 4 : 16;
    identity.add_addresses(reinterpret_cast<const char*>(entry.address.bytes.data()), length);
  }
  for (auto& [id, resource] : identities) add(resources, std::move(resource));
  for (const policy::EndpointPolicy& endpoint : file.spec.endpoints) {
    v1::PolicyResource dns;
    dns.set_name(fmt::format("{}{}", kDns, endpoint.endpoint_id));
    dns.mutable_dns()->set_endpoint_id(endpoint.endpoint_id);
    for (const policy::DnsRule& rule : endpoint.dns_rules) {
      v1::DnsRule& encoded = *dns.mutable_dns()->add_rules();
      encoded.set_port(rule.port);
      encoded.set_protocol(static_cast<uint32_t>(rule.protocol));
      encoded.set_any_server(rule.servers.any);
      for (const uint32_t identity : rule.servers.identities)
        encoded.add_server_identities(identity);
      encode_patterns(rule.patterns, *encoded.mutable_patterns());
    }
    add(resources, std::move(dns));
    if (endpoint.to_fqdns.empty()) continue;
    v1::PolicyResource fqdn;
    fqdn.set_name(fmt::format("{}{}", kFqdn, endpoint.endpoint_id));
    fqdn.mutable_fqdn()->set_endpoint_id(endpoint.endpoint_id);
    encode_patterns(endpoint.to_fqdns, *fqdn.mutable_fqdn()->mutable_selectors());
    add(resources, std::move(fqdn));
  }
  return resources;
}

std::string policy_version(const PolicyResources& resources) {
  std::string all;
  for (const auto& [name, resource] : resources) all += name + '=' + resource.version() + '\n';
  return hash_text(all);
}

v1::PolicyResponse policy_delta(const ResourceVersions& held, const PolicyResources& wanted) {
  v1::PolicyResponse delta;
  delta.set_system_version_info(policy_version(wanted));
  for (const auto& [name, resource] : wanted) {
    const auto found = held.find(name);
    if (found == held.end() || found->second != resource.version())
      *delta.add_resources() = resource;
  }
  for (const auto& [name, version] : held)
    if (!wanted.contains(name)) delta.add_removed_resources(name);
  return delta;
}

}  // namespace dnsproxy::datapath::agent
