// Internet checksums (RFC 1071) over a packet in a UMEM frame, shared by the rewrites that
// forward a packet (forward.h) and those that turn one around into a reply (pipeline/reply.h).
//
// Pure functions over the caller's bytes: no syscalls, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dnsproxy::datapath {

// Writes the UDP checksum computed in full over the pseudo-header (IPv4 or IPv6 addresses at
// l3), the UDP header at l4 and its payload, as long as the UDP length field says. Needed because
// a packet that reached XDP from a virtual device (veth: a pod, a namespace) may still carry
// CHECKSUM_PARTIAL: its checksum field holds only the pseudo-header sum, which the kernel would
// have completed on output. Returns false (packet unchanged) when the UDP length does not fit.
[[nodiscard]] bool write_udp_checksum(std::span<std::byte> packet, size_t l3, size_t l4,
                                      bool ipv6) noexcept;

// Writes the IPv4 header checksum computed in full over the header at l3 (IHL words, which the
// caller has checked fit the packet).
void write_ipv4_header_checksum(std::span<std::byte> packet, size_t l3) noexcept;

}  // namespace dnsproxy::datapath
