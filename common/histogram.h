// A latency histogram with fixed bucket bounds, written by one thread and read by others (the
// metrics thread, the admin socket): every bucket is a RelaxedCounter, so a reader sees each
// bucket's count of some recent moment, never a torn value. Bounds grow roughly 1-2.5-5 per
// decade from 10 us to 1 s; a percentile is the upper bound of the bucket it falls in, so it is
// good to that bucket's width (reported as such), and the sum gives the exact mean.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "common/counters.h"

namespace dnsproxy {

class LatencyHistogram {
 public:
  // Upper bounds in microseconds; one more bucket (+Inf) holds everything above the last.
  static constexpr std::array<uint64_t, 16> kBoundsUs = {
      10,    25,     50,     100,    250,     500,     1'000,   2'500,
      5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000};
  static constexpr size_t kBuckets = kBoundsUs.size() + 1;

  void record(std::chrono::nanoseconds latency) noexcept {
    const uint64_t us = latency.count() <= 0 ? 0 : static_cast<uint64_t>(latency.count()) / 1000;
    size_t bucket = 0;
    while (bucket < kBoundsUs.size() && us > kBoundsUs[bucket]) ++bucket;
    buckets_[bucket].add(1);
    count_.add(1);
    sum_us_.add(us);
  }

  [[nodiscard]] uint64_t count() const noexcept { return count_.get(); }
  [[nodiscard]] uint64_t sum_us() const noexcept { return sum_us_.get(); }
  [[nodiscard]] uint64_t bucket(size_t i) const noexcept { return buckets_[i].get(); }

 private:
  std::array<RelaxedCounter, kBuckets> buckets_;
  RelaxedCounter count_;
  RelaxedCounter sum_us_;
};

// The upper bound (us) of the bucket holding quantile q (0 < q <= 1) of per-bucket counts (not
// cumulative); UINT64_MAX for the +Inf bucket, 0 when empty.
[[nodiscard]] inline uint64_t bucket_quantile_us(
    const std::array<uint64_t, LatencyHistogram::kBuckets>& buckets, double q) noexcept {
  uint64_t total = 0;
  for (uint64_t n : buckets) total += n;
  if (total == 0) return 0;
  const auto rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen >= rank)
      return i < LatencyHistogram::kBoundsUs.size() ? LatencyHistogram::kBoundsUs[i] : UINT64_MAX;
  }
  return UINT64_MAX;
}

}  // namespace dnsproxy
