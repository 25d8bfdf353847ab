// A flat open-addressing hash table keyed by (address masked to a prefix length, tag): the one
// structure behind the endpoint table, the ipcache and the plumbed set. Built on the control
// thread, then read-only: find() is a hot-path probe with no allocation and no locks.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "policy/ip_address.h"

namespace dnsproxy::policy {

struct AddressKey {
  uint64_t high = 0;  // address bits 0..63, big-endian order, masked to `length`
  uint64_t low = 0;   // address bits 64..127
  uint32_t tag = 0;   // e.g. the endpoint id in the plumbed set; 0 where unused
  uint8_t family = 0; // 0 marks an empty slot
  uint8_t length = 0; // prefix length in bits

  friend bool operator==(const AddressKey&, const AddressKey&) = default;
};

[[nodiscard]] inline AddressKey address_key(const IpAddress& address, unsigned length,
                                            uint32_t tag = 0) noexcept {
  uint64_t high = 0;
  uint64_t low = 0;
  std::memcpy(&high, address.bytes.data(), 8);
  std::memcpy(&low, address.bytes.data() + 8, 8);
  high = __builtin_bswap64(high);
  low = __builtin_bswap64(low);
  // Keep the top `length` bits of the 128-bit number.
  if (length < 64) {
    high = length == 0 ? 0 : high & (~uint64_t{0} << (64 - length));
    low = 0;
  } else if (length < 128) {
    low = length == 64 ? 0 : low & (~uint64_t{0} << (128 - length));
  }
  return {high, low, tag, static_cast<uint8_t>(address.family), static_cast<uint8_t>(length)};
}

template <class Value>
class AddressTable {
 public:
  AddressTable() = default;
  explicit AddressTable(size_t expected_entries)
      : slots_(std::bit_ceil(expected_entries * 2 < 16 ? size_t{16} : expected_entries * 2)) {}

  // Cold path. The table never grows: size it for what it will hold.
  void insert_or_assign(const AddressKey& key, const Value& value) {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash(key) & mask;; slot = (slot + 1) & mask) {
      Slot& s = slots_[slot];
      if (s.key.family == 0) {
        s = {key, value};
        ++size_;
        return;
      }
      if (s.key == key) {
        s.value = value;
        return;
      }
    }
  }

  [[nodiscard]] const Value* find(const AddressKey& key) const noexcept {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash(key) & mask;; slot = (slot + 1) & mask) {
      const Slot& s = slots_[slot];
      if (s.key == key) return &s.value;
      if (s.key.family == 0) return nullptr;
    }
  }

  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const Slot& s : slots_)
      if (s.key.family != 0) visit(s.key, s.value);
  }

 private:
  struct Slot {
    AddressKey key;
    Value value{};
  };

  static uint64_t mix(uint64_t x) noexcept {  // murmur3 finalizer
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
  }
  static size_t hash(const AddressKey& k) noexcept {
    // One finalizer over a multiply-combined key: keys are addresses, not attacker-chosen
    // collisions (the table is built from policy, and a probe's length is bounded by its
    // clusters, which the attacker cannot grow).
    const uint64_t meta = (uint64_t{k.tag} << 16) | (uint64_t{k.family} << 8) | k.length;
    return static_cast<size_t>(mix(k.high * 0x9e3779b97f4a7c15ull ^ std::rotl(k.low, 31) ^
                                   meta * 0xc2b2ae3d27d4eb4full));
  }

  std::vector<Slot> slots_;  // power-of-two size, load <= 1/2
  size_t size_ = 0;
};

}  // namespace dnsproxy::policy
