// LatencyHistogram: each latency lands in the first bucket whose bound holds it, and a quantile
// is that bucket's upper bound.
#include <gtest/gtest.h>

#include "common/histogram.h"

namespace dnsproxy {
namespace {

using namespace std::chrono_literals;

std::array<uint64_t, LatencyHistogram::kBuckets> buckets_of(const LatencyHistogram& h) {
  std::array<uint64_t, LatencyHistogram::kBuckets> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = h.bucket(i);
  return out;
}

TEST(LatencyHistogramTest, BucketsByUpperBoundAndSumsInMicroseconds) {
  LatencyHistogram h;
  h.record(10us);   // bound 10: bucket 0
  h.record(11us);   // bucket 1 (25)
  h.record(900us);  // bucket 6 (1000)
  h.record(2s);     // past 1 s: +Inf
  h.record(-5ns);   // clock went back: 0, bucket 0
  EXPECT_EQ(h.count(), 5u);
  EXPECT_EQ(h.sum_us(), 10u + 11 + 900 + 2'000'000);
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(6), 1u);
  EXPECT_EQ(h.bucket(LatencyHistogram::kBuckets - 1), 1u);
}

TEST(LatencyHistogramTest, QuantilesAreBucketUpperBounds) {
  LatencyHistogram h;
  EXPECT_EQ(bucket_quantile_us(buckets_of(h), 0.5), 0u);
  for (int i = 0; i < 98; ++i) h.record(40us);  // bucket 50
  h.record(3ms);                                // bucket 5000
  h.record(2s);                                 // +Inf
  EXPECT_EQ(bucket_quantile_us(buckets_of(h), 0.5), 50u);
  EXPECT_EQ(bucket_quantile_us(buckets_of(h), 0.98), 50u);
  EXPECT_EQ(bucket_quantile_us(buckets_of(h), 0.99), 5000u);
  EXPECT_EQ(bucket_quantile_us(buckets_of(h), 0.999), UINT64_MAX);
}

}  // namespace
}  // namespace dnsproxy
