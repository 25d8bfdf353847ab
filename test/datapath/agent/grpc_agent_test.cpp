// GrpcAgent against the real reference agent (dnsproxy-agent, run as a subprocess) over a real
// unix socket, with the agent's maps pinned on a private bpf filesystem: a batch is in the
// pinned allow map before it is reported plumbed; nobody listening yet is a retry, not an error;
// the agent vanishing brings the link down once and keeps what was unanswered for the restarted
// agent; a hung agent's batches go to the next one; the agent's faults (--ack-delay,
// --drop-stream-after, --stop-answering); a peer with another uid is refused; the bound on what
// is kept.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "datapath/agent/agent_maps.h"
#include "datapath/agent/grpc_agent.h"
#include "test/support/bpffs.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath::agent {
namespace {

using namespace std::chrono_literals;
using policy::IpAddress;

const std::string kAgent = DNSPROXY_AGENT_PATH;

constexpr const char* kPolicy = R"(endpoints:
  - {id: 101, identity: 10001, labels: {app: frontend}, ips: [192.0.2.10]}
policies: []
)";

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

pipeline::PlumbBatch batch(uint64_t id, const char* address, Clock::time_point expires) {
  // "\3api\4test\0": the pipeline's lowercased wire form.
  return {.id = id,
          .names = {{.endpoint_id = 101,
                     .name = std::string("\3api\4test\0", 10),
                     .addresses = {{ip(address), expires}}}}};
}

bool readable(int fd, int timeout_ms) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// Polls the agent as the control loop would (on event_fd()) until `done` or `timeout`; the
// results that came meanwhile are appended to `results`.
bool poll_until(GrpcAgent& agent, std::vector<BatchResult>& results,
                const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
  const auto until = Clock::now() + timeout;
  while (!done() && Clock::now() < until)
    if (readable(agent.event_fd(), 20)) agent.poll(Clock::now(), results);
  return done();
}

// Polls until `want` results came (or 5 s passed).
std::vector<BatchResult> wait_results(GrpcAgent& agent, size_t want) {
  std::vector<BatchResult> results;
  poll_until(agent, results, [&] { return results.size() >= want; });
  return results;
}

class GrpcAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("dnsproxy-grpc-agent-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
    std::ofstream(directory_ / "policy.yaml") << kPolicy;
    socket_ = "unix:" + (directory_ / "agent.sock").string();
  }
  void TearDown() override {
    agent_.reset();
    std::filesystem::remove_all(directory_);
  }

  // dnsproxy-agent with `extra` flags; the bpf filesystem is made once and kept across restarts,
  // so a restarted agent takes up the pins of the one before.
  void start_agent(std::vector<std::string> extra = {}) {
    if (!bpffs_) {
      auto bpffs = test::BpfFsMount::create();
      ASSERT_TRUE(bpffs) << bpffs.error().message;
      bpffs_ = std::make_unique<test::BpfFsMount>(std::move(*bpffs));
    }
    std::vector<std::string> args = {
        kAgent,      "--listen", socket_,        "--policy",  (directory_ / "policy.yaml").string(),
        "--pin-dir", pin_dir(),  "--stats-file", stats_file()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto agent = test::BackgroundProcess::start(args, nullptr, (directory_ / "agent.log").string());
    ASSERT_TRUE(agent) << agent.error().message;
    agent_ = std::make_unique<test::BackgroundProcess>(std::move(*agent));
    for (int i = 0; i < 200 && !std::filesystem::exists(directory_ / "agent.sock"); ++i)
      std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(std::filesystem::exists(directory_ / "agent.sock")) << log();
  }
  void kill_agent() {
    ASSERT_EQ(::kill(agent_->pid(), SIGKILL), 0);
    agent_->stop();  // reaps it
  }
  std::string pin_dir() const { return bpffs_->path() + "/dnsproxy"; }
  std::string stats_file() const { return (directory_ / "agent-stats.json").string(); }
  std::string log() const {
    std::ifstream in(directory_ / "agent.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  bool allowed(const char* address) const {
    auto allow = AllowMap::open_pinned(pinned_allow_map(pin_dir()));
    return allow && allow->allows(101, ip(address), Clock::now()).value_or(false);
  }
  Result<std::unique_ptr<GrpcAgent>> connect(uid_t agent_uid = 0, size_t max_kept = 65536) {
    return GrpcAgent::create({.target = socket_,
                              .identity_of = [](uint32_t) { return 7u; },
                              .agent_uid = agent_uid,
                              .max_kept_mappings = max_kept,
                              .backoff = {}});
  }
  static uint64_t count(const GrpcAgent& agent, GrpcAgentCounter counter) {
    return agent.counters().get(counter);
  }

  std::filesystem::path directory_;
  std::string socket_;
  std::unique_ptr<test::BpfFsMount> bpffs_;
  std::unique_ptr<test::BackgroundProcess> agent_;
};

TEST_F(GrpcAgentTest, ATargetThatIsNotAUnixSocketIsAClearError) {
  auto bad = GrpcAgent::create({.target = "tcp:1.2.3.4", .identity_of = {}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("is not unix:PATH"), std::string::npos);
}

// dnsproxyd starts before its agent (Cilium's model: the proxy keeps serving): nobody listening is
// a retry, the batch is kept meanwhile and sent once the agent is there.
TEST_F(GrpcAgentTest, NobodyListeningYetIsARetryAndTheBatchWaitsForTheAgent) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  EXPECT_EQ((*agent)->link_state(), LinkState::kConnecting);
  (*agent)->submit(batch(1, "203.0.113.7", Clock::now() + 30s));
  std::vector<BatchResult> results;
  ASSERT_TRUE(poll_until(**agent, results,
                         [&] { return count(**agent, GrpcAgentCounter::kConnectFailed) >= 2; }));
  EXPECT_TRUE(results.empty()) << "kept, not failed";
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesKept), 1u);

  ASSERT_NO_FATAL_FAILURE(start_agent());
  results = wait_results(**agent, 1);
  ASSERT_EQ(results.size(), 1u) << log();
  EXPECT_TRUE(results[0].plumbed) << results[0].error;
  EXPECT_EQ((*agent)->link_state(), LinkState::kUp);
  EXPECT_TRUE(allowed("203.0.113.7"));
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kLinkUp), 1u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesWaiting), 0u);
}

TEST_F(GrpcAgentTest, ABatchIsInThePinnedAllowMapBeforeItsAck) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  (*agent)->submit(batch(1, "203.0.113.7", now + 30s));
  (*agent)->submit(batch(2, "2001:db8:e::7", now + 30s));
  const std::vector<BatchResult> results = wait_results(**agent, 2);
  ASSERT_EQ(results.size(), 2u) << log();
  for (const BatchResult& result : results) EXPECT_TRUE(result.plumbed) << result.error;
  EXPECT_EQ((*agent)->link_state(), LinkState::kUp);
  auto allow = AllowMap::open_pinned(pinned_allow_map(pin_dir()));
  ASSERT_TRUE(allow) << allow.error().message;
  EXPECT_TRUE(*allow->allows(101, ip("203.0.113.7"), now + 39s));  // TTL + the agent's grace
  EXPECT_TRUE(*allow->allows(101, ip("2001:db8:e::7"), now));
  EXPECT_FALSE(*allow->allows(102, ip("203.0.113.7"), now));
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesAcked), 2u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kLinkUp), 1u);
  // The policy file's endpoint is in the pinned endpoint map the proxy's mirror reads.
  auto maps = PolicyMaps::open_pinned(pinned_policy_maps(pin_dir()));
  ASSERT_TRUE(maps) << maps.error().message;
  MapReadStats stats;
  EXPECT_EQ(maps->read_endpoints(stats)->size(), 1u);
}

// Killed: the link goes down once; what comes meanwhile is kept (nothing reported, so its parked
// responses follow the max delay); the restarted agent gets it, and the link is up again.
TEST_F(GrpcAgentTest, TheAgentRestartingGetsWhatWasKeptWhileItWasDown) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  (*agent)->submit(batch(1, "203.0.113.7", now + 30s));
  ASSERT_EQ(wait_results(**agent, 1).size(), 1u) << log();
  ASSERT_NO_FATAL_FAILURE(kill_agent());
  std::vector<BatchResult> results;
  ASSERT_TRUE(
      poll_until(**agent, results, [&] { return (*agent)->link_state() == LinkState::kDown; }));
  (*agent)->submit(batch(2, "203.0.113.8", now + 30s));
  poll_until(
      **agent, results, [] { return false; }, 200ms);
  EXPECT_TRUE(results.empty()) << results[0].error;
  EXPECT_FALSE(allowed("203.0.113.8"));
  EXPECT_TRUE(allowed("203.0.113.7")) << "the pins outlive the agent";

  ASSERT_NO_FATAL_FAILURE(start_agent());
  const auto restarted = Clock::now();
  results = wait_results(**agent, 1);
  ASSERT_EQ(results.size(), 1u) << log();
  EXPECT_LT(Clock::now() - restarted, 1s) << "backoff capped at 250 ms";
  EXPECT_EQ(results[0].batch_id, 2u);
  EXPECT_TRUE(results[0].plumbed) << results[0].error;
  EXPECT_TRUE(allowed("203.0.113.8"));
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kLinkDown), 1u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kLinkUp), 2u);
  // Batch 1 too: submitted before the first stream was up.
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesKept), 2u);
  EXPECT_GE(count(**agent, GrpcAgentCounter::kConnectFailed), 1u);
}

// --stop-answering: the stream stays up, nothing is ACKed; when that agent goes, the batch it
// sat on goes to the next one.
TEST_F(GrpcAgentTest, WhatAHungAgentSatOnGoesToTheNextOne) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent({"--stop-answering"}));
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  std::vector<BatchResult> results;
  ASSERT_TRUE(
      poll_until(**agent, results, [&] { return (*agent)->link_state() == LinkState::kUp; }));
  (*agent)->submit(batch(1, "203.0.113.9", Clock::now() + 30s));
  poll_until(
      **agent, results, [] { return false; }, 300ms);
  EXPECT_TRUE(results.empty());
  EXPECT_EQ((*agent)->link_state(), LinkState::kUp);
  EXPECT_EQ(agent_->stop(), 0) << log();

  ASSERT_NO_FATAL_FAILURE(start_agent());
  results = wait_results(**agent, 1);
  ASSERT_EQ(results.size(), 1u) << log();
  EXPECT_TRUE(results[0].plumbed) << results[0].error;
  EXPECT_TRUE(allowed("203.0.113.9"));
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesInterrupted), 1u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesSent), 2u);
}

// A stopped agent (SIGSTOP: the socket is open, nothing answers) is found by keepalive (a ping
// after 2 s idle, 1 s to answer), and the link is up again once it runs.
TEST_F(GrpcAgentTest, KeepaliveFindsAStoppedAgent) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  std::vector<BatchResult> results;
  ASSERT_TRUE(
      poll_until(**agent, results, [&] { return (*agent)->link_state() == LinkState::kUp; }));
  ASSERT_EQ(::kill(agent_->pid(), SIGSTOP), 0);
  const auto stopped = Clock::now();
  EXPECT_TRUE(poll_until(
      **agent, results, [&] { return (*agent)->link_state() == LinkState::kDown; }, 6s));
  EXPECT_LT(Clock::now() - stopped, 4500ms) << "keepalive: 2 s + 1 s";
  ASSERT_EQ(::kill(agent_->pid(), SIGCONT), 0);
  EXPECT_TRUE(poll_until(
      **agent, results, [&] { return count(**agent, GrpcAgentCounter::kLinkUp) == 2; }, 8s));
}

// --drop-stream-after 1: every stream ends after one ACK; the link comes back each time and every
// batch is plumbed in the end. --ack-delay: the ACK comes that much later.
TEST_F(GrpcAgentTest, AFlakyAndSlowAgentStillGetsEveryBatch) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent({"--drop-stream-after", "1", "--ack-delay", "100"}));
  auto agent = connect();
  ASSERT_TRUE(agent) << agent.error().message;
  const auto sent = Clock::now();
  for (uint64_t id = 1; id <= 3; ++id)
    (*agent)->submit(batch(id, ("203.0.113." + std::to_string(20 + id)).c_str(), sent + 30s));
  const std::vector<BatchResult> results = wait_results(**agent, 3);
  ASSERT_EQ(results.size(), 3u) << log();
  EXPECT_GE(Clock::now() - sent, 300ms) << "three ACKs, each 100 ms late";
  for (const BatchResult& result : results) EXPECT_TRUE(result.plumbed) << result.error;
  EXPECT_TRUE(allowed("203.0.113.23"));
  EXPECT_GE(count(**agent, GrpcAgentCounter::kLinkDown), 2u);
  EXPECT_GE(count(**agent, GrpcAgentCounter::kLinkUp), 3u);
}

// --agent-uid: the agent here runs as root, so a proxy expecting uid 65534 refuses it before any
// gRPC, keeps trying (and refusing), and keeps its batch.
TEST_F(GrpcAgentTest, AnAgentWithAnotherUidIsRefused) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = connect(65534);
  ASSERT_TRUE(agent) << agent.error().message;
  (*agent)->submit(batch(1, "203.0.113.30", Clock::now() + 30s));
  std::vector<BatchResult> results;
  ASSERT_TRUE(poll_until(**agent, results,
                         [&] { return count(**agent, GrpcAgentCounter::kPeerRefused) >= 2; }));
  EXPECT_TRUE(results.empty());
  EXPECT_EQ((*agent)->link_state(), LinkState::kConnecting);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kLinkUp), 0u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesSent), 0u);
  EXPECT_FALSE(allowed("203.0.113.30"));
}

// Beyond max_kept_mappings the oldest batches are dropped and reported failed, counted.
TEST_F(GrpcAgentTest, BeyondTheBoundTheOldestKeptBatchIsDropped) {
  auto agent = connect(0, 2);
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  for (uint64_t id = 1; id <= 3; ++id) (*agent)->submit(batch(id, "203.0.113.40", now + 30s));
  const std::vector<BatchResult> results = wait_results(**agent, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].batch_id, 1u);
  EXPECT_FALSE(results[0].plumbed);
  EXPECT_NE(results[0].error.find("beyond 2 kept"), std::string::npos) << results[0].error;
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesDropped), 1u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kMappingsDropped), 1u);
  EXPECT_EQ(count(**agent, GrpcAgentCounter::kBatchesWaiting), 2u);
}

}  // namespace
}  // namespace dnsproxy::datapath::agent
