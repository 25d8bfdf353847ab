// Domain names as they sit in a DNS message: length-prefixed labels, possibly ending in a
// compression pointer (RFC 1035 4.1.4).
//
// scan_name() is the only function that trusts nothing: it checks every byte of a name before
// anything else looks at it. The other functions take names scan_name() accepted (the parser
// scans every name of a message before handing out offsets) and so need no bounds checks.
//
// Compression rule, stricter than RFC 1035 and what makes loops impossible by construction: a
// pointer must point strictly before the start of the name part it was reached from (the name's
// first byte, or the previous pointer's target). Targets therefore strictly decrease, and the
// walk ends. kMaxCompressionHops bounds the work on top of that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/name_text.h"
#include "dns/parse_error.h"

namespace dnsproxy::dns {

// An encoder writes each suffix once and points at it, so a name's pointer depth is at most its
// number of distinct suffixes, in practice a handful; 16 leaves room and bounds a hostile packet.
inline constexpr unsigned kMaxCompressionHops = 16;

struct NameScan {
  uint16_t end = 0;          // offset just past the name where it was found (past its pointer)
  uint8_t wire_length = 0;   // uncompressed length, root byte included (1..255)
  ParseError error = ParseError::kCount;  // kCount: the name is valid
  [[nodiscard]] bool ok() const noexcept { return error == ParseError::kCount; }
};

// Validates the name starting at message[offset].
[[nodiscard]] NameScan scan_name(std::span<const uint8_t> message, size_t offset) noexcept;

// The offset just past a scanned name where it was found: NameScan::end without the checks.
[[nodiscard]] size_t skip_name(std::span<const uint8_t> message, size_t offset) noexcept;

// Copies a scanned name uncompressed, case as sent, into `out`. Returns the bytes written.
[[nodiscard]] size_t copy_name(std::span<const uint8_t> message, size_t offset,
                               std::span<uint8_t, kMaxNameWireLength> out) noexcept;

// Copies a scanned name uncompressed and ASCII-lowercased into `out` (the form the policy
// matcher consumes: wire labels ending with the 0 root byte). Returns the bytes written.
[[nodiscard]] size_t copy_name_lowercase(std::span<const uint8_t> message, size_t offset,
                                         std::span<uint8_t, kMaxNameWireLength> out) noexcept;

// Whether two scanned names of the same message are equal, ASCII case-insensitively.
[[nodiscard]] bool names_equal(std::span<const uint8_t> message, size_t a, size_t b) noexcept;

}  // namespace dnsproxy::dns
