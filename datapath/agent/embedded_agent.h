// The embedded agent (DESIGN.md 7), dnsproxyd's own stand-in for cilium-agent when no external
// agent is configured. It owns the agent's pinned BPF maps (agent_maps.h: the endpoint table and
// ipcache the mirror reads, the L3 allow map l3_guard enforces) for as long as dnsproxyd runs.
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

#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/agent/agent_maps.h"

namespace dnsproxy::datapath::agent {

struct EmbeddedAgentConfig {
  std::chrono::milliseconds plumb_delay{0};
  AgentMapsConfig maps;
};

class EmbeddedAgent final : public Agent {
 public:
  [[nodiscard]] static Result<std::unique_ptr<EmbeddedAgent>> create(EmbeddedAgentConfig config);

  // Pins every map under `dir` (AgentMaps::pin: stale pins replaced, unpinned at destruction).
  [[nodiscard]] Result<void> pin(const std::string& dir) { return maps_->pin(dir); }
  // Makes the endpoint map and ipcache hold exactly what `file` lists.
  [[nodiscard]] Result<void> load_policy(const policy::PolicyFile& file) {
    return maps_->load_policy(file);
  }

  void submit(pipeline::PlumbBatch batch) override;
  [[nodiscard]] int event_fd() const noexcept override { return timer_.get(); }
  void poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) override;
  void expire(pipeline::Clock::time_point now) override { maps_->expire(now); }
  [[nodiscard]] LinkState link_state() const noexcept override { return LinkState::kUp; }
  [[nodiscard]] std::string_view kind() const noexcept override { return "embedded"; }
  void for_each_counter(const CounterVisitor& use) const override {
    maps_->counters().for_each(use);
  }

  [[nodiscard]] const AllowMap& allow_map() const noexcept { return maps_->allow_map(); }
  [[nodiscard]] const CounterSet<AgentMapsCounter>& counters() const noexcept {
    return maps_->counters();
  }

 private:
  EmbeddedAgent(EmbeddedAgentConfig config, std::unique_ptr<AgentMaps> maps, Fd timer)
      : config_(config), maps_(std::move(maps)), timer_(std::move(timer)) {}
  void arm_timer(pipeline::Clock::time_point now);

  struct Due {
    pipeline::Clock::time_point at;
    pipeline::PlumbBatch batch;
  };
  EmbeddedAgentConfig config_;
  std::unique_ptr<AgentMaps> maps_;
  Fd timer_;             // CLOCK_MONOTONIC timerfd
  std::deque<Due> due_;  // in submit order, so in `at` order (one delay for all)
};

}  // namespace dnsproxy::datapath::agent
