// Name patterns with Cilium's toFQDNs / rules.dns semantics, validated and put into wire form.
//
// Cold path: patterns come from policy files and agent updates; the hot path only sees the
// NameMatcher compiled from them (name_matcher.h).
//
// Semantics (the ones Cilium's regex translation gives, restated for wire labels):
//   matchName    "api.example.com"   the exact name, case-insensitive, trailing dot optional.
//   matchPattern "*"  (or "**", ...)  every name whose labels are all made of [-a-z0-9_], and
//                                     the root.
//                "**.example.com"    one or more whole labels of [-a-z0-9_] in front of
//                                     example.com (not example.com itself).
//                "api-*.example.com" `*` matches any run (possibly empty) of [-a-z0-9_] inside
//                                     one label; it never crosses a dot. Several stars per
//                                     label and per name are fine; "**" inside a label is "*".
// Allowed characters: [-a-zA-Z0-9_.] (plus `*` in matchPattern); at most 255 bytes in wire form,
// labels of 1..63 bytes. Anything else is rejected with the reason and the offending position.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dnsproxy::policy {

struct NamePattern {
  // Normalized text: trimmed, lowercase, with a trailing dot ("api-*.example.com.").
  std::string text;
  // Every name with allowed characters (an all-star pattern).
  bool match_all = false;
  // A leading "**.": one or more labels precede `wire`.
  bool any_subdomain = false;
  // The labels after an optional "**.", root-terminated; `*` bytes mark wildcards. Empty when
  // match_all.
  std::vector<uint8_t> wire;

  [[nodiscard]] bool has_wildcard() const noexcept;
};

[[nodiscard]] Result<NamePattern> parse_match_name(std::string_view text);
[[nodiscard]] Result<NamePattern> parse_match_pattern(std::string_view text);

// The characters a `*` may stand for, and the only ones an all-star / "**." pattern accepts in
// the labels it covers: Cilium's [-a-zA-Z0-9_].
[[nodiscard]] constexpr bool is_pattern_label_char(uint8_t c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace dnsproxy::policy
