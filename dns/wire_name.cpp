#include "dns/wire_name.h"

#include <cstring>

namespace dnsproxy::dns {

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
