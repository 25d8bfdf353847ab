// SPDX-License-Identifier: GPL-2.0
/* xdp_forward: the end-to-end benchmark's in-kernel XDP forwarder, the upper bound of any packet
 * path on the test topology (bench/e2e_harness.cpp). No user space: every IPv4 / IPv6 packet the
 * kernel FIB can forward from the ingress interface gets the FIB's MACs, TTL / hop limit - 1, and
 * is redirected out of the egress interface (bpf_redirect); everything else (local destination,
 * no neighbour yet, TTL <= 1, not IP) passes to the kernel's own forwarding.
 *
 * xdp_pass sits on the receiving veth ends: a veth accepts redirected XDP frames only when the
 * peer end it delivers to runs an XDP program of its own.
 */
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#define AF_INET 2
#define AF_INET6 10

/* RFC 1624 incremental update of the IPv4 header checksum for TTL - 1 (as the kernel's
 * ip_decrease_ttl). */
static __always_inline void decrease_ttl(struct iphdr* ip) {
  __u32 check = ip->check;
  check += bpf_htons(0x0100);
  ip->check = (__u16)(check + (check >= 0xFFFF));
  ip->ttl--;
}

SEC("xdp")
int xdp_forward(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return XDP_PASS;
  struct bpf_fib_lookup fib = {};
  struct iphdr* ip = 0;
  struct ipv6hdr* ip6 = 0;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end || ip->ttl <= 1) return XDP_PASS;
    fib.family = AF_INET;
    fib.tos = ip->tos;
    fib.l4_protocol = ip->protocol;
    fib.tot_len = bpf_ntohs(ip->tot_len);
    fib.ipv4_src = ip->saddr;
    fib.ipv4_dst = ip->daddr;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > end || ip6->hop_limit <= 1) return XDP_PASS;
    fib.family = AF_INET6;
    fib.l4_protocol = ip6->nexthdr;
    fib.tot_len = bpf_ntohs(ip6->payload_len);
    __builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
    __builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
  } else {
    return XDP_PASS;
  }
  fib.ifindex = ctx->ingress_ifindex;
  if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS) return XDP_PASS;
  /* The packet did not move: the pointers are re-derived, which the verifier follows. */
  data = (void*)(long)ctx->data;
  end = (void*)(long)ctx->data_end;
  eth = data;
  if (fib.family == AF_INET) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end) return XDP_PASS;
    decrease_ttl(ip);
  } else {
    struct ipv6hdr* ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > end) return XDP_PASS;
    ip6->hop_limit--;
  }
  __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
  return bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int xdp_pass(struct xdp_md* ctx) {
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
