// Builds DNS messages byte by byte for tests, fuzz seeds and benchmarks, including malformed
// ones: nothing here checks anything, so a test can write exactly the bytes it wants.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dns/header.h"
#include "dns/name_text.h"

namespace dnsproxy::dns::testing {

inline constexpr uint8_t kFlagsQuery = 0x01;     // RD
inline constexpr uint8_t kFlagsResponse = 0x81;  // QR RD

class PacketBuilder {
 public:
  PacketBuilder& u8(uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  PacketBuilder& u16(uint16_t v) {
    return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v));
  }
  PacketBuilder& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  PacketBuilder& raw(std::span<const uint8_t> data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }
  PacketBuilder& raw(std::string_view data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }

  // id, flags1 (QR..RD), flags2 (RA..RCODE), QD/AN/NS/AR counts.
  PacketBuilder& header(uint16_t id, uint8_t flags1, uint8_t flags2, uint16_t qd, uint16_t an,
                        uint16_t ns, uint16_t ar) {
    return u16(id).u8(flags1).u8(flags2).u16(qd).u16(an).u16(ns).u16(ar);
  }
  // An uncompressed name from presentation form ("www.example.com", "." for the root).
  PacketBuilder& name(std::string_view text) {
    std::array<uint8_t, kMaxNameWireLength> wire{};
    const size_t length = name_from_text(text, wire).value();
    return raw(std::span(wire).first(length));
  }
  // Labels from text without the root byte, to be followed by pointer().
  PacketBuilder& labels(std::string_view text) {
    name(text);
    bytes_.pop_back();
    return *this;
  }
  PacketBuilder& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xc000 | offset)); }
  PacketBuilder& question(uint16_t type, uint16_t qclass = 1) { return u16(type).u16(qclass); }
  // TYPE CLASS TTL RDLENGTH after an owner name.
  PacketBuilder& fixed(uint16_t type, uint16_t rclass, uint32_t ttl, uint16_t rdlength) {
    return u16(type).u16(rclass).u32(ttl).u16(rdlength);
  }
  // A complete OPT record: root owner, payload size, ext rcode, version, DO, no options.
  PacketBuilder& opt(uint16_t payload_size = 1232, bool dnssec_ok = false,
                     uint8_t extended_rcode = 0, uint8_t version = 0) {
    return u8(0).fixed(
        41, payload_size,
        uint32_t{extended_rcode} << 24 | uint32_t{version} << 16 | (dnssec_ok ? 0x8000u : 0u), 0);
  }

  [[nodiscard]] uint16_t here() const { return static_cast<uint16_t>(bytes_.size()); }
  [[nodiscard]] const std::vector<uint8_t>& bytes() const { return bytes_; }
  [[nodiscard]] std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// "www.example.com A" with an OPT record (1232, DO): what stub resolvers send today.
inline std::vector<uint8_t> typical_query(std::string_view qname = "www.Example.com",
                                          uint16_t qtype = 1) {
  PacketBuilder p;
  p.header(0x1234, kFlagsQuery, 0, 1, 0, 0, 1).name(qname).question(qtype).opt(1232, true);
  return p.bytes();
}

// Record i's owner is "x" + a pointer to record i-1's owner, so it takes i + 1 hops to read.
inline std::vector<uint8_t> records_with_pointer_depth(unsigned depth) {
  PacketBuilder p;
  p.header(9, kFlagsResponse, 0, 1, static_cast<uint16_t>(depth), 0, 0);
  uint16_t previous = p.here();
  p.name("a.example").question(1);
  for (unsigned i = 0; i < depth; ++i) {
    const uint16_t owner = p.here();
    p.labels("x").pointer(previous).fixed(16, 1, 60, 0);
    previous = owner;
  }
  return p.bytes();
}

// www.example.com -> CNAME a.cdn.example.net -> CNAME b.cdn.example.net -> 2 A + 2 AAAA, all
// compressed the way servers write it, plus an OPT record. The TTLs make the chain minimum
// differ per record: 300, 120, then addresses 60, 600, 30, 600 -> chain TTLs 60, 120, 30, 120.
inline std::vector<uint8_t> chain_response() {
  PacketBuilder p;
  p.header(0xbeef, kFlagsResponse, 0x80, 1, 6, 0, 1);
  const uint16_t qname = p.here();
  p.name("www.example.com").question(1);
  p.pointer(qname).fixed(5, 1, 300, 0);
  const uint16_t first_rdlength = static_cast<uint16_t>(p.here() - 2);
  const uint16_t first_target = p.here();
  p.labels("a.cdn").name("example.net");
  p.bytes()[first_rdlength + 1] = static_cast<uint8_t>(p.here() - first_target);
  p.pointer(first_target).fixed(5, 1, 120, 4);
  const uint16_t second_target = p.here();
  p.labels("b").pointer(first_target + 2);                       // b + cdn.example.net
  p.pointer(second_target).fixed(1, 1, 60, 4).u32(0xcb007101);   // 203.0.113.1
  p.pointer(second_target).fixed(1, 1, 600, 4).u32(0xcb007102);  // 203.0.113.2
  p.pointer(second_target).fixed(28, 1, 30, 16).u32(0x20010db8).u32(0x000e0000).u32(0).u32(1);
  p.pointer(second_target).fixed(28, 1, 600, 16).u32(0x20010db8).u32(0x000e0000).u32(0).u32(2);
  p.opt(1232);
  return p.bytes();
}

}  // namespace dnsproxy::dns::testing
