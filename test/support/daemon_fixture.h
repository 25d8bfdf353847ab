// The common ground of the e2e suites that run dnsproxyd: the test topology (topology.h) with
// knotd and, on request, the application servers (app_servers.h), a bpf filesystem of the test's
// own (a pin directory per daemon started), files the test writes (removed with the fixture),
// and readers for the daemon's stats snapshot (README, "Stats file").
//
// The readers return ~0 when a group is missing from the snapshot, so an assertion that expects
// a count fails loudly on an empty or truncated snapshot instead of passing on a 0.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "test/support/app_servers.h"
#include "test/support/bpffs.h"
#include "test/support/topology.h"

namespace dnsproxy::test {

// Stats snapshot readers, by section: totals.counters, totals.drops, control, l3_guard.
[[nodiscard]] uint64_t counter(const nlohmann::json& stats, std::string_view name);
[[nodiscard]] uint64_t drop(const nlohmann::json& stats, std::string_view name);
[[nodiscard]] uint64_t control(const nlohmann::json& stats, std::string_view name);
[[nodiscard]] uint64_t l3_guard(const nlohmann::json& stats, std::string_view name);
// Frames parked now, over all workers.
[[nodiscard]] uint64_t parked_frames(const nlohmann::json& stats);

// host<first>.example.test, ... host<first + count - 1>.example.test (Knotd's zone).
[[nodiscard]] std::vector<std::string> host_names(unsigned first, unsigned count);

struct NodeSetup {
  unsigned names = 100;      // hostN names in knotd's zone
  unsigned queues = 1;       // per veth
  bool app_servers = false;  // TCP/UDP servers on the upstream, for resolve-then-connect
};

class DaemonFixture : public ::testing::Test {
 protected:
  void TearDown() override;

  // Topology, knotd, bpf filesystem (and the application servers): call under
  // ASSERT_NO_FATAL_FAILURE.
  void build(NodeSetup setup = {});
  // A pin directory of its own for each daemon started, on this test's bpf filesystem.
  [[nodiscard]] std::string new_pin_dir();
  // dnsproxyd -i cli0 -i up0 `args` in the node namespace (nullptr, and a failure recorded, if
  // it did not come up); a new pin directory unless `pin_dir` is given.
  [[nodiscard]] std::unique_ptr<Dnsproxyd> start_daemon(std::vector<std::string> args,
                                                        std::string pin_dir = "");
  // Writes `text` to a file of this test named `name`, removed at teardown; returns its path.
  std::string write_file(const std::string& name, const std::string& text);
  // kdig from the client namespace: its whole output (status line included), or the error.
  std::string kdig(const std::string& server, const std::string& name, const std::string& type,
                   std::vector<std::string> options = {"+time=2", "+retry=0"});

  // A fresh snapshot (SIGUSR1), or the last one written if none came (a failure is recorded).
  static nlohmann::json snapshot(Dnsproxyd& daemon);
  // Takes snapshots until `done` holds for one (true) or `timeout` passes (false); the last one
  // is left in `last`.
  static bool wait_for(Dnsproxyd& daemon, const std::function<bool(const nlohmann::json&)>& done,
                       nlohmann::json& last,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Declared first so it is unmounted last, after every daemon that pinned into it; the servers
  // go before the topology they route in.
  std::unique_ptr<BpfFsMount> bpffs_;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<Knotd> knotd_;
  std::unique_ptr<AppServers> servers_;

 private:
  int pin_dirs_ = 0;
  std::filesystem::path files_;  // this test's files, created on first use
};

}  // namespace dnsproxy::test
