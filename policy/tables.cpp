#include "policy/tables.h"

#include <algorithm>
#include <vector>

namespace dnsproxy::policy {
namespace {

IpAddress address_of(const AddressKey& key) {
  IpAddress a;
  a.family = static_cast<Family>(key.family);
  const uint64_t high = __builtin_bswap64(key.high);
  const uint64_t low = __builtin_bswap64(key.low);
  std::memcpy(a.bytes.data(), &high, 8);
  std::memcpy(a.bytes.data() + 8, &low, 8);
  return a;
}

// Every empty shard of every ipcache: one allocation, never written.
const std::shared_ptr<const AddressTable<uint32_t>>& empty_shard() {
  static const auto empty = std::make_shared<const AddressTable<uint32_t>>();
  return empty;
}

}  // namespace

EndpointTable::EndpointTable(std::span<const EndpointEntry> entries) : table_(entries.size()) {
  for (const EndpointEntry& e : entries)
    table_.insert_or_assign(address_key(e.address, e.address.max_prefix_length()), e.info);
}

std::vector<EndpointEntry> EndpointTable::entries() const {
  std::vector<EndpointEntry> out;
  table_.for_each([&](const AddressKey& key, const EndpointInfo& info) {
    out.push_back({address_of(key), info});
  });
  return out;
}

IpCache::IpCache() {
  shards_.fill(empty_shard());
}

IpCache::IpCache(std::span<const IpCacheEntry> entries) : IpCache() {
  std::vector<IpCacheChange> changes;
  changes.reserve(entries.size());
  for (const IpCacheEntry& e : entries) changes.push_back({e.prefix, e.identity});
  *this = with_changes(changes);
}

IpCache IpCache::with_changes(std::span<const IpCacheChange> changes) const {
  // Group the changes by shard with a stable counting sort (so a later change to a prefix still
  // wins), then copy each touched shard once and apply its changes to the copy.
  std::vector<AddressKey> keys(changes.size());
  std::vector<uint16_t> shard(changes.size());
  std::vector<size_t> begin(kShards + 1, 0);
  for (size_t i = 0; i < changes.size(); ++i) {
    keys[i] = address_key(changes[i].prefix.address, changes[i].prefix.length);
    shard[i] = static_cast<uint16_t>(shard_of(address_hash(keys[i])));
    ++begin[shard[i] + 1];
  }
  for (size_t s = 0; s < kShards; ++s) begin[s + 1] += begin[s];
  std::vector<size_t> order(changes.size());
  std::vector<size_t> fill(begin.begin(), begin.end() - 1);
  for (size_t i = 0; i < changes.size(); ++i) order[fill[shard[i]]++] = i;

  IpCache next = *this;
  for (size_t s = 0; s < kShards; ++s) {
    if (begin[s] == begin[s + 1]) continue;
    size_t upserts = 0;
    for (size_t k = begin[s]; k < begin[s + 1]; ++k)
      upserts += changes[order[k]].identity.has_value();
    Shard table = shards_[s]->with_room_for(shards_[s]->size() + upserts);
    for (size_t k = begin[s]; k < begin[s + 1]; ++k) {
      const IpCacheChange& change = changes[order[k]];
      FamilyLengths& family = change.prefix.address.family == Family::kV4 ? next.v4_ : next.v6_;
      const bool applied = change.identity
                               ? table.insert_or_assign(keys[order[k]], *change.identity)
                               : table.erase(keys[order[k]]);
      if (!applied) continue;  // an identity replaced, or an absent prefix removed: same lengths
      next.size_ = change.identity ? next.size_ + 1 : next.size_ - 1;
      family.count(change.prefix.length, change.identity.has_value());
    }
    next.shards_[s] =
        table.size() == 0 ? empty_shard() : std::make_shared<const Shard>(std::move(table));
  }
  return next;
}

void IpCache::FamilyLengths::count(uint8_t length, bool added) {
  const bool was_present = prefixes[length] != 0;
  prefixes[length] = added ? prefixes[length] + 1 : prefixes[length] - 1;
  if (was_present == (prefixes[length] != 0)) return;
  lengths = {};
  for (int l = 128; l >= 0; --l) {
    if (prefixes[l] != 0) lengths.longest_first[lengths.count++] = static_cast<uint8_t>(l);
  }
}

const uint32_t* IpCache::find(const IpPrefix& prefix) const noexcept {
  const AddressKey key = address_key(prefix.address, prefix.length);
  const uint64_t hash = address_hash(key);
  return shards_[shard_of(hash)]->find(key, hash);
}

std::vector<IpCacheEntry> IpCache::entries() const {
  std::vector<IpCacheEntry> out;
  out.reserve(size_);
  for (const std::shared_ptr<const Shard>& shard : shards_) {
    shard->for_each([&](const AddressKey& key, const uint32_t& identity) {
      out.push_back({IpPrefix{address_of(key), key.length}, identity});
    });
  }
  return out;
}

}  // namespace dnsproxy::policy
