// The SPSC ring: full and empty as data, then one producer and one consumer thread (also under
// TSan in tools/run test): every record arrives once, in order.
#include "datapath/pipeline/spsc_ring.h"

#include <gtest/gtest.h>

#include <thread>

namespace dnsproxy::datapath::pipeline {
namespace {

TEST(SpscRingTest, FullAndEmptyAreReported) {
  SpscRing<uint32_t> ring(3);  // rounded up to 4
  EXPECT_EQ(ring.capacity(), 4u);
  uint32_t out = 0;
  EXPECT_FALSE(ring.pop(out));
  EXPECT_TRUE(ring.has_room(4));
  for (uint32_t i = 0; i < 4; ++i) EXPECT_TRUE(ring.push(i));
  EXPECT_FALSE(ring.has_room(1));
  EXPECT_FALSE(ring.push(9));
  ASSERT_TRUE(ring.pop(out));
  EXPECT_EQ(out, 0u);
  EXPECT_TRUE(ring.has_room(1));
  EXPECT_FALSE(ring.has_room(2));
}

TEST(SpscRingTest, OneProducerOneConsumerKeepOrder) {
  constexpr uint32_t kRecords = 200000;
  SpscRing<uint32_t> ring(64);
  std::thread producer([&] {
    for (uint32_t i = 0; i < kRecords;)
      if (ring.push(i)) ++i;
  });
  uint32_t expected = 0;
  uint32_t value = 0;
  while (expected < kRecords) {
    if (!ring.pop(value)) continue;
    ASSERT_EQ(value, expected);
    ++expected;
  }
  producer.join();
  EXPECT_FALSE(ring.pop(value));
}

}  // namespace
}  // namespace dnsproxy::datapath::pipeline
