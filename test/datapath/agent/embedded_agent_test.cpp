// The embedded agent over real BPF maps: a batch is written to the allow map (TTL plus grace)
// before it is reported plumbed, a plumb delay holds the answer back, its timerfd says when to
// poll, and a policy file's endpoints and prefixes land in the maps the mirror reads.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <thread>

#include "datapath/agent/embedded_agent.h"
#include "test/support/bpffs.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath::agent {
namespace {

using namespace std::chrono_literals;
using policy::IpAddress;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

pipeline::PlumbBatch batch(uint64_t id, Clock::time_point expires) {
  return {.id = id,
          .names = {{.endpoint_id = 101,
                     .name = "api",
                     .addresses = {{ip("203.0.113.7"), expires}, {ip("2001:db8:e::7"), expires}}}}};
}

bool readable(int fd, int timeout_ms) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(EmbeddedAgentTest, PlumbsABatchIntoTheAllowMapBeforeReportingIt) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto agent = EmbeddedAgent::create({.maps = {.grace = 10s}});
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  (*agent)->submit(batch(7, now + 30s));
  ASSERT_TRUE(readable((*agent)->event_fd(), 1000));
  std::vector<BatchResult> results;
  (*agent)->poll(Clock::now(), results);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].batch_id, 7u);
  EXPECT_TRUE(results[0].plumbed) << results[0].error;
  const AllowMap& allow = (*agent)->allow_map();
  EXPECT_TRUE(*allow.allows(101, ip("203.0.113.7"), now + 39s));  // TTL + grace
  EXPECT_FALSE(*allow.allows(101, ip("203.0.113.7"), now + 41s));
  EXPECT_TRUE(*allow.allows(101, ip("2001:db8:e::7"), now));
  EXPECT_FALSE(*allow.allows(102, ip("203.0.113.7"), now));
  EXPECT_EQ((*agent)->counters().get(AgentMapsCounter::kAddressesPlumbed), 2u);
  // Expiry removes both once TTL + grace passed.
  (*agent)->expire(now + 41s);
  EXPECT_EQ(*allow.size(), 0u);
  EXPECT_EQ((*agent)->counters().get(AgentMapsCounter::kAllowExpired), 2u);
}

// Expiry looks only at what falls due (an index, not a walk of the map): an entry plumbed again
// with a later expiry stays until that one.
TEST(EmbeddedAgentTest, AnEntryPlumbedAgainLaterStaysUntilItsLaterExpiry) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto agent = EmbeddedAgent::create({.maps = {.grace = 0s}});
  ASSERT_TRUE(agent) << agent.error().message;
  const auto now = Clock::now();
  std::vector<BatchResult> results;
  for (auto [id, ttl] : {std::pair{1u, 30s}, std::pair{2u, 60s}}) {
    (*agent)->submit(batch(id, now + ttl));
    ASSERT_TRUE(readable((*agent)->event_fd(), 1000));
    (*agent)->poll(Clock::now(), results);
  }
  ASSERT_EQ(results.size(), 2u);
  (*agent)->expire(now + 31s);
  const AllowMap& allow = (*agent)->allow_map();
  EXPECT_EQ(*allow.size(), 2u) << "both addresses were extended to 60 s";
  EXPECT_EQ((*agent)->counters().get(AgentMapsCounter::kAllowExpired), 0u);
  (*agent)->expire(now + 61s);
  EXPECT_EQ(*allow.size(), 0u);
  EXPECT_EQ((*agent)->counters().get(AgentMapsCounter::kAllowExpired), 2u);
}

// A restarted agent takes up the pinned maps a previous run left, and expires what that run
// plumbed (indexed once at start).
TEST(EmbeddedAgentTest, MapsReusedFromPinsExpireWhatTheLastRunPlumbed) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto bpffs = test::BpfFsMount::create();
  ASSERT_TRUE(bpffs) << bpffs.error().message;
  const auto now = Clock::now();
  {
    bool reused = true;
    auto first = AgentMaps::open_or_create_pinned({.grace = 0s}, bpffs->path(), reused);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_FALSE(reused);
    EXPECT_TRUE((*first)->plumb(batch(1, now + 30s)).plumbed);
  }
  bool reused = false;
  auto second = AgentMaps::open_or_create_pinned({.grace = 0s}, bpffs->path(), reused);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(reused);
  EXPECT_EQ(*(*second)->allow_map().size(), 2u);
  (*second)->expire(now + 29s);
  EXPECT_EQ(*(*second)->allow_map().size(), 2u);
  (*second)->expire(now + 31s);
  EXPECT_EQ(*(*second)->allow_map().size(), 0u);
  EXPECT_EQ((*second)->counters().get(AgentMapsCounter::kAllowExpired), 2u);
}

TEST(EmbeddedAgentTest, APlumbDelayHoldsTheAnswerBack) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto agent = EmbeddedAgent::create({.plumb_delay = 50ms});
  ASSERT_TRUE(agent) << agent.error().message;
  const auto submitted = Clock::now();
  (*agent)->submit(batch(1, submitted + 30s));
  std::vector<BatchResult> results;
  (*agent)->poll(submitted, results);
  EXPECT_TRUE(results.empty());
  EXPECT_FALSE(*(*agent)->allow_map().allows(101, ip("203.0.113.7"), submitted));
  ASSERT_TRUE(readable((*agent)->event_fd(), 1000));
  EXPECT_GE(Clock::now() - submitted, 50ms);
  (*agent)->poll(Clock::now(), results);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].plumbed);
}

// What the mirror reads back from the pins, after a load and after a second load that drops an
// endpoint and changes a prefix's identity.
TEST(EmbeddedAgentTest, PinsThePolicyFilesEndpointsAndPrefixesAndReplacesThem) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  auto bpffs = test::BpfFsMount::create();
  ASSERT_TRUE(bpffs) << bpffs.error().message;
  auto agent = EmbeddedAgent::create({});
  ASSERT_TRUE(agent) << agent.error().message;
  ASSERT_TRUE((*agent)->pin(bpffs->path()));
  policy::PolicyFile file;
  file.endpoints = {{ip("192.0.2.10"), {101, 10001}}, {ip("192.0.2.11"), {102, 10002}}};
  file.ipcache = {{*policy::IpPrefix::parse("198.51.100.53/32"), 20001}};
  ASSERT_TRUE((*agent)->load_policy(file));
  auto maps = PolicyMaps::open_pinned(pinned_policy_maps(bpffs->path()));
  ASSERT_TRUE(maps) << maps.error().message;
  MapReadStats stats;
  EXPECT_EQ(maps->read_endpoints(stats)->size(), 2u);

  file.endpoints.pop_back();
  file.ipcache[0].identity = 20002;
  ASSERT_TRUE((*agent)->load_policy(file));
  auto endpoints = maps->read_endpoints(stats);
  ASSERT_TRUE(endpoints);
  ASSERT_EQ(endpoints->size(), 1u);
  EXPECT_EQ((*endpoints)[0].info.endpoint_id, 101u);
  auto prefixes = maps->read_ipcache(stats);
  ASSERT_TRUE(prefixes);
  ASSERT_EQ(prefixes->size(), 1u);
  EXPECT_EQ((*prefixes)[0].identity, 20002u);
  EXPECT_EQ((*agent)->counters().get(AgentMapsCounter::kPolicyLoads), 2u);
  // The allow map is pinned beside them; the agent's pins go with it.
  EXPECT_TRUE(AllowMap::open_pinned(pinned_allow_map(bpffs->path())));
  agent->reset();
  EXPECT_FALSE(AllowMap::open_pinned(pinned_allow_map(bpffs->path())));
}

}  // namespace
}  // namespace dnsproxy::datapath::agent
