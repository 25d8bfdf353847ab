#include "test/datapath/frame_builder.h"

#include <algorithm>

namespace dnsproxy::datapath::test {
namespace {

void put16(std::vector<uint8_t>& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

template <size_t N>
void put(std::vector<uint8_t>& out, const std::array<uint8_t, N>& bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// UDP header + DNS payload (a query header for example.org's A record, then filler).
std::vector<uint8_t> transport(const FrameSpec& spec) {
  std::vector<uint8_t> udp;
  put16(udp, spec.sport);
  put16(udp, spec.dport);
  put16(udp, spec.udp_length.value_or(static_cast<uint16_t>(8 + spec.dns_length)));
  put16(udp, 0);  // checksum
  static constexpr uint8_t kQuery[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0,   0,
                                       0,    0,    7,    'e',  'x', 'a', 'm', 'p', 'l', 'e',
                                       3,    'o',  'r',  'g',  0,   0,   1,   0,   1};
  for (size_t i = 0; i < spec.dns_length; ++i) {
    udp.push_back(i < sizeof(kQuery) ? kQuery[i] : 0);
  }
  return udp;
}

}  // namespace

std::vector<uint8_t> build_frame(const FrameSpec& spec, FrameLayout* layout) {
  std::vector<uint8_t> frame;
  put(frame, spec.dst_mac);
  put(frame, spec.src_mac);
  uint16_t ethertype = spec.ipv4 ? 0x0800 : spec.ipv6 ? 0x86dd : 0x0806;
  if (spec.ethertype) ethertype = *spec.ethertype;
  for (uint16_t tci : spec.vlan_tags) {
    put16(frame, 0x8100);
    put16(frame, tci);
  }
  put16(frame, ethertype);
  FrameLayout where{.l3_offset = static_cast<uint16_t>(frame.size())};

  const std::vector<uint8_t> udp = transport(spec);
  if (spec.ipv4) {
    const Ipv4Spec& ip = *spec.ipv4;
    const size_t header_length = ip.ihl * 4u;
    const int total = static_cast<int>(std::max<size_t>(header_length, 20) + udp.size());
    frame.push_back(static_cast<uint8_t>(ip.version << 4 | ip.ihl));
    frame.push_back(0);  // tos
    put16(frame, static_cast<uint16_t>(total + ip.total_length_delta));
    put16(frame, 0x1234);  // id
    put16(frame, ip.frag_off);
    frame.push_back(64);  // ttl
    frame.push_back(ip.protocol);
    put16(frame, 0);  // checksum
    put(frame, ip.src);
    put(frame, ip.dst);
    for (size_t i = 20; i < header_length; ++i) frame.push_back(1);  // NOP options
  } else if (spec.ipv6) {
    const Ipv6Spec& ip = *spec.ipv6;
    size_t extensions_length = 0;
    for (const auto& [type, length] : ip.extensions) extensions_length += length;
    frame.push_back(static_cast<uint8_t>(ip.version << 4));
    frame.push_back(0);
    put16(frame, 0);  // flow label
    put16(frame, static_cast<uint16_t>(static_cast<int>(extensions_length + udp.size()) +
                                       ip.payload_length_delta));
    frame.push_back(ip.extensions.empty() ? ip.next_header : ip.extensions.front().first);
    frame.push_back(64);  // hop limit
    put(frame, ip.src);
    put(frame, ip.dst);
    for (size_t i = 0; i < ip.extensions.size(); ++i) {
      const auto [type, length] = ip.extensions[i];
      const size_t start = frame.size();
      const uint8_t next =
          i + 1 < ip.extensions.size() ? ip.extensions[i + 1].first : ip.next_header;
      frame.push_back(next);
      if (type == 44) {  // fragment header: fixed 8 bytes
        frame.push_back(0);
        put16(frame, static_cast<uint16_t>(ip.fragment_offset_units << 3 | ip.more_fragments));
        put16(frame, 0xabcd);
        put16(frame, 0x0001);
      } else {
        frame.push_back(static_cast<uint8_t>(length / 8 - 1));
        frame.push_back(1);  // PadN option covering the rest
        frame.push_back(static_cast<uint8_t>(length - 4));
      }
      frame.resize(start + length, 0);
    }
  }
  if (spec.ipv4 || spec.ipv6) {
    where.dns_offset = static_cast<uint16_t>(frame.size() + 8);
    frame.insert(frame.end(), udp.begin(), udp.end());
  }
  if (frame.size() < spec.pad_to) frame.resize(spec.pad_to, 0);
  if (spec.truncate_to && *spec.truncate_to < frame.size()) frame.resize(*spec.truncate_to);
  if (layout) *layout = where;
  return frame;
}

}  // namespace dnsproxy::datapath::test
