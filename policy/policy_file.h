// The policy file of the embedded mode (no external agent): endpoints, the identities of the
// DNS servers they may use, and egress DNS rules in the shape of a CiliumNetworkPolicy. The
// format is described in README.md ("Policy") and tools/policy.example.yaml.
//
// Cold path. A file is parsed and compiled completely before anything is replaced, so a bad
// file leaves the policy in force untouched; errors name the file, line and column.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/fqdn_cache.h"
#include "policy/rules.h"
#include "policy/snapshot.h"
#include "policy/tables.h"

namespace dnsproxy::policy {

struct PolicyFile {
  PolicySpec spec;                       // rules per endpoint, defaults
  std::shared_ptr<const RuleSet> rules;  // `spec` compiled
  std::vector<EndpointEntry> endpoints;  // what the embedded agent writes to the endpoint map
  std::vector<IpCacheEntry> ipcache;     // ... and to the ipcache map
  FqdnCacheLimits fqdn_limits;
};

// `source` names the text in error messages ("policy.yaml:12:7: ...").
[[nodiscard]] Result<PolicyFile> parse_policy_file(std::string_view yaml, std::string_view source);
[[nodiscard]] Result<PolicyFile> load_policy_file(const std::string& path);

// Parses and compiles `path`; only when everything succeeded are the rules, endpoint table and
// ipcache of `store` replaced. Returns the compiled file for the caller's other uses (filling the
// BPF maps, FQDN cache limits).
[[nodiscard]] Result<PolicyFile> apply_policy_file(const std::string& path, SnapshotStore& store);

}  // namespace dnsproxy::policy
