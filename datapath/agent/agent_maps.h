// The agent's BPF maps, owned in one place for both agents that own them: the embedded agent in
// dnsproxyd (embedded_agent.h) and the reference agent dnsproxy-agent (tools/dnsproxy-agent/).
//   dnsproxy_endpoints, dnsproxy_ipcache, dnsproxy_policy_gen, dnsproxy_ipcache_log
//     the endpoint table and ipcache the proxy's PolicyMirror reads, filled from a policy file;
//   dnsproxy_fqdn_allow
//     the L3 allow map l3_guard enforces: each plumbed (endpoint, IP) until its expiry plus a
//     grace period.
// Creating and pinning them, loading a policy file into them, plumbing (writing the allow map)
// and expiring plumbed entries. Not thread-safe: one caller at a time (every call is a syscall
// on the control plane; the agent that owns it serializes).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/agent/allow_map.h"
#include "datapath/policy_mirror.h"
#include "policy/policy_file.h"

namespace dnsproxy::datapath::agent {

struct AgentMapsConfig {
  // How long an allow-map entry outlives the TTL of its mapping: a connection opened just before
  // the TTL ran out keeps working meanwhile, and the proxy's own view (the PlumbedSet, without
  // grace) always expires first, so it never releases a response on plumbing about to vanish.
  std::chrono::seconds grace{10};
  uint32_t max_endpoints = 65536;
  uint32_t max_prefixes = 1u << 20;
};

enum class AgentMapsCounter : uint8_t {
  kBatchesPlumbed,    // batches written to the allow map and reported plumbed
  kBatchesFailed,     // batches with a map write that failed (reported failed)
  kAddressesPlumbed,  // (endpoint, IP) writes
  kAllowExpired,      // allow-map entries removed after their expiry
  kPolicyLoads,       // policy files written to the endpoint and ipcache maps
  kCount,
};
constexpr std::array<std::string_view, 5> counter_names(AgentMapsCounter) {
  return {"agent_batches_plumbed", "agent_batches_failed", "agent_addresses_plumbed",
          "agent_allow_expired", "agent_policy_loads"};
}

// Where the agent's maps are pinned: `dir`/<name> for the names above.
PinnedPolicyMaps pinned_policy_maps(const std::string& dir);
std::string pinned_allow_map(const std::string& dir);

class AgentMaps {
 public:
  // Fresh, empty maps, not pinned yet.
  [[nodiscard]] static Result<std::unique_ptr<AgentMaps>> create(AgentMapsConfig config);
  // A long-lived agent's maps: the ones pinned under `dir` when all five are there (a previous
  // run's, so what it plumbed stays plumbed and a running dnsproxyd keeps reading the same maps),
  // else fresh ones pinned there (stale partial pins replaced). These pins outlive this object:
  // the state is the node's, not the process's. `reused` says which happened.
  [[nodiscard]] static Result<std::unique_ptr<AgentMaps>> open_or_create_pinned(
      AgentMapsConfig config, const std::string& dir, bool& reused);
  ~AgentMaps();  // unpins what pin() pinned
  AgentMaps(const AgentMaps&) = delete;
  AgentMaps& operator=(const AgentMaps&) = delete;

  // Pins every map under `dir` (a directory on a bpf filesystem the caller holds), replacing pins
  // a dead run left there; they are removed again at destruction (the embedded agent's way: its
  // maps live as long as dnsproxyd).
  [[nodiscard]] Result<void> pin(const std::string& dir);
  // Makes the endpoint map and ipcache hold exactly what `file` lists (writes, then deletes).
  [[nodiscard]] Result<void> load_policy(const policy::PolicyFile& file);

  // Writes (endpoint, ip) for each address until its expiry plus the grace. A failed write does
  // not stop the others (those addresses work); the first failure is returned.
  [[nodiscard]] Result<void> plumb_name(uint32_t endpoint_id,
                                        std::span<const pipeline::PlumbAddress> addresses);
  // Every name of `batch`; plumbed only when every write succeeded. Counted as one batch.
  [[nodiscard]] BatchResult plumb(const pipeline::PlumbBatch& batch);
  // Counts a batch the caller plumbed name by name (plumb_name).
  void count_batch(bool plumbed) noexcept;
  // Removes the allow-map entries expired at `now`: only those (the expiry index), so its cost
  // does not grow with the plumbed entries that stay.
  void expire(pipeline::Clock::time_point now);

  [[nodiscard]] const AllowMap& allow_map() const noexcept { return allow_; }
  [[nodiscard]] const PolicyMaps& policy_maps() const noexcept { return maps_; }
  [[nodiscard]] const CounterSet<AgentMapsCounter>& counters() const noexcept { return counters_; }

 private:
  AgentMaps(AgentMapsConfig config, PolicyMaps maps, AllowMap allow)
      : config_(config), maps_(std::move(maps)), allow_(std::move(allow)) {}
  // A reused allow map's entries into the expiry index (one walk, at start).
  [[nodiscard]] Result<void> index_allow_map();

  // Every allow-map write, soonest expiry first: when it falls due, expire() looks at that entry
  // alone (a write that was extended since is looked at again at its own, later, item).
  struct Expiry {
    pipeline::Clock::time_point at;
    uint32_t endpoint_id;
    policy::IpAddress ip;
    bool operator>(const Expiry& other) const noexcept { return at > other.at; }
  };

  AgentMapsConfig config_;
  PolicyMaps maps_;
  AllowMap allow_;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
  std::vector<std::string> pinned_;  // removed at destruction
  CounterSet<AgentMapsCounter> counters_;
};

}  // namespace dnsproxy::datapath::agent
