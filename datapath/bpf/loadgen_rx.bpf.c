// SPDX-License-Identifier: GPL-2.0
/* loadgen_rx: dnsproxy-loadgen's XDP program on the interface it sends from.
 *
 * Answers to the load generator's queries (UDP from the server port to one of its source ports,
 * IPv4 or IPv6 without extension headers) go to the AF_XDP socket of their receive queue; every
 * other packet (ARP, neighbour discovery, anything for the kernel's own sockets) passes, so the
 * namespace keeps working while the load generator runs. A queue without a socket passes too.
 */
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "datapath/bpf/dnsproxy_abi.h"

/* Filled by the loader between open and load. */
const volatile struct loadgen_rx_config loadgen_rx_config = {
    .server_port = bpf_htons(53),
    .first_port = 32768,
    .port_count = 1024,
};

/* The load generator's sockets, one per receive queue of the interface (key: queue index). */
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, LOADGEN_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} loadgen_xsks SEC(".maps");

SEC("xdp")
int loadgen_rx(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return XDP_PASS;
  struct udphdr* udp;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
    udp = (void*)(ip + 1);
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP) return XDP_PASS;
    udp = (void*)(ip6 + 1);
  } else {
    return XDP_PASS;
  }
  if ((void*)(udp + 1) > end || udp->source != loadgen_rx_config.server_port) return XDP_PASS;
  const __u16 port = bpf_ntohs(udp->dest);
  if (port < loadgen_rx_config.first_port ||
      port - loadgen_rx_config.first_port >= loadgen_rx_config.port_count)
    return XDP_PASS;
  return bpf_redirect_map(&loadgen_xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
