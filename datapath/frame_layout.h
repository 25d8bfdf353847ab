// Header sizes and field offsets of the frames the workers rewrite in place: Ethernet, IPv4,
// IPv6, UDP and the DNS header, as the wire has them (offsets from the start of their header).
// One table for the rewrites that forward a packet (forward.cpp), turn one around into a reply
// (pipeline/reply.cpp) and read a flow (pipeline/policy_handler.cpp).
#pragma once

#include <cstddef>

namespace dnsproxy::datapath::frame {

inline constexpr size_t kEthernetHeader = 14;  // untagged; a VLAN tag adds 4
inline constexpr size_t kMacLength = 6;
inline constexpr size_t kIpv4MinHeader = 20;  // IHL 5; options make it longer
inline constexpr size_t kIpv6Header = 40;
inline constexpr size_t kUdpHeader = 8;
inline constexpr size_t kDnsHeader = 12;

inline constexpr size_t kIpv4TtlOffset = 8;
inline constexpr size_t kIpv4ChecksumOffset = 10;
inline constexpr size_t kIpv6HopLimitOffset = 7;

}  // namespace dnsproxy::datapath::frame
