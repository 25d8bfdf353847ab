// The common ground of the external agent's e2e suites (agent_link_test, agent_resilience_test):
// DaemonFixture plus the reference agent dnsproxy-agent as a subprocess, dnsproxyd --agent on
// its socket, both on one pin directory. The policy is frontend_policy() with every hostN name
// allowed and selected for toFQDNs (the client is endpoint 101); the agent reads it and sends it
// to dnsproxyd over the Policy stream, which keeps it in the fixture's --policy-state file.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/daemon_fixture.h"
#include "test/support/netns.h"

namespace dnsproxy::test {

class AgentFixture : public DaemonFixture {
 protected:
  void TearDown() override;  // the daemon, then the agent, then the fixture's files

  // DaemonFixture::build, then the policy file, the agent's socket path and the shared pin dir.
  void build_with_agent(NodeSetup setup);
  // dnsproxy-agent --listen, --policy, --pin-dir (the shared one unless given), --stats-file,
  // then `extra`; returns once it serves. A restarted agent takes up the same pins.
  void start_agent(std::vector<std::string> extra = {}, std::string pin_dir = "");
  void kill_agent();  // SIGKILL, as a crash: its socket file and pins stay
  int stop_agent();   // SIGTERM: its exit code (it writes its final stats)
  [[nodiscard]] std::string agent_log() const;
  // The counters of the agent's last stats file ({} when there is none).
  [[nodiscard]] nlohmann::json agent_counters() const;
  // dnsproxyd --agent --policy-state --stats-interval 50 `extra`, on the shared pin dir, into
  // daemon_; with `wait_for_policy`, returns once the agent's policy is in force (stats
  // policy.source "agent"), so the first query is decided by it.
  void start_daemon_with_agent(std::vector<std::string> extra = {}, bool wait_for_policy = true);
  // Takes snapshots of daemon_ until `done` holds for one (true) or `timeout` passes.
  [[nodiscard]] bool wait_stats(const std::function<bool(const nlohmann::json&)>& done,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // A fresh snapshot of daemon_.
  [[nodiscard]] nlohmann::json stats() { return snapshot(*daemon_); }
  // Its policy section's `key` ("" when there is none).
  [[nodiscard]] static std::string policy_field(const nlohmann::json& stats, const char* key);

  std::string policy_;
  std::string socket_path_;
  std::string agent_target_;  // unix:socket_path_
  std::string pin_dir_;
  std::string policy_state_;  // dnsproxyd's --policy-state
  std::unique_ptr<BackgroundProcess> agent_;
  std::unique_ptr<Dnsproxyd> daemon_;

 private:
  std::string directory_;  // the fixture's files' directory
};

}  // namespace dnsproxy::test
