// SPDX-License-Identifier: GPL-2.0
/* loadgen_rx: dnsproxy-loadgen's XDP program on the interface it sends from.
 *
 * Receive: answers to the load generator's queries (UDP from the server port to one of its
 * source ports, IPv4 or IPv6 without extension headers) go to the AF_XDP socket of their receive
 * queue; every other packet (ARP, neighbour discovery, anything for the kernel's own sockets)
 * passes, so the namespace keeps working while the load generator runs. A queue without a socket
 * passes too.
 *
 * Transmit (--tx xdp, tools/loadgen/xdp_program.h): the load generator runs this same program
 * with BPF_PROG_TEST_RUN in live-frames mode on seed frames (LOADGEN_TX_SEED in the metadata);
 * each run writes query number loadgen_tx_next++ into the frame and returns XDP_TX. Query k is
 * template k % template_count with slot k % (port_count * ids_per_port): source port
 * first_port + slot % port_count, DNS ID slot / port_count, as the user-space path numbers them.
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

/* Filled by the loader between open and load (loadgen_templates' max_entries too). */
const volatile struct loadgen_rx_config loadgen_rx_config = {
    .server_port = bpf_htons(53),
    .first_port = 32768,
    .port_count = 1024,
    .ids_per_port = 1024,
    .template_count = 0,
};

/* The load generator's sockets, one per receive queue of the interface (key: queue index). */
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, LOADGEN_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} loadgen_xsks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct loadgen_template);
} loadgen_templates SEC(".maps");

/* Only the load generator's one test_run caller touches these, so plain increments do. */
__u64 loadgen_tx_next = 0;   /* the next query's number (user space sets it before each run) */
__u64 loadgen_tx_failed = 0; /* seed runs that could not build their query (dropped) */

static __always_inline int is_seed(struct xdp_md* ctx) {
  const __u32* meta = (void*)(long)ctx->data_meta;
  if ((void*)(meta + 1) > (void*)(long)ctx->data) return 0;
  return *meta == LOADGEN_TX_SEED;
}

static __always_inline __u16 fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)sum;
}

/* Query k into the frame: the template's bytes, then source port, checksum and DNS ID. */
static __always_inline int build_query(struct xdp_md* ctx, __u64 k) {
  if (loadgen_rx_config.template_count == 0) return -1;
  const __u32 index = (__u32)(k % loadgen_rx_config.template_count);
  const struct loadgen_template* t = bpf_map_lookup_elem(&loadgen_templates, &index);
  if (!t) return -1;
  const __u32 length = t->length;
  if (length < 62 || length > LOADGEN_MAX_FRAME) return -1;
  const int delta = (int)length - (int)(ctx->data_end - ctx->data);
  if (delta != 0 && bpf_xdp_adjust_tail(ctx, delta) != 0) return -1;
  if (bpf_xdp_store_bytes(ctx, 0, (void*)t->frame, length) != 0) return -1;

  const __u32 ports = loadgen_rx_config.port_count;
  const __u32 slot = (__u32)(k % ((__u64)ports * loadgen_rx_config.ids_per_port));
  const __u16 port = (__u16)(loadgen_rx_config.first_port + slot % ports);
  const __u16 id = (__u16)(slot / ports);
  __u16 check = (__u16)~fold(t->partial_sum + port + id);
  if (check == 0) check = 0xffff;
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u8* udp = data + (t->udp_offset == 34 ? 34 : 54);
  if ((void*)(udp + 10) > end) return -1; /* source port +0, checksum +6, DNS ID +8 */
  *(__u16*)udp = bpf_htons(port);
  *(__u16*)(udp + 6) = bpf_htons(check);
  *(__u16*)(udp + 8) = bpf_htons(id);
  return 0;
}

static __always_inline int transmit(struct xdp_md* ctx) {
  if (build_query(ctx, loadgen_tx_next++) != 0) {
    ++loadgen_tx_failed;
    return XDP_DROP;
  }
  return XDP_TX;
}

static __always_inline int receive(struct xdp_md* ctx) {
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

SEC("xdp")
int loadgen_rx(struct xdp_md* ctx) {
  return is_seed(ctx) ? transmit(ctx) : receive(ctx);
}

char LICENSE[] SEC("license") = "GPL";
