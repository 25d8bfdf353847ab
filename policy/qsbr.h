// Quiescent-state-based reclamation: how the control thread frees an old snapshot without ever
// making a worker wait or take a lock.
//
// Protocol (the only rules a user must follow):
//  - A worker registers once (a Reader), then per batch: `snapshot = publisher.acquire()` (one
//    acquire load), use it, `reader.quiescent()`. It never keeps a pointer from a snapshot across
//    quiescent(). A worker about to block (idle wait, shutdown) calls offline(), and online()
//    before its next acquire(), so it does not hold up reclamation while asleep.
//  - The control thread is the only publisher: publish() swaps the pointer (one store) and
//    retires the old object with the epoch it advanced to; reclaim() frees every retired object
//    whose epoch each online reader has since announced.
// Why it is safe: a reader announces an epoch E only after an acquire load of the global epoch
// returned E, which happened after the pointer swap that E was advanced for, so every later
// acquire() of that reader sees the new pointer; its release store of E orders all its reads of
// the old object before the control thread's acquire load that sees E.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>

#include "common/result.h"

namespace dnsproxy::policy {

class QsbrDomain {
 public:
  static constexpr size_t kMaxReaders = 64;

  class Reader {
   public:
    Reader(Reader&& other) noexcept : domain_(other.domain_), slot_(other.slot_) {
      other.domain_ = nullptr;
    }
    Reader& operator=(Reader&&) = delete;
    ~Reader();

    // End of a batch: nothing read from a snapshot before this call is used after it.
    void quiescent() noexcept {
      domain_->slots_[slot_].seen.store(domain_->epoch_.load(std::memory_order_acquire),
                                        std::memory_order_release);
    }
    void offline() noexcept {
      domain_->slots_[slot_].seen.store(kOffline, std::memory_order_release);
    }
    // Coming back from offline. All seq_cst, paired with publish()/advance()/passed(): either the
    // control thread's passed() sees this store (and waits for us), or it looked before it, and
    // then the epoch load after the store reads the advanced epoch, which synchronizes with the
    // pointer swap before it, so our next acquire() returns the new pointer.
    void online() noexcept {
      std::atomic<uint64_t>& seen = domain_->slots_[slot_].seen;
      seen.store(domain_->epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
      (void)domain_->epoch_.load(std::memory_order_seq_cst);
    }

   private:
    friend class QsbrDomain;
    Reader(QsbrDomain* domain, size_t slot) : domain_(domain), slot_(slot) {}
    QsbrDomain* domain_;
    size_t slot_;
  };

  // Any thread; the reader starts online. Fails when kMaxReaders are registered.
  [[nodiscard]] Result<Reader> register_reader();

  // Control thread: a new epoch, after the caller's pointer swap.
  uint64_t advance() noexcept { return epoch_.fetch_add(1, std::memory_order_seq_cst) + 1; }
  // Control thread: has every online reader passed a quiescent point since `epoch` began?
  [[nodiscard]] bool passed(uint64_t epoch) const noexcept;

 private:
  static constexpr uint64_t kUnused = 0;
  static constexpr uint64_t kOffline = ~uint64_t{0};
  struct alignas(64) Slot {  // one cache line per reader: no false sharing between workers
    std::atomic<uint64_t> seen{kUnused};
  };
  std::atomic<uint64_t> epoch_{1};
  Slot slots_[kMaxReaders];
};

// One published object (e.g. the current Snapshot) plus the retired ones not freed yet.
template <class T>
class Publisher {
 public:
  explicit Publisher(QsbrDomain& domain) : domain_(domain) {}
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Precondition: no reader holds anything (all stopped or offline).
  ~Publisher() { delete current_.load(std::memory_order_relaxed); }

  // Worker, once per batch.
  [[nodiscard]] const T* acquire() const noexcept {
    return current_.load(std::memory_order_acquire);
  }

  // Control thread only.
  void publish(std::unique_ptr<const T> next) {
    const T* old = current_.exchange(next.release(), std::memory_order_seq_cst);
    if (old != nullptr) retired_.push_back({domain_.advance(), std::unique_ptr<const T>(old)});
    reclaim();
  }
  // Control thread only: frees what is safe to free; returns how many are still waiting.
  size_t reclaim() {
    while (!retired_.empty() && domain_.passed(retired_.front().epoch)) retired_.pop_front();
    return retired_.size();
  }
  [[nodiscard]] const T* current_for_control() const noexcept {
    return current_.load(std::memory_order_relaxed);
  }

 private:
  struct Retired {
    uint64_t epoch;
    std::unique_ptr<const T> object;
  };
  QsbrDomain& domain_;
  std::atomic<const T*> current_{nullptr};
  std::deque<Retired> retired_;  // epochs increase front to back
};

}  // namespace dnsproxy::policy
