// scan_name's known-name shortcut: a pointer to a name already checked, or to a later label of
// one, must give exactly what the full walk gives (end, length, or the same rejection).
#include "dns/wire_name.h"

#include <gtest/gtest.h>

#include <vector>

#include "test/dns/packet_builder.h"

namespace dnsproxy::dns {
namespace {

using testing::PacketBuilder;

// A 12-byte header, then "a.cdn.example.net" at offset 12, then `second` written by the test.
struct TwoNames {
  std::vector<uint8_t> wire;
  size_t second = 0;
};

template <typename WriteSecond>
TwoNames two_names(WriteSecond&& write_second) {
  PacketBuilder p;
  p.header(1, testing::kFlagsResponse, 0, 1, 0, 0, 0).name("a.cdn.example.net");
  const size_t second = p.here();
  write_second(p);
  p.fixed(1, 1, 60, 4).u32(1);  // bytes after the name, as a record would have
  return TwoNames{p.bytes(), second};
}

constexpr uint16_t kFirst = kHeaderSize;
constexpr uint16_t kCdn = kFirst + 2;      // "cdn.example.net"
constexpr uint16_t kInsideCdn = kCdn + 2;  // the 'd' of "cdn": not a label start

// Scans the first name into `known`, then the second with and without it.
void expect_shortcut_matches_full_walk(const TwoNames& names) {
  KnownNames known;
  ASSERT_TRUE(scan_name(names.wire, kFirst, &known).ok());
  const NameScan shortcut = scan_name(names.wire, names.second, &known);
  const NameScan full = scan_name(names.wire, names.second);
  EXPECT_EQ(shortcut.error, full.error);
  EXPECT_EQ(shortcut.end, full.end);
  EXPECT_EQ(shortcut.wire_length, full.wire_length);
}

TEST(WireNameTest, PointerIntoTheMiddleOfAKnownName) {
  const TwoNames names = two_names([](PacketBuilder& p) { p.labels("b").pointer(kCdn); });
  expect_shortcut_matches_full_walk(names);
  EXPECT_EQ(scan_name(names.wire, names.second).wire_length, sizeof "\1b\3cdn\7example\3net");
}

TEST(WireNameTest, BareOwnerPointerIntoTheMiddleOfAKnownName) {
  expect_shortcut_matches_full_walk(two_names([](PacketBuilder& p) { p.pointer(kCdn); }));
}

TEST(WireNameTest, PointerToTheRootByteOfAKnownName) {
  const uint16_t root = kFirst + sizeof "\1a\3cdn\7example\3net" - 1;
  const TwoNames names = two_names([&](PacketBuilder& p) { p.labels("b").pointer(root); });
  expect_shortcut_matches_full_walk(names);
  EXPECT_EQ(scan_name(names.wire, names.second).wire_length, 3);  // "b."
}

TEST(WireNameTest, PointerInsideALabelOfAKnownNameIsWalkedAndRejected) {
  const TwoNames names = two_names([](PacketBuilder& p) { p.labels("b").pointer(kInsideCdn); });
  expect_shortcut_matches_full_walk(names);
  EXPECT_EQ(scan_name(names.wire, names.second).error, ParseError::kBadLabelLength);  // 'd'
}

// A label whose data holds a valid length byte: the pointer lands there, off the known name's
// label boundaries, and reads a different (valid) name; the shortcut must not claim it.
TEST(WireNameTest, PointerIntoLabelDataThatLooksLikeALabel) {
  PacketBuilder p;
  p.header(1, testing::kFlagsResponse, 0, 1, 0, 0, 0);
  p.u8(3).u8(1).u8('x').u8(0).name("example");  // label "\1x\0", then example.
  const size_t second = p.here();
  p.labels("b").pointer(kFirst + 1);  // -> "\1x\0": the name "x."
  p.fixed(1, 1, 60, 4).u32(1);
  const TwoNames names{p.bytes(), second};
  expect_shortcut_matches_full_walk(names);
  EXPECT_EQ(scan_name(names.wire, names.second).wire_length, 5);  // "b.x."
}

}  // namespace
}  // namespace dnsproxy::dns
