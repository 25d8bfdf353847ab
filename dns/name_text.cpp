#include "dns/name_text.h"

namespace dnsproxy::dns {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads one logical byte of a label at text[i], resolving "\X" and "\DDD"; advances i.
tl::expected<uint8_t, NameTextError> next_label_byte(std::string_view text, size_t& i) noexcept {
  const char c = text[i++];
  if (c != '\\') return static_cast<uint8_t>(c);
  if (i >= text.size()) return tl::unexpected(NameTextError::kBadEscape);
  if (!is_digit(text[i])) return static_cast<uint8_t>(text[i++]);
  if (i + 3 > text.size() || !is_digit(text[i + 1]) || !is_digit(text[i + 2]))
    return tl::unexpected(NameTextError::kBadEscape);
  const int value = (text[i] - '0') * 100 + (text[i + 1] - '0') * 10 + (text[i + 2] - '0');
  i += 3;
  if (value > 255) return tl::unexpected(NameTextError::kBadEscape);
  return static_cast<uint8_t>(value);
}

// Characters dig escapes with a backslash rather than \DDD.
bool needs_backslash(uint8_t c) {
  switch (c) {
    case '.':
    case '\\':
    case '"':
    case '(':
    case ')':
    case ';':
    case '@':
    case '$':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view to_string(NameTextError error) noexcept {
  switch (error) {
    case NameTextError::kEmpty:
      return "empty name";
    case NameTextError::kEmptyLabel:
      return "empty label";
    case NameTextError::kLabelTooLong:
      return "label longer than 63 bytes";
    case NameTextError::kNameTooLong:
      return "name longer than 255 bytes on the wire";
    case NameTextError::kBadEscape:
      return "bad escape (use \\X or \\DDD with DDD <= 255)";
  }
  return "unknown name error";
}

tl::expected<size_t, NameTextError> name_from_text(
    std::string_view text, std::span<uint8_t, kMaxNameWireLength> out) noexcept {
  if (text.empty()) return tl::unexpected(NameTextError::kEmpty);
  if (text == ".") {
    out[0] = 0;
    return 1;
  }
  size_t written = 0;
  size_t i = 0;
  while (i < text.size()) {
    // One label: reserve its length byte, then copy bytes up to an unescaped dot.
    const size_t length_at = written++;
    size_t label_length = 0;
    while (i < text.size() && text[i] != '.') {
      auto byte = next_label_byte(text, i);
      if (!byte) return tl::unexpected(byte.error());
      if (++label_length > kMaxLabelLength) return tl::unexpected(NameTextError::kLabelTooLong);
      // Leave room for the root byte that ends the name.
      if (written + 1 >= kMaxNameWireLength) return tl::unexpected(NameTextError::kNameTooLong);
      out[written++] = *byte;
    }
    if (label_length == 0) return tl::unexpected(NameTextError::kEmptyLabel);
    out[length_at] = static_cast<uint8_t>(label_length);
    if (i < text.size()) ++i;  // the dot; a trailing one simply ends the loop
  }
  out[written++] = 0;
  return written;
}

void append_name_text(std::span<const uint8_t> wire, std::string& out) {
  if (wire.empty() || wire[0] == 0) {
    out += '.';
    return;
  }
  size_t at = 0;
  while (at < wire.size() && wire[at] != 0) {
    const size_t length = wire[at++];
    for (size_t k = 0; k < length && at < wire.size(); ++k, ++at) {
      const uint8_t c = wire[at];
      if (needs_backslash(c)) {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c <= 0x20 || c >= 0x7f) {
        const char digits[] = {'\\', static_cast<char>('0' + c / 100),
                               static_cast<char>('0' + c / 10 % 10),
                               static_cast<char>('0' + c % 10)};
        out.append(digits, sizeof digits);
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '.';
  }
}

}  // namespace dnsproxy::dns
