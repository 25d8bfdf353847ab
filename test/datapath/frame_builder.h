// Builds Ethernet frames for the datapath tests: a well-formed DNS-over-UDP frame by default, and
// every field that dns_steer checks can be bent to make a malformed one. Checksums are left zero:
// dns_steer does not verify them (the worker and the kernel do).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace dnsproxy::datapath::test {

using Mac = std::array<uint8_t, 6>;
using Ipv4 = std::array<uint8_t, 4>;
using Ipv6 = std::array<uint8_t, 16>;

struct Ipv4Spec {
  Ipv4 src{};
  Ipv4 dst{};
  uint8_t version = 4;
  uint8_t ihl = 5;             // > 5 adds zeroed option bytes
  uint16_t frag_off = 0;       // host order: MF 0x2000 | offset in 8-byte units
  uint8_t protocol = 17;       // UDP
  int total_length_delta = 0;  // added to the correct total length
};

struct Ipv6Spec {
  Ipv6 src{};
  Ipv6 dst{};
  uint8_t version = 6;
  // Extension headers before the transport header: (type, total length in bytes, a multiple of 8).
  // Type 44 (fragment) gets a fragment header with `fragment_offset_units` and `more_fragments`.
  std::vector<std::pair<uint8_t, uint16_t>> extensions;
  uint16_t fragment_offset_units = 0;
  bool more_fragments = false;
  uint8_t next_header = 17;  // transport protocol after the extensions
  int payload_length_delta = 0;
};

struct FrameSpec {
  Mac dst_mac{0x02, 0, 0, 0, 0, 0x01};
  Mac src_mac{0x02, 0, 0, 0, 0, 0x02};
  std::vector<uint16_t> vlan_tags;    // 802.1Q TCIs, outermost first
  std::optional<uint16_t> ethertype;  // overrides the one the L3 spec implies
  std::optional<Ipv4Spec> ipv4;       // exactly one of ipv4 / ipv6 (or none: L2 only)
  std::optional<Ipv6Spec> ipv6;
  uint16_t sport = 40000;
  uint16_t dport = 53;
  size_t dns_length = 29;              // bytes after the UDP header (a small query)
  std::optional<uint16_t> udp_length;  // overrides the correct UDP length
  size_t pad_to = 0;                   // Ethernet padding up to this frame size
  std::optional<size_t> truncate_to;   // cut the finished frame to this many bytes
};

// Byte offsets of the headers in a built frame, for checking the metadata.
struct FrameLayout {
  uint16_t l3_offset = 0;
  uint16_t dns_offset = 0;
};

std::vector<uint8_t> build_frame(const FrameSpec& spec, FrameLayout* layout = nullptr);

}  // namespace dnsproxy::datapath::test
