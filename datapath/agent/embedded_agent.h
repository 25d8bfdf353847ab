// The embedded agent (DESIGN.md 7), dnsproxyd's own stand-in for cilium-agent when no external
// agent is configured. It owns the agent's pinned BPF maps:
//   dnsproxy_endpoints, dnsproxy_ipcache, dnsproxy_policy_gen, dnsproxy_ipcache_log
//     the endpoint table and ipcache the proxy's PolicyMirror reads, filled from the policy file;
//   dnsproxy_fqdn_allow
//     the L3 allow map l3_guard enforces: each plumbed (endpoint, IP) until its TTL plus a grace
//     period.
// A submitted batch is plumbed (its addresses written to the allow map) after `plumb_delay` (0 by
// default; an experiment's stand-in for a real agent computing policy), and only then reported as
// plumbed, so the ACK that releases a parked response always follows the map write.
//
// Control thread only. The timerfd behind event_fd() is armed for the earliest batch due.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/agent/allow_map.h"
#include "datapath/policy_mirror.h"
#include "policy/policy_file.h"

namespace dnsproxy::datapath::agent {

struct EmbeddedAgentConfig {
  std::chrono::milliseconds plumb_delay{0};
  // How long an allow-map entry outlives the TTL of its mapping: a connection opened just before
  // the TTL ran out keeps working meanwhile, and the proxy's own view (the PlumbedSet, without
  // grace) always expires first, so it never releases a response on plumbing about to vanish.
  std::chrono::seconds grace{10};
  uint32_t max_endpoints = 65536;
  uint32_t max_prefixes = 1u << 20;
};

enum class EmbeddedAgentCounter : uint8_t {
  kBatchesPlumbed,    // batches written to the allow map and reported plumbed
  kBatchesFailed,     // batches with a map write that failed (reported failed)
  kAddressesPlumbed,  // (endpoint, IP) writes
  kAllowExpired,      // allow-map entries removed after their expiry
  kPolicyLoads,       // policy files written to the endpoint and ipcache maps
  kCount,
};
constexpr std::array<std::string_view, 5> counter_names(EmbeddedAgentCounter) {
  return {"agent_batches_plumbed", "agent_batches_failed", "agent_addresses_plumbed",
          "agent_allow_expired", "agent_policy_loads"};
}

// Where the agent's maps are pinned: `dir`/<name> for the names above.
PinnedPolicyMaps pinned_policy_maps(const std::string& dir);
std::string pinned_allow_map(const std::string& dir);

class EmbeddedAgent final : public Agent {
 public:
  [[nodiscard]] static Result<std::unique_ptr<EmbeddedAgent>> create(EmbeddedAgentConfig config);
  ~EmbeddedAgent() override;  // unpins what it pinned

  // Pins every map under `dir` (a directory on a bpf filesystem the caller holds), replacing pins
  // a dead run left there.
  [[nodiscard]] Result<void> pin(const std::string& dir);
  // Makes the endpoint map and ipcache hold exactly what `file` lists (writes, then deletes).
  [[nodiscard]] Result<void> load_policy(const policy::PolicyFile& file);

  void submit(pipeline::PlumbBatch batch) override;
  [[nodiscard]] int event_fd() const noexcept override { return timer_.get(); }
  void poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) override;
  void expire(pipeline::Clock::time_point now) override;
  [[nodiscard]] LinkState link_state() const noexcept override { return LinkState::kUp; }
  [[nodiscard]] std::string_view kind() const noexcept override { return "embedded"; }

  [[nodiscard]] const AllowMap& allow_map() const noexcept { return allow_; }
  [[nodiscard]] const CounterSet<EmbeddedAgentCounter>& counters() const noexcept {
    return counters_;
  }

 private:
  EmbeddedAgent(EmbeddedAgentConfig config, PolicyMaps maps, AllowMap allow, Fd timer)
      : config_(config),
        maps_(std::move(maps)),
        allow_(std::move(allow)),
        timer_(std::move(timer)) {}
  [[nodiscard]] BatchResult plumb(const pipeline::PlumbBatch& batch);
  void arm_timer(pipeline::Clock::time_point now);

  struct Due {
    pipeline::Clock::time_point at;
    pipeline::PlumbBatch batch;
  };
  EmbeddedAgentConfig config_;
  PolicyMaps maps_;
  AllowMap allow_;
  Fd timer_;             // CLOCK_MONOTONIC timerfd
  std::deque<Due> due_;  // in submit order, so in `at` order (one delay for all)
  std::vector<std::string> pinned_;
  CounterSet<EmbeddedAgentCounter> counters_;
};

}  // namespace dnsproxy::datapath::agent
