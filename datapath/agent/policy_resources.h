// The Policy stream's resources (proto/dnsproxy/v1/agent.proto, "Policy") for both ends: the
// reference agent turns its policy file into resources and sends each proxy the difference from
// what it holds (encode_policy, policy_delta); the proxy keeps the resources it accepted and the
// policy they make (PolicyState). Cold path, no gRPC: protobuf messages only, so the delta logic
// is unit-tested without a link.
//
// A response is taken whole or not at all: PolicyState::applied() builds the state the response
// leads to on a copy, validates and compiles it, and only a caller that could install that result
// replaces its state with it. A NACK therefore leaves the last good policy in force.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "dnsproxy/v1/agent.pb.h"
#include "policy/policy_file.h"

namespace dnsproxy::datapath::agent {

// name -> resource, ordered by name (so a rebuilt policy lists endpoints in id order).
using PolicyResources = std::map<std::string, v1::PolicyResource>;
// name -> version: what a proxy holds (initial_resource_versions) or was sent.
using ResourceVersions = std::map<std::string, std::string>;

class PolicyState {
 public:
  PolicyState();  // no resources: the empty policy (every query from an endpoint refused)

  // The state after `response` (its resources added or replaced, its removals removed), checked
  // and compiled; *this is left as it was. The error names the offending resource.
  [[nodiscard]] Result<PolicyState> applied(const v1::PolicyResponse& response) const;

  // The persisted form (--policy-state) and back; parse() validates as applied() does, and
  // `source` names the bytes in its errors.
  [[nodiscard]] std::string serialize() const;
  [[nodiscard]] static Result<PolicyState> parse(std::string_view bytes, std::string_view source);

  [[nodiscard]] ResourceVersions versions() const;
  // The policy the resources make: spec and compiled rules, the endpoints' addresses and
  // identities (no ipcache, no FQDN limits: the agent's maps and the defaults).
  [[nodiscard]] const policy::PolicyFile& policy() const noexcept { return policy_; }
  [[nodiscard]] const std::string& version() const noexcept { return version_; }
  [[nodiscard]] size_t resource_count() const noexcept { return resources_.size(); }
  // The identity of an endpoint (0 when it has none): a mapping's source_identity.
  [[nodiscard]] uint32_t identity_of(uint32_t endpoint_id) const noexcept;

 private:
  [[nodiscard]] static Result<PolicyState> build(PolicyResources resources, std::string version);

  PolicyResources resources_;
  std::string version_;  // the agent's system_version_info of the last response taken
  policy::PolicyFile policy_;
  std::map<uint32_t, uint32_t> identities_;  // endpoint id -> identity
};

// The agent's side: one resource per endpoint and kind, and "settings", each versioned by a hash
// of its content (so an unchanged resource keeps its version across restarts and reloads).
[[nodiscard]] PolicyResources encode_policy(const policy::PolicyFile& file);
// A hash of every (name, version): the whole policy's version (system_version_info).
[[nodiscard]] std::string policy_version(const PolicyResources& resources);
// What a proxy holding `held` lacks of `wanted`: the resources whose version differs or that it
// does not hold, and the removal of those it holds that `wanted` has not. No nonce.
[[nodiscard]] v1::PolicyResponse policy_delta(const ResourceVersions& held,
                                              const PolicyResources& wanted);

}  // namespace dnsproxy::datapath::agent
