// Frame pool and frame ledger for one UMEM: where every frame is, at every moment.
//
// A UMEM is cut into `frame_count` frames of `frame_size` bytes; a frame is named by the UMEM
// offset of its first byte (its base address). Every frame is always in exactly one place:
//
//   kFree     on this pool's free list, owned by the worker, unused
//   kKernelRx given to the kernel on a fill ring; it comes back on an RX ring. From user space the
//             fill ring, the driver and the unread RX ring are one place: the kernel moves frames
//             between them without telling us.
//   kWorker   read from an RX ring and in the worker's hands for the current batch
//   kParked   held by the pipeline past the current batch (e.g. a response waiting for an ACK)
//   kKernelTx submitted on a TX ring; it comes back on a completion ring (same caveat as RX)
//
// Every move goes through move()/allocate()/release() so the per-place counts always sum to the
// frame count. With DNSPROXY_FRAME_CHECKS (debug and sanitizer builds) the pool also records each
// frame's place and checks every move's source: a double free or a frame moved from a place it is
// not in is counted as a violation (and is a bug). A frame still kWorker when a batch ends was
// dropped on the floor without release(): the worker counts that as leaked.
//
// Single-threaded by design: one worker owns a pool. Counts are relaxed atomics only so that the
// control thread can read them while the worker runs; the worker never waits on them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/counters.h"

namespace dnsproxy::xsk {

enum class FramePlace : uint8_t { kFree, kKernelRx, kWorker, kParked, kKernelTx, kCount };
// Names for logs and the stats snapshot (counter_name(place)).
constexpr std::array<std::string_view, 5> counter_names(FramePlace) {
  return {"free", "fill_rx", "worker", "parked", "tx_completion"};
}
inline constexpr size_t kFramePlaceCount = kCounterCount<FramePlace>;

// A snapshot of the ledger, for logs, tests and the end-of-run check.
struct FrameCounts {
  std::array<uint64_t, kFramePlaceCount> in_place{};
  uint64_t total = 0;
  uint64_t violations = 0;  // moves whose source was wrong (checked builds only)

  [[nodiscard]] uint64_t at(FramePlace place) const noexcept {
    return in_place[static_cast<size_t>(place)];
  }
  // True when the places sum to the frame count and no move was ever wrong.
  [[nodiscard]] bool consistent() const noexcept;
};

class FramePool {
 public:
  // All frames start on the free list. Allocates (cold path, constructor only).
  FramePool(uint32_t frame_count, uint32_t frame_size);

  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  [[nodiscard]] uint32_t frame_count() const noexcept { return frame_count_; }
  [[nodiscard]] uint32_t frame_size() const noexcept { return frame_size_; }
  [[nodiscard]] uint32_t free_count() const noexcept { return static_cast<uint32_t>(free_top_); }

  // The base address of the frame holding UMEM offset `addr` (RX and completion descriptors may
  // point inside a frame, past the headroom).
  [[nodiscard]] uint64_t frame_base(uint64_t addr) const noexcept {
    return addr - addr % frame_size_;
  }

  // Pops up to out.size() frames off the free list into place `to`; returns how many.
  [[nodiscard]] uint32_t allocate(std::span<uint64_t> out, FramePlace to) noexcept;
  // Pushes a frame back on the free list from place `from`.
  void release(uint64_t addr, FramePlace from) noexcept;
  // Records that a frame went from one place to another (e.g. worker -> kernel TX).
  void move(uint64_t addr, FramePlace from, FramePlace to) noexcept;
  [[nodiscard]] uint64_t count(FramePlace place) const noexcept {
    return counts_[index(place)].get();
  }

  [[nodiscard]] FrameCounts snapshot() const noexcept;

 private:
  static constexpr size_t index(FramePlace place) noexcept { return static_cast<size_t>(place); }
  // Checked builds: false (and a violation counted) when the frame is not in `from`; the caller
  // then leaves everything unchanged. Unchecked builds: always true.
  [[nodiscard]] bool record(uint64_t base, FramePlace from, FramePlace to) noexcept;

  uint32_t frame_count_;
  uint32_t frame_size_;
  std::vector<uint64_t> free_list_;  // stack of base addresses; [0, free_top_) are free
  size_t free_top_ = 0;
  std::array<RelaxedCounter, kFramePlaceCount> counts_;
  RelaxedCounter violations_;
#ifdef DNSPROXY_FRAME_CHECKS
  std::vector<FramePlace> place_of_;  // per frame, indexed by base / frame_size
#endif
};

inline uint32_t FramePool::allocate(std::span<uint64_t> out, FramePlace to) noexcept {
  const size_t n = out.size() < free_top_ ? out.size() : free_top_;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t addr = free_list_[--free_top_];
    out[i] = addr;
    (void)record(addr, FramePlace::kFree, to);  // the free list only holds free frames
  }
  counts_[index(FramePlace::kFree)].sub(n);
  counts_[index(to)].add(n);
  return static_cast<uint32_t>(n);
}

inline void FramePool::release(uint64_t addr, FramePlace from) noexcept {
  const uint64_t base = frame_base(addr);
  if (!record(base, from, FramePlace::kFree)) return;
  if (free_top_ == free_list_.size()) {  // more releases than frames: a double free
    violations_.add(1);
    return;
  }
  free_list_[free_top_++] = base;
  counts_[index(from)].sub(1);
  counts_[index(FramePlace::kFree)].add(1);
}

inline void FramePool::move(uint64_t addr, FramePlace from, FramePlace to) noexcept {
  if (!record(frame_base(addr), from, to)) return;
  counts_[index(from)].sub(1);
  counts_[index(to)].add(1);
}

inline bool FramePool::record([[maybe_unused]] uint64_t base, [[maybe_unused]] FramePlace from,
                              [[maybe_unused]] FramePlace to) noexcept {
#ifdef DNSPROXY_FRAME_CHECKS
  const uint64_t frame = base / frame_size_;
  if (frame >= place_of_.size() || place_of_[frame] != from) {
    violations_.add(1);
    return false;
  }
  place_of_[frame] = to;
#endif
  return true;
}

}  // namespace dnsproxy::xsk
