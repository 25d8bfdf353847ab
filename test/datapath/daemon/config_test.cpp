// Config validation and the worker plan, as data: each rejected value its own case, each with the
// flag it names and exit 2; the plan's queue -> worker assignment and its fill share check.
#include <gtest/gtest.h>

#include <string>

#include "datapath/daemon/config.h"
#include "datapath/daemon/worker_plan.h"

namespace dnsproxy::daemon {
namespace {

Config valid_config() {
  Config config;
  config.interfaces = {"cli0", "up0"};
  config.forward_all = true;
  config.cpus = {0};
  return config;
}

TEST(ConfigTest, TheDefaultsWithAnInterfaceAndForwardAllAreValid) {
  Config config = valid_config();
  config.cpus.clear();
  ASSERT_TRUE(validate(config)) << validate(config).error().message;
  EXPECT_EQ(config.cpus.size(), 1u) << "the first allowed CPU is filled in";
}

TEST(ConfigTest, EveryBadValueIsExit2AndNamesItsFlag) {
  struct Case {
    const char* what;
    void (*mutate)(Config&);
    const char* message;
  };
  const Case cases[] = {
      {"no forward-all", [](Config& c) { c.forward_all = false; }, "--forward-all"},
      {"no interface", [](Config& c) { c.interfaces.clear(); }, "-i/--interface"},
      {"a CPU not ours", [](Config& c) { c.cpus = {100000}; }, "--cpus"},
      {"too many interfaces", [](Config& c) { c.interfaces.assign(100, "x"); }, "-i/--interface"},
      {"too many ports", [](Config& c) { c.dns_ports.assign(100, 53); }, "--dns-port"},
      {"port 0", [](Config& c) { c.dns_ports = {0}; }, "--dns-port 0"},
      {"batch 0", [](Config& c) { c.batch_size = 0; }, "--batch-size"},
      {"batch > ring", [](Config& c) { c.batch_size = 4096; }, "--batch-size"},
      {"frame size", [](Config& c) { c.frame_size = 3000; }, "frame size 3000"},
      {"bind mode", [](Config& c) { c.bind_mode = "fast"; }, "--bind-mode"},
      {"xdp mode", [](Config& c) { c.xdp_mode = "turbo"; }, "--xdp-mode"},
      {"chain-into relative", [](Config& c) { c.chain_into = "xdp_root_array"; }, "--chain-into"},
      {"package without key", [](Config& c) { c.bpf_package = "/x/dns_steer.tar.gz"; },
       "--bpf-package and --trusted-key go together"},
      {"key without package", [](Config& c) { c.trusted_key = "/etc/dnsproxy/package.pub"; },
       "--bpf-package and --trusted-key go together"},
      {"xdp mode when chained",
       [](Config& c) {
         c.chain_into = "/sys/fs/bpf/n0/xdp-root/1/xdp_root_array";
         c.xdp_mode = "native";
       },
       "--xdp-mode does not apply with --chain-into"},
      {"tcp dns", [](Config& c) { c.tcp_dns = "police"; }, "--tcp-dns"},
      {"stats interval 0",
       [](Config& c) {
         c.stats_file = "/tmp/x";
         c.stats_interval = 0;
       },
       "--stats-interval"},
      {"agent with forward-all", [](Config& c) { c.agent = "unix:/run/agent.sock"; },
       "give exactly one of --forward-all, --policy FILE and --agent unix:PATH"},
      {"agent with a policy file",
       [](Config& c) {
         c.forward_all = false;
         c.policy_file = "p.yaml";
         c.agent = "unix:/run/agent.sock";
       },
       "--policy and --agent exclude each other: with --agent the policy comes from the agent"},
      {"agent not unix",
       [](Config& c) {
         c.forward_all = false;
         c.agent = "localhost:50051";
       },
       "--agent: \"localhost:50051\" is not unix:PATH"},
      {"agent with the embedded agent's delay",
       [](Config& c) {
         c.forward_all = false;
         c.agent = "unix:/run/agent.sock";
         c.agent_plumb_delay = 5;
       },
       "--agent-plumb-delay is the embedded agent's"},
      {"plumbing batch of 0", [](Config& c) { c.plumb_batch_max = 0; }, "--plumb-batch-max"},
      {"plumbing batch delay as long as the max delay",
       [](Config& c) {
         c.max_delay = 2;
         c.plumb_batch_delay = 2000;
       },
       "--plumb-batch-delay (2000 us) must be shorter than --max-delay (2 ms)"},
      {"agent uid without an agent",
       [](Config& c) {
         c.forward_all = false;
         c.policy_file = "p.yaml";
         c.agent_uid = 1000;
       },
       "--agent-uid needs --agent"},
  };
  for (const Case& c : cases) {
    Config config = valid_config();
    c.mutate(config);
    const auto valid = validate(config);
    ASSERT_FALSE(valid) << c.what;
    EXPECT_EQ(valid.error().code, kExitBadConfig) << c.what;
    EXPECT_NE(valid.error().message.find(c.message), std::string::npos)
        << c.what << ": " << valid.error().message;
  }
}

TEST(WorkerPlanTest, QueueQGoesToWorkerQModuloWorkersOnEveryInterface) {
  Config config = valid_config();
  config.cpus = {3, 5};
  auto plan = plan_workers(config, {4, 4});
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->workers.size(), 2u);
  EXPECT_TRUE(plan->warnings.empty());
  EXPECT_EQ(plan->workers[0].cpu, 3u);
  EXPECT_EQ(plan->workers[1].cpu, 5u);
  const auto& w1 = plan->workers[1].sockets;
  ASSERT_EQ(w1.size(), 4u);  // queues 1 and 3 of both interfaces
  EXPECT_EQ(w1[0].interface, 0u);
  EXPECT_EQ(w1[0].queue, 1u);
  EXPECT_EQ(w1[1].queue, 3u);
  EXPECT_EQ(w1[2].interface, 1u);
  EXPECT_EQ(w1[2].queue, 1u);
}

TEST(WorkerPlanTest, MoreCpusThanQueuesRunsOneWorkerPerQueueAndSaysSo) {
  Config config = valid_config();
  config.cpus = {0, 1, 2};
  auto plan = plan_workers(config, {1, 2});
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->workers.size(), 2u);
  ASSERT_EQ(plan->warnings.size(), 2u);  // unequal queue counts, and CPUs left idle
  EXPECT_NE(plan->warnings[0].find("different queue counts"), std::string::npos);
  EXPECT_NE(plan->warnings[1].find("running 2 workers"), std::string::npos);
}

TEST(WorkerPlanTest, AFillShareUnderOneBatchIsRefused) {
  Config config = valid_config();
  config.umem_frames = 4096;
  auto ok = plan_workers(config, {32, 32});  // 64 sockets x 64 frames: just fits
  EXPECT_TRUE(ok);
  auto plan = plan_workers(config, {33, 33});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, kExitBadConfig);
  EXPECT_NE(plan.error().message.find("--umem-frames 4096"), std::string::npos)
      << plan.error().message;
}

}  // namespace
}  // namespace dnsproxy::daemon
