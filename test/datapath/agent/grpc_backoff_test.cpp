// The agent link's reconnect backoff (grpc_backoff.h): each delay within its jitter, doubling up
// to the cap, back to the start after reset().
#include <gtest/gtest.h>

#include "datapath/agent/grpc_backoff.h"

namespace dnsproxy::datapath::agent {
namespace {

using std::chrono::milliseconds;

TEST(GrpcBackoffTest, DoublesWithinItsJitterUpToTheCap) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Backoff backoff({}, seed);
    for (const int64_t nominal : {50, 100, 200, 250, 250, 250}) {
      const milliseconds delay = backoff.next();
      EXPECT_GE(delay.count(), nominal * 8 / 10) << "seed " << seed;
      EXPECT_LE(delay.count(), nominal * 12 / 10) << "seed " << seed;
    }
  }
}

TEST(GrpcBackoffTest, TheJitterSpreadsAttemptsAndResetStartsOver) {
  Backoff a({}, 1);
  Backoff b({}, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= a.next() != b.next();
  EXPECT_TRUE(differ) << "two proxies must not retry in lockstep";
  a.reset();
  EXPECT_LE(a.next().count(), 60);
}

TEST(GrpcBackoffTest, NoJitterGivesTheNominalDelays) {
  Backoff backoff({.initial = milliseconds(10), .max = milliseconds(30), .jitter = 0}, 0);
  EXPECT_EQ(backoff.next(), milliseconds(10));
  EXPECT_EQ(backoff.next(), milliseconds(20));
  EXPECT_EQ(backoff.next(), milliseconds(30));
  EXPECT_EQ(backoff.next(), milliseconds(30));
}

}  // namespace
}  // namespace dnsproxy::datapath::agent
