// The FQDN mapping cache: which IPs each endpoint has learned for each name (from DNS responses),
// until when, and which (endpoint, IP) pairs the agent has plumbed into L3 policy.
//
// Ownership: the control thread owns FqdnCache and is its only user (learned mappings arrive
// from workers over SPSC rings; ACKs arrive from the agent link). Workers never touch it: they
// read a PlumbedSet, an immutable sharded table the cache keeps up to date change by change
// (copying only the shards a change touches: a republish costs the same at 30 mappings as at a
// million) and the control thread publishes inside the Snapshot (snapshot.h) whenever
// plumbed_changed(). A worker that does not see a fresh plumbing yet only waits for the agent's
// ACK, which is always correct; the republish delay therefore costs latency for that response,
// never safety.
//
// Memory is bounded: at most max_ips_per_name IPs per (endpoint, name) and max_mappings
// (endpoint, name, IP) mappings in all; the mapping that expires first is evicted. TTLs below
// min_ttl are raised to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address_table.h"
#include "policy/ip_address.h"
#include "policy/sharded_table.h"

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
  // One pair plumbed until `until`, or (nullopt) no longer plumbed.
  struct Change {
    uint32_t endpoint_id = 0;
    IpAddress ip;
    std::optional<Clock::time_point> until;
  };

  // Cold path. This set with `changes` applied in order; it shares every untouched shard.
  [[nodiscard]] PlumbedSet with_changes(std::span<const Change> changes) const;

  [[nodiscard]] bool is_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point now) const noexcept {
    const auto* until = table_.find(key(endpoint_id, ip));
    return until != nullptr && *until > now.time_since_epoch().count();
  }
  // Until when the pair is plumbed (a time <= now when it is not, or no longer).
  [[nodiscard]] Clock::time_point plumbed_until(uint32_t endpoint_id,
                                                const IpAddress& ip) const noexcept {
    const auto* until = table_.find(key(endpoint_id, ip));
    return until == nullptr ? Clock::time_point::min() : Clock::time_point(Clock::duration(*until));
  }
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }

 private:
  // 256 shards: ~4k pairs per shard at the cache's 1M-mapping bound, and a republish copies 256
  // pointers besides the shards it touches.
  using Table = ShardedAddressTable<Clock::rep, 8>;
  static AddressKey key(uint32_t endpoint_id, const IpAddress& ip) noexcept {
    return address_key(ip, ip.max_prefix_length(), endpoint_id);
  }
  Table table_;
};

class FqdnCache {
 public:
  explicit FqdnCache(FqdnCacheLimits limits = {}) : limits_(limits) {}

  // New bounds (an agent's policy update): the mapping bound and min TTL apply at once (the
  // soonest-expiring mappings evicted down to it), the per-name bound at the name's next learn.
  void set_limits(FqdnCacheLimits limits);
  [[nodiscard]] const FqdnCacheLimits& limits() const noexcept { return limits_; }

  // Records the IPs a response gave `endpoint` for `name` (lowercased wire form). Returns those
  // not plumbed for the endpoint yet: what the agent must plumb before the response goes out.
  std::vector<IpAddress> learn(uint32_t endpoint_id, std::span<const uint8_t> name,
                               std::span<const IpAddress> ips, std::chrono::seconds ttl,
                               Clock::time_point now);
  // The agent ACKed: the IP is plumbed for the endpoint for as long as a name maps it. Unknown
  // pairs (expired in between) are ignored.
  void mark_plumbed(uint32_t endpoint_id, const IpAddress& ip);
  // A pair plumbed before this cache existed (the pinned allow map an agent kept across a restart
  // of the proxy): in the PlumbedSet until `until`, though no name was learned for it here, so a
  // response for a name plumbed before the restart is released at once.
  void inherit_plumbed(uint32_t endpoint_id, const IpAddress& ip, Clock::time_point until);
  // Drops every mapping that expired at `now`, the IPs no name maps any more, and the inherited
  // pairs past their time.
  void expire(Clock::time_point now);

  [[nodiscard]] std::vector<IpAddress> lookup(uint32_t endpoint_id, std::span<const uint8_t> name,
                                              Clock::time_point now) const;
  [[nodiscard]] bool is_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point now) const;
  // Whether the PlumbedSet changed since plumbed_set() was last called.
  [[nodiscard]] bool plumbed_changed() const noexcept { return !plumbed_changes_.empty(); }
  // The plumbed pairs as workers read them, with the changes since the last call folded in.
  [[nodiscard]] const PlumbedSet& plumbed_set();

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
  // The plumbed pair's expiry moved, or (nullopt) it left the cache.
  void plumbed_changed(const IpKey& key, std::optional<Clock::time_point> until);

  FqdnCacheLimits limits_;
  ExpiryIndex by_expiry_;
  std::map<NameKey, std::map<IpAddress, ExpiryIndex::iterator>> names_;
  std::map<IpKey, IpState> ips_;
  std::multimap<Clock::time_point, IpKey> inherited_;  // by the end of their plumbing
  PlumbedSet plumbed_;                                 // as of the last plumbed_set()
  std::vector<PlumbedSet::Change> plumbed_changes_;    // since then, in order
};

}  // namespace dnsproxy::policy
