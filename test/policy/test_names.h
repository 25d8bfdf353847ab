// Helpers shared by the policy suites: names and patterns from text.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "dns/name_text.h"
#include "policy/name_pattern.h"

namespace dnsproxy::policy::test {

// Lowercased wire form, as the codec hands it to the worker.
inline std::vector<uint8_t> wire(std::string_view text) {
  std::array<uint8_t, dns::kMaxNameWireLength> buffer{};
  auto written = dns::name_from_text(text, buffer);
  EXPECT_TRUE(written.has_value()) << text;
  if (!written) return {};
  std::vector<uint8_t> out(buffer.begin(), buffer.begin() + *written);
  dns::lowercase_ascii(out);
  return out;
}

inline NamePattern name_pattern(std::string_view text) {
  auto p = parse_match_name(text);
  EXPECT_TRUE(p.has_value()) << text << ": " << (p ? "" : p.error().message);
  return p ? *p : NamePattern{};
}

inline NamePattern pattern(std::string_view text) {
  auto p = parse_match_pattern(text);
  EXPECT_TRUE(p.has_value()) << text << ": " << (p ? "" : p.error().message);
  return p ? *p : NamePattern{};
}

}  // namespace dnsproxy::policy::test
