// SPDX-License-Identifier: GPL-2.0
/* The two ends of an L3AF-style chain around dns_steer, for test/datapath/chain_test.cpp.
 *
 * chain_root: what an L3AF root program (xdp-root) does: it owns the interface's XDP and
 * tail-calls slot 0 of its program array, xdp_root_array; an empty slot passes to the kernel.
 * chain_counter: the program after dns_steer in the chain; it counts what reaches it by kind
 * (enum chain_count) and passes everything, so a test can tell what dns_steer let through.
 */
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "test/datapath/bpf/chain_test_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} xdp_root_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, CHAIN_COUNT__COUNT);
  __type(key, __u32);
  __type(value, __u64);
} chain_counts SEC(".maps");

SEC("xdp")
int chain_root(struct xdp_md* ctx) {
  bpf_tail_call(ctx, &xdp_root_array, 0);
  return XDP_PASS;
}

static __always_inline void count(__u32 kind) {
  __u64* slot = bpf_map_lookup_elem(&chain_counts, &kind);
  if (slot) __sync_fetch_and_add(slot, 1);
}

/* The kind of an Ethernet frame: ICMP (IPv4), UDP to or from port 53, other UDP, other. */
static __always_inline __u32 kind_of(void* data, void* data_end) {
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return CHAIN_COUNT_OTHER;
  __u8 protocol;
  void* l4;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > data_end) return CHAIN_COUNT_OTHER;
    protocol = ip->protocol;
    l4 = (void*)ip + ip->ihl * 4;
    if (protocol == IPPROTO_ICMP) return CHAIN_COUNT_ICMP;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > data_end) return CHAIN_COUNT_OTHER;
    protocol = ip6->nexthdr;
    l4 = ip6 + 1;
    /* ICMPv6 is the kernel's own neighbour discovery too: not what a test's ping sent. */
    if (protocol == IPPROTO_ICMPV6) return CHAIN_COUNT_OTHER;
  } else {
    return CHAIN_COUNT_OTHER;
  }
  if (protocol != IPPROTO_UDP) return CHAIN_COUNT_OTHER;
  struct udphdr* udp = l4;
  if ((void*)(udp + 1) > data_end) return CHAIN_COUNT_OTHER;
  if (udp->dest == bpf_htons(53) || udp->source == bpf_htons(53)) return CHAIN_COUNT_DNS;
  return CHAIN_COUNT_UDP;
}

SEC("xdp")
int chain_counter(struct xdp_md* ctx) {
  count(CHAIN_COUNT_ALL);
  count(kind_of((void*)(long)ctx->data, (void*)(long)ctx->data_end));
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
