// GrpcAgent against the real reference agent (dnsproxy-agent, run as a subprocess) over a real
// unix socket, with the agent's maps pinned on a private bpf filesystem: a batch is in the
// pinned allow map before it is reported plumbed; a missing socket is a clear error; the agent
// vanishing brings the link down once, fails what was unanswered and refuses what comes after.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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

// Polls until `want` results came (or 5 s passed).
std::vector<BatchResult> wait_results(GrpcAgent& agent, size_t want) {
  std::vector<BatchResult> results;
  const auto until = Clock::now() + 5s;
  while (results.size() < want && Clock::now() < until)
    if (readable(agent.event_fd(), 100)) agent.poll(Clock::now(), results);
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
  void TearDown() override { std::filesystem::remove_all(directory_); }

  void start_agent() {
    auto bpffs = test::BpfFsMount::create();
    ASSERT_TRUE(bpffs) << bpffs.error().message;
    bpffs_ = std::make_unique<test::BpfFsMount>(std::move(*bpffs));
    auto agent = test::BackgroundProcess::start(
        {kAgent, "--listen", socket_, "--policy", (directory_ / "policy.yaml").string(),
         "--pin-dir", pin_dir()},
        nullptr, (directory_ / "agent.log").string());
    ASSERT_TRUE(agent) << agent.error().message;
    agent_ = std::make_unique<test::BackgroundProcess>(std::move(*agent));
    for (int i = 0; i < 100 && !std::filesystem::exists(directory_ / "agent.sock"); ++i)
      std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(std::filesystem::exists(directory_ / "agent.sock")) << log();
  }
  std::string pin_dir() const { return bpffs_->path() + "/dnsproxy"; }
  std::string log() const {
    std::ifstream in(directory_ / "agent.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::filesystem::path directory_;
  std::string socket_;
  std::unique_ptr<test::BpfFsMount> bpffs_;
  std::unique_ptr<test::BackgroundProcess> agent_;
};

TEST_F(GrpcAgentTest, AMissingSocketIsAClearError) {
  auto agent = GrpcAgent::create({.target = socket_, .identity_of = {}});
  ASSERT_FALSE(agent);
  EXPECT_NE(agent.error().message.find("is dnsproxy-agent running with --listen " + socket_),
            std::string::npos)
      << agent.error().message;
  auto bad = GrpcAgent::create({.target = "tcp:1.2.3.4", .identity_of = {}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("is not unix:PATH"), std::string::npos);
}

TEST_F(GrpcAgentTest, ABatchIsInThePinnedAllowMapBeforeItsAck) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = GrpcAgent::create({.target = socket_, .identity_of = [](uint32_t) { return 7u; }});
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
  EXPECT_EQ((*agent)->counters().get(GrpcAgentCounter::kBatchesAcked), 2u);
  EXPECT_EQ((*agent)->counters().get(GrpcAgentCounter::kLinkUp), 1u);
  // The policy file's endpoint is in the pinned endpoint map the proxy's mirror reads.
  auto maps = PolicyMaps::open_pinned(pinned_policy_maps(pin_dir()));
  ASSERT_TRUE(maps) << maps.error().message;
  MapReadStats stats;
  EXPECT_EQ(maps->read_endpoints(stats)->size(), 1u);
}

TEST_F(GrpcAgentTest, TheAgentVanishingBringsTheLinkDownOnce) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(start_agent());
  auto agent = GrpcAgent::create({.target = socket_, .identity_of = {}});
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  (*agent)->submit(batch(1, "203.0.113.7", now + 30s));
  ASSERT_EQ(wait_results(**agent, 1).size(), 1u) << log();
  ::kill(agent_->pid(), SIGKILL);
  const auto until = Clock::now() + 5s;
  std::vector<BatchResult> results;
  while ((*agent)->link_state() != LinkState::kDown && Clock::now() < until)
    if (readable((*agent)->event_fd(), 100)) (*agent)->poll(Clock::now(), results);
  ASSERT_EQ((*agent)->link_state(), LinkState::kDown);
  (*agent)->submit(batch(2, "203.0.113.8", now + 30s));
  results = wait_results(**agent, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].batch_id, 2u);
  EXPECT_FALSE(results[0].plumbed);
  EXPECT_NE(results[0].error.find("agent link down"), std::string::npos) << results[0].error;
  EXPECT_EQ((*agent)->counters().get(GrpcAgentCounter::kLinkDown), 1u);
  EXPECT_EQ((*agent)->counters().get(GrpcAgentCounter::kBatchesRefused), 1u);
  // What was plumbed before stays plumbed: the pins outlive the agent.
  auto allow = AllowMap::open_pinned(pinned_allow_map(pin_dir()));
  ASSERT_TRUE(allow) << allow.error().message;
  EXPECT_TRUE(*allow->allows(101, ip("203.0.113.7"), now));
}

}  // namespace
}  // namespace dnsproxy::datapath::agent
