#include "dns/wire_name.h"

#include <cstring>

#include "dns/header.h"

namespace dnsproxy::dns {
namespace {

constexpr uint8_t kPointerTag = 0xc0;

[[nodiscard]] constexpr bool is_pointer(uint8_t length_byte) noexcept {
  return (length_byte & kPointerTag) == kPointerTag;
}

[[nodiscard]] constexpr size_t pointer_target(const uint8_t* at) noexcept {
  return static_cast<size_t>(at[0] & ~kPointerTag) << 8 | at[1];
}

[[nodiscard]] constexpr uint8_t to_lower(uint8_t c) noexcept {
  return static_cast<uint8_t>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

// Follows pointers (of a scanned name) until a label or the root byte.
[[nodiscard]] size_t skip_pointers(const uint8_t* message, size_t at) noexcept {
  while (is_pointer(message[at])) at = pointer_target(&message[at]);
  return at;
}

[[nodiscard]] bool labels_equal(const uint8_t* a, const uint8_t* b, size_t length) noexcept {
  for (size_t i = 0; i < length; ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

NameScan rejected(ParseError error) noexcept { return NameScan{0, 0, error}; }

}  // namespace

NameScan scan_name(std::span<const uint8_t> message, size_t offset) noexcept {
  const size_t size = message.size();
  size_t at = offset;
  size_t part_start = offset;  // pointers must target strictly before this
  size_t end = 0;              // set at the first pointer, or at the root byte if none
  size_t wire_length = 0;      // labels so far, length bytes included, root byte excluded
  unsigned hops = 0;
  for (;;) {
    if (at >= size) return rejected(ParseError::kNameTruncated);
    const uint8_t length_byte = message[at];
    if (length_byte == 0) {
      if (end == 0) end = at + 1;
      return NameScan{static_cast<uint16_t>(end), static_cast<uint8_t>(wire_length + 1),
                      ParseError::kCount};
    }
    if (is_pointer(length_byte)) {
      if (at + 1 >= size) return rejected(ParseError::kNameTruncated);
      const size_t target = pointer_target(&message[at]);
      if (target < kHeaderSize) return rejected(ParseError::kPointerIntoHeader);
      if (target >= at) return rejected(ParseError::kForwardPointer);
      if (target >= part_start) return rejected(ParseError::kPointerLoop);
      if (++hops > kMaxCompressionHops) return rejected(ParseError::kTooManyPointers);
      if (end == 0) end = at + 2;
      at = part_start = target;
      continue;
    }
    if (length_byte > kMaxLabelLength) return rejected(ParseError::kBadLabelLength);
    wire_length += 1 + length_byte;
    // The root byte must still fit.
    if (wire_length + 1 > kMaxNameWireLength) return rejected(ParseError::kNameTooLong);
    at += 1 + length_byte;
  }
}

size_t skip_name(std::span<const uint8_t> message, size_t offset) noexcept {
  const uint8_t* const wire = message.data();
  while (wire[offset] != 0) {
    if (is_pointer(wire[offset])) return offset + 2;
    offset += 1 + wire[offset];
  }
  return offset + 1;
}

size_t copy_name(std::span<const uint8_t> message, size_t offset,
                 std::span<uint8_t, kMaxNameWireLength> out) noexcept {
  const uint8_t* const wire = message.data();
  size_t written = 0;
  size_t at = skip_pointers(wire, offset);
  while (wire[at] != 0) {
    const size_t label_bytes = 1 + wire[at];
    std::memcpy(&out[written], &wire[at], label_bytes);
    written += label_bytes;
    at = skip_pointers(wire, at + label_bytes);
  }
  out[written++] = 0;
  return written;
}

size_t copy_name_lowercase(std::span<const uint8_t> message, size_t offset,
                           std::span<uint8_t, kMaxNameWireLength> out) noexcept {
  const size_t written = copy_name(message, offset, out);
  lowercase_ascii(out.first(written));
  return written;
}

bool names_equal(std::span<const uint8_t> message, size_t a, size_t b) noexcept {
  const uint8_t* const wire = message.data();
  for (;;) {
    a = skip_pointers(wire, a);
    b = skip_pointers(wire, b);
    // The same bytes: compression made the rest of both names one and the same suffix.
    if (a == b) return true;
    const uint8_t length = wire[a];
    if (length != wire[b]) return false;
    if (length == 0) return true;
    if (!labels_equal(&wire[a + 1], &wire[b + 1], length)) return false;
    a += 1 + length;
    b += 1 + length;
  }
}

}  // namespace dnsproxy::dns
