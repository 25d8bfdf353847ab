// dns_steer tested as data: a packet goes in through BPF_PROG_TEST_RUN, the verdict and the
// counters come out.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "datapath/abi.h"
#include "dns_steer.skel.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

// Ethernet + IPv4 + UDP to port 53 with a 12-byte DNS header: the smallest DNS query frame.
std::vector<uint8_t> udp_dns_frame() {
  std::vector<uint8_t> frame = {0x02, 0,    0,    0,  0,   0x02, 0x02, 0,  0,  0,  0, 0x01,
                                0x08, 0x00,  // eth
                                0x45, 0,    0,    40, 0,   1,    0,    0,  64, 17, 0, 0,
                                192,  0,    2,    10, 198, 51,   100,  53,                 // ipv4
                                0x30, 0x39, 0,    53, 0,   20,   0,    0,                  // udp
                                0x12, 0x34, 0x01, 0,  0,   1,    0,    0,  0,  0,  0, 0};  // dns
  return frame;
}

uint64_t sum_percpu(int map_fd, uint32_t key) {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(cpus);
  if (bpf_map_lookup_elem(map_fd, &key, values.data()) != 0) return 0;
  uint64_t total = 0;
  for (uint64_t v : values) total += v;
  return total;
}

TEST(DnsSteerTest, LoadsAndCountsEveryPacket) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  dns_steer* skel = dns_steer::open_and_load();
  ASSERT_NE(skel, nullptr) << "loading dns_steer failed: " << errno;

  std::vector<uint8_t> frame = udp_dns_frame();
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.dns_steer), &run), 0);
  EXPECT_EQ(run.retval, XDP_PASS);

  const int stats = bpf_map__fd(skel->maps.dns_steer_stats);
  EXPECT_EQ(sum_percpu(stats, DNS_STEER_STAT_RX), 1u);
  EXPECT_EQ(sum_percpu(stats, DNS_STEER_STAT_PASS_NO_SOCKET), 1u);
  dns_steer::destroy(skel);
}

}  // namespace
}  // namespace dnsproxy::datapath
