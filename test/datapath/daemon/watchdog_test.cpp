// The watchdog's progress check: a worker whose iteration counter did not move is named stalled.
#include "datapath/daemon/watchdog.h"

#include <gtest/gtest.h>

namespace dnsproxy::daemon {
namespace {

TEST(ProgressCheckTest, AWorkerWhoseCounterStoodStillIsStalled) {
  ProgressCheck check;
  EXPECT_EQ(check.stalled(std::vector<uint64_t>{3, 0}), std::vector<size_t>{1}) << "never ran";
  EXPECT_TRUE(check.stalled(std::vector<uint64_t>{4, 1}).empty());
  EXPECT_EQ(check.stalled(std::vector<uint64_t>{4, 9}), std::vector<size_t>{0});
  EXPECT_EQ(check.stalled(std::vector<uint64_t>{4, 9}), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(check.stalled(std::vector<uint64_t>{5, 10}).empty()) << "moving again: pings resume";
}

}  // namespace
}  // namespace dnsproxy::daemon
