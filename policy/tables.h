// The tables a decision reads besides the rules: which endpoint sent a query (endpoint table)
// and which identity the DNS server has (ipcache). Both are immutable once built; the control
// thread builds them from the policy file or from the agent's BPF maps
// (datapath/policy_mirror.h) and publishes them inside a Snapshot. The ipcache also derives a new
// ipcache from an old one plus a few changes without rebuilding it (IpCache::with_changes).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"
#include "policy/address_table.h"
#include "policy/ip_address.h"
#include "policy/sharded_table.h"

namespace dnsproxy::policy {

// Cilium's reserved identity for everything outside the cluster: what an address no ipcache
// prefix covers resolves to.
inline constexpr uint32_t kWorldIdentity = 2;

struct EndpointInfo {
  uint32_t endpoint_id = 0;
  uint32_t identity = 0;
  friend bool operator==(const EndpointInfo&, const EndpointInfo&) = default;
};

struct EndpointEntry {
  IpAddress address;
  EndpointInfo info;
};

// IP -> (endpoint id, identity), exact match.
class EndpointTable {
 public:
  EndpointTable() = default;
  // Cold path. A later entry for the same address replaces an earlier one.
  explicit EndpointTable(std::span<const EndpointEntry> entries);

  [[nodiscard]] const EndpointInfo* find(const IpAddress& address) const noexcept {
    return table_.find(address_key(address, address.max_prefix_length()));
  }
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] std::vector<EndpointEntry> entries() const;

 private:
  AddressTable<EndpointInfo> table_;
};

struct IpCacheEntry {
  IpPrefix prefix;
  uint32_t identity = 0;
};

// One ipcache edit: the prefix now maps to `identity`, or to nothing (removed) when empty.
struct IpCacheChange {
  IpPrefix prefix;
  std::optional<uint32_t> identity;
};

// Longest-prefix match IP -> identity over IPv4 and IPv6 prefixes; kWorldIdentity when none
// covers the address. One hash probe per distinct prefix length present in the family, longest
// first (real ipcaches hold a handful of lengths: /32 and /128 for pods, a few CIDRs).
//
// The prefixes live in a ShardedAddressTable (sharded_table.h): with_changes() copies only the
// shards a change touches, so one changed prefix at 1M prefixes costs a ~1k-entry shard and
// kShards pointer copies, not a rebuild (bench/RESULTS.md). An IpCache is immutable once
// published; the old one and the shards only it used die when QSBR frees its snapshot.
class IpCache {
 public:
  IpCache() = default;
  // Cold path. A later entry for the same prefix replaces an earlier one.
  explicit IpCache(std::span<const IpCacheEntry> entries);

  // Cold path. This ipcache with `changes` applied in order; it shares every untouched shard.
  [[nodiscard]] IpCache with_changes(std::span<const IpCacheChange> changes) const;

  [[nodiscard]] uint32_t lookup(const IpAddress& address) const noexcept {
    const Lengths& lengths = address.family == Family::kV4 ? v4_.lengths : v6_.lengths;
    for (uint8_t i = 0; i < lengths.count; ++i) {
      if (const uint32_t* identity = table_.find(address_key(address, lengths.longest_first[i])))
        return *identity;
    }
    return kWorldIdentity;
  }
  // The identity stored for exactly this prefix, if any (no longest-prefix match).
  [[nodiscard]] const uint32_t* find(const IpPrefix& prefix) const noexcept;
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] std::vector<IpCacheEntry> entries() const;

 private:
  using Table = ShardedAddressTable<uint32_t, 10>;
  struct Lengths {
    std::array<uint8_t, 129> longest_first{};
    uint8_t count = 0;
  };
  // Prefixes per length, from which `lengths` is derived after every change.
  struct FamilyLengths {
    std::array<uint32_t, 129> prefixes{};
    Lengths lengths;
    void count(uint8_t length, bool added);
  };
  Table table_;
  FamilyLengths v4_;
  FamilyLengths v6_;
};

}  // namespace dnsproxy::policy
