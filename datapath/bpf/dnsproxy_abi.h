/* The ABI between the BPF programs and user space: every struct that crosses the boundary
 * (map keys and values, XDP metadata, counters) is defined here and only here. Included by
 * the .bpf.c programs (clang -target bpf) and by C++ (which static_asserts the sizes), so
 * keep it plain C with fixed-width kernel types and explicit padding.
 */
#ifndef DNSPROXY_DATAPATH_BPF_ABI_H
#define DNSPROXY_DATAPATH_BPF_ABI_H

#include <linux/types.h>

/* ---- dns_steer counters: one per action, indexed into the per-CPU stats array. ---- */
enum dns_steer_stat {
  DNS_STEER_STAT_RX = 0,   /* every packet the program saw */
  DNS_STEER_STAT_PASS,     /* not DNS: handed to the kernel stack */
  DNS_STEER_STAT__COUNT,
};

/* ---- XDP metadata: dns_steer -> worker, for every frame redirected to an AF_XDP socket. ----
 * Written with bpf_xdp_adjust_meta directly in front of the packet, so user space reads it at
 * (packet address - sizeof(struct dns_steer_meta)) in the UMEM frame. Its size must stay a
 * multiple of 4 and at most 32 bytes (the kernel's metadata limit). The FIB lookup lets user
 * space forward without routing or neighbour tables of its own.
 */
enum dns_steer_fib_status {
  DNS_STEER_FIB_OK = 0,         /* egress_ifindex and both MACs are valid */
  DNS_STEER_FIB_NO_NEIGH,       /* route found, next hop MAC unknown yet: MACs not valid */
  DNS_STEER_FIB_NOT_FORWARDED,  /* local destination, blackhole, unreachable: nothing valid */
};

#define DNS_STEER_META_IPV6 0x01     /* L3 is IPv6 (else IPv4) */
#define DNS_STEER_META_RESPONSE 0x02 /* UDP source port is a DNS port (else destination is) */
#define DNS_STEER_META_VLAN 0x04     /* one 802.1Q tag; vlan_tci is valid */

struct dns_steer_meta {
  __u32 egress_ifindex; /* where the packet goes next, per the kernel FIB */
  __u8 next_hop_mac[6]; /* destination MAC to write */
  __u8 egress_mac[6];   /* source MAC to write (the egress interface's) */
  __u16 l3_offset;      /* bytes from packet start to the IP header */
  __u16 dns_offset;     /* bytes from packet start to the DNS header */
  __u8 fib_status;      /* enum dns_steer_fib_status */
  __u8 flags;           /* DNS_STEER_META_* */
  __u16 vlan_tci;       /* host order; valid with DNS_STEER_META_VLAN */
};

/* ---- Maps owned by the agent, mirrored by the proxy into policy snapshots. ---- */

/* Address families as stored in the keys below (AF_INET / AF_INET6 values, fixed here so BPF
 * code needs no libc header). */
#define DNSPROXY_FAMILY_V4 2
#define DNSPROXY_FAMILY_V6 10

/* Endpoint table key: one local endpoint (pod) address. IPv4 uses addr[0..3], the rest zero. */
struct endpoint_key {
  __u8 addr[16];
  __u8 family;
  __u8 pad[3];
};

struct endpoint_value {
  __u32 endpoint_id; /* the agent's endpoint id; policy rules are keyed by it */
  __u32 identity;    /* the endpoint's security identity */
};

/* ipcache key for a BPF_MAP_TYPE_LPM_TRIE holding IPv4 and IPv6 prefixes together: the family
 * byte is part of the matched data, so prefixlen = 32 (family + pad) + address prefix bits. */
struct ipcache_key {
  __u32 prefixlen;
  __u8 family;
  __u8 pad[3];
  __u8 addr[16];
};
#define DNSPROXY_IPCACHE_PREFIX_BASE 32

struct ipcache_value {
  __u32 identity; /* security identity of every address in the prefix */
  __u32 flags;    /* reserved, zero */
};

#endif /* DNSPROXY_DATAPATH_BPF_ABI_H */
