// The fixed 12-byte DNS header (RFC 1035 4.1.1), read and written in place.
//
// libknot style: each field is an offset plus a mask, and the accessors take the header bytes
// as a fixed-extent span, so "the buffer holds at least a header" is checked once, by whoever
// makes the span (`header_of`), and never again per field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dnsproxy::dns {

inline constexpr size_t kHeaderSize = 12;

using HeaderBytes = std::span<uint8_t, kHeaderSize>;
using ConstHeaderBytes = std::span<const uint8_t, kHeaderSize>;

enum class Opcode : uint8_t { kQuery = 0, kIQuery = 1, kStatus = 2, kNotify = 4, kUpdate = 5 };

// The 4-bit header rcode; with EDNS0 the OPT record adds 8 high bits (RFC 6891 6.1.3).
enum class Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,
};

namespace header {

inline constexpr size_t kIdOffset = 0;
inline constexpr size_t kFlags1Offset = 2;  // QR | OPCODE(4) | AA | TC | RD
inline constexpr size_t kFlags2Offset = 3;  // RA | Z | AD | CD | RCODE(4)
inline constexpr size_t kQdCountOffset = 4;
inline constexpr size_t kAnCountOffset = 6;
inline constexpr size_t kNsCountOffset = 8;
inline constexpr size_t kArCountOffset = 10;

inline constexpr uint8_t kQrMask = 0x80;
inline constexpr uint8_t kOpcodeMask = 0x78;
inline constexpr unsigned kOpcodeShift = 3;
inline constexpr uint8_t kAaMask = 0x04;
inline constexpr uint8_t kTcMask = 0x02;
inline constexpr uint8_t kRdMask = 0x01;

inline constexpr uint8_t kRaMask = 0x80;
inline constexpr uint8_t kZMask = 0x40;
inline constexpr uint8_t kAdMask = 0x20;
inline constexpr uint8_t kCdMask = 0x10;
inline constexpr uint8_t kRcodeMask = 0x0f;

}  // namespace header

// Big-endian loads and stores; the caller has checked the bounds.
[[nodiscard]] constexpr uint16_t load_u16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
[[nodiscard]] constexpr uint32_t load_u32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
constexpr void store_u16(uint8_t* p, uint16_t value) noexcept {
  p[0] = static_cast<uint8_t>(value >> 8);
  p[1] = static_cast<uint8_t>(value);
}

// Precondition: message.size() >= kHeaderSize (parse_message checks it first).
[[nodiscard]] inline HeaderBytes header_of(std::span<uint8_t> message) noexcept {
  return message.first<kHeaderSize>();
}
[[nodiscard]] inline ConstHeaderBytes header_of(std::span<const uint8_t> message) noexcept {
  return message.first<kHeaderSize>();
}

[[nodiscard]] constexpr uint16_t id(ConstHeaderBytes h) noexcept {
  return load_u16(&h[header::kIdOffset]);
}
[[nodiscard]] constexpr bool qr(ConstHeaderBytes h) noexcept {
  return h[header::kFlags1Offset] & header::kQrMask;
}
[[nodiscard]] constexpr uint8_t opcode(ConstHeaderBytes h) noexcept {
  return (h[header::kFlags1Offset] & header::kOpcodeMask) >> header::kOpcodeShift;
}
[[nodiscard]] constexpr bool aa(ConstHeaderBytes h) noexcept {
  return h[header::kFlags1Offset] & header::kAaMask;
}
[[nodiscard]] constexpr bool tc(ConstHeaderBytes h) noexcept {
  return h[header::kFlags1Offset] & header::kTcMask;
}
[[nodiscard]] constexpr bool rd(ConstHeaderBytes h) noexcept {
  return h[header::kFlags1Offset] & header::kRdMask;
}
[[nodiscard]] constexpr bool ra(ConstHeaderBytes h) noexcept {
  return h[header::kFlags2Offset] & header::kRaMask;
}
[[nodiscard]] constexpr bool ad(ConstHeaderBytes h) noexcept {
  return h[header::kFlags2Offset] & header::kAdMask;
}
[[nodiscard]] constexpr bool cd(ConstHeaderBytes h) noexcept {
  return h[header::kFlags2Offset] & header::kCdMask;
}
// The low 4 bits only; Message::rcode() adds the EDNS0 extension.
[[nodiscard]] constexpr uint8_t header_rcode(ConstHeaderBytes h) noexcept {
  return h[header::kFlags2Offset] & header::kRcodeMask;
}
[[nodiscard]] constexpr uint16_t qdcount(ConstHeaderBytes h) noexcept {
  return load_u16(&h[header::kQdCountOffset]);
}
[[nodiscard]] constexpr uint16_t ancount(ConstHeaderBytes h) noexcept {
  return load_u16(&h[header::kAnCountOffset]);
}
[[nodiscard]] constexpr uint16_t nscount(ConstHeaderBytes h) noexcept {
  return load_u16(&h[header::kNsCountOffset]);
}
[[nodiscard]] constexpr uint16_t arcount(ConstHeaderBytes h) noexcept {
  return load_u16(&h[header::kArCountOffset]);
}

constexpr void set_id(HeaderBytes h, uint16_t value) noexcept {
  store_u16(&h[header::kIdOffset], value);
}
constexpr void set_flag(HeaderBytes h, size_t offset, uint8_t mask, bool on) noexcept {
  h[offset] = static_cast<uint8_t>(on ? h[offset] | mask : h[offset] & ~mask);
}
constexpr void set_header_rcode(HeaderBytes h, uint8_t rcode) noexcept {
  h[header::kFlags2Offset] = static_cast<uint8_t>((h[header::kFlags2Offset] & ~header::kRcodeMask) |
                                                  (rcode & header::kRcodeMask));
}
constexpr void set_counts(HeaderBytes h, uint16_t qd, uint16_t an, uint16_t ns,
                          uint16_t ar) noexcept {
  store_u16(&h[header::kQdCountOffset], qd);
  store_u16(&h[header::kAnCountOffset], an);
  store_u16(&h[header::kNsCountOffset], ns);
  store_u16(&h[header::kArCountOffset], ar);
}

}  // namespace dnsproxy::dns
