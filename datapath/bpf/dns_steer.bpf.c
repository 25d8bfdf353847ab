// SPDX-License-Identifier: GPL-2.0
/* dns_steer: the XDP program on every interface the proxy serves (DESIGN.md, packet path).
 * This first cut only counts what it sees and passes everything to the kernel stack; the
 * steering of DNS into AF_XDP sockets builds on it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "datapath/bpf/dnsproxy_abi.h"

/* Per-CPU counters, one slot per enum dns_steer_stat: read and summed by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, DNS_STEER_STAT__COUNT);
  __type(key, __u32);
  __type(value, __u64);
} dns_steer_stats SEC(".maps");

static __always_inline void count(__u32 stat) {
  __u64* slot = bpf_map_lookup_elem(&dns_steer_stats, &stat);
  if (slot) *slot += 1;
}

SEC("xdp")
int dns_steer(struct xdp_md* ctx) {
  count(DNS_STEER_STAT_RX);
  count(DNS_STEER_STAT_PASS);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
