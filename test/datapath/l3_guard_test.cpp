// l3_guard tested as data: a frame goes in through BPF_PROG_TEST_RUN, the verdict and the counters
// come out. The program is loaded over a real policed-sources map and a real allow map
// (agent::AllowMap), as L3Guard::install loads it over dns_steer's; the chain from dns_steer into
// it is exercised end to end in test/e2e/l3_policy_test.cpp.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "datapath/abi.h"
#include "datapath/agent/allow_map.h"
#include "datapath/l3_guard.h"
#include "datapath/steer_maps.h"
#include "l3_guard.skel.h"
#include "test/datapath/frame_builder.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

using agent::AllowMap;
using agent::Clock;
using policy::IpAddress;
using test::build_frame;
using test::FrameSpec;
using test::Ipv4Spec;
using test::Ipv6Spec;

constexpr test::Ipv4 kClient4 = {192, 0, 2, 10};
constexpr test::Ipv4 kOtherClient4 = {192, 0, 2, 11};
constexpr test::Ipv4 kServer4 = {203, 0, 113, 7};
constexpr test::Ipv6 kClient6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
constexpr test::Ipv6 kServer6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};
constexpr test::Ipv6 kNode6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr test::Ipv6 kAllNodes6 = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr uint8_t kTcp = 6;
constexpr uint8_t kIcmpv6 = 58;
constexpr uint32_t kEndpoint = 101;

IpAddress v4(const test::Ipv4& a) {
  return IpAddress::v4(a);
}
IpAddress v6(const test::Ipv6& a) {
  return IpAddress::v6(a);
}

// TCP to port 80 (the frame builder writes the ports where TCP has them too: l3_guard reads only
// those).
FrameSpec tcp4(const test::Ipv4& src, const test::Ipv4& dst, uint16_t dport = 80) {
  FrameSpec spec;
  spec.ipv4 = Ipv4Spec{.src = src, .dst = dst, .protocol = kTcp};
  spec.dport = dport;
  return spec;
}
FrameSpec tcp6(const test::Ipv6& src, const test::Ipv6& dst) {
  FrameSpec spec;
  spec.ipv6 = Ipv6Spec{.src = src, .dst = dst, .next_header = kTcp};
  spec.dport = 80;
  return spec;
}

class L3GuardTest : public testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    sources_fd_ = bpf_map_create(BPF_MAP_TYPE_HASH, "test_sources", sizeof(endpoint_key),
                                 sizeof(policed_source), 64, nullptr);
    ASSERT_GE(sources_fd_, 0) << std::strerror(errno);
    auto allow = AllowMap::create(64);
    ASSERT_TRUE(allow) << allow.error().message;
    allow_.emplace(std::move(*allow));
    skeleton_ = l3_guard::open();
    ASSERT_NE(skeleton_, nullptr);
    ASSERT_EQ(bpf_map__reuse_fd(skeleton_->maps.dns_steer_sources, sources_fd_), 0);
    ASSERT_EQ(bpf_map__reuse_fd(skeleton_->maps.dnsproxy_fqdn_allow, allow_->fd()), 0);
    ASSERT_EQ(l3_guard::load(skeleton_), 0);
    // 192.0.2.10 and 2001:db8:c::10 are endpoint 101 with toFQDNs rules; 192.0.2.11 is endpoint
    // 102 with DNS rules only.
    ASSERT_TRUE(
        SourcesMap(sources_fd_)
            .replace({
                {v4(kClient4), {kEndpoint, DNSPROXY_SOURCE_DNS_RULES | DNSPROXY_SOURCE_TO_FQDNS}},
                {v6(kClient6), {kEndpoint, DNSPROXY_SOURCE_TO_FQDNS}},
                {v4(kOtherClient4), {102, DNSPROXY_SOURCE_DNS_RULES}},
            }));
  }
  void TearDown() override {
    if (skeleton_) l3_guard::destroy(skeleton_);
    if (sources_fd_ >= 0) close(sources_fd_);
  }

  int run(const FrameSpec& spec) {
    const std::vector<uint8_t> frame = build_frame(spec);
    std::vector<uint8_t> out(frame.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
    const int rc = bpf_prog_test_run_opts(bpf_program__fd(skeleton_->progs.l3_guard), &opts);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    ++runs_;
    return rc == 0 ? static_cast<int>(opts.retval) : -1;
  }

  // Every run counted RX once and exactly one verdict; returns the verdict counters.
  L3GuardCounters counters() {
    L3GuardCounters counters;
    EXPECT_TRUE(read_percpu_counters(bpf_map__fd(skeleton_->maps.l3_guard_stats), "l3_guard_stats",
                                     counters.values));
    uint64_t verdicts = 0;
    for (size_t i = 1; i < counters.values.size(); ++i) verdicts += counters.values[i];
    EXPECT_EQ(counters[L3_GUARD_STAT_RX], runs_);
    EXPECT_EQ(verdicts, runs_);
    return counters;
  }

  int sources_fd_ = -1;
  std::optional<AllowMap> allow_;
  l3_guard* skeleton_ = nullptr;
  uint64_t runs_ = 0;
};

TEST_F(L3GuardTest, DropsAPolicedEndpointsTrafficToAnAddressNotPlumbed) {
  EXPECT_EQ(run(tcp4(kClient4, kServer4)), XDP_DROP);
  EXPECT_EQ(run(tcp6(kClient6, kServer6)), XDP_DROP);
  FrameSpec tagged = tcp4(kClient4, kServer4);
  tagged.vlan_tags = {100};
  EXPECT_EQ(run(tagged), XDP_DROP);
  EXPECT_EQ(counters()[L3_GUARD_STAT_DROP_NOT_PLUMBED], 3u);
}

TEST_F(L3GuardTest, PassesTrafficToAPlumbedAddressUntilItExpires) {
  const auto now = Clock::now();
  ASSERT_TRUE(allow_->allow(kEndpoint, v4(kServer4), now + std::chrono::seconds(30)));
  ASSERT_TRUE(allow_->allow(kEndpoint, v6(kServer6), now - std::chrono::milliseconds(1)));
  EXPECT_EQ(run(tcp4(kClient4, kServer4)), XDP_PASS);
  EXPECT_EQ(run(tcp6(kClient6, kServer6)), XDP_DROP);  // expired (not removed yet)
  const L3GuardCounters seen = counters();
  EXPECT_EQ(seen[L3_GUARD_STAT_PASS_ALLOWED], 1u);
  EXPECT_EQ(seen[L3_GUARD_STAT_DROP_EXPIRED], 1u);
  // Removing the expired entry leaves the live one; the live one is not removed.
  auto removed = allow_->remove_if_expired(kEndpoint, v6(kServer6), Clock::now());
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  auto kept = allow_->remove_if_expired(kEndpoint, v4(kServer4), Clock::now());
  ASSERT_TRUE(kept);
  EXPECT_FALSE(*kept);
  EXPECT_EQ(*allow_->size(), 1u);
}

TEST_F(L3GuardTest, AnAddressPlumbedForAnotherEndpointDoesNotCount) {
  ASSERT_TRUE(allow_->allow(102, v4(kServer4), Clock::now() + std::chrono::seconds(30)));
  EXPECT_EQ(run(tcp4(kClient4, kServer4)), XDP_DROP);
  EXPECT_EQ(counters()[L3_GUARD_STAT_DROP_NOT_PLUMBED], 1u);
}

TEST_F(L3GuardTest, LeavesUnpolicedSourcesAndNonIpAlone) {
  EXPECT_EQ(run(tcp4(kServer4, kClient4)), XDP_PASS);       // not an endpoint: return traffic
  EXPECT_EQ(run(tcp4(kOtherClient4, kServer4)), XDP_PASS);  // DNS rules, no toFQDNs
  FrameSpec arp;
  arp.ethertype = 0x0806;
  EXPECT_EQ(run(arp), XDP_PASS);
  const L3GuardCounters seen = counters();
  EXPECT_EQ(seen[L3_GUARD_STAT_PASS_NOT_POLICED], 2u);
  EXPECT_EQ(seen[L3_GUARD_STAT_PASS_NOT_IP], 1u);
}

TEST_F(L3GuardTest, NeverPolicesDnsPortsNeighbourDiscoveryOrMulticast) {
  EXPECT_EQ(run(tcp4(kClient4, kServer4, 53)), XDP_PASS);  // TCP DNS: dns_steer's to decide
  FrameSpec solicitation;
  solicitation.ipv6 = Ipv6Spec{.src = kClient6, .dst = kNode6, .next_header = kIcmpv6};
  solicitation.sport = 135 << 8;  // the first byte after the IPv6 header: ICMPv6 type 135
  EXPECT_EQ(run(solicitation), XDP_PASS);
  EXPECT_EQ(run(tcp6(kClient6, kAllNodes6)), XDP_PASS);
  FrameSpec echo = solicitation;
  echo.sport = 128 << 8;  // echo request to a unicast address: policed
  EXPECT_EQ(run(echo), XDP_DROP);
  const L3GuardCounters seen = counters();
  EXPECT_EQ(seen[L3_GUARD_STAT_PASS_DNS], 1u);
  EXPECT_EQ(seen[L3_GUARD_STAT_PASS_LINK_SCOPE], 2u);
  EXPECT_EQ(seen[L3_GUARD_STAT_DROP_NOT_PLUMBED], 1u);
}

TEST_F(L3GuardTest, AllowKeepsTheLaterExpiry) {
  const auto now = Clock::now();
  ASSERT_TRUE(allow_->allow(kEndpoint, v4(kServer4), now + std::chrono::seconds(30)));
  ASSERT_TRUE(allow_->allow(kEndpoint, v4(kServer4), now + std::chrono::seconds(1)));
  EXPECT_TRUE(*allow_->allows(kEndpoint, v4(kServer4), now + std::chrono::seconds(10)));
  EXPECT_FALSE(*allow_->allows(kEndpoint, v4(kServer4), now + std::chrono::seconds(31)));
  EXPECT_FALSE(*allow_->allows(102, v4(kServer4), now));
}

}  // namespace
}  // namespace dnsproxy::datapath
