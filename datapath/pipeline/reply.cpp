#include "datapath/pipeline/reply.h"

#include <algorithm>

#include "datapath/checksum.h"
#include "datapath/frame_layout.h"

namespace dnsproxy::datapath::pipeline {
namespace {

using namespace frame;  // datapath/frame_layout.h

struct Layout {
  size_t l3;
  size_t l4;
  bool ipv6;
};

// The offsets dns_steer reported, checked against the frame; false when they do not fit.
bool check_layout(std::span<const std::byte> frame, const dns_steer_meta& meta, size_t dns_length,
                  Layout& out) noexcept {
  const bool ipv6 = (meta.flags & DNS_STEER_META_IPV6) != 0;
  const size_t l3 = meta.l3_offset;
  const size_t min_header = ipv6 ? kIpv6Header : kIpv4MinHeader;
  if (l3 < kEthernetHeader || l3 + min_header > frame.size()) return false;
  const uint8_t first = std::to_integer<uint8_t>(frame[l3]);
  if (first >> 4 != (ipv6 ? 6 : 4)) return false;
  const size_t header = ipv6 ? kIpv6Header : size_t{first & 0x0fu} * 4;
  if (header < min_header || meta.dns_offset < kUdpHeader) return false;
  const size_t l4 = size_t{meta.dns_offset} - kUdpHeader;
  if (l4 < l3 + header || dns_length < kDnsHeader || meta.dns_offset + dns_length > frame.size())
    return false;
  out = Layout{l3, l4, ipv6};
  return true;
}

void store_u16(std::span<std::byte> frame, size_t offset, size_t value) noexcept {
  frame[offset] = std::byte{static_cast<uint8_t>(value >> 8)};
  frame[offset + 1] = std::byte{static_cast<uint8_t>(value)};
}

void swap_bytes(std::span<std::byte> frame, size_t a, size_t b, size_t length) noexcept {
  std::swap_ranges(frame.begin() + static_cast<ptrdiff_t>(a),
                   frame.begin() + static_cast<ptrdiff_t>(a + length),
                   frame.begin() + static_cast<ptrdiff_t>(b));
}

// UDP length, then IPv4 total length or IPv6 payload length (extension headers included).
void write_lengths(std::span<std::byte> frame, const Layout& at, size_t dns_length) noexcept {
  const size_t udp_length = kUdpHeader + dns_length;
  store_u16(frame, at.l4 + 4, udp_length);
  if (at.ipv6)
    store_u16(frame, at.l3 + 4, at.l4 - at.l3 - kIpv6Header + udp_length);
  else
    store_u16(frame, at.l3 + 2, at.l4 - at.l3 + udp_length);
}

}  // namespace

uint32_t turn_around(std::span<std::byte> frame, const dns_steer_meta& meta,
                     size_t dns_length) noexcept {
  Layout at{};
  if (!check_layout(frame, meta, dns_length, at)) return 0;
  const size_t end = meta.dns_offset + dns_length;
  swap_bytes(frame, 0, kMacLength, kMacLength);
  if (at.ipv6) {
    swap_bytes(frame, at.l3 + 8, at.l3 + 24, 16);
    frame[at.l3 + 7] = std::byte{kReplyHopLimit};
  } else {
    swap_bytes(frame, at.l3 + 12, at.l3 + 16, 4);
    frame[at.l3 + 8] = std::byte{kReplyHopLimit};
  }
  swap_bytes(frame, at.l4, at.l4 + 2, 2);
  write_lengths(frame, at, dns_length);
  if (!at.ipv6) write_ipv4_header_checksum(frame, at.l3);
  // The lengths were just written to fit, so the checksum cannot refuse.
  (void)write_udp_checksum(frame.first(end), at.l3, at.l4, at.ipv6);
  return static_cast<uint32_t>(end);
}

uint32_t resize_payload(std::span<std::byte> frame, const dns_steer_meta& meta,
                        size_t dns_length) noexcept {
  Layout at{};
  if (!check_layout(frame, meta, dns_length, at)) return 0;
  write_lengths(frame, at, dns_length);
  if (!at.ipv6) write_ipv4_header_checksum(frame, at.l3);
  return static_cast<uint32_t>(meta.dns_offset + dns_length);
}

}  // namespace dnsproxy::datapath::pipeline
