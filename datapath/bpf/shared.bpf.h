/* What dns_steer and l3_guard share, included by both .bpf.c files (never by user space):
 * the policed-sources map definition (each object declares it; l3_guard's is replaced by
 * dns_steer's at load, so both programs read one map), the 802.1Q header, and the DNS port test
 * over a program's load-time port list. Needs linux/bpf.h and bpf_helpers.h first. */
#ifndef DNSPROXY_DATAPATH_BPF_SHARED_BPF_H
#define DNSPROXY_DATAPATH_BPF_SHARED_BPF_H

#include "datapath/bpf/dnsproxy_abi.h"

/* Policed sources (struct policed_source in dnsproxy_abi.h), written by dnsproxyd. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, DNS_STEER_MAX_SOURCES);
  __type(key, struct endpoint_key);
  __type(value, struct policed_source);
} dns_steer_sources SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 encapsulated_proto;
};

/* Whether `port` is one of the first `count` of `ports` (a program's load-time DNS ports). */
static __always_inline int port_in(const volatile __u16* ports, __u8 count, __be16 port) {
  for (int i = 0; i < DNS_STEER_MAX_PORTS; i++) {
    if (i >= count) break;
    if (ports[i] == port) return 1;
  }
  return 0;
}

#endif /* DNSPROXY_DATAPATH_BPF_SHARED_BPF_H */
