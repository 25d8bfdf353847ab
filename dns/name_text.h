// Domain names in presentation form (the text users type and dig prints) <-> wire form.
//
// Cold path only (CLI, policy files, logs): the hot path never leaves wire form. Wire form here
// means an uncompressed name: length-prefixed labels ending with the root label (a zero byte).
// Keeping labels length-prefixed is what makes "a\.b" (one label containing a dot) impossible to
// confuse with "a.b" (two labels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace dnsproxy::dns {

inline constexpr size_t kMaxNameWireLength = 255;  // RFC 1035 2.3.4, including length bytes
inline constexpr size_t kMaxLabelLength = 63;

enum class NameTextError : uint8_t {
  kEmpty,         // "" is not a name ("." is the root)
  kEmptyLabel,    // "a..b" or a leading dot
  kLabelTooLong,  // more than 63 bytes in one label
  kNameTooLong,   // more than 255 bytes on the wire
  kBadEscape,     // "\" at the end, or "\DDD" with DDD > 255 or not three digits
};

[[nodiscard]] std::string_view to_string(NameTextError error) noexcept;

// Parses "www.example.com" / "www.example.com." / "a\.b.example" / "\065bc.example" into wire
// form in `out`. Returns the number of bytes written (including the final zero byte).
[[nodiscard]] tl::expected<size_t, NameTextError> name_from_text(
    std::string_view text, std::span<uint8_t, kMaxNameWireLength> out) noexcept;

// Appends the presentation form of an uncompressed wire name, the way dig prints it: a trailing
// dot, "\." for a dot inside a label, "\DDD" for bytes that are not printable. The caller
// guarantees `wire` is a well-formed uncompressed name (as the codec produces).
void append_name_text(std::span<const uint8_t> wire, std::string& out);

// DNS names compare case-insensitively in ASCII only (RFC 4343): 'A'-'Z' become 'a'-'z', every
// other byte (length bytes included, since they are < 64) is left alone. Copies `from` into
// `to` (to.size() >= from.size(); the two may be the same bytes). Branch-free (0x20 is the case
// bit) so the compiler vectorises it, and reading the source directly avoids the store-forwarding
// stall of copying first and lowercasing the copy.
constexpr void copy_lowercase_ascii(std::span<const uint8_t> from, std::span<uint8_t> to) noexcept {
  for (size_t i = 0; i < from.size(); ++i) {
    const uint8_t b = from[i];
    to[i] = static_cast<uint8_t>(b | (static_cast<uint8_t>(b - 'A') < 26 ? 0x20 : 0));
  }
}

constexpr void lowercase_ascii(std::span<uint8_t> bytes) noexcept {
  copy_lowercase_ascii(bytes, bytes);
}

}  // namespace dnsproxy::dns
