// dnsproxy-loadgen end to end: the real binary in the client namespace, AF_XDP on the client's
// veth, against knotd through the node's kernel forwarding. Checks its figures against what
// must be true (every query of a clean path answered, the rate kept, NOERROR), that the JSON is
// complete, that the interface works for the kernel's own traffic meanwhile, and its errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test/support/privileges.h"
#include "test/support/topology.h"

namespace dnsproxy::test {
namespace {

const std::string kLoadgen = LOADGEN_PATH;

class LoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string missing = missing_capabilities(); !missing.empty())
      GTEST_SKIP() << "needs " << missing;
    auto topology = Topology::create();
    ASSERT_TRUE(topology) << topology.error().message;
    topology_ = std::move(*topology);
    auto knotd = Knotd::start(topology_->upstream(), 100);
    ASSERT_TRUE(knotd) << knotd.error().message;
    knotd_ = std::move(*knotd);
    auto queries = knotd_->write_query_file(100);
    ASSERT_TRUE(queries) << queries.error().message;
    queries_ = *queries;
  }

  nlohmann::json run_json(std::vector<std::string> extra) {
    std::vector<std::string> argv = {kLoadgen, "-i", "eth0", "-d", queries_, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto out = topology_->client().run(argv);
    EXPECT_TRUE(out) << out.error().message;
    if (!out) return {};
    EXPECT_EQ(out->exit_code, 0) << out->output;
    return nlohmann::json::parse(out->output, nullptr, false);
  }

  std::unique_ptr<Topology> topology_;
  std::unique_ptr<Knotd> knotd_;
  std::string queries_;
};

TEST_F(LoadgenTest, ClosedLoopEveryQueryAnsweredV4AndV6) {
  for (const char* server : {Topology::kUpstreamV4, Topology::kUpstreamV6}) {
    const nlohmann::json r = run_json({"-s", server, "-l", "2", "-q", "64"});
    ASSERT_TRUE(r.is_object()) << server;
    EXPECT_GT(r["completed"].get<uint64_t>(), 1000u) << r.dump();
    EXPECT_EQ(r["completed"], r["sent"]) << r.dump();
    EXPECT_EQ(r["lost"], 0) << r.dump();
    EXPECT_EQ(r["unmatched"], 0) << r.dump();
    EXPECT_EQ(r["rcodes"]["NOERROR"], r["completed"]) << r.dump();
    EXPECT_GT(r["latency_us"]["p50"].get<double>(), 0.0);
    EXPECT_LE(r["latency_us"]["p50"].get<double>(), r["latency_us"]["p99"].get<double>());
    EXPECT_TRUE(r["offered_qps"].is_null());
  }
}

TEST_F(LoadgenTest, OpenLoopKeepsTheRate) {
  const nlohmann::json r = run_json({"-s", Topology::kUpstreamV4, "-l", "2", "-Q", "2000"});
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["offered_qps"], 2000.0);
  EXPECT_TRUE(r["rate_reached"].get<bool>()) << r.dump();
  // Open loop: the count is the schedule's (2000/s for 2 s, +1 for the query due at 0).
  EXPECT_NEAR(r["sent"].get<double>(), 4000.0, 40.0) << r.dump();
  EXPECT_EQ(r["completed"], r["sent"]) << r.dump();
  uint64_t histogram_total = 0;
  for (const auto& bucket : r["histogram_us"]) histogram_total += bucket[1].get<uint64_t>();
  EXPECT_EQ(histogram_total, r["completed"].get<uint64_t>());
}

// --tx xdp: the kernel builds the queries as XDP frames. The node forwards in the kernel, so its
// end of the link needs NAPI to take XDP frames: GRO on gives it that without an XDP program.
TEST_F(LoadgenTest, TxXdpEveryQueryAnsweredV4AndV6) {
  auto gro = topology_->node().run({"ethtool", "-K", Topology::kNodeClientSide, "gro", "on"});
  ASSERT_TRUE(gro && gro->exit_code == 0) << (gro ? gro->output : gro.error().message);
  for (const char* server : {Topology::kUpstreamV4, Topology::kUpstreamV6}) {
    const nlohmann::json r = run_json({"-s", server, "-l", "2", "-q", "64", "--tx", "xdp"});
    ASSERT_TRUE(r.is_object()) << server;
    EXPECT_NE(r["setup"].get<std::string>().find("TX by XDP frames"), std::string::npos);
    EXPECT_GT(r["completed"].get<uint64_t>(), 1000u) << r.dump();
    EXPECT_EQ(r["completed"], r["sent"]) << r.dump();
    EXPECT_EQ(r["lost"], 0) << r.dump();
    EXPECT_EQ(r["unmatched"], 0) << r.dump();
    EXPECT_EQ(r["xdp_build_failures"], 0) << r.dump();
    EXPECT_EQ(r["xdp_run_errors"], 0) << r.dump();
    EXPECT_EQ(r["rcodes"]["NOERROR"], r["completed"]) << r.dump();
  }
  const nlohmann::json r =
      run_json({"-s", Topology::kUpstreamV4, "-l", "2", "-Q", "2000", "--tx", "xdp"});
  ASSERT_TRUE(r.is_object());
  EXPECT_TRUE(r["rate_reached"].get<bool>()) << r.dump();
  EXPECT_NEAR(r["sent"].get<double>(), 4000.0, 40.0) << r.dump();
  EXPECT_EQ(r["completed"], r["sent"]) << r.dump();
}

// --threaded-napi: the client's receive NAPI in a kernel thread while the run lasts, off again
// afterwards (sysfs shows a namespace's interfaces only to `ip netns exec`'s own mount of it).
TEST_F(LoadgenTest, ThreadedNapiWhileRunningOffAfterwards) {
  const nlohmann::json r =
      run_json({"-s", Topology::kUpstreamV4, "-l", "2", "-q", "64", "--threaded-napi"});
  ASSERT_TRUE(r.is_object());
  EXPECT_NE(r["setup"].get<std::string>().find("threaded NAPI"), std::string::npos) << r.dump();
  EXPECT_GT(r["completed"].get<uint64_t>(), 1000u) << r.dump();
  EXPECT_EQ(r["completed"], r["sent"]) << r.dump();
  EXPECT_EQ(r["lost"], 0) << r.dump();
  auto threaded = run_command(
      {"ip", "netns", "exec", topology_->client().name(), "cat", "/sys/class/net/eth0/threaded"});
  ASSERT_TRUE(threaded) << threaded.error().message;
  EXPECT_EQ(threaded->output, "0\n");
}

// Nothing answers on port 5353: every query is lost, none completed (the counts can say no).
TEST_F(LoadgenTest, NoServerEverythingLost) {
  const nlohmann::json r =
      run_json({"-s", Topology::kUpstreamV4, "-p", "5353", "-l", "1", "-Q", "500", "-t", "0.2"});
  ASSERT_TRUE(r.is_object());
  EXPECT_GT(r["sent"].get<uint64_t>(), 400u);
  EXPECT_EQ(r["completed"], 0);
  EXPECT_EQ(r["lost"], r["sent"]) << r.dump();
}

// The client's kernel traffic passes while the load generator holds the interface.
TEST_F(LoadgenTest, KernelTrafficPassesMeanwhile) {
  auto load = BackgroundProcess::start({kLoadgen, "-i", "eth0", "-d", queries_, "-s",
                                        Topology::kUpstreamV4, "-l", "3", "-Q", "1000"},
                                       &topology_->client(), "/dev/null");
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto dig = topology_->client().run(
      {"kdig", "@" + std::string(Topology::kUpstreamV4), "+short", "www.example.test", "A"});
  ASSERT_TRUE(dig);
  EXPECT_EQ(dig->exit_code, 0) << dig->output;
  EXPECT_NE(dig->output.find("203.0.113."), std::string::npos) << dig->output;
  EXPECT_EQ(load->stop(std::chrono::milliseconds(5000)), 0);
}

TEST_F(LoadgenTest, BadInputExitCodes) {
  const std::string bad_file = knotd_->directory() + "/bad-queries.txt";
  std::ofstream(bad_file) << "www.example.test A\nwww..example.test A\n";
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"-i", "eth0", "-s", "198.51.100.999", "-d", queries_}, 2, "not an IPv4 or IPv6"},
           {{"-i", "eth0", "-s", Topology::kUpstreamV4, "-d", bad_file}, 2, ":2: bad name"},
           {{"-i", "nosuch0", "-s", Topology::kUpstreamV4, "-d", queries_},
            3,
            "interface nosuch0 not found"},
           {{"-i", "lo", "-s", Topology::kUpstreamV4, "-d", queries_}, 3, "leaves through eth0"},
           {{"-i", "eth0", "-s", Topology::kUpstreamV4, "-d", queries_, "-Q", "0"}, 105, "rate"},
           {{"-i", "eth0", "-s", Topology::kUpstreamV4, "-d", queries_, "--tx", "ring"},
            105,
            "--tx"},
       }) {
    std::vector<std::string> argv = {kLoadgen};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto out = topology_->client().run(argv);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->exit_code, c.code) << out->output;
    EXPECT_NE(out->output.find(c.message), std::string::npos) << out->output;
  }
}

}  // namespace
}  // namespace dnsproxy::test
