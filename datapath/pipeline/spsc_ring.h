// A bounded single-producer single-consumer ring: how a worker and the control thread hand each
// other plain records without locks, allocation or blocking (DESIGN.md 5).
//
// One thread pushes, one thread pops; each index lives on its own cache line, and each side keeps
// a cached copy of the other's index so the common case touches no shared line. The producer
// publishes records with a release store of its index, the consumer hands slots back the same
// way. Full and empty are reported, never waited on: the caller decides (and counts) what a full
// ring means.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

namespace dnsproxy::datapath::pipeline {

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Cold path: `capacity` is rounded up to a power of two.
  explicit SpscRing(size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1), records_(new T[mask_ + 1]) {}
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  [[nodiscard]] size_t capacity() const noexcept { return mask_ + 1; }

  // Producer: room for `n` more records? (What a producer checks before a push that must go in
  // whole, e.g. every mapping of one response.)
  [[nodiscard]] bool has_room(size_t n) noexcept {
    const uint64_t head = head_.value.load(std::memory_order_relaxed);
    if (head + n - cached_tail_ <= capacity()) return true;
    cached_tail_ = tail_.value.load(std::memory_order_acquire);
    return head + n - cached_tail_ <= capacity();
  }
  // Producer: false when full.
  [[nodiscard]] bool push(const T& record) noexcept {
    if (!has_room(1)) return false;
    const uint64_t head = head_.value.load(std::memory_order_relaxed);
    records_[head & mask_] = record;
    head_.value.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer: false when empty.
  [[nodiscard]] bool pop(T& out) noexcept {
    const uint64_t tail = tail_.value.load(std::memory_order_relaxed);
    if (tail == cached_head_) {
      cached_head_ = head_.value.load(std::memory_order_acquire);
      if (tail == cached_head_) return false;
    }
    out = records_[tail & mask_];
    tail_.value.store(tail + 1, std::memory_order_release);
    return true;
  }

 private:
  struct alignas(64) Index {
    std::atomic<uint64_t> value{0};
  };
  const size_t mask_;
  std::unique_ptr<T[]> records_;
  Index head_;                            // next slot the producer writes
  Index tail_;                            // next slot the consumer reads
  alignas(64) uint64_t cached_tail_ = 0;  // producer's copy of tail_
  alignas(64) uint64_t cached_head_ = 0;  // consumer's copy of head_
};

}  // namespace dnsproxy::datapath::pipeline
