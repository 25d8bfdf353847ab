// Counter sets, each defined once: an enum whose last enumerator is kCount, and one name table,
// counter_names(Enum) next to it (found by argument-dependent lookup), whose size the compiler
// checks against kCount. Everything that reports counters (the log report, the stats snapshot,
// later Prometheus and the admin CLI) iterates the table, so adding a counter is adding one
// enumerator and one name.
//
//   enum class FooDrop : uint8_t { kBadThing, kOtherThing, kCount };
//   constexpr std::array<std::string_view, 2> counter_names(FooDrop) {
//     return {"bad_thing", "other_thing"};
//   }
//   CounterSet<FooDrop> drops;  drops.add(FooDrop::kBadThing);
//
// Names are snake_case identifiers: they become JSON keys and Prometheus label values as they are.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace dnsproxy {

// A counter written by one thread and read by others: a plain add on x86, no lock prefix.
class RelaxedCounter {
 public:
  void add(uint64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// E has a kCount enumerator and a name table of exactly kCount names.
template <class E>
concept CounterEnum = std::is_enum_v<E> && requires {
  E::kCount;
  {
    counter_names(E{})
    } -> std::same_as<std::array<std::string_view, static_cast<size_t>(E::kCount)>>;
};

template <CounterEnum E>
inline constexpr size_t kCounterCount = static_cast<size_t>(E::kCount);

template <CounterEnum E>
[[nodiscard]] constexpr std::string_view counter_name(E e) noexcept {
  return counter_names(E{})[static_cast<size_t>(e)];
}

// One relaxed counter per enumerator.
template <CounterEnum E>
class CounterSet {
 public:
  static constexpr size_t kSize = kCounterCount<E>;

  void add(E e, uint64_t n = 1) noexcept { values_[static_cast<size_t>(e)].add(n); }
  void sub(E e, uint64_t n = 1) noexcept { values_[static_cast<size_t>(e)].sub(n); }
  void set(E e, uint64_t n) noexcept { values_[static_cast<size_t>(e)].set(n); }
  [[nodiscard]] uint64_t get(E e) const noexcept { return values_[static_cast<size_t>(e)].get(); }

  // f(std::string_view name, uint64_t value) for every counter, in enum order.
  template <class F>
  void for_each(F&& f) const {
    constexpr std::array<std::string_view, kSize> names = counter_names(E{});
    for (size_t i = 0; i < kSize; ++i) f(names[i], values_[i].get());
  }

 private:
  std::array<RelaxedCounter, kSize> values_;
};

}  // namespace dnsproxy
