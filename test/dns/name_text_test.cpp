#include "dns/name_text.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace dnsproxy::dns {
namespace {

std::string wire_of(std::string_view text) {
  std::array<uint8_t, kMaxNameWireLength> buffer{};
  auto written = name_from_text(text, buffer);
  if (!written) return "error: " + std::string(to_string(written.error()));
  return std::string(buffer.begin(), buffer.begin() + *written);
}

std::string text_of(std::string_view wire) {
  std::string out;
  append_name_text({reinterpret_cast<const uint8_t*>(wire.data()), wire.size()}, out);
  return out;
}

TEST(NameTextTest, ParsesWithOrWithoutTrailingDot) {
  const std::string expected("\3www\7example\3com\0", 17);
  EXPECT_EQ(wire_of("www.example.com"), expected);
  EXPECT_EQ(wire_of("www.example.com."), expected);
  EXPECT_EQ(wire_of("."), std::string(1, '\0'));
}

TEST(NameTextTest, EscapedDotStaysInsideItsLabel) {
  EXPECT_EQ(wire_of("a\\.b.c"), std::string("\3a.b\1c\0", 7));
  EXPECT_EQ(wire_of("\\065bc"), std::string("\3Abc\0", 5));
}

TEST(NameTextTest, RejectsBadNamesWithReasons) {
  EXPECT_EQ(wire_of(""), "error: empty name");
  EXPECT_EQ(wire_of("a..b"), "error: empty label");
  EXPECT_EQ(wire_of(".a"), "error: empty label");
  EXPECT_EQ(wire_of(std::string(64, 'a')), "error: label longer than 63 bytes");
  EXPECT_EQ(wire_of("a\\"), "error: bad escape (use \\X or \\DDD with DDD <= 255)");
  EXPECT_EQ(wire_of("a\\256"), "error: bad escape (use \\X or \\DDD with DDD <= 255)");
  EXPECT_EQ(wire_of("a\\12"), "error: bad escape (use \\X or \\DDD with DDD <= 255)");
}

TEST(NameTextTest, EnforcesTheWireLengthLimitExactly) {
  // Four 62-byte labels: 4 * 63 + 1 = 253 bytes, fits; one more 1-byte label: 255, fits;
  // a 2-byte label instead: 256, does not.
  const std::string label(62, 'x');
  const std::string base = label + "." + label + "." + label + "." + label;
  EXPECT_EQ(wire_of(base + ".a").size(), 255u);
  EXPECT_EQ(wire_of(base + ".ab"), "error: name longer than 255 bytes on the wire");
}

TEST(NameTextTest, PrintsLikeDig) {
  EXPECT_EQ(text_of(std::string("\3www\7example\3com\0", 17)), "www.example.com.");
  EXPECT_EQ(text_of(std::string("\3a.b\1c\0", 7)), "a\\.b.c.");
  EXPECT_EQ(text_of(std::string("\2a \0", 4)), "a\\032.");
  EXPECT_EQ(text_of(std::string(1, '\0')), ".");
}

TEST(NameTextTest, RoundTripsEveryByteValue) {
  for (int c = 0; c < 256; ++c) {
    const std::string wire = std::string("\1", 1) + static_cast<char>(c) + std::string(1, '\0');
    EXPECT_EQ(wire_of(text_of(wire)), wire) << "byte " << c;
  }
}

TEST(NameTextTest, LowercasesAsciiOnly) {
  std::string wire("\3WwW\2\xC4x\0", 8);
  lowercase_ascii({reinterpret_cast<uint8_t*>(wire.data()), wire.size()});
  EXPECT_EQ(wire, std::string("\3www\2\xC4x\0", 8));
}

}  // namespace
}  // namespace dnsproxy::dns
