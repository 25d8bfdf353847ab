// The forwarding rewrite: what a router does to a packet it forwards, done in place in the UMEM
// frame with the next hop that dns_steer's FIB lookup left in the XDP metadata.
//
// Pure function over the caller's bytes: no syscalls, no allocation, unit-tested as data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "datapath/abi.h"

namespace dnsproxy::datapath {

enum class ForwardVerdict : uint8_t {
  kForward,       // rewritten: send it on meta.egress_ifindex
  kToKernel,      // the next hop has no neighbour entry yet (DNS_STEER_FIB_NO_NEIGH): rewritten
                  // except the MACs; hand the IP packet (from meta.l3_offset) to the node's
                  // stack, which resolves the neighbour while it forwards it
  kNotForwarded,  // FIB says local, blackhole, unreachable or an unknown status
  kTtlExceeded,   // IPv4 TTL or IPv6 hop limit <= 1: a router drops it (no ICMP from us)
  kMalformed,     // offsets in the metadata do not fit the packet or the IP version is wrong
  kShortDns,      // UDP payload shorter than a DNS header
};

// The metadata dns_steer wrote directly in front of the packet (datapath/bpf/dnsproxy_abi.h).
// `packet` must point into a UMEM frame with at least sizeof(dns_steer_meta) bytes of headroom.
[[nodiscard]] inline dns_steer_meta load_steer_meta(const std::byte* packet) noexcept {
  dns_steer_meta meta;
  std::memcpy(&meta, packet - sizeof(meta), sizeof(meta));
  return meta;
}

// Rewrites `packet` (Ethernet frame) for forwarding: destination MAC = next hop, source MAC =
// egress interface, IPv4 TTL - 1 with the header checksum updated incrementally (RFC 1624), or
// IPv6 hop limit - 1, and the UDP checksum computed in full: a packet from a veth may arrive with
// only the pseudo-header sum in it (checksum offload, CHECKSUM_PARTIAL), which the kernel would
// have completed on output and we must complete ourselves. The UDP header is taken to sit right
// before the DNS header. kToKernel gets the same TTL and checksum rewrite (the node's stack sends
// the injected packet as it is: it neither decrements the TTL nor completes the checksum) and no
// MACs (there are none yet). On any other verdict the packet is left unchanged.
[[nodiscard]] ForwardVerdict rewrite_for_forwarding(std::span<std::byte> packet,
                                                    const dns_steer_meta& meta) noexcept;

}  // namespace dnsproxy::datapath
