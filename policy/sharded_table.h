// An AddressTable split into 2^kShardBits shards by the high bits of the key's hash, each shard
// shared (shared_ptr to const) between every table that holds the same content: the structure
// behind the ipcache and the plumbed set, both republished to the workers on every change.
// with_changes() copies only the shards a change touches, so one change at a million entries
// costs one small shard and the pointer copies, not a rebuild (bench/RESULTS.md). A table is
// immutable once built; the shards only an old one used die with it (QSBR frees its snapshot).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "policy/address_table.h"

namespace dnsproxy::policy {

template <class Value, unsigned kShardBits>
class ShardedAddressTable {
 public:
  static constexpr size_t kShards = size_t{1} << kShardBits;

  // One edit: the key gets `value`, or leaves the table when `value` is empty.
  struct Change {
    AddressKey key;
    std::optional<Value> value;
  };

  ShardedAddressTable() { shards_.fill(empty_shard()); }

  // Cold path. This table with `changes` applied in order (a later change to a key wins); it
  // shares every untouched shard. on_applied(change) runs for each change that added a key or
  // removed one (not for a value replaced, nor an absent key removed).
  template <class OnApplied>
  [[nodiscard]] ShardedAddressTable with_changes(std::span<const Change> changes,
                                                 OnApplied&& on_applied) const {
    // Group the changes by shard with a stable counting sort, then copy each touched shard once
    // and apply its changes to the copy.
    std::vector<uint32_t> shard(changes.size());
    std::vector<size_t> begin(kShards + 1, 0);
    for (size_t i = 0; i < changes.size(); ++i) {
      shard[i] = static_cast<uint32_t>(shard_of(address_hash(changes[i].key)));
      ++begin[shard[i] + 1];
    }
    for (size_t s = 0; s < kShards; ++s) begin[s + 1] += begin[s];
    std::vector<size_t> order(changes.size());
    std::vector<size_t> fill(begin.begin(), begin.end() - 1);
    for (size_t i = 0; i < changes.size(); ++i) order[fill[shard[i]]++] = i;

    ShardedAddressTable next = *this;
    for (size_t s = 0; s < kShards; ++s) {
      if (begin[s] == begin[s + 1]) continue;
      size_t upserts = 0;
      for (size_t k = begin[s]; k < begin[s + 1]; ++k)
        upserts += changes[order[k]].value.has_value();
      Shard table = shards_[s]->with_room_for(shards_[s]->size() + upserts);
      for (size_t k = begin[s]; k < begin[s + 1]; ++k) {
        const Change& change = changes[order[k]];
        const bool applied = change.value ? table.insert_or_assign(change.key, *change.value)
                                          : table.erase(change.key);
        if (!applied) continue;
        next.size_ = change.value ? next.size_ + 1 : next.size_ - 1;
        on_applied(change);
      }
      next.shards_[s] =
          table.size() == 0 ? empty_shard() : std::make_shared<const Shard>(std::move(table));
    }
    return next;
  }
  [[nodiscard]] ShardedAddressTable with_changes(std::span<const Change> changes) const {
    return with_changes(changes, [](const Change&) {});
  }

  [[nodiscard]] const Value* find(const AddressKey& key) const noexcept {
    const uint64_t hash = address_hash(key);
    return shards_[shard_of(hash)]->find(key, hash);
  }
  [[nodiscard]] size_t size() const noexcept { return size_; }

  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const std::shared_ptr<const Shard>& shard : shards_) shard->for_each(visit);
  }

 private:
  using Shard = AddressTable<Value>;

  static size_t shard_of(uint64_t hash) noexcept {
    return static_cast<size_t>(hash >> (64 - kShardBits));
  }
  // Every empty shard of every table of this type: one allocation, never written.
  static const std::shared_ptr<const Shard>& empty_shard() {
    static const auto empty = std::make_shared<const Shard>();
    return empty;
  }

  std::array<std::shared_ptr<const Shard>, kShards> shards_;
  size_t size_ = 0;
};

}  // namespace dnsproxy::policy
