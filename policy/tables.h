// The tables a decision reads besides the rules: which endpoint sent a query (endpoint table)
// and which identity the DNS server has (ipcache). Both are immutable once built; the control
// thread builds them from the policy file or from the agent's BPF maps
// (datapath/policy_mirror.h) and publishes them inside a Snapshot.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "policy/address_table.h"
#include "policy/ip_address.h"

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

// Longest-prefix match IP -> identity over IPv4 and IPv6 prefixes; kWorldIdentity when none
// covers the address. One hash probe per distinct prefix length present in the family, longest
// first (real ipcaches hold a handful of lengths: /32 and /128 for pods, a few CIDRs).
class IpCache {
 public:
  IpCache() = default;
  explicit IpCache(std::span<const IpCacheEntry> entries);

  [[nodiscard]] uint32_t lookup(const IpAddress& address) const noexcept {
    const Lengths& lengths = address.family == Family::kV4 ? v4_lengths_ : v6_lengths_;
    for (uint8_t i = 0; i < lengths.count; ++i) {
      if (const uint32_t* identity = table_.find(address_key(address, lengths.longest_first[i])))
        return *identity;
    }
    return kWorldIdentity;
  }
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] std::vector<IpCacheEntry> entries() const;

 private:
  struct Lengths {
    std::array<uint8_t, 129> longest_first{};
    uint8_t count = 0;
  };
  AddressTable<uint32_t> table_;
  Lengths v4_lengths_;
  Lengths v6_lengths_;
};

}  // namespace dnsproxy::policy
