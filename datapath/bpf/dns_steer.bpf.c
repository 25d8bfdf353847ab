// SPDX-License-Identifier: GPL-2.0
/* dns_steer: the XDP program on every interface the proxy serves (DESIGN.md, packet path).
 *
 * Parses Ethernet (at most one 802.1Q tag), IPv4 or IPv6 (hop-by-hop, routing and destination
 * options headers skipped) and UDP. A datagram to or from a configured DNS port is redirected to
 * the AF_XDP socket of its receive queue, with struct dns_steer_meta (offsets, flags and the
 * kernel's FIB answer for its destination) written in front of it. TCP to a DNS port from an
 * endpoint with DNS rules (dns_steer_sources) is dropped while the load-time tcp_dns_drop is set:
 * the proxy polices DNS over UDP only, and TCP must not be a way around that policy. Everything
 * else passes to the kernel, or to the next program of a chain. Malformed IP/UDP, DNS fragments
 * and DNS payloads under 12 bytes are dropped. Every packet counts RX and exactly one verdict
 * counter.
 *
 * Chaining: under libxdp's dispatcher the run config below makes XDP_PASS continue with the next
 * program. Without a dispatcher (single-program attach, or under an L3AF-style root program),
 * every would-be XDP_PASS first tail-calls slot 0 of dns_steer_next; an empty slot falls through
 * to XDP_PASS.
 */
// linux/bpf.h first: the libbpf headers need its types.
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <xdp/xdp_helpers.h>

#include "datapath/bpf/dnsproxy_abi.h"
#include "datapath/bpf/shared.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_8021Q_BE bpf_htons(ETH_P_8021Q)
#define IPV4_FRAG_MASK bpf_htons(0x3fff) /* MF flag + fragment offset */
#define IPV4_FRAG_OFFSET bpf_htons(0x1fff)
#define IPV6_FRAG_OFFSET bpf_htons(0xfff8)
#define IPV6_FLOWINFO_MASK bpf_htonl(0x0fffffff)
#define IPV6_MAX_EXT_HEADERS 4 /* hop-by-hop, routing, destination options: more is abuse */
#define DNS_HEADER_LEN 12

/* Load-time settings (struct in dnsproxy_abi.h), filled by the loader between open and load. */
const volatile struct dns_steer_config dns_steer_config = {
    .ports = {bpf_htons(53)},
    .port_count = 1,
    .fail_open = 1,
    .tcp_dns_drop = 1,
};

/* Per-CPU counters, one slot per enum dns_steer_stat: summed by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, DNS_STEER_STAT__COUNT);
  __type(key, __u32);
  __type(value, __u64);
} dns_steer_stats SEC(".maps");

/* The AF_XDP sockets, DNS_STEER_MAX_QUEUES slots per interface (layout in dnsproxy_abi.h). */
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, DNS_STEER_XSK_SLOTS);
  __type(key, __u32);
  __type(value, __u32);
} dns_steer_xsks SEC(".maps");

/* ifindex -> the interface's first slot in dns_steer_xsks; written by the loader at attach. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, DNS_STEER_MAX_IFACES);
  __type(key, __u32);
  __type(value, struct dns_steer_iface);
} dns_steer_ifaces SEC(".maps");

/* The next program of a chain without dispatcher: tail-called instead of returning XDP_PASS. */
struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} dns_steer_next SEC(".maps");

/* libxdp run config: under the dispatcher, XDP_PASS continues to the next program. */
struct {
  __uint(priority, 20);
  __uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(dns_steer);

/* Generic IPv6 extension header: next header, length in 8-byte units after the first 8. */
struct ipv6_ext_hdr {
  __u8 nexthdr;
  __u8 hdrlen;
};

/* The ports at the start of a TCP (or UDP) header: all dns_steer reads of TCP. */
struct l4_ports {
  __be16 source;
  __be16 dest;
};

struct ipv6_frag_hdr {
  __u8 nexthdr;
  __u8 reserved;
  __be16 frag_off; /* offset in 8-byte units << 3, low bit: more fragments */
  __be32 identification;
};

/* What parsing found out about a DNS datagram: everything the metadata and FIB need. */
struct dns_packet {
  __u16 l3_offset;
  __u16 dns_offset;
  __u16 vlan_tci;
  __u16 l3_length; /* IPv4 total length, or IPv6 40 + payload length */
  __u8 flags;      /* DNS_STEER_META_* */
  __u8 tos;
  __be32 flowinfo;
  __be16 sport;
  __be16 dport;
  void* l3;
};

static __always_inline void count(__u32 stat) {
  __u64* slot = bpf_map_lookup_elem(&dns_steer_stats, &stat);
  if (slot) *slot += 1;
}

/* The one way out for a packet we do not keep: give the chain a chance, else the kernel. */
static __always_inline int pass(struct xdp_md* ctx, __u32 reason) {
  count(reason);
  bpf_tail_call(ctx, &dns_steer_next, 0);
  return XDP_PASS;
}

static __always_inline int drop(__u32 reason) {
  count(reason);
  return XDP_DROP;
}

static __always_inline int is_dns_port(__be16 port) {
  return port_in(dns_steer_config.ports, dns_steer_config.port_count, port);
}

/* Outcome of parsing: a verdict counter for anything that is not a DNS datagram to steer. */
enum parse_result {
  PARSE_DNS = 0,
  PARSE_PASS,
  PARSE_DROP,
};

struct parse_state {
  enum parse_result result;
  __u32 stat; /* counter for PARSE_PASS / PARSE_DROP */
};

static __always_inline struct parse_state parsed(enum parse_result result, __u32 stat) {
  struct parse_state state = {.result = result, .stat = stat};
  return state;
}

/* Parsing works on byte offsets from the frame start (all bounded by 16-bit lengths, so the
 * verifier can follow them) and turns an offset into a pointer only to read, right after checking
 * it against data_end. `l3_end` is where the IP datagram ends: Ethernet padding after it and a
 * datagram cut short by the frame are told apart from a good one by comparing with it. */
static __always_inline void* at(void* data, void* data_end, __u32 offset, __u32 len, __u32 l3_end) {
  if (offset + len > l3_end) return 0;
  void* p = data + offset;
  if (p + len > data_end) return 0;
  return p;
}

/* UDP header at `udp_offset`: DNS or not, and where the DNS header is.
 * `first_fragment`: the datagram is fragmented and this is its head. */
static __always_inline struct parse_state parse_udp(void* data, void* data_end, __u32 udp_offset,
                                                    __u32 l3_end, int first_fragment,
                                                    struct dns_packet* pkt) {
  struct udphdr* udp = at(data, data_end, udp_offset, sizeof(*udp), l3_end);
  /* A head without its ports could be DNS put together behind our back: never passed. */
  if (!udp) {
    return parsed(PARSE_DROP, first_fragment ? DNS_STEER_STAT_DROP_SHORT_FRAGMENT
                                             : DNS_STEER_STAT_DROP_BAD_UDP);
  }
  if (is_dns_port(udp->dest)) {
    /* to a DNS port: a query (also when both ports are DNS ports) */
  } else if (is_dns_port(udp->source)) {
    pkt->flags |= DNS_STEER_META_RESPONSE;
  } else {
    return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_DNS);
  }
  if (first_fragment) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_FRAGMENT);

  const __u32 udp_length = bpf_ntohs(udp->len);
  if (udp_length < sizeof(*udp) || udp_offset + udp_length > l3_end) {
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_UDP);
  }
  if (udp_length < sizeof(*udp) + DNS_HEADER_LEN) {
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_SHORT_DNS);
  }
  pkt->sport = udp->source;
  pkt->dport = udp->dest;
  pkt->dns_offset = (__u16)(udp_offset + sizeof(*udp));
  return parsed(PARSE_DNS, 0);
}

/* Whether the packet's source address is an endpoint with DNS rules (dns_steer_sources). */
static __always_inline int source_has_dns_rules(const struct dns_packet* pkt) {
  struct endpoint_key key = {};
  if (pkt->flags & DNS_STEER_META_IPV6) {
    const struct ipv6hdr* ip6 = pkt->l3;
    key.family = DNSPROXY_FAMILY_V6;
    __builtin_memcpy(key.addr, &ip6->saddr, sizeof(ip6->saddr));
  } else {
    const struct iphdr* ip = pkt->l3;
    key.family = DNSPROXY_FAMILY_V4;
    __builtin_memcpy(key.addr, &ip->saddr, sizeof(ip->saddr));
  }
  const struct policed_source* source = bpf_map_lookup_elem(&dns_steer_sources, &key);
  return source && (source->flags & DNSPROXY_SOURCE_DNS_RULES);
}

/* TCP header at `tcp_offset` (a whole segment or a first fragment; `pkt` has l3 and the family
 * flag set). Only the destination port matters: TCP to a DNS port is either DNS over TCP, which
 * the proxy does not police yet, or nothing that works anyway. A segment too short for its ports
 * passes as not UDP: the kernel drops it as malformed. */
static __always_inline struct parse_state parse_tcp(void* data, void* data_end, __u32 tcp_offset,
                                                    __u32 l3_end, const struct dns_packet* pkt) {
  const struct l4_ports* ports = at(data, data_end, tcp_offset, sizeof(*ports), l3_end);
  if (!ports || !is_dns_port(ports->dest)) return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_UDP);
  if (dns_steer_config.tcp_dns_drop && source_has_dns_rules(pkt)) {
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_TCP_DNS);
  }
  return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_TCP_DNS);
}

static __always_inline struct parse_state parse_ipv4(void* data, void* data_end,
                                                     struct dns_packet* pkt) {
  struct iphdr* ip = pkt->l3;
  if ((void*)(ip + 1) > data_end) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV4);
  const __u32 header_length = ip->ihl * 4;
  const __u32 total_length = bpf_ntohs(ip->tot_len);
  const __u32 l3_end = pkt->l3_offset + total_length;
  if (ip->version != 4 || header_length < sizeof(*ip) || total_length < header_length ||
      data + l3_end > data_end) {
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV4);
  }
  /* A non-first TCP fragment has no ports: it passes below (useless without its first one). */
  if (ip->protocol == IPPROTO_TCP && !(ip->frag_off & IPV4_FRAG_OFFSET)) {
    return parse_tcp(data, data_end, pkt->l3_offset + header_length, l3_end, pkt);
  }
  if (ip->protocol != IPPROTO_UDP) return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_UDP);
  /* A non-first fragment carries no UDP header: it cannot be told apart, the kernel gets it
   * (and cannot reassemble a DNS datagram, whose first fragment is dropped below). */
  if (ip->frag_off & IPV4_FRAG_OFFSET) return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_FRAGMENT);
  pkt->l3_length = (__u16)total_length;
  pkt->tos = ip->tos;
  return parse_udp(data, data_end, pkt->l3_offset + header_length, l3_end,
                   (ip->frag_off & IPV4_FRAG_MASK) != 0, pkt);
}

static __always_inline struct parse_state parse_ipv6(void* data, void* data_end,
                                                     struct dns_packet* pkt) {
  struct ipv6hdr* ip6 = pkt->l3;
  if ((void*)(ip6 + 1) > data_end) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV6);
  const __u32 payload_length = bpf_ntohs(ip6->payload_len);
  const __u32 l3_end = pkt->l3_offset + sizeof(*ip6) + payload_length;
  if (ip6->version != 6 || data + l3_end > data_end) {
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV6);
  }
  pkt->flags |= DNS_STEER_META_IPV6;
  pkt->l3_length = (__u16)(sizeof(*ip6) + payload_length);
  pkt->flowinfo = *(__be32*)ip6 & IPV6_FLOWINFO_MASK;

  __u8 next = ip6->nexthdr;
  __u32 offset = pkt->l3_offset + sizeof(*ip6);
  /* Offset 0 (a head, or an atomic fragment): the walk goes on behind the fragment header, as
   * extension headers may follow it (RFC 8200 4.5), and the UDP header found is a head's. */
  int first_fragment = 0;
  for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
    if (next == IPPROTO_UDP) return parse_udp(data, data_end, offset, l3_end, first_fragment, pkt);
    if (next == IPPROTO_TCP) return parse_tcp(data, data_end, offset, l3_end, pkt);
    if (next == IPPROTO_FRAGMENT) {
      struct ipv6_frag_hdr* frag = at(data, data_end, offset, sizeof(*frag), l3_end);
      if (!frag) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV6);
      if (frag->frag_off & IPV6_FRAG_OFFSET) {
        return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_FRAGMENT);
      }
      first_fragment = 1;
      next = frag->nexthdr;
      offset += sizeof(*frag);
      continue;
    }
    if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS) {
      return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_UDP);
    }
    struct ipv6_ext_hdr* ext = at(data, data_end, offset, sizeof(*ext), l3_end);
    if (!ext) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_IPV6);
    next = ext->nexthdr;
    offset += (ext->hdrlen + 1) * 8;
  }
  if (next == IPPROTO_UDP) return parse_udp(data, data_end, offset, l3_end, first_fragment, pkt);
  if (next == IPPROTO_TCP) return parse_tcp(data, data_end, offset, l3_end, pkt);
  /* More extension headers than any DNS sender uses, and what is behind them unseen: from an
   * endpoint under DNS rules that could be DNS going around the policy, so it is dropped; from
   * anyone else the kernel decides. */
  const int extension = next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
                        next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT;
  if (extension && source_has_dns_rules(pkt))
    return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_LONG_EXT_CHAIN);
  return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_UDP);
}

static __always_inline struct parse_state parse(struct xdp_md* ctx, struct dns_packet* pkt) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_L2);
  __be16 proto = eth->h_proto;
  pkt->l3_offset = sizeof(*eth);
  if (proto == ETH_P_8021Q_BE) {
    struct vlan_hdr* vlan = (void*)(eth + 1);
    if ((void*)(vlan + 1) > data_end) return parsed(PARSE_DROP, DNS_STEER_STAT_DROP_BAD_L2);
    pkt->flags |= DNS_STEER_META_VLAN;
    pkt->vlan_tci = bpf_ntohs(vlan->tci);
    proto = vlan->encapsulated_proto;
    pkt->l3_offset += sizeof(*vlan);
  }
  pkt->l3 = data + pkt->l3_offset;
  if (proto == bpf_htons(ETH_P_IP)) return parse_ipv4(data, data_end, pkt);
  if (proto == bpf_htons(ETH_P_IPV6)) return parse_ipv6(data, data_end, pkt);
  return parsed(PARSE_PASS, DNS_STEER_STAT_PASS_NOT_IP);
}

/* Asks the kernel FIB where the packet's destination is reached from its ingress interface.
 * Fills egress_ifindex, both MACs and fib_status of `meta` and counts one FIB_* counter. A route
 * whose next hop has no neighbour entry yet is not passed to the kernel here: the packet would
 * skip the policy. It goes to user space as FIB_NO_NEIGH, which hands it to the kernel's stack
 * once the policy let it through. */
static __always_inline void resolve_next_hop(struct xdp_md* ctx, const struct dns_packet* pkt,
                                             struct dns_steer_meta* meta) {
  struct bpf_fib_lookup fib = {};
  fib.ifindex = ctx->ingress_ifindex;
  fib.l4_protocol = IPPROTO_UDP;
  fib.sport = pkt->sport;
  fib.dport = pkt->dport;
  fib.tot_len = pkt->l3_length;
  if (pkt->flags & DNS_STEER_META_IPV6) {
    const struct ipv6hdr* ip6 = pkt->l3;
    fib.family = AF_INET6;
    fib.flowinfo = pkt->flowinfo;
    __builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
    __builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
  } else {
    const struct iphdr* ip = pkt->l3;
    fib.family = AF_INET;
    fib.tos = pkt->tos;
    fib.ipv4_src = ip->saddr;
    fib.ipv4_dst = ip->daddr;
  }
  const long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
  switch (rc) {
    case BPF_FIB_LKUP_RET_SUCCESS:
      count(DNS_STEER_STAT_FIB_OK);
      meta->fib_status = DNS_STEER_FIB_OK;
      meta->egress_ifindex = fib.ifindex;
      __builtin_memcpy(meta->next_hop_mac, fib.dmac, sizeof(meta->next_hop_mac));
      __builtin_memcpy(meta->egress_mac, fib.smac, sizeof(meta->egress_mac));
      return;
    case BPF_FIB_LKUP_RET_NO_NEIGH:
      /* The kernel has set fib.ifindex to the egress interface, not yet the MACs. */
      count(DNS_STEER_STAT_FIB_NO_NEIGH);
      meta->fib_status = DNS_STEER_FIB_NO_NEIGH;
      meta->egress_ifindex = fib.ifindex;
      return;
    case BPF_FIB_LKUP_RET_NOT_FWDED:
      count(DNS_STEER_STAT_FIB_NOT_FORWARDED);
      break;
    case BPF_FIB_LKUP_RET_BLACKHOLE:
    case BPF_FIB_LKUP_RET_UNREACHABLE:
    case BPF_FIB_LKUP_RET_PROHIBIT:
      count(DNS_STEER_STAT_FIB_UNREACHABLE);
      break;
    case BPF_FIB_LKUP_RET_FRAG_NEEDED:
      count(DNS_STEER_STAT_FIB_FRAG_NEEDED);
      break;
    case BPF_FIB_LKUP_RET_FWD_DISABLED:
      count(DNS_STEER_STAT_FIB_FWD_DISABLED);
      break;
    default:
      count(DNS_STEER_STAT_FIB_OTHER);
      break;
  }
  meta->fib_status = DNS_STEER_FIB_NOT_FORWARDED;
}

/* No room for the metadata: the load-time fail action (see DNS_STEER_STAT_*_NO_META). */
static __always_inline int no_meta(struct xdp_md* ctx) {
  return dns_steer_config.fail_open ? pass(ctx, DNS_STEER_STAT_PASS_NO_META)
                                    : drop(DNS_STEER_STAT_DROP_NO_META);
}

/* The XSKMAP slot of (ingress interface, receive queue), or -1 if it has none. */
static __always_inline long xsk_slot(const struct xdp_md* ctx) {
  __u32 ifindex = ctx->ingress_ifindex;
  const struct dns_steer_iface* iface = bpf_map_lookup_elem(&dns_steer_ifaces, &ifindex);
  if (!iface || ctx->rx_queue_index >= DNS_STEER_MAX_QUEUES) return -1;
  return iface->xsk_slot_base + ctx->rx_queue_index;
}

SEC("xdp")
int dns_steer(struct xdp_md* ctx) {
  count(DNS_STEER_STAT_RX);
  struct dns_packet pkt = {};
  const struct parse_state state = parse(ctx, &pkt);
  if (state.result == PARSE_PASS) return pass(ctx, state.stat);
  if (state.result == PARSE_DROP) return drop(state.stat);

  /* A DNS datagram. Without a socket on this queue, the load-time policy decides. */
  const long slot = xsk_slot(ctx);
  __u32 key = (__u32)slot;
  if (slot < 0 || !bpf_map_lookup_elem(&dns_steer_xsks, &key)) {
    return dns_steer_config.fail_open ? pass(ctx, DNS_STEER_STAT_PASS_NO_SOCKET)
                                      : drop(DNS_STEER_STAT_DROP_NO_SOCKET);
  }

  struct dns_steer_meta meta = {
      .l3_offset = pkt.l3_offset,
      .dns_offset = pkt.dns_offset,
      .flags = pkt.flags,
      .vlan_tci = pkt.vlan_tci,
  };
  resolve_next_hop(ctx, &pkt, &meta);

  /* Packet pointers are invalid after adjust_meta: everything needed is in `meta` now. A driver
   * without XDP metadata support fails it for every packet: the fail action applies, as for a
   * queue without a socket, so fail-open keeps DNS working through the kernel. */
  if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(meta)) != 0) return no_meta(ctx);
  void* data = (void*)(long)ctx->data;
  struct dns_steer_meta* out = (void*)(long)ctx->data_meta;
  if ((void*)(out + 1) > data) return no_meta(ctx);
  __builtin_memcpy(out, &meta, sizeof(meta));

  count(DNS_STEER_STAT_REDIRECT);
  /* The socket can go away between the lookup and here: then the fail action applies. */
  return bpf_redirect_map(&dns_steer_xsks, key, dns_steer_config.fail_open ? XDP_PASS : XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
