// dns_steer's cost per packet, measured by the kernel (BPF_PROG_TEST_RUN with repeat: the
// `duration` it reports is the average run time per packet, without syscall overhead), against a
// peer in the same run: an XDP program that only returns XDP_PASS, i.e. the floor of running any
// XDP program. The frames are the datapath tests' (test/datapath/frame_builder.h), run inside a
// namespace with real routes and neighbours so the redirect path includes a real FIB lookup.
// Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN); reports an error otherwise.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datapath/abi.h"
#include "datapath/steer_maps.h"
#include "dns_steer.skel.h"
#include "test/datapath/frame_builder.h"
#include "test/datapath/test_xsk.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace {

using dnsproxy::datapath::test::build_frame;
using dnsproxy::datapath::test::FrameSpec;
using dnsproxy::datapath::test::Ipv4Spec;
using dnsproxy::datapath::test::Ipv6Spec;

// Packets per BPF_PROG_TEST_RUN call: the benchmark argument. The redirect path runs one packet
// per call, because repeated runs reuse one buffer and each run moves the metadata start again
// (after 10 runs there is no headroom left and dns_steer drops, correctly, with drop_no_meta).
// Every program is measured at the repeat count of the path it is compared with.

// client ns c0 -- n0 node ns n1 -- u0 upstream ns, as in test/datapath/dns_steer_test.cpp.
struct Bench {
  std::optional<dnsproxy::test::NetNs> client, node, upstream;
  std::vector<dnsproxy::test::VethPair> links;
  std::unique_ptr<dnsproxy::test::ScopedNetns> inside;
  std::unique_ptr<dnsproxy::datapath::test::TestXsk> xsk;
  dns_steer* steer = nullptr;
  int pass_fd = -1;
  uint32_t n0 = 0;
  std::string error;

  ~Bench() {
    if (pass_fd >= 0) close(pass_fd);
    dns_steer::destroy(steer);
    xsk.reset();
    inside.reset();
  }
};

std::string setup(Bench& b) {
  if (auto missing = dnsproxy::test::missing_capabilities(); !missing.empty()) {
    return "needs " + missing + " (run as root)";
  }
  for (auto* ns : {&b.client, &b.node, &b.upstream}) {
    auto created = dnsproxy::test::NetNs::create("bench");
    if (!created) return created.error().message;
    ns->emplace(std::move(*created));
  }
  auto to_client = dnsproxy::test::VethPair::create(
      {.name_a = "n0", .ns_a = &*b.node, .name_b = "c0", .ns_b = &*b.client});
  if (!to_client) return to_client.error().message;
  auto to_upstream = dnsproxy::test::VethPair::create(
      {.name_a = "n1", .ns_a = &*b.node, .name_b = "u0", .ns_b = &*b.upstream});
  if (!to_upstream) return to_upstream.error().message;
  b.n0 = to_client->ifindex_a();
  b.links.push_back(std::move(*to_client));
  b.links.push_back(std::move(*to_upstream));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"addr", "add", "192.0.2.1/24", "dev", "n0"},
           {"addr", "add", "198.51.100.1/24", "dev", "n1"},
           {"addr", "add", "2001:db8:c::1/64", "dev", "n0", "nodad"},
           {"addr", "add", "2001:db8:5::1/64", "dev", "n1", "nodad"},
           {"neigh", "add", "198.51.100.53", "lladdr", "02:00:00:00:05:53", "dev", "n1", "nud",
            "permanent"},
           {"neigh", "add", "2001:db8:5::53", "lladdr", "02:00:00:00:05:53", "dev", "n1", "nud",
            "permanent"}}) {
    if (auto done = b.node->ip(args); !done) return done.error().message;
  }
  if (auto done = b.node->enable_forwarding(); !done) return done.error().message;
  auto inside = dnsproxy::test::ScopedNetns::enter(*b.node);
  if (!inside) return inside.error().message;
  b.inside = std::move(*inside);
  auto xsk = dnsproxy::datapath::test::TestXsk::create("n0", 0);
  if (!xsk) return xsk.error().message;
  b.xsk = std::move(*xsk);

  b.steer = dns_steer::open();
  if (!b.steer) return "opening dns_steer failed";
  b.steer->rodata->dns_steer_config =
      dns_steer_config{.ports = {htons(53)}, .port_count = 1, .fail_open = 1};
  if (dns_steer::load(b.steer) != 0) return "loading dns_steer failed";
  const dnsproxy::datapath::IfaceMap ifaces(bpf_map__fd(b.steer->maps.dns_steer_ifaces));
  const dnsproxy::datapath::XskMap xsks(bpf_map__fd(b.steer->maps.dns_steer_xsks));
  if (auto set = ifaces.set(b.n0, 0); !set) return set.error().message;
  if (auto set = xsks.set(0, b.xsk->fd()); !set) return set.error().message;

  const bpf_insn return_pass[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
      {.code = BPF_JMP | BPF_EXIT},
  };
  b.pass_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", return_pass, 2, nullptr);
  if (b.pass_fd < 0) return "loading the XDP_PASS peer failed";
  return {};
}

Bench& bench() {
  static Bench instance;
  static const std::string error = setup(instance);
  instance.error = error;
  return instance;
}

FrameSpec query4() {
  return FrameSpec{.ipv4 = Ipv4Spec{.src = {192, 0, 2, 10}, .dst = {198, 51, 100, 53}}};
}

FrameSpec query6() {
  return FrameSpec{
      .ipv6 = Ipv6Spec{.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10},
                       .dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53}}};
}

// `ingress`: 0 = n0 (sockets bound), else that ifindex.
void run(benchmark::State& state, bool peer, const FrameSpec& spec, uint32_t expected_verdict,
         uint32_t ingress = 0) {
  const int repeat = static_cast<int>(state.range(0));
  Bench& b = bench();
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  const int fd = peer ? b.pass_fd : bpf_program__fd(b.steer->progs.dns_steer);
  const std::vector<uint8_t> frame = build_frame(spec);
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(frame.size());
  ctx.ingress_ifindex = ingress ? ingress : b.n0;
  for (auto _ : state) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = repeat);
    if (bpf_prog_test_run_opts(fd, &opts) != 0 || opts.retval != expected_verdict) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed or gave an unexpected verdict");
      return;
    }
    state.SetIterationTime(static_cast<double>(opts.duration) * repeat * 1e-9);
  }
  state.SetItemsProcessed(state.iterations() * repeat);
}

void BM_XdpPassPeer(benchmark::State& state) {
  run(state, true, query4(), XDP_PASS);
}
void BM_DnsSteerV4QueryRedirect(benchmark::State& state) {
  run(state, false, query4(), XDP_REDIRECT);
}
void BM_DnsSteerV6QueryRedirect(benchmark::State& state) {
  run(state, false, query6(), XDP_REDIRECT);
}
// The same query with no socket for it (fail-open pass): parsing and the socket lookup without
// the FIB lookup and metadata, so the difference to the redirect path is their cost.
void BM_DnsSteerV4QueryNoSocketPass(benchmark::State& state) {
  run(state, false, query4(), XDP_PASS, /*ingress=*/1);  // lo: no slots configured
}
void BM_DnsSteerUdpNotDnsPass(benchmark::State& state) {
  FrameSpec spec = query4();
  spec.dport = 123;
  run(state, false, spec, XDP_PASS);
}
void BM_DnsSteerTcpPass(benchmark::State& state) {
  FrameSpec spec = query4();
  spec.ipv4->protocol = 6;
  run(state, false, spec, XDP_PASS);
}
BENCHMARK(BM_XdpPassPeer)->UseManualTime()->Arg(1)->Arg(10000);
BENCHMARK(BM_DnsSteerV4QueryRedirect)->UseManualTime()->Arg(1);
BENCHMARK(BM_DnsSteerV6QueryRedirect)->UseManualTime()->Arg(1);
BENCHMARK(BM_DnsSteerV4QueryNoSocketPass)->UseManualTime()->Arg(1)->Arg(10000);
BENCHMARK(BM_DnsSteerUdpNotDnsPass)->UseManualTime()->Arg(1)->Arg(10000);
BENCHMARK(BM_DnsSteerTcpPass)->UseManualTime()->Arg(10000);

}  // namespace
