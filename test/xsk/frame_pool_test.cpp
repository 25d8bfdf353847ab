// The frame ledger: every frame in exactly one place, every move checked.
#include "xsk/frame_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

namespace dnsproxy::xsk {
namespace {

TEST(FramePoolTest, AllFramesStartFreeWithDistinctAlignedAddresses) {
  FramePool pool(8, 2048);
  std::array<uint64_t, 8> frames{};
  ASSERT_EQ(pool.allocate(frames, FramePlace::kKernelRx), 8u);
  std::sort(frames.begin(), frames.end());
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(frames[i], i * 2048);
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.count(FramePlace::kKernelRx), 8u);
  EXPECT_TRUE(pool.snapshot().consistent());
}

TEST(FramePoolTest, AllocateStopsAtAnEmptyFreeList) {
  FramePool pool(4, 2048);
  std::array<uint64_t, 6> frames{};
  EXPECT_EQ(pool.allocate(frames, FramePlace::kKernelRx), 4u);
  EXPECT_EQ(pool.allocate(frames, FramePlace::kKernelRx), 0u);
}

TEST(FramePoolTest, AFrameFollowsTheForwardingPathBackToFree) {
  FramePool pool(4, 2048);
  std::array<uint64_t, 1> frame{};
  ASSERT_EQ(pool.allocate(frame, FramePlace::kKernelRx), 1u);
  // The kernel hands back a descriptor pointing past the headroom, inside the frame.
  const uint64_t rx_addr = frame[0] + 256;
  pool.move(rx_addr, FramePlace::kKernelRx, FramePlace::kWorker);
  EXPECT_EQ(pool.count(FramePlace::kWorker), 1u);
  pool.move(rx_addr, FramePlace::kWorker, FramePlace::kKernelTx);
  pool.release(rx_addr, FramePlace::kKernelTx);
  const FrameCounts counts = pool.snapshot();
  EXPECT_EQ(counts.at(FramePlace::kFree), 4u);
  EXPECT_EQ(counts.at(FramePlace::kKernelTx), 0u);
  EXPECT_TRUE(counts.consistent());
  // Released to its base address: the next allocation gets the aligned frame back.
  ASSERT_EQ(pool.allocate(frame, FramePlace::kWorker), 1u);
  EXPECT_EQ(frame[0] % 2048, 0u);
}

TEST(FramePoolTest, ParkedFramesAreCountedApart) {
  FramePool pool(2, 2048);
  std::array<uint64_t, 1> frame{};
  ASSERT_EQ(pool.allocate(frame, FramePlace::kWorker), 1u);
  pool.move(frame[0], FramePlace::kWorker, FramePlace::kParked);
  EXPECT_EQ(pool.count(FramePlace::kParked), 1u);
  EXPECT_EQ(pool.count(FramePlace::kWorker), 0u);
  pool.release(frame[0], FramePlace::kParked);
  EXPECT_EQ(pool.free_count(), 2u);
}

TEST(FramePoolTest, ADoubleReleaseIsAViolationAndChangesNothing) {
  FramePool pool(2, 2048);
  std::array<uint64_t, 1> frame{};
  ASSERT_EQ(pool.allocate(frame, FramePlace::kWorker), 1u);
  pool.release(frame[0], FramePlace::kWorker);
  pool.release(frame[0], FramePlace::kWorker);
  const FrameCounts counts = pool.snapshot();
  EXPECT_EQ(counts.at(FramePlace::kFree), 2u);
  EXPECT_EQ(counts.violations, 1u);
  EXPECT_FALSE(counts.consistent());
}

#ifdef DNSPROXY_FRAME_CHECKS
TEST(FramePoolTest, CheckedBuildsCatchAMoveFromTheWrongPlace) {
  FramePool pool(2, 2048);
  std::array<uint64_t, 1> frame{};
  ASSERT_EQ(pool.allocate(frame, FramePlace::kKernelRx), 1u);
  pool.move(frame[0], FramePlace::kWorker, FramePlace::kKernelTx);  // it is on the fill ring
  const FrameCounts counts = pool.snapshot();
  EXPECT_EQ(counts.violations, 1u);
  EXPECT_EQ(counts.at(FramePlace::kKernelRx), 1u);  // unchanged
  EXPECT_EQ(counts.at(FramePlace::kKernelTx), 0u);
}
#endif

}  // namespace
}  // namespace dnsproxy::xsk
