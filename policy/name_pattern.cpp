#include "policy/name_pattern.h"

#include <algorithm>
#include <array>

#include "dns/name_text.h"

namespace dnsproxy::policy {
namespace {

constexpr std::string_view kSubdomainPrefix = "**.";

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Lowercases, checks the character set, and collapses runs of stars inside a label ("a**b" is
// "a*b" in Cilium's translation too) so the matcher never sees adjacent stars.
Result<std::string> normalize(std::string_view what, std::string_view raw, bool allow_star) {
  const std::string_view text = trim(raw);
  if (text.empty()) return fail(what, " is empty");
  std::string out;
  out.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(text[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c + ('a' - 'A'));
    const bool ok = is_pattern_label_char(c) || c == '.' || (allow_star && c == '*');
    if (!ok) {
      return fail(what, " \"", std::string(text), "\": character '", std::string(1, text[i]),
                  "' at offset ", std::to_string(i),
                  " is not allowed (only a-z, 0-9, '-', '_', '.'", allow_star ? " and '*')" : ")");
    }
    if (c == '*' && !out.empty() && out.back() == '*') continue;
    out += static_cast<char>(c);
  }
  return out;
}

Result<std::vector<uint8_t>> to_wire(std::string_view what, std::string_view original,
                                     std::string_view labels) {
  std::array<uint8_t, dns::kMaxNameWireLength> buffer{};
  auto written = dns::name_from_text(labels, buffer);
  if (!written) {
    return fail(what, " \"", std::string(original),
                "\": ", std::string(dns::to_string(written.error())));
  }
  return std::vector<uint8_t>(buffer.begin(), buffer.begin() + *written);
}

std::string with_trailing_dot(std::string text) {
  if (text.back() != '.') text += '.';
  return text;
}

}  // namespace

bool NamePattern::has_wildcard() const noexcept {
  return std::find(wire.begin(), wire.end(), '*') != wire.end();
}

Result<NamePattern> parse_match_name(std::string_view text) {
  auto normalized = normalize("matchName", text, /*allow_star=*/false);
  if (!normalized) return tl::unexpected(normalized.error());
  if (*normalized == ".") return fail("matchName \".\": the root is not a name a policy can allow");
  auto wire = to_wire("matchName", text, *normalized);
  if (!wire) return tl::unexpected(wire.error());
  return NamePattern{with_trailing_dot(*normalized), false, false, std::move(*wire)};
}

Result<NamePattern> parse_match_pattern(std::string_view text) {
  auto normalized = normalize("matchPattern", text, /*allow_star=*/true);
  if (!normalized) return tl::unexpected(normalized.error());
  const std::string& n = *normalized;
  // normalize() collapsed star runs, so "**", "***." and "*" all arrive here as "*" / "*.".
  if (n == "*" || n == "*.") return NamePattern{"*.", true, false, {}};

  NamePattern pattern;
  pattern.text = with_trailing_dot(n);
  std::string_view labels = n;
  // "**." was collapsed to "*." by normalize(); look at the raw text to tell "**.x" from "*.x".
  const std::string_view raw = trim(text);
  if (raw.starts_with(kSubdomainPrefix)) {
    pattern.any_subdomain = true;
    pattern.text = "**." + pattern.text.substr(2);
    labels.remove_prefix(2);  // the collapsed "*."
    if (labels.empty() || labels == ".") {
      return fail("matchPattern \"", std::string(raw), "\": \"**.\" must be followed by a name");
    }
  }
  auto wire = to_wire("matchPattern", text, labels);
  if (!wire) return tl::unexpected(wire.error());
  if (pattern.any_subdomain && wire->size() + 2 > dns::kMaxNameWireLength) {
    return fail("matchPattern \"", std::string(raw),
                "\": no name of at most 255 bytes can have a subdomain of it");
  }
  pattern.wire = std::move(*wire);
  return pattern;
}

}  // namespace dnsproxy::policy
