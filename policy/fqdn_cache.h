// The FQDN mapping cache: which IPs each endpoint has learned for each name (from DNS responses),
// until when, and which (endpoint, IP) pairs the agent has plumbed into L3 policy.
//
// Ownership: the control thread owns FqdnCache and is its only user (learned mappings arrive
// from workers over SPSC rings; ACKs arrive from the agent link). Workers never touch it: they
// read a PlumbedSet, an immutable flat table the control thread derives from the cache and
// publishes inside the Snapshot (snapshot.h) whenever generation() moved. A worker that does not
// see a fresh plumbing yet only waits for the agent's ACK, which is always correct; the republish
// delay therefore costs latency for that response, never safety.
//
// Memory is bounded: at most max_ips_per_name IPs per (endpoint, name) and max_mappings
// (endpoint, name, IP) mappings in all; the mapping that expires first is evicted. TTLs below
// min_ttl are raised to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address_table.h"
#include "policy/ip_address.h"

namespace dnsproxy::policy {

using Clock = std::chrono::steady_clock;

struct FqdnCacheLimits {
  size_t max_ips_per_name = 1000;  // Cilium's tofqdns-endpoint-max-ip-per-hostname default
  size_t max_mappings = size_t{1} << 20;
  std::chrono::seconds min_ttl{0};  // 0: honour the response's TTL (Cilium's default)
};

// (endpoint, IP) -> plumbed until; what workers consult to release a response at once.
class PlumbedSet {
 public:
  PlumbedSet() = default;
  explicit PlumbedSet(size_t expected) : table_(expected) {}
  void insert(uint32_t endpoint_id, const IpAddress& ip, Clock::time_point until) {
    table_.insert_or_assign(address_key(ip, ip.max_prefix_length(), endpoint_id),
                            until.time_since_epoch().count());
  }
  [[nodiscard]] bool is_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point now) const noexcept {
    const auto* until = table_.find(address_key(ip, ip.max_prefix_length(), endpoint_id));
    return until != nullptr && *until > now.time_since_epoch().count();
  }
  // Until when the pair is plumbed (a time <= now when it is not, or no longer).
  [[nodiscard]] Clock::time_point plumbed_until(uint32_t endpoint_id,
                                                const IpAddress& ip) const noexcept {
    const auto* until = table_.find(address_key(ip, ip.max_prefix_length(), endpoint_id));
    return until == nullptr ? Clock::time_point::min() : Clock::time_point(Clock::duration(*until));
  }
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }

 private:
  AddressTable<Clock::rep> table_;
};

class FqdnCache {
 public:
  explicit FqdnCache(FqdnCacheLimits limits = {}) : limits_(limits) {}

  // Records the IPs a response gave `endpoint` for `name` (lowercased wire form). Returns those
  // not plumbed for the endpoint yet: what the agent must plumb before the response goes out.
  std::vector<IpAddress> learn(uint32_t endpoint_id, std::span<const uint8_t> name,
                               std::span<const IpAddress> ips, std::chrono::seconds ttl,
                               Clock::time_point now);
  // The agent ACKed: the IP is plumbed for the endpoint for as long as a name maps it. Unknown
  // pairs (expired in between) are ignored.
  void mark_plumbed(uint32_t endpoint_id, const IpAddress& ip);
  // Drops every mapping that expired at `now`, and the IPs no name maps any more.
  void expire(Clock::time_point now);

  [[nodiscard]] std::vector<IpAddress> lookup(uint32_t endpoint_id, std::span<const uint8_t> name,
                                              Clock::time_point now) const;
  [[nodiscard]] bool is_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point now) const;
  [[nodiscard]] PlumbedSet plumbed_set() const;

  [[nodiscard]] size_t mapping_count() const noexcept { return by_expiry_.size(); }

  // Calls visit(endpoint_id, name (lowercased wire form), ip, expires, plumbed) for every
  // mapping, soonest expiry first (the admin CLI's `cache`).
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const auto& [expires, mapping] : by_expiry_) {
      const auto ip = ips_.find({mapping.endpoint_id, mapping.ip});
      visit(mapping.endpoint_id, std::string_view(mapping.name), mapping.ip, expires,
            ip != ips_.end() && ip->second.plumbed);
    }
  }
  // Moves on every change a PlumbedSet would show.
  [[nodiscard]] uint64_t generation() const noexcept { return generation_; }

 private:
  struct Mapping {
    uint32_t endpoint_id;
    std::string name;
    IpAddress ip;
  };
  using ExpiryIndex = std::multimap<Clock::time_point, Mapping>;
  using NameKey = std::pair<uint32_t, std::string>;
  using IpKey = std::pair<uint32_t, IpAddress>;
  struct IpState {
    size_t names = 0;             // mappings that reference this (endpoint, IP)
    Clock::time_point expires{};  // the latest expiry any of them had
    bool plumbed = false;
  };

  void remove(ExpiryIndex::iterator mapping);
  void enforce_name_cap(const NameKey& key);

  FqdnCacheLimits limits_;
  ExpiryIndex by_expiry_;
  std::map<NameKey, std::map<IpAddress, ExpiryIndex::iterator>> names_;
  std::map<IpKey, IpState> ips_;
  uint64_t generation_ = 0;
};

}  // namespace dnsproxy::policy
