#include "policy/tables.h"

#include <algorithm>

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

IpCache::IpCache(std::span<const IpCacheEntry> entries) : table_(entries.size()) {
  std::array<bool, 129> v4_present{};
  std::array<bool, 129> v6_present{};
  for (const IpCacheEntry& e : entries) {
    table_.insert_or_assign(address_key(e.prefix.address, e.prefix.length), e.identity);
    (e.prefix.address.family == Family::kV4 ? v4_present : v6_present)[e.prefix.length] = true;
  }
  for (int length = 128; length >= 0; --length) {
    if (v4_present[length]) v4_lengths_.longest_first[v4_lengths_.count++] = static_cast<uint8_t>(length);
    if (v6_present[length]) v6_lengths_.longest_first[v6_lengths_.count++] = static_cast<uint8_t>(length);
  }
}

std::vector<IpCacheEntry> IpCache::entries() const {
  std::vector<IpCacheEntry> out;
  table_.for_each([&](const AddressKey& key, const uint32_t& identity) {
    out.push_back({IpPrefix{address_of(key), key.length}, identity});
  });
  return out;
}

}  // namespace dnsproxy::policy
