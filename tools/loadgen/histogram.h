// A latency histogram for dnsproxy-loadgen: log-linear buckets (32 per power of two, so a
// reported percentile is within 3 % of the true value), nanoseconds up to ~18 minutes. Recording
// is a few instructions and never allocates (the bucket array is fixed).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace dnsproxy::loadgen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kBuckets = 36 * kSub + 2 * kSub;  // values below 2^40 ns

  [[nodiscard]] static constexpr unsigned bucket_of(uint64_t ns) noexcept {
    if (ns >= (uint64_t{1} << 40)) ns = (uint64_t{1} << 40) - 1;
    if (ns < 2 * kSub) return static_cast<unsigned>(ns);
    const unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - 1 - kSubBits;
    return shift * kSub + static_cast<unsigned>(ns >> shift);
  }
  // The smallest value of bucket `index` and its width.
  [[nodiscard]] static constexpr uint64_t lower_bound(unsigned index) noexcept {
    if (index < 2 * kSub) return index;
    const unsigned shift = index / kSub - 1;
    return static_cast<uint64_t>(index - shift * kSub) << shift;
  }
  [[nodiscard]] static constexpr uint64_t width(unsigned index) noexcept {
    return index < 2 * kSub ? 1 : uint64_t{1} << (index / kSub - 1);
  }

  void record(uint64_t ns) noexcept {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    if (ns > max_) max_ = ns;
  }
  [[nodiscard]] uint64_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept {
    return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }
  [[nodiscard]] uint64_t bucket_count(unsigned index) const noexcept { return counts_[index]; }
  // The value below which `fraction` (0..1] of the samples lie: the middle of the bucket holding
  // the sample of that rank (never above the maximum seen). 0 without samples.
  [[nodiscard]] uint64_t percentile(double fraction) const noexcept {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(fraction * static_cast<double>(count_) + 0.5);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const uint64_t mid = lower_bound(i) + width(i) / 2;
        return mid < max_ ? mid : max_;
      }
    }
    return max_;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace dnsproxy::loadgen
