#include "xsk/frame_pool.h"

#include <numeric>

namespace dnsproxy::xsk {

bool FrameCounts::consistent() const noexcept {
  return violations == 0 && std::accumulate(in_place.begin(), in_place.end(), uint64_t{0}) == total;
}

FramePool::FramePool(uint32_t frame_count, uint32_t frame_size)
    : frame_count_(frame_count), frame_size_(frame_size), free_list_(frame_count) {
  // Pushed so that allocate() hands out low addresses first: easier to read in a debugger.
  for (uint32_t i = 0; i < frame_count; ++i)
    free_list_[i] = uint64_t{frame_count - 1 - i} * frame_size;
  free_top_ = frame_count;
  counts_[index(FramePlace::kFree)].add(frame_count);
#ifdef DNSPROXY_FRAME_CHECKS
  place_of_.assign(frame_count, FramePlace::kFree);
#endif
}

FrameCounts FramePool::snapshot() const noexcept {
  FrameCounts counts;
  for (size_t i = 0; i < kFramePlaceCount; ++i) counts.in_place[i] = counts_[i].get();
  counts.total = frame_count_;
  counts.violations = violations_.get();
  return counts;
}

}  // namespace dnsproxy::xsk
