// A flat open-addressing hash table keyed by (address masked to a prefix length, tag): the one
// structure behind the endpoint table, the ipcache and the plumbed set. Built (and, for the
// ipcache's copy-on-write shards, edited) on the control thread before it is published, then
// read-only: find() is a hot-path probe with no allocation and no locks.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "policy/ip_address.h"

namespace dnsproxy::policy {

struct AddressKey {
  uint64_t high = 0;   // address bits 0..63, big-endian order, masked to `length`
  uint64_t low = 0;    // address bits 64..127
  uint32_t tag = 0;    // e.g. the endpoint id in the plumbed set; 0 where unused
  uint8_t family = 0;  // 0 marks an empty slot
  uint8_t length = 0;  // prefix length in bits

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

inline uint64_t address_mix(uint64_t x) noexcept {  // murmur3 finalizer
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// One finalizer over a multiply-combined key: keys are addresses, not attacker-chosen collisions
// (the table is built from policy, and a probe's length is bounded by its clusters, which the
// attacker cannot grow). Tables index slots with the low bits; the ipcache picks its shard with
// the high bits, so both come from one hash.
[[nodiscard]] inline uint64_t address_hash(const AddressKey& k) noexcept {
  const uint64_t meta = (uint64_t{k.tag} << 16) | (uint64_t{k.family} << 8) | k.length;
  return address_mix(k.high * 0x9e3779b97f4a7c15ull ^ std::rotl(k.low, 31) ^
                     meta * 0xc2b2ae3d27d4eb4full);
}

template <class Value>
class AddressTable {
 public:
  AddressTable() = default;
  explicit AddressTable(size_t expected_entries) : slots_(slot_count(expected_entries)) {}

  // Cold path. The table never grows: size it for what it will hold (see with_room_for).
  // Returns whether the key was new.
  bool insert_or_assign(const AddressKey& key, const Value& value) {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = address_hash(key) & mask;; slot = (slot + 1) & mask) {
      Slot& s = slots_[slot];
      if (s.key.family == 0) {
        s = {key, value};
        ++size_;
        return true;
      }
      if (s.key == key) {
        s.value = value;
        return false;
      }
    }
  }

  // Cold path. Returns whether the key was there. Backward-shift deletion: every later entry of
  // the cluster that may move into the hole does, so probes never stop early and need no
  // tombstones.
  bool erase(const AddressKey& key) {
    if (slots_.empty()) return false;
    const size_t mask = slots_.size() - 1;
    size_t hole = address_hash(key) & mask;
    while (!(slots_[hole].key == key)) {
      if (slots_[hole].key.family == 0) return false;
      hole = (hole + 1) & mask;
    }
    for (size_t slot = (hole + 1) & mask; slots_[slot].key.family != 0; slot = (slot + 1) & mask) {
      const size_t home = address_hash(slots_[slot].key) & mask;
      // The entry may fill the hole when its home is not cyclically within (hole, slot].
      if (((slot - home) & mask) >= ((slot - hole) & mask)) {
        slots_[hole] = slots_[slot];
        hole = slot;
      }
    }
    slots_[hole] = Slot{};
    --size_;
    return true;
  }

  // Cold path. A copy sized for `expected_entries`: a plain copy when the slot count stays,
  // else every entry re-inserted.
  [[nodiscard]] AddressTable with_room_for(size_t expected_entries) const {
    if (slot_count(expected_entries) == slots_.size()) return *this;
    AddressTable copy(expected_entries);
    for_each([&](const AddressKey& key, const Value& value) { copy.insert_or_assign(key, value); });
    return copy;
  }

  [[nodiscard]] const Value* find(const AddressKey& key) const noexcept {
    return find(key, address_hash(key));
  }
  // The same, for a caller that already hashed the key (the ipcache, to pick the shard).
  [[nodiscard]] const Value* find(const AddressKey& key, uint64_t hash) const noexcept {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
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

  static size_t slot_count(size_t expected_entries) noexcept {
    return std::bit_ceil(expected_entries * 2 < 16 ? size_t{16} : expected_entries * 2);
  }

  std::vector<Slot> slots_;  // power-of-two size, load <= 1/2
  size_t size_ = 0;
};

}  // namespace dnsproxy::policy
