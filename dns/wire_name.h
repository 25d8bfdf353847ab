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

#include "dns/header.h"
#include "dns/name_text.h"
#include "dns/parse_error.h"

namespace dnsproxy::dns {

// An encoder writes each suffix once and points at it, so a name's pointer depth is at most its
// number of distinct suffixes, in practice a handful; 16 leaves room and bounds a hostile packet.
inline constexpr unsigned kMaxCompressionHops = 16;

struct NameScan {
  // Offset just past the name where it was found (past its pointer). Full width: the parser's
  // next read depends on it, and narrowing it would put a zero-extension on that chain.
  size_t end = 0;
  uint8_t wire_length = 0;                // uncompressed length, root byte included (1..255)
  ParseError error = ParseError::kCount;  // kCount: the name is valid
  [[nodiscard]] bool ok() const noexcept { return error == ParseError::kCount; }
};

// Offsets where a name scan_name() accepted starts (a whole name, or the suffix a pointer led
// to), with that name's uncompressed length and pointer count. A later pointer to one of them,
// or to a later label of one (find_suffix), needs no second walk: whether a name is valid, its
// length and its hops depend only on its own bytes, so the shortcut gives exactly the answer
// the full walk would. This is what keeps a response whose owners all point at the same few
// names linear in its size. One KnownNames serves one message, scanned as one span: a name
// checked in it may read on past any shorter view of the same bytes.
class KnownNames {
 public:
  struct Entry {
    uint16_t offset;
    uint8_t wire_length;
    uint8_t hops;
  };

  // Newest first: owners mostly point at the name just before them (the chain's tail).
  [[nodiscard]] const Entry* find(size_t offset) const noexcept {
    for (uint8_t i = count_; i-- > 0;)
      if (entries_[i].offset == offset) return &entries_[i];
    return nullptr;
  }
  // find(), or else the known name `offset` is a later label of, before any pointer in it:
  // what a CNAME target mostly points at (the longest suffix the encoder had, in the middle of
  // the name before it). Found by walking from the nearest known start below `offset`, a label
  // or two instead of the rest of the name. Entry::offset is 0 (no name starts there) if none.
  [[nodiscard]] Entry find_suffix(const uint8_t* message, size_t offset) const noexcept {
    const Entry* whole = find(offset);
    return whole != nullptr ? *whole : find_inside(message, offset);
  }
  // Full: later names are simply walked again.
  void add(size_t offset, size_t wire_length, unsigned hops) noexcept {
    if (count_ < kCapacity)
      entries_[count_++] = Entry{static_cast<uint16_t>(offset), static_cast<uint8_t>(wire_length),
                                 static_cast<uint8_t>(hops)};
  }

 private:
  // find_suffix()'s second search, out of line: the parser's hot loop stays small.
  [[nodiscard]] Entry find_inside(const uint8_t* message, size_t offset) const noexcept;

  static constexpr uint8_t kCapacity = 16;
  Entry entries_[kCapacity];
  uint8_t count_ = 0;
};

// Validates the name starting at message[offset]. With `known`, pointers to names in it are not
// walked again, and the names this scan validates are added to it.
[[nodiscard]] inline NameScan scan_name(std::span<const uint8_t> message, size_t offset,
                                        KnownNames* known = nullptr) noexcept;

// The offset just past a scanned name where it was found: NameScan::end without the checks.
[[nodiscard]] inline size_t skip_name(std::span<const uint8_t> message, size_t offset) noexcept;

// Copies a scanned name uncompressed, case as sent, into `out`. Returns the bytes written.
// (The question name, lowercased, comes from copy_question_name in message.h.)
[[nodiscard]] size_t copy_name(std::span<const uint8_t> message, size_t offset,
                               std::span<uint8_t, kMaxNameWireLength> out) noexcept;

// Whether two scanned names of the same message are equal, ASCII case-insensitively.
[[nodiscard]] inline bool names_equal(std::span<const uint8_t> message, size_t a,
                                      size_t b) noexcept;

// ---- Definitions: inline, because the parser calls them once per name per packet ------------

namespace wire_detail {

constexpr uint8_t kPointerTag = 0xc0;
constexpr size_t kMaxPointerTarget = 0x3fff;  // 14 bits

[[nodiscard]] constexpr bool is_pointer(uint8_t length_byte) noexcept {
  return (length_byte & kPointerTag) == kPointerTag;
}

[[nodiscard]] constexpr size_t pointer_target(const uint8_t* at) noexcept {
  return static_cast<size_t>(at[0] & ~kPointerTag) << 8 | at[1];
}

// Whether the two bytes at `at` are a compression pointer to `target` (one 16-bit compare; a
// target past 14 bits has no pointer, and its low bits must not alias one).
[[nodiscard]] constexpr bool points_to(const uint8_t* at, size_t target) noexcept {
  return target <= kMaxPointerTarget && load_u16(at) == (kPointerTag << 8 | target);
}

[[nodiscard]] constexpr uint8_t to_lower(uint8_t c) noexcept {
  return static_cast<uint8_t>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

// Steps over the labels from `at` until a byte that is no label (a root byte, a pointer or a
// bad length) or an offset >= `limit`, and returns that offset. Reads only below `limit`.
[[nodiscard]] inline size_t skip_labels(const uint8_t* message, size_t at, size_t limit) noexcept {
  while (at < limit && message[at] - 1u < kMaxLabelLength) at += size_t{1} + message[at];
  return at;
}

// Follows pointers (of a scanned name) until a label or the root byte.
[[nodiscard]] inline size_t skip_pointers(const uint8_t* message, size_t at) noexcept {
  while (is_pointer(message[at])) at = pointer_target(&message[at]);
  return at;
}

[[nodiscard]] inline bool labels_equal(const uint8_t* a, const uint8_t* b, size_t length) noexcept {
  for (size_t i = 0; i < length; ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

[[nodiscard]] constexpr NameScan rejected(ParseError error) noexcept {
  return NameScan{0, 0, error};
}

}  // namespace wire_detail

inline NameScan scan_name(std::span<const uint8_t> message, size_t offset,
                          KnownNames* known) noexcept {
  using wire_detail::rejected;
  const size_t size = message.size();
  // Most owners are one pointer to a name already checked (the question name, a CNAME target).
  // Same rules as the walk below (backwards, outside the header, hop limit), without its setup.
  if (known != nullptr && offset + 1 < size && wire_detail::is_pointer(message[offset])) {
    const size_t target = wire_detail::pointer_target(&message[offset]);
    if (target >= kHeaderSize && target < offset) {
      const KnownNames::Entry* suffix = known->find(target);
      if (suffix != nullptr && suffix->hops < kMaxCompressionHops)
        return NameScan{offset + 2, suffix->wire_length, ParseError::kCount};
    }
  }
  // Where each part of the name starts (the name itself, then each pointer target) and the
  // length before it; part i is reached after i pointers. Once the walk succeeds, each part is
  // a valid name too.
  struct Part {
    uint16_t start;
    uint8_t length_before;
  };
  Part parts[kMaxCompressionHops + 1];
  unsigned hops = 0;
  parts[0] = Part{static_cast<uint16_t>(offset), 0};

  size_t at = offset;
  size_t end = 0;          // set at the first pointer, or at the root byte if none
  size_t wire_length = 0;  // labels so far, length bytes included, root byte excluded
  unsigned total_hops;
  for (;;) {
    if (at >= size) return rejected(ParseError::kNameTruncated);
    const size_t length_byte = message[at];    // size_t: no widening on the offset chain
    if (length_byte - 1u < kMaxLabelLength) {  // a label of 1..63 bytes: the common case
      wire_length += 1 + length_byte;
      // The root byte must still fit.
      if (wire_length + 1 > kMaxNameWireLength) return rejected(ParseError::kNameTooLong);
      at += 1 + length_byte;
      continue;
    }
    if (length_byte == 0) {
      if (end == 0) end = at + 1;
      wire_length += 1;
      total_hops = hops;
      break;
    }
    if (!wire_detail::is_pointer(length_byte)) return rejected(ParseError::kBadLabelLength);
    if (at + 1 >= size) return rejected(ParseError::kNameTruncated);
    const size_t target = wire_detail::pointer_target(&message[at]);
    if (target < kHeaderSize) return rejected(ParseError::kPointerIntoHeader);
    if (target >= at) return rejected(ParseError::kForwardPointer);
    if (target >= parts[hops].start) return rejected(ParseError::kPointerLoop);
    if (hops == kMaxCompressionHops) return rejected(ParseError::kTooManyPointers);
    if (end == 0) end = at + 2;
    if (const KnownNames::Entry suffix =
            known ? known->find_suffix(message.data(), target) : KnownNames::Entry{};
        suffix.offset != 0) {
      wire_length += suffix.wire_length;
      total_hops = hops + 1 + suffix.hops;
      if (wire_length > kMaxNameWireLength) return rejected(ParseError::kNameTooLong);
      if (total_hops > kMaxCompressionHops) return rejected(ParseError::kTooManyPointers);
      break;
    }
    ++hops;
    parts[hops] = Part{static_cast<uint16_t>(target), static_cast<uint8_t>(wire_length)};
    at = target;
  }
  if (known != nullptr) {
    // The name itself last, so find() (newest first) meets it first: later owners point at it.
    for (unsigned i = hops + 1; i-- > 0;) {
      // A bare pointer (an owner that is only a pointer) is never pointed at; skip it.
      if (wire_detail::is_pointer(message[parts[i].start])) continue;
      known->add(parts[i].start, wire_length - parts[i].length_before, total_hops - i);
    }
  }
  return NameScan{end, static_cast<uint8_t>(wire_length), ParseError::kCount};
}

inline size_t skip_name(std::span<const uint8_t> message, size_t offset) noexcept {
  const uint8_t* const wire = message.data();
  while (wire[offset] != 0) {
    if (wire_detail::is_pointer(wire[offset])) return offset + 2;
    offset += 1 + wire[offset];
  }
  return offset + 1;
}

inline bool names_equal(std::span<const uint8_t> message, size_t a, size_t b) noexcept {
  const uint8_t* const wire = message.data();
  for (;;) {
    a = wire_detail::skip_pointers(wire, a);
    b = wire_detail::skip_pointers(wire, b);
    // The same bytes: compression made the rest of both names one and the same suffix.
    if (a == b) return true;
    const uint8_t length = wire[a];
    if (length != wire[b]) return false;
    if (length == 0) return true;
    if (!wire_detail::labels_equal(&wire[a + 1], &wire[b + 1], length)) return false;
    a += 1 + length;
    b += 1 + length;
  }
}

}  // namespace dnsproxy::dns
