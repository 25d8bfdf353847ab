// The reply rewrites: after dns::write_error_answer shortened the DNS message in place, make the
// frame around it say so.
//
//  - turn_around: a denied query becomes the answer the server would have sent, out of the port
//    it came in on: MACs, IP addresses and UDP ports swapped (so it comes from the server's
//    address and port, to the client's), IPv4 total length + fresh TTL + header checksum or IPv6
//    payload length + fresh hop limit, UDP length and a full UDP checksum; an 802.1Q tag and
//    IPv6 extension headers are kept as they came.
//  - resize_payload: a parked response turned into SERVFAIL keeps its direction; only the IP and
//    UDP lengths and the IPv4 header checksum change, and rewrite_for_forwarding then does the
//    rest (MACs, TTL, UDP checksum) as for any response.
//
// Pure functions over the caller's bytes (the UMEM frame): no syscalls, no allocation, tested as
// data (test/datapath/pipeline/reply_test.cpp). Both return the frame's new length (the DNS
// message now ends the frame: Ethernet padding is cut), or 0 when the metadata's offsets do not
// fit the frame (then it is unchanged).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "datapath/abi.h"

namespace dnsproxy::datapath::pipeline {

// The TTL / hop limit of a reply the proxy originates (Linux's default).
inline constexpr uint8_t kReplyHopLimit = 64;

[[nodiscard]] uint32_t turn_around(std::span<std::byte> frame, const dns_steer_meta& meta,
                                   size_t dns_length) noexcept;

[[nodiscard]] uint32_t resize_payload(std::span<std::byte> frame, const dns_steer_meta& meta,
                                      size_t dns_length) noexcept;

}  // namespace dnsproxy::datapath::pipeline
