#include "dns/wire_name.h"

#include <cstring>

namespace dnsproxy::dns {

KnownNames::Entry KnownNames::find_inside(const uint8_t* message, size_t offset) const noexcept {
  const Entry* below = nullptr;
  for (uint8_t i = 0; i < count_; ++i)
    if (entries_[i].offset < offset && (below == nullptr || entries_[i].offset > below->offset))
      below = &entries_[i];
  if (below == nullptr) return Entry{};
  // Every label of a known name was checked, and the walk stops at the first byte that is not
  // a label (its root or pointer), so it never leaves that name.
  if (wire_detail::skip_labels(message, below->offset, offset) == offset)
    return Entry{static_cast<uint16_t>(offset),
                 static_cast<uint8_t>(below->wire_length - (offset - below->offset)), below->hops};
  return Entry{};
}

size_t copy_name(std::span<const uint8_t> message, size_t offset,
                 std::span<uint8_t, kMaxNameWireLength> out) noexcept {
  const uint8_t* const wire = message.data();
  size_t written = 0;
  size_t at = wire_detail::skip_pointers(wire, offset);
  while (wire[at] != 0) {
    const size_t label_bytes = 1 + wire[at];
    std::memcpy(&out[written], &wire[at], label_bytes);
    written += label_bytes;
    at = wire_detail::skip_pointers(wire, at + label_bytes);
  }
  out[written++] = 0;
  return written;
}

}  // namespace dnsproxy::dns
