// dns_steer tested as data: a frame goes in through BPF_PROG_TEST_RUN, the verdict, the XDP
// metadata and the counters come out.
//
// The runs happen inside a node namespace built for them, so bpf_fib_lookup answers from a real
// FIB: the test thread enters the namespace and each run names a real ingress interface and
// receive queue (ctx_in), as a driver would. Topology (MACs fixed so the metadata is checkable):
//
//   client ns  c0 ----- n0  node ns  n1 ----- u0  upstream ns
//   192.0.2.10          192.0.2.1    198.51.100.1   198.51.100.53 (permanent neighbours in node)
//   2001:db8:c::10      2001:db8:c::1 2001:db8:5::1 2001:db8:5::53
//
// What BPF_PROG_TEST_RUN shows of a redirect: the retval is XDP_REDIRECT when the XSKMAP slot
// holds a socket (the redirect itself is not carried out in this mode), and the output packet
// starts with the metadata: ctx_out.data - ctx_out.data_meta is its length (24 here) and
// data_out holds it followed by the unchanged frame. The sockets are real (TestXsk), since the
// program only redirects to a slot with a bound socket in it. That the metadata then reaches a
// socket for real is checked at the end, with a frame sent over the veth.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datapath/abi.h"
#include "datapath/steer_maps.h"
#include "datapath/steer_program.h"
#include "dns_steer.skel.h"
#include "test/datapath/frame_builder.h"
#include "test/datapath/test_xsk.h"
#include "test/support/bpffs.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

using test::build_frame;
using test::FrameLayout;
using test::FrameSpec;
using test::Ipv4Spec;
using test::Ipv6Spec;
using test::Mac;
using test::TestXsk;

constexpr Mac kClientMac = {0x02, 0, 0, 0, 0x0c, 0x10};
constexpr Mac kNodeClientSideMac = {0x02, 0, 0, 0, 0x0c, 0x01};
constexpr Mac kNodeUpstreamSideMac = {0x02, 0, 0, 0, 0x05, 0x01};
constexpr Mac kUpstreamMac = {0x02, 0, 0, 0, 0x05, 0x53};
constexpr Mac kZeroMac = {};

constexpr test::Ipv4 kClient4 = {192, 0, 2, 10};
constexpr test::Ipv4 kNode4 = {192, 0, 2, 1};
constexpr test::Ipv4 kUpstream4 = {198, 51, 100, 53};
constexpr test::Ipv4 kUpstreamNoNeigh4 = {198, 51, 100, 77};
// A route with a locked MTU of 1280 (the FIB applies a route MTU to forwarded packets only when
// it is locked, or with net.ipv4.ip_forward_use_pmtu).
constexpr test::Ipv4 kUpstreamSmallMtu4 = {198, 51, 100, 99};
constexpr test::Ipv4 kUnreachable4 = {203, 0, 113, 66};  // unreachable route
constexpr test::Ipv6 kClient6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
constexpr test::Ipv6 kUpstream6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0,
                                   0,    0,    0,    0,    0, 0,    0, 0x53};
constexpr test::Ipv6 kUpstreamNoNeigh6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0,
                                          0,    0,    0,    0,    0, 0,    0, 0x77};

enum class Side { kClient, kUpstream, kNone };  // n0, n1, or no interface

// Verdict counters: each packet counts exactly one of these.
constexpr dns_steer_stat kVerdictStats[] = {
    DNS_STEER_STAT_PASS_NOT_IP,
    DNS_STEER_STAT_PASS_NOT_UDP,
    DNS_STEER_STAT_PASS_NOT_DNS,
    DNS_STEER_STAT_PASS_TCP_DNS,
    DNS_STEER_STAT_PASS_FRAGMENT,
    DNS_STEER_STAT_PASS_NO_SOCKET,
    DNS_STEER_STAT_DROP_NO_SOCKET,
    DNS_STEER_STAT_DROP_FRAGMENT,
    DNS_STEER_STAT_DROP_BAD_L2,
    DNS_STEER_STAT_DROP_BAD_IPV4,
    DNS_STEER_STAT_DROP_BAD_IPV6,
    DNS_STEER_STAT_DROP_BAD_UDP,
    DNS_STEER_STAT_DROP_SHORT_DNS,
    DNS_STEER_STAT_DROP_TCP_DNS,
    DNS_STEER_STAT_PASS_NO_META,
    DNS_STEER_STAT_DROP_NO_META,
    DNS_STEER_STAT_REDIRECT,
    DNS_STEER_STAT_DROP_SHORT_FRAGMENT,
    DNS_STEER_STAT_DROP_LONG_EXT_CHAIN,
};
constexpr dns_steer_stat kFibStats[] = {
    DNS_STEER_STAT_FIB_OK,
    DNS_STEER_STAT_FIB_NO_NEIGH,
    DNS_STEER_STAT_FIB_NOT_FORWARDED,
    DNS_STEER_STAT_FIB_UNREACHABLE,
    DNS_STEER_STAT_FIB_FRAG_NEEDED,
    DNS_STEER_STAT_FIB_FWD_DISABLED,
    DNS_STEER_STAT_FIB_OTHER,
};

// One loaded dns_steer (not attached: test runs need none), its maps wired like the loader does.
struct Loaded {
  dns_steer* skeleton = nullptr;
  ~Loaded() { dns_steer::destroy(skeleton); }
  int fd() const { return bpf_program__fd(skeleton->progs.dns_steer); }
  StatsMap stats() const { return StatsMap(bpf_map__fd(skeleton->maps.dns_steer_stats)); }
  XskMap xsks() const { return XskMap(bpf_map__fd(skeleton->maps.dns_steer_xsks)); }
  IfaceMap ifaces() const { return IfaceMap(bpf_map__fd(skeleton->maps.dns_steer_ifaces)); }
  NextProgramMap next() const { return NextProgramMap(bpf_map__fd(skeleton->maps.dns_steer_next)); }
  SourcesMap sources() const { return SourcesMap(bpf_map__fd(skeleton->maps.dns_steer_sources)); }
};

struct RunResult {
  uint32_t verdict = 0;
  std::optional<dns_steer_meta> meta;  // present iff the program wrote metadata
  std::vector<uint8_t> frame;          // the packet after the metadata
};

struct ExpectedMeta {
  dns_steer_fib_status fib_status = DNS_STEER_FIB_OK;
  dns_steer_stat fib_stat = DNS_STEER_STAT_FIB_OK;
  Side egress = Side::kUpstream;
  Mac next_hop = kUpstreamMac;
  Mac egress_mac = kNodeUpstreamSideMac;
  uint8_t flags = 0;
  uint16_t vlan_tci = 0;
};

struct Case {
  std::string name;
  FrameSpec frame;
  uint32_t verdict;
  dns_steer_stat stat;
  std::optional<ExpectedMeta> meta;  // for XDP_REDIRECT
  Side ingress = Side::kClient;
};

FrameSpec query4(test::Ipv4 dst = kUpstream4) {
  return FrameSpec{.dst_mac = kNodeClientSideMac,
                   .src_mac = kClientMac,
                   .ipv4 = Ipv4Spec{.src = kClient4, .dst = dst}};
}

FrameSpec response4() {
  return FrameSpec{.dst_mac = kNodeUpstreamSideMac,
                   .src_mac = kUpstreamMac,
                   .ipv4 = Ipv4Spec{.src = kUpstream4, .dst = kClient4},
                   .sport = 53,
                   .dport = 40000,
                   .dns_length = 45};
}

FrameSpec query6(test::Ipv6 dst = kUpstream6) {
  return FrameSpec{.dst_mac = kNodeClientSideMac,
                   .src_mac = kClientMac,
                   .ipv6 = Ipv6Spec{.src = kClient6, .dst = dst}};
}

FrameSpec response6() {
  return FrameSpec{.dst_mac = kNodeUpstreamSideMac,
                   .src_mac = kUpstreamMac,
                   .ipv6 = Ipv6Spec{.src = kUpstream6, .dst = kClient6},
                   .sport = 53,
                   .dport = 40000,
                   .dns_length = 45};
}

template <class Change>
FrameSpec with(FrameSpec spec, Change change) {
  change(spec);
  return spec;
}

const ExpectedMeta kToUpstream{};
const ExpectedMeta kToClient{.egress = Side::kClient,
                             .next_hop = kClientMac,
                             .egress_mac = kNodeClientSideMac,
                             .flags = DNS_STEER_META_RESPONSE};
ExpectedMeta flagged(ExpectedMeta meta, uint8_t flags, uint16_t vlan_tci = 0) {
  meta.flags |= flags;
  meta.vlan_tci = vlan_tci;
  return meta;
}
ExpectedMeta unresolved(dns_steer_fib_status status, dns_steer_stat stat, Side egress,
                        uint8_t flags = 0) {
  return ExpectedMeta{.fib_status = status,
                      .fib_stat = stat,
                      .egress = egress,
                      .next_hop = kZeroMac,
                      .egress_mac = kZeroMac,
                      .flags = flags};
}

class DnsSteerTest : public testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    for (auto* ns : {&client_, &node_, &upstream_}) {
      auto created = dnsproxy::test::NetNs::create("steer-data");
      ASSERT_TRUE(created) << created.error().message;
      ns->emplace(std::move(*created));
    }
    auto to_client = dnsproxy::test::VethPair::create({.name_a = "n0",
                                                       .ns_a = &*node_,
                                                       .name_b = "c0",
                                                       .ns_b = &*client_,
                                                       .queues = 2,
                                                       .mac_a = "02:00:00:00:0c:01",
                                                       .mac_b = "02:00:00:00:0c:10"});
    ASSERT_TRUE(to_client) << to_client.error().message;
    auto to_upstream = dnsproxy::test::VethPair::create({.name_a = "n1",
                                                         .ns_a = &*node_,
                                                         .name_b = "u0",
                                                         .ns_b = &*upstream_,
                                                         .mac_a = "02:00:00:00:05:01",
                                                         .mac_b = "02:00:00:00:05:53"});
    ASSERT_TRUE(to_upstream) << to_upstream.error().message;
    n0_ = to_client->ifindex_a();
    n1_ = to_upstream->ifindex_a();
    links_.push_back(std::move(*to_client));
    links_.push_back(std::move(*to_upstream));

    const std::vector<std::vector<std::string>> node_setup = {
        {"addr", "add", "192.0.2.1/24", "dev", "n0"},
        {"addr", "add", "2001:db8:c::1/64", "dev", "n0", "nodad"},
        {"addr", "add", "198.51.100.1/24", "dev", "n1"},
        {"addr", "add", "2001:db8:5::1/64", "dev", "n1", "nodad"},
        {"neigh", "add", "192.0.2.10", "lladdr", "02:00:00:00:0c:10", "dev", "n0", "nud",
         "permanent"},
        {"neigh", "add", "2001:db8:c::10", "lladdr", "02:00:00:00:0c:10", "dev", "n0", "nud",
         "permanent"},
        {"neigh", "add", "198.51.100.53", "lladdr", "02:00:00:00:05:53", "dev", "n1", "nud",
         "permanent"},
        {"neigh", "add", "2001:db8:5::53", "lladdr", "02:00:00:00:05:53", "dev", "n1", "nud",
         "permanent"},
        {"route", "add", "198.51.100.99/32", "dev", "n1", "mtu", "lock", "1280"},
        {"neigh", "add", "198.51.100.99", "lladdr", "02:00:00:00:05:99", "dev", "n1", "nud",
         "permanent"},
        {"route", "add", "unreachable", "203.0.113.0/24"},
    };
    for (const auto& args : node_setup) {
      auto done = node_->ip(args);
      ASSERT_TRUE(done) << done.error().message;
    }
    ASSERT_TRUE(node_->enable_forwarding());

    auto inside = dnsproxy::test::ScopedNetns::enter(*node_);
    ASSERT_TRUE(inside) << inside.error().message;
    inside_ = std::move(*inside);
    for (auto [xsk, ifname] : {std::pair{&client_xsk_, "n0"}, std::pair{&upstream_xsk_, "n1"}}) {
      auto created = TestXsk::create(ifname, 0);
      ASSERT_TRUE(created) << created.error().message;
      *xsk = std::move(*created);
    }
    fail_open_ = load(/*fail_open=*/true);
    ASSERT_NE(fail_open_, nullptr);
    fail_closed_ = load(/*fail_open=*/false);
    ASSERT_NE(fail_closed_, nullptr);
  }

  void TearDown() override {
    fail_open_.reset();
    fail_closed_.reset();
    client_xsk_.reset();
    upstream_xsk_.reset();
    inside_.reset();
  }

  // Loads dns_steer for ports 53 and 5353 and binds the sockets on queue 0 of n0 and n1.
  std::unique_ptr<Loaded> load(bool fail_open, bool tcp_dns_drop = true) {
    auto loaded = std::make_unique<Loaded>();
    loaded->skeleton = dns_steer::open();
    if (!loaded->skeleton) return nullptr;
    dns_steer_config& config = loaded->skeleton->rodata->dns_steer_config;
    config = dns_steer_config{.ports = {htons(53), htons(5353)}, .port_count = 2};
    config.fail_open = fail_open;
    config.tcp_dns_drop = tcp_dns_drop;
    if (dns_steer::load(loaded->skeleton) != 0) return nullptr;
    const bool wired = loaded->ifaces().set(n0_, 0) && loaded->ifaces().set(n1_, 64) &&
                       loaded->xsks().set(0, client_xsk_->fd()) &&
                       loaded->xsks().set(64, upstream_xsk_->fd());
    return wired ? std::move(loaded) : nullptr;
  }

  uint32_t ifindex(Side side) const {
    return side == Side::kClient ? n0_ : side == Side::kUpstream ? n1_ : 0;
  }

  RunResult run(const Loaded& program, const std::vector<uint8_t>& frame, Side ingress,
                uint32_t queue = 0) {
    xdp_md ctx_in{};
    ctx_in.data_end = static_cast<uint32_t>(frame.size());
    ctx_in.ingress_ifindex = ifindex(ingress);
    ctx_in.rx_queue_index = queue;
    xdp_md ctx_out{};
    std::vector<uint8_t> out(frame.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx_in,
                .ctx_out = &ctx_out, .ctx_size_in = sizeof(ctx_in), .ctx_size_out = sizeof(ctx_out),
                .repeat = 1);
    RunResult result;
    const int rc = bpf_prog_test_run_opts(program.fd(), &opts);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    if (rc != 0) return result;
    result.verdict = opts.retval;
    const uint32_t meta_length = ctx_out.data - ctx_out.data_meta;
    if (meta_length == sizeof(dns_steer_meta)) {
      dns_steer_meta meta;
      std::memcpy(&meta, out.data(), sizeof(meta));
      result.meta = meta;
    } else {
      EXPECT_EQ(meta_length, 0u) << "unexpected metadata length";
    }
    result.frame.assign(out.begin() + meta_length, out.begin() + opts.data_size_out);
    return result;
  }

  SteerCounters counters(const Loaded& program) {
    auto read = program.stats().read();
    EXPECT_TRUE(read) << read.error().message;
    return read ? *read : SteerCounters{};
  }

  // Runs one case and checks verdict, metadata, unchanged frame and counters.
  void check(const Loaded& program, const Case& c, uint32_t queue = 0) {
    SCOPED_TRACE(c.name);
    FrameLayout layout;
    const std::vector<uint8_t> frame = build_frame(c.frame, &layout);
    const SteerCounters before = counters(program);
    const RunResult result = run(program, frame, c.ingress, queue);
    const SteerCounters after = counters(program);

    EXPECT_EQ(result.verdict, c.verdict);
    EXPECT_EQ(result.frame, frame) << "dns_steer must not change the frame";
    EXPECT_EQ(after[DNS_STEER_STAT_RX] - before[DNS_STEER_STAT_RX], 1u);
    for (dns_steer_stat stat : kVerdictStats) {
      EXPECT_EQ(after[stat] - before[stat], stat == c.stat ? 1u : 0u) << SteerCounters::name(stat);
    }
    for (dns_steer_stat stat : kFibStats) {
      const bool expected = c.meta && stat == c.meta->fib_stat;
      EXPECT_EQ(after[stat] - before[stat], expected ? 1u : 0u) << SteerCounters::name(stat);
    }
    ASSERT_EQ(result.meta.has_value(), c.meta.has_value());
    if (!c.meta) return;
    const dns_steer_meta& meta = *result.meta;
    EXPECT_EQ(meta.fib_status, c.meta->fib_status);
    EXPECT_EQ(meta.egress_ifindex, ifindex(c.meta->egress));
    EXPECT_EQ(Mac(std::to_array(meta.next_hop_mac)), c.meta->next_hop);
    EXPECT_EQ(Mac(std::to_array(meta.egress_mac)), c.meta->egress_mac);
    EXPECT_EQ(meta.l3_offset, layout.l3_offset);
    EXPECT_EQ(meta.dns_offset, layout.dns_offset);
    EXPECT_EQ(meta.flags, c.meta->flags);
    EXPECT_EQ(meta.vlan_tci, c.meta->vlan_tci);
  }

  std::optional<dnsproxy::test::NetNs> client_, node_, upstream_;
  std::vector<dnsproxy::test::VethPair> links_;
  std::unique_ptr<dnsproxy::test::ScopedNetns> inside_;
  std::unique_ptr<TestXsk> client_xsk_, upstream_xsk_;
  std::unique_ptr<Loaded> fail_open_, fail_closed_;
  uint32_t n0_ = 0, n1_ = 0;
};

TEST_F(DnsSteerTest, SteersDnsWithMetadataAndPassesEverythingElse) {
  const Case cases[] = {
      {"v4 query", query4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"v4 response", response4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, kToClient,
       Side::kUpstream},
      {"v6 query", query6(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       flagged(kToUpstream, DNS_STEER_META_IPV6)},
      {"v6 response", response6(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       flagged(kToClient, DNS_STEER_META_IPV6), Side::kUpstream},
      {"v4 query, 802.1Q tag", with(query4(), [](FrameSpec& f) { f.vlan_tags = {0x2064}; }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, flagged(kToUpstream, DNS_STEER_META_VLAN, 0x2064)},
      {"v6 response, 802.1Q tag", with(response6(), [](FrameSpec& f) { f.vlan_tags = {7}; }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       flagged(kToClient, DNS_STEER_META_IPV6 | DNS_STEER_META_VLAN, 7), Side::kUpstream},
      {"second configured port", with(query4(), [](FrameSpec& f) { f.dport = 5353; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"both ports DNS: a query", with(query4(), [](FrameSpec& f) { f.sport = 53; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"v4 options", with(query4(), [](FrameSpec& f) { f.ipv4->ihl = 7; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"v6 hop-by-hop + destination options",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{0, 8}, {60, 16}};
            }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, flagged(kToUpstream, DNS_STEER_META_IPV6)},
      {"Ethernet padding after a minimal query",
       with(query4(),
            [](FrameSpec& f) {
              f.dns_length = 12;
              f.pad_to = 60;
            }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"ARP", FrameSpec{.ethertype = 0x0806, .pad_to = 60}, XDP_PASS, DNS_STEER_STAT_PASS_NOT_IP},
      {"two VLAN tags",
       with(query4(),
            [](FrameSpec& f) {
              f.vlan_tags = {1, 2};
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_IP},
      // No address is in dns_steer_sources here: TCP DNS of an unpoliced source passes.
      {"TCP to port 53", with(query4(), [](FrameSpec& f) { f.ipv4->protocol = 6; }), XDP_PASS,
       DNS_STEER_STAT_PASS_TCP_DNS},
      {"v6 TCP to port 53", with(query6(), [](FrameSpec& f) { f.ipv6->next_header = 6; }), XDP_PASS,
       DNS_STEER_STAT_PASS_TCP_DNS},
      {"TCP to port 443",
       with(query4(),
            [](FrameSpec& f) {
              f.ipv4->protocol = 6;
              f.dport = 443;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_UDP},
      {"v6 ESP", with(query6(), [](FrameSpec& f) { f.ipv6->next_header = 50; }), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_UDP},
      {"UDP to NTP", with(query4(), [](FrameSpec& f) { f.dport = 123; }), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_DNS},
      {"v6 UDP, no DNS port",
       with(query6(),
            [](FrameSpec& f) {
              f.sport = 5000;
              f.dport = 6000;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_DNS},
  };
  for (const Case& c : cases) check(*fail_open_, c);
}

TEST_F(DnsSteerTest, DropsDnsFragmentsAndPassesOtherFragments) {
  const Case cases[] = {
      {"v4 first fragment of a DNS datagram",
       with(query4(), [](FrameSpec& f) { f.ipv4->frag_off = 0x2000; }), XDP_DROP,
       DNS_STEER_STAT_DROP_FRAGMENT},
      {"v4 DF is not a fragment", with(query4(), [](FrameSpec& f) { f.ipv4->frag_off = 0x4000; }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, kToUpstream},
      {"v4 later fragment (ports unknown)",
       with(query4(), [](FrameSpec& f) { f.ipv4->frag_off = 0x00b9; }), XDP_PASS,
       DNS_STEER_STAT_PASS_FRAGMENT},
      {"v4 first fragment of NTP",
       with(query4(),
            [](FrameSpec& f) {
              f.ipv4->frag_off = 0x2000;
              f.dport = 123;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_DNS},
      {"v4 first fragment too short for ports",
       with(query4(),
            [](FrameSpec& f) {
              f.ipv4->frag_off = 0x2000;
              f.ipv4->total_length_delta = -(8 + 29 - 4);  // 4 bytes of UDP header
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_SHORT_FRAGMENT},
      {"v6 first fragment too short for ports",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->more_fragments = true;
              f.ipv6->payload_length_delta = -(8 + 29 - 4);
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_SHORT_FRAGMENT},
      {"v6 first fragment, destination options behind the fragment header",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}, {60, 8}};
              f.ipv6->more_fragments = true;
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_FRAGMENT},
      {"v6 first fragment of a DNS datagram",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->more_fragments = true;
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_FRAGMENT},
      {"v6 later fragment",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->fragment_offset_units = 185;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_FRAGMENT},
      {"v6 atomic fragment (offset 0, no more fragments)",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_FRAGMENT},
      {"v6 first fragment of TCP to port 53",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->next_header = 6;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_TCP_DNS},
      {"v6 first fragment of other TCP",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->next_header = 6;
              f.dport = 80;
            }),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_UDP},
  };
  for (const Case& c : cases) check(*fail_open_, c);
}

// An IPv6 extension chain longer than dns_steer walks hides what follows it: from an endpoint
// with DNS rules it could be a query going around the policy, and is dropped; from anyone else,
// or when the walk reaches the transport header, it is what it is.
TEST_F(DnsSteerTest, DropsIpv6ChainsTooLongToSeeThroughFromEndpointsWithDnsRules) {
  constexpr test::Ipv6 kUnpoliced6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0,
                                      0,    0,    0,    0,    0, 0,    0, 0x11};
  auto written = fail_open_->sources().replace(
      {{policy::IpAddress::v6(kClient6), {.endpoint_id = 1, .flags = DNSPROXY_SOURCE_DNS_RULES}}});
  ASSERT_TRUE(written) << written.error().message;
  const auto chain = [](size_t headers, test::Ipv6 src) {
    return with(query6(), [=](FrameSpec& f) {
      f.ipv6->src = src;
      f.ipv6->extensions.assign(headers, {60, 8});  // destination options
    });
  };
  const Case cases[] = {
      {"five extension headers from an endpoint with DNS rules", chain(5, kClient6), XDP_DROP,
       DNS_STEER_STAT_DROP_LONG_EXT_CHAIN},
      {"five behind a first fragment header",
       with(chain(4, kClient6),
            [](FrameSpec& f) {
              f.ipv6->extensions.insert(f.ipv6->extensions.begin(), {44, 8});
              f.ipv6->more_fragments = true;
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_LONG_EXT_CHAIN},
      {"five from an address not in the map", chain(5, kUnpoliced6), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_UDP},
      {"four: the walk reaches UDP", chain(4, kClient6), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       flagged(kToUpstream, DNS_STEER_META_IPV6)},
  };
  for (const Case& c : cases) check(*fail_open_, c);
}

// TCP DNS is not policed: from an endpoint with DNS rules it is dropped (tcp_dns_drop, the
// default), so it cannot go around the UDP policy. Everything else TCP still passes.
TEST_F(DnsSteerTest, DropsTcpDnsOfEndpointsWithDnsRules) {
  constexpr test::Ipv4 kUnpoliced4 = {192, 0, 2, 11};
  constexpr test::Ipv4 kToFqdnsOnly4 = {192, 0, 2, 12};
  constexpr test::Ipv6 kUnpoliced6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0,
                                      0,    0,    0,    0,    0, 0,    0, 0x11};
  const SourcesMap::Sources sources = {
      {policy::IpAddress::v4(kClient4), {.endpoint_id = 1, .flags = DNSPROXY_SOURCE_DNS_RULES}},
      {policy::IpAddress::v6(kClient6),
       {.endpoint_id = 1, .flags = DNSPROXY_SOURCE_DNS_RULES | DNSPROXY_SOURCE_TO_FQDNS}},
      {policy::IpAddress::v4(kToFqdnsOnly4), {.endpoint_id = 2, .flags = DNSPROXY_SOURCE_TO_FQDNS}},
  };
  auto tcp_dns_pass = load(/*fail_open=*/true, /*tcp_dns_drop=*/false);
  ASSERT_NE(tcp_dns_pass, nullptr);
  for (const Loaded* program : {fail_open_.get(), tcp_dns_pass.get()}) {
    auto written = program->sources().replace(sources);
    ASSERT_TRUE(written) << written.error().message;
  }
  const auto tcp4 = [](FrameSpec f) {
    f.ipv4->protocol = 6;
    return f;
  };
  const auto tcp6 = [](FrameSpec f) {
    f.ipv6->next_header = 6;
    return f;
  };
  const auto from4 = [](test::Ipv4 src) {
    return with(query4(), [src](FrameSpec& f) { f.ipv4->src = src; });
  };
  const Case dropped[] = {
      {"v4", tcp4(query4()), XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
      {"v6", tcp6(query6()), XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
      {"v4, 802.1Q tag", tcp4(with(query4(), [](FrameSpec& f) { f.vlan_tags = {0x2064}; })),
       XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
      {"v6, 802.1Q tag", tcp6(with(query6(), [](FrameSpec& f) { f.vlan_tags = {7}; })), XDP_DROP,
       DNS_STEER_STAT_DROP_TCP_DNS},
      {"v4, second DNS port", tcp4(with(query4(), [](FrameSpec& f) { f.dport = 5353; })), XDP_DROP,
       DNS_STEER_STAT_DROP_TCP_DNS},
      {"v4 options", tcp4(with(query4(), [](FrameSpec& f) { f.ipv4->ihl = 7; })), XDP_DROP,
       DNS_STEER_STAT_DROP_TCP_DNS},
      {"v4 first fragment", tcp4(with(query4(), [](FrameSpec& f) { f.ipv4->frag_off = 0x2000; })),
       XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
      {"v6 after hop-by-hop options",
       tcp6(with(query6(),
                 [](FrameSpec& f) {
                   f.ipv6->extensions = {{0, 8}};
                 })),
       XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
      {"v6 first fragment",
       tcp6(with(query6(),
                 [](FrameSpec& f) {
                   f.ipv6->extensions = {{44, 8}};
                   f.ipv6->more_fragments = true;
                 })),
       XDP_DROP, DNS_STEER_STAT_DROP_TCP_DNS},
  };
  for (const Case& c : dropped) check(*fail_open_, c);
  const Case passed[] = {
      {"v4 from an address not in the map", tcp4(from4(kUnpoliced4)), XDP_PASS,
       DNS_STEER_STAT_PASS_TCP_DNS},
      {"v6 from an address not in the map",
       tcp6(with(query6(), [&](FrameSpec& f) { f.ipv6->src = kUnpoliced6; })), XDP_PASS,
       DNS_STEER_STAT_PASS_TCP_DNS},
      {"v4 from an endpoint with toFQDNs rules only", tcp4(from4(kToFqdnsOnly4)), XDP_PASS,
       DNS_STEER_STAT_PASS_TCP_DNS},
      {"v4 to a non-DNS port", tcp4(with(query4(), [](FrameSpec& f) { f.dport = 443; })), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_UDP},
      {"v6 to a non-DNS port", tcp6(with(query6(), [](FrameSpec& f) { f.dport = 443; })), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_UDP},
      // An endpoint's own DNS server answering over TCP: from port 53, to no DNS port.
      {"v4 from a DNS port",
       tcp4(with(query4(),
                 [](FrameSpec& f) {
                   f.sport = 53;
                   f.dport = 40000;
                 })),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_UDP},
      {"v4 later fragment (ports unknown)",
       tcp4(with(query4(), [](FrameSpec& f) { f.ipv4->frag_off = 0x00b9; })), XDP_PASS,
       DNS_STEER_STAT_PASS_NOT_UDP},
      {"v4 segment too short for its ports",
       tcp4(with(query4(), [](FrameSpec& f) { f.ipv4->total_length_delta = -(8 + 29 - 3); })),
       XDP_PASS, DNS_STEER_STAT_PASS_NOT_UDP},
      {"UDP DNS of the same endpoint is steered", query4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       kToUpstream},
  };
  for (const Case& c : passed) check(*fail_open_, c);

  // tcp_dns_drop off: the same endpoint's TCP DNS passes, counted as such.
  check(*tcp_dns_pass, {"v4, tcp_dns pass", tcp4(query4()), XDP_PASS, DNS_STEER_STAT_PASS_TCP_DNS});
  check(*tcp_dns_pass, {"v6, tcp_dns pass", tcp6(query6()), XDP_PASS, DNS_STEER_STAT_PASS_TCP_DNS});
}

TEST_F(DnsSteerTest, DropsEveryMalformedCaseWithItsOwnCounter) {
  const Case cases[] = {
      // A frame shorter than the Ethernet header (also DROP_BAD_L2) cannot be run:
      // BPF_PROG_TEST_RUN refuses frames under 14 bytes with EINVAL, as drivers never deliver
      // them. The check stays in dns_steer because the verifier demands it.
      {"802.1Q tag cut short",
       with(query4(),
            [](FrameSpec& f) {
              f.vlan_tags = {5};
              f.truncate_to = 16;
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_L2},
      {"v4 header cut short", with(query4(), [](FrameSpec& f) { f.truncate_to = 14 + 19; }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v4 IHL below 5", with(query4(), [](FrameSpec& f) { f.ipv4->ihl = 4; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v4 version 6 in an IPv4 frame", with(query4(), [](FrameSpec& f) { f.ipv4->version = 6; }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v4 total length beyond the frame",
       with(query4(), [](FrameSpec& f) { f.ipv4->total_length_delta = 1; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v4 total length below the header",
       with(query4(), [](FrameSpec& f) { f.ipv4->total_length_delta = -(8 + 29 + 1); }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v4 options beyond the frame",
       with(query4(),
            [](FrameSpec& f) {
              f.ipv4->ihl = 15;
              f.truncate_to = 14 + 40;
              f.ipv4->total_length_delta = -(60 + 8 + 29 - 40);
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV4},
      {"v6 header cut short", with(query6(), [](FrameSpec& f) { f.truncate_to = 14 + 39; }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV6},
      {"v6 version 4 in an IPv6 frame", with(query6(), [](FrameSpec& f) { f.ipv6->version = 4; }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV6},
      {"v6 payload length beyond the frame",
       with(query6(), [](FrameSpec& f) { f.ipv6->payload_length_delta = 1; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_IPV6},
      {"v6 extension header beyond the payload",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{0, 8}};
              f.ipv6->payload_length_delta = -(8 + 8 + 29) + 1;  // 1 byte of the extension
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV6},
      {"v6 fragment header beyond the payload",
       with(query6(),
            [](FrameSpec& f) {
              f.ipv6->extensions = {{44, 8}};
              f.ipv6->payload_length_delta = -(8 + 8 + 29) + 4;
            }),
       XDP_DROP, DNS_STEER_STAT_DROP_BAD_IPV6},
      {"v4 UDP header cut short",
       with(query4(), [](FrameSpec& f) { f.ipv4->total_length_delta = -(8 + 29 - 7); }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_UDP},
      {"v4 UDP length below 8", with(query4(), [](FrameSpec& f) { f.udp_length = 7; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_UDP},
      {"v4 UDP length beyond the datagram",
       with(query4(), [](FrameSpec& f) { f.udp_length = 8 + 29 + 1; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_UDP},
      {"v6 UDP header cut short",
       with(query6(), [](FrameSpec& f) { f.ipv6->payload_length_delta = -(8 + 29 - 3); }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_UDP},
      {"v6 UDP length beyond the datagram",
       with(query6(), [](FrameSpec& f) { f.udp_length = 8 + 29 + 8; }), XDP_DROP,
       DNS_STEER_STAT_DROP_BAD_UDP},
      {"v4 DNS payload of 11 bytes", with(query4(), [](FrameSpec& f) { f.dns_length = 11; }),
       XDP_DROP, DNS_STEER_STAT_DROP_SHORT_DNS},
      {"v4 empty DNS payload", with(query4(), [](FrameSpec& f) { f.dns_length = 0; }), XDP_DROP,
       DNS_STEER_STAT_DROP_SHORT_DNS},
      {"v6 DNS payload of 11 bytes", with(response6(), [](FrameSpec& f) { f.dns_length = 11; }),
       XDP_DROP, DNS_STEER_STAT_DROP_SHORT_DNS, std::nullopt, Side::kUpstream},
      {"v4 DNS payload of exactly 12 bytes",
       with(query4(), [](FrameSpec& f) { f.dns_length = 12; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT, kToUpstream},
  };
  for (const Case& c : cases) check(*fail_open_, c);
}

TEST_F(DnsSteerTest, ReportsEveryFibOutcomeInTheMetadata) {
  const Case cases[] = {
      // Policed like any other DNS packet (never passed around the proxy): the egress interface
      // is known, the MACs are not; user space hands it to the kernel, which resolves them.
      {"v4 next hop without neighbour entry", query4(kUpstreamNoNeigh4), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NO_NEIGH, DNS_STEER_STAT_FIB_NO_NEIGH, Side::kUpstream)},
      {"v6 next hop without neighbour entry", query6(kUpstreamNoNeigh6), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NO_NEIGH, DNS_STEER_STAT_FIB_NO_NEIGH, Side::kUpstream,
                  DNS_STEER_META_IPV6)},
      {"v4 VLAN-tagged, next hop without neighbour entry",
       with(query4(kUpstreamNoNeigh4), [](FrameSpec& f) { f.vlan_tags = {0x2064}; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT,
       flagged(unresolved(DNS_STEER_FIB_NO_NEIGH, DNS_STEER_STAT_FIB_NO_NEIGH, Side::kUpstream),
               DNS_STEER_META_VLAN, 0x2064)},
      {"v6 response to a client without neighbour entry",
       with(response6(),
            [](FrameSpec& f) {
              f.ipv6->dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77};
            }),
       XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NO_NEIGH, DNS_STEER_STAT_FIB_NO_NEIGH, Side::kClient,
                  DNS_STEER_META_IPV6 | DNS_STEER_META_RESPONSE),
       Side::kUpstream},
      {"v4 to the node itself", query4(kNode4), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NOT_FORWARDED, DNS_STEER_STAT_FIB_NOT_FORWARDED, Side::kNone)},
      {"v4 unreachable route", query4(kUnreachable4), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NOT_FORWARDED, DNS_STEER_STAT_FIB_UNREACHABLE, Side::kNone)},
      {"v4 larger than the route's MTU",
       with(query4(kUpstreamSmallMtu4), [](FrameSpec& f) { f.dns_length = 1300; }), XDP_REDIRECT,
       DNS_STEER_STAT_REDIRECT,
       unresolved(DNS_STEER_FIB_NOT_FORWARDED, DNS_STEER_STAT_FIB_FRAG_NEEDED, Side::kNone)},
  };
  for (const Case& c : cases) check(*fail_open_, c);

  // Forwarding off on the ingress interface: the node would not route this packet either.
  ASSERT_TRUE(node_->exec({"sysctl", "-q", "-w", "net.ipv4.conf.n0.forwarding=0"}));
  check(*fail_open_,
        {"v4 with forwarding disabled on ingress", query4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
         unresolved(DNS_STEER_FIB_NOT_FORWARDED, DNS_STEER_STAT_FIB_FWD_DISABLED, Side::kNone)});
}

TEST_F(DnsSteerTest, QueueWithoutSocketFollowsTheFailPolicy) {
  // n0 has two queues; only queue 0 has a socket.
  const Case open{"fail-open, queue 1", query4(), XDP_PASS, DNS_STEER_STAT_PASS_NO_SOCKET};
  check(*fail_open_, open, /*queue=*/1);
  const Case closed{"fail-closed, queue 1", query4(), XDP_DROP, DNS_STEER_STAT_DROP_NO_SOCKET};
  check(*fail_closed_, closed, /*queue=*/1);
  const Case closed_bound{"fail-closed, queue 0", query4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT,
                          kToUpstream};
  check(*fail_closed_, closed_bound, /*queue=*/0);
  const Case not_dns{"fail-closed passes non-DNS",
                     with(query4(), [](FrameSpec& f) { f.dport = 123; }), XDP_PASS,
                     DNS_STEER_STAT_PASS_NOT_DNS};
  check(*fail_closed_, not_dns, /*queue=*/1);

  // Unbinding takes effect at once.
  fail_closed_->xsks().clear(0);
  check(*fail_closed_,
        {"fail-closed, unbound queue 0", query4(), XDP_DROP, DNS_STEER_STAT_DROP_NO_SOCKET});
  // An interface the program was not configured for has no slots at all.
  ASSERT_EQ(bpf_map_delete_elem(bpf_map__fd(fail_open_->skeleton->maps.dns_steer_ifaces), &n0_), 0);
  check(*fail_open_,
        {"fail-open, unconfigured interface", query4(), XDP_PASS, DNS_STEER_STAT_PASS_NO_SOCKET});
}

TEST_F(DnsSteerTest, TailCallsTheNextProgramInsteadOfPassing) {
  // A stand-in for the next program of a chain: returns XDP_TX, which nothing else here does.
  const bpf_insn return_tx[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_TX},
      {.code = BPF_JMP | BPF_EXIT},
  };
  // Loaded like libbpf loads SEC("xdp") programs: the prog array only takes compatible ones.
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = BPF_XDP);
  const int next = bpf_prog_load(BPF_PROG_TYPE_XDP, "next_in_chain", "GPL", return_tx, 2, &options);
  ASSERT_GE(next, 0) << std::strerror(errno);
  auto installed = fail_closed_->next().set(next);
  ASSERT_TRUE(installed) << installed.error().message;
  check(*fail_closed_,
        {"not DNS goes to the next program", with(query4(), [](FrameSpec& f) { f.dport = 123; }),
         XDP_TX, DNS_STEER_STAT_PASS_NOT_DNS});
  check(*fail_closed_,
        {"DNS is still steered", query4(), XDP_REDIRECT, DNS_STEER_STAT_REDIRECT, kToUpstream});
  check(*fail_closed_,
        {"drops are not chained", with(query4(), [](FrameSpec& f) { f.dns_length = 3; }), XDP_DROP,
         DNS_STEER_STAT_DROP_SHORT_DNS});
  fail_closed_->next().clear();
  check(*fail_closed_,
        {"empty slot: plain pass", with(query4(), [](FrameSpec& f) { f.dport = 123; }), XDP_PASS,
         DNS_STEER_STAT_PASS_NOT_DNS});
  close(next);
}

// The whole way once, for real: SteerProgram attached in each mode, a DNS query sent by the
// client over the veth, the frame and its metadata read from the AF_XDP socket of the queue it
// arrived on (both queues of n0 have one: which queue veth picks depends on the sender).
TEST_F(DnsSteerTest, MetadataReachesTheBoundSocket) {
  ASSERT_TRUE(client_->add_address("c0", "192.0.2.10/24"));
  ASSERT_TRUE(client_->ip({"route", "add", "default", "via", "192.0.2.1"}));
  auto queue1 = TestXsk::create("n0", 1);
  ASSERT_TRUE(queue1) << queue1.error().message;
  TestXsk* sockets[] = {client_xsk_.get(), queue1->get()};
  auto bpffs = dnsproxy::test::BpfFsMount::create();
  ASSERT_TRUE(bpffs) << bpffs.error().message;
  const std::vector<std::string> interfaces = {"n0", "n1"};

  for (XdpMode mode : {XdpMode::kNative, XdpMode::kGeneric}) {
    SCOPED_TRACE(to_string(mode));
    auto steer = SteerProgram::attach(
        interfaces, SteerSettings{.mode = mode, .pin_dir = bpffs->path() + "/dnsproxy"});
    ASSERT_TRUE(steer) << steer.error().message;
    for (uint32_t queue : {0u, 1u}) {
      ASSERT_TRUE((*steer)->bind_socket(n0_, queue, sockets[queue]->fd()));
    }
    FrameLayout layout;
    const std::vector<uint8_t> query = build_frame(query4(), &layout);
    const std::vector<uint8_t> payload(query.begin() + layout.dns_offset, query.end());
    {
      auto in_client = dnsproxy::test::ScopedNetns::enter(*client_);
      ASSERT_TRUE(in_client) << in_client.error().message;
      const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ASSERT_GE(udp, 0);
      sockaddr_in upstream{.sin_family = AF_INET, .sin_port = htons(53)};
      std::memcpy(&upstream.sin_addr, kUpstream4.data(), 4);
      const ssize_t sent = sendto(udp, payload.data(), payload.size(), 0,
                                  reinterpret_cast<const sockaddr*>(&upstream), sizeof(upstream));
      close(udp);
      ASSERT_EQ(sent, static_cast<ssize_t>(payload.size())) << std::strerror(errno);
    }
    std::optional<test::ReceivedFrame> received;
    for (int attempt = 0; attempt < 20 && !received; ++attempt) {
      for (TestXsk* xsk : sockets) {
        if (!received) received = xsk->receive(50);
      }
    }
    ASSERT_TRUE(received) << "no frame on either AF_XDP socket of n0";
    const dns_steer_meta& meta = received->meta;
    EXPECT_EQ(meta.fib_status, DNS_STEER_FIB_OK);
    EXPECT_EQ(meta.egress_ifindex, n1_);
    EXPECT_EQ(Mac(std::to_array(meta.next_hop_mac)), kUpstreamMac);
    EXPECT_EQ(Mac(std::to_array(meta.egress_mac)), kNodeUpstreamSideMac);
    EXPECT_EQ(meta.l3_offset, 14);
    EXPECT_EQ(meta.dns_offset, 42);
    EXPECT_EQ(meta.flags, 0);
    ASSERT_EQ(received->frame.size(), query.size());
    EXPECT_TRUE(
        std::equal(payload.begin(), payload.end(), received->frame.begin() + meta.dns_offset));
    auto counters = (*steer)->counters();
    ASSERT_TRUE(counters) << counters.error().message;
    EXPECT_EQ((*counters)[DNS_STEER_STAT_REDIRECT], 1u);
    EXPECT_EQ((*counters)[DNS_STEER_STAT_FIB_OK], 1u);
  }
}

}  // namespace
}  // namespace dnsproxy::datapath
