// SPDX-License-Identifier: GPL-2.0
/* l3_guard: the L3 half of toFQDNs policy (DESIGN.md 7), a stand-in for Cilium's policy map.
 *
 * dns_steer tail-calls it (slot 0 of dns_steer_next) with every packet it does not steer, so it
 * sees the non-DNS traffic of the interfaces the proxy serves. A packet from an endpoint with
 * toFQDNs rules (dns_steer_sources, flag DNSPROXY_SOURCE_TO_FQDNS) passes only to a destination
 * the agent plumbed for that endpoint (dnsproxy_fqdn_allow) and that has not expired; anything
 * else from it is dropped. This is what makes "plumbed before released" observable: a client
 * that connects to an address before its plumbing is in the map loses its SYN.
 *
 * Never policed: non-IP frames (ARP), traffic to a DNS port (dns_steer decides about DNS), to
 * multicast / broadcast / IPv6 link-local addresses, and ICMPv6 neighbour and router discovery,
 * without which an IPv6 endpoint could not even reach its DNS server.
 *
 * Both maps belong to others: dns_steer_sources to dns_steer (shared by fd at load), the allow map
 * to the agent. Every packet counts RX and exactly one verdict (enum l3_guard_stat); what passes
 * goes on to l3_guard_next, the rest of a chain, when there is one.
 */
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "datapath/bpf/dnsproxy_abi.h"
#include "datapath/bpf/shared.bpf.h"

#define ETH_P_8021Q_BE bpf_htons(ETH_P_8021Q)
#define IPV4_FRAG_OFFSET bpf_htons(0x1fff)
#define ICMPV6_ROUTER_SOLICIT 133 /* ... through 137 (redirect): RFC 4861 */
#define ICMPV6_REDIRECT 137

const volatile struct l3_guard_config l3_guard_config = {
    .ports = {bpf_htons(53)},
    .port_count = 1,
};

/* Per-CPU counters, one slot per enum l3_guard_stat. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, L3_GUARD_STAT__COUNT);
  __type(key, __u32);
  __type(value, __u64);
} l3_guard_stats SEC(".maps");

/* The rest of a chain without dispatcher (dnsproxyd --chain-into): what the guard passes is
 * tail-called into slot 0 when it holds a program, else passed. dnsproxyd puts there what
 * dns_steer_next held before the guard took that slot, so the chain's order is kept. */
struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} l3_guard_next SEC(".maps");

/* The agent's allow map (its fd is reused at load). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, DNSPROXY_FQDN_ALLOW_MAX);
  __type(key, struct fqdn_allow_key);
  __type(value, struct fqdn_allow_value);
} dnsproxy_fqdn_allow SEC(".maps");

/* The L4 header fields the guard looks at: ports, or the ICMPv6 type. */
struct l4_ports {
  __be16 source;
  __be16 dest;
};

static __always_inline int verdict(__u32 stat, int action) {
  __u64* slot = bpf_map_lookup_elem(&l3_guard_stats, &stat);
  if (slot) *slot += 1;
  return action;
}

static __always_inline int pass(struct xdp_md* ctx, __u32 stat) {
  verdict(stat, XDP_PASS);
  bpf_tail_call(ctx, &l3_guard_next, 0);
  return XDP_PASS; /* no next program */
}

static __always_inline int is_dns_port(__be16 port) {
  return port_in(l3_guard_config.ports, l3_guard_config.port_count, port);
}

/* What the guard needs of a packet: source, destination, protocol and where L4 starts. */
struct flow {
  struct endpoint_key source;
  struct fqdn_allow_key destination; /* endpoint_id filled once the source is known */
  __u8 protocol;
  __u8 link_scope; /* destination is multicast, broadcast or IPv6 link-local */
  void* l4;
};

/* Returns 0 when the packet is no IP packet the guard can read. */
static __always_inline int parse_flow(void* data, void* data_end, struct flow* flow) {
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return 0;
  __be16 proto = eth->h_proto;
  void* l3 = eth + 1;
  if (proto == ETH_P_8021Q_BE) {
    struct vlan_hdr* vlan = l3;
    if ((void*)(vlan + 1) > data_end) return 0;
    proto = vlan->encapsulated_proto;
    l3 = vlan + 1;
  }
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = l3;
    if ((void*)(ip + 1) > data_end || ip->ihl < 5) return 0;
    flow->source.family = DNSPROXY_FAMILY_V4;
    flow->destination.family = DNSPROXY_FAMILY_V4;
    __builtin_memcpy(flow->source.addr, &ip->saddr, 4);
    __builtin_memcpy(flow->destination.addr, &ip->daddr, 4);
    flow->protocol = ip->protocol;
    const __u8 first = flow->destination.addr[0];
    flow->link_scope = (first & 0xf0) == 0xe0 || ip->daddr == 0xffffffff;
    /* A non-first fragment has no L4 header: its ports are unknown (policed by address). */
    flow->l4 = (ip->frag_off & IPV4_FRAG_OFFSET) ? 0 : l3 + ip->ihl * 4;
    return 1;
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = l3;
    if ((void*)(ip6 + 1) > data_end) return 0;
    flow->source.family = DNSPROXY_FAMILY_V6;
    flow->destination.family = DNSPROXY_FAMILY_V6;
    __builtin_memcpy(flow->source.addr, &ip6->saddr, 16);
    __builtin_memcpy(flow->destination.addr, &ip6->daddr, 16);
    flow->protocol = ip6->nexthdr; /* extension headers: policed by address, ports unknown */
    const __u8* daddr = flow->destination.addr;
    flow->link_scope = daddr[0] == 0xff || (daddr[0] == 0xfe && (daddr[1] & 0xc0) == 0x80);
    flow->l4 = ip6 + 1;
    return 1;
  }
  return 0;
}

/* Neighbour and router discovery (ICMPv6 types 133-137). */
static __always_inline int is_neighbour_discovery(const struct flow* flow, void* data_end) {
  if (flow->source.family != DNSPROXY_FAMILY_V6 || flow->protocol != IPPROTO_ICMPV6) return 0;
  const struct icmp6hdr* icmp = flow->l4;
  if ((void*)(icmp + 1) > data_end) return 0;
  return icmp->icmp6_type >= ICMPV6_ROUTER_SOLICIT && icmp->icmp6_type <= ICMPV6_REDIRECT;
}

static __always_inline int to_dns_port(const struct flow* flow, void* data_end) {
  if (!flow->l4 || (flow->protocol != IPPROTO_TCP && flow->protocol != IPPROTO_UDP)) return 0;
  const struct l4_ports* ports = flow->l4;
  if ((void*)(ports + 1) > data_end) return 0;
  return is_dns_port(ports->dest);
}

SEC("xdp")
int l3_guard(struct xdp_md* ctx) {
  verdict(L3_GUARD_STAT_RX, 0);
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  struct flow flow = {};
  if (!parse_flow(data, data_end, &flow)) return pass(ctx, L3_GUARD_STAT_PASS_NOT_IP);

  const struct policed_source* source = bpf_map_lookup_elem(&dns_steer_sources, &flow.source);
  if (!source || !(source->flags & DNSPROXY_SOURCE_TO_FQDNS))
    return pass(ctx, L3_GUARD_STAT_PASS_NOT_POLICED);
  if (flow.link_scope || is_neighbour_discovery(&flow, data_end))
    return pass(ctx, L3_GUARD_STAT_PASS_LINK_SCOPE);
  if (to_dns_port(&flow, data_end)) return pass(ctx, L3_GUARD_STAT_PASS_DNS);

  flow.destination.endpoint_id = source->endpoint_id;
  const struct fqdn_allow_value* allowed =
      bpf_map_lookup_elem(&dnsproxy_fqdn_allow, &flow.destination);
  if (!allowed) return verdict(L3_GUARD_STAT_DROP_NOT_PLUMBED, XDP_DROP);
  if (allowed->expires_ns <= bpf_ktime_get_ns())
    return verdict(L3_GUARD_STAT_DROP_EXPIRED, XDP_DROP);
  return pass(ctx, L3_GUARD_STAT_PASS_ALLOWED);
}

char LICENSE[] SEC("license") = "GPL";
