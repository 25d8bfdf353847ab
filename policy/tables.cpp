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

IpCache::IpCache(std::span<const IpCacheEntry> entries) {
  std::vector<IpCacheChange> changes;
  changes.reserve(entries.size());
  for (const IpCacheEntry& e : entries) changes.push_back({e.prefix, e.identity});
  *this = with_changes(changes);
}

IpCache IpCache::with_changes(std::span<const IpCacheChange> changes) const {
  std::vector<Table::Change> edits;
  edits.reserve(changes.size());
  for (const IpCacheChange& change : changes)
    edits.push_back({address_key(change.prefix.address, change.prefix.length), change.identity});
  IpCache next = *this;
  next.table_ = table_.with_changes(edits, [&](const Table::Change& edit) {
    // A prefix added or removed: the lengths to probe may change.
    FamilyLengths& family =
        edit.key.family == static_cast<uint8_t>(Family::kV4) ? next.v4_ : next.v6_;
    family.count(edit.key.length, edit.value.has_value());
  });
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
  return table_.find(address_key(prefix.address, prefix.length));
}

std::vector<IpCacheEntry> IpCache::entries() const {
  std::vector<IpCacheEntry> out;
  out.reserve(table_.size());
  table_.for_each([&](const AddressKey& key, const uint32_t& identity) {
    out.push_back({IpPrefix{address_of(key), key.length}, identity});
  });
  return out;
}

}  // namespace dnsproxy::policy
