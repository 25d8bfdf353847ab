// The common ground of the external agent's e2e suites (agent_link_test, agent_resilience_test,
// agent_policy_test): DaemonFixture plus the reference agent dnsproxy-agent as a subprocess,
// dnsproxyd --agent on its socket, both on one pin directory. The policy is frontend_policy() with
// every hostN name allowed and selected for toFQDNs (the client is endpoint 101); the agent reads
// it and sends it to dnsproxyd over the Policy stream, which keeps it in the fixture's
// --policy-state file. The load (issue 12: each behaviour under load, losses counted) is dnsperf
// from the client namespace at a fixed rate, in the foreground or across an event the test
// causes, read from dnsperf's report.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "test/support/daemon_fixture.h"
#include "test/support/netns.h"

namespace dnsproxy::test {

// What dnsperf reports (its text summary: dnsperf has no machine-readable output).
struct DnsperfReport {
  uint64_t sent = 0;
  uint64_t completed = 0;
  uint64_t lost = 0;
  std::map<std::string, uint64_t> rcodes;
  double min_latency_s = 0;
  double max_latency_s = 0;
  std::string output;
  [[nodiscard]] uint64_t rcode(const char* name) const {
    const auto found = rcodes.find(name);
    return found == rcodes.end() ? 0 : found->second;
  }
};
[[nodiscard]] DnsperfReport parse_dnsperf(std::string output);

// dnsperf running in the background, so that an event happens under its load.
struct DnsperfLoad {
  BackgroundProcess process;
  std::string log;  // its output
  // Waits for it to end (a failure, and it is stopped, if it still runs after `timeout`), then
  // its report.
  [[nodiscard]] DnsperfReport finish(std::chrono::milliseconds timeout = std::chrono::seconds(6));
};

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

  // A dnsperf input file: AAAA for hostN, N in [first, first + count).
  [[nodiscard]] std::string queries(unsigned first, unsigned count);
  // Each name of `file` once, as fast as the path answers.
  [[nodiscard]] DnsperfReport resolve_once(const std::string& file) const;
  // `file` over and over at `rate` queries per second for `seconds`.
  [[nodiscard]] DnsperfReport resolve_at(const std::string& file, unsigned rate,
                                         unsigned seconds) const;
  // The same started in the background (nullopt, and a failure recorded, if it did not start).
  [[nodiscard]] std::optional<DnsperfLoad> resolve_at_in_background(const std::string& file,
                                                                    unsigned rate,
                                                                    unsigned seconds);
  // dnsperf from the client namespace to knotd's address (through the proxy) with `extra`.
  [[nodiscard]] DnsperfReport dnsperf(const std::vector<std::string>& extra) const;
  // Its command line: a query unanswered after 2 s is lost.
  [[nodiscard]] static std::vector<std::string> dnsperf_args(const std::vector<std::string>& extra);
  // `file` at `rate` for `seconds` through daemon_ (started with --max-delay `max_delay_ms`):
  // every query answered NOERROR and none waited for the agent, by the daemon's counters (each
  // response released as plumbed, none parked) and by dnsperf's max latency (a parked response
  // waits for the ACK or the max delay).
  void expect_resolved_at_once(const std::string& file, unsigned rate, unsigned seconds,
                               int max_delay_ms);

  std::string policy_;
  std::string socket_path_;
  std::string agent_target_;  // unix:socket_path_
  std::string pin_dir_;
  std::string policy_state_;  // dnsproxyd's --policy-state
  std::unique_ptr<BackgroundProcess> agent_;
  std::unique_ptr<Dnsproxyd> daemon_;

 private:
  std::string directory_;  // the fixture's files' directory
  unsigned loads_ = 0;     // background dnsperf runs started, for their logs' names
};

}  // namespace dnsproxy::test
