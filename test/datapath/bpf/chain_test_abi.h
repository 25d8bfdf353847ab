/* Slots of chain_counter's chain_counts map (test/datapath/bpf/chain_test.bpf.c). */
#pragma once

enum chain_count {
  CHAIN_COUNT_ALL,   /* every frame that reached chain_counter */
  CHAIN_COUNT_ICMP,  /* ICMP over IPv4 (ICMPv6 counts as other) */
  CHAIN_COUNT_DNS,   /* UDP to or from port 53 */
  CHAIN_COUNT_UDP,   /* other UDP */
  CHAIN_COUNT_OTHER, /* everything else, e.g. ARP */
  CHAIN_COUNT__COUNT,
};
