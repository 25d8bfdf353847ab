// UMEM geometry checks and the fill-share arithmetic: pure functions, no socket, no privilege.
#include "xsk/umem.h"

#include <gtest/gtest.h>

#include "xsk/packet_io.h"

namespace dnsproxy::xsk {
namespace {

TEST(UmemTest, BadGeometryIsRefusedBeforeAnyMapping) {
  EXPECT_FALSE(validate(UmemConfig{.frame_count = 1024, .frame_size = 3000, .ring_size = 64}));
  EXPECT_FALSE(validate(UmemConfig{.frame_count = 1024, .frame_size = 2048, .ring_size = 100}));
  EXPECT_FALSE(validate(UmemConfig{.frame_count = 32, .frame_size = 2048, .ring_size = 64}));
  EXPECT_TRUE(validate(UmemConfig{.frame_count = 1024, .frame_size = 4096, .ring_size = 512}));
}

TEST(FillShareTest, SplitsTheUmemEquallyBetweenSockets) {
  EXPECT_EQ(fill_share(16384, 1), 16384u);
  EXPECT_EQ(fill_share(16384, 16), 1024u);
  EXPECT_EQ(fill_share(100, 3), 33u);
}

}  // namespace
}  // namespace dnsproxy::xsk
