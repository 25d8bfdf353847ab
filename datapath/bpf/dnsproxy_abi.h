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

/* Change counters for the two maps above: a BPF_MAP_TYPE_ARRAY, __u32 index -> __u64 counter,
 * one slot per map. The agent bumps a map's counter after each batch of changes to it; the proxy
 * re-reads a map only when its counter moved, so an idle million-prefix ipcache costs one lookup
 * per poll instead of a full walk. */
enum dnsproxy_policy_generation {
  DNSPROXY_GENERATION_ENDPOINTS = 0,
  DNSPROXY_GENERATION_IPCACHE,
  DNSPROXY_GENERATION__COUNT,
};

#endif /* DNSPROXY_DATAPATH_BPF_ABI_H */
