// The agent's endpoint and ipcache BPF maps, read into policy/'s plain tables (issue 5).
//
// The agent (cilium-agent's role; the embedded agent in dnsproxyd) owns pinned maps whose
// layouts are in datapath/bpf/dnsproxy_abi.h: a hash map endpoint_key -> endpoint_value, an
// LPM trie ipcache_key -> ipcache_value, and an array of change counters, one per map. PolicyMaps
// is the typed accessor over them (open pinned, or create + pin for the embedded agent and
// tests; read all; update/delete one entry, which bumps the map's counter). PolicyMirror is the
// control-thread side: poll() re-reads a map when its counter moved (every map, every poll, if
// the agent pinned no counters) and publishes a new endpoint table / ipcache into the
// SnapshotStore when, and only when, the content changed.
//
// Threading: poll() publishes, so it runs on the control thread that owns the SnapshotStore,
// every kPollInterval. A map change is therefore in the workers' snapshot within one interval
// plus one read of the maps (measured in bench/RESULTS.md).
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "policy/snapshot.h"
#include "policy/tables.h"

namespace dnsproxy::datapath {

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

// Entries the maps held that policy cannot use (bad family, prefix length out of range):
// skipped, counted, never fatal, since the maps are written by another process.
struct MapReadStats {
  size_t invalid_endpoints = 0;
  size_t invalid_prefixes = 0;
  size_t endpoint_map_reads = 0;  // full reads; a poll with an unchanged counter does none
  size_t ipcache_map_reads = 0;
};

struct PinnedPolicyMaps {
  std::string endpoints;
  std::string ipcache;
  std::string generations;  // empty: the agent keeps no counters; every poll reads everything
};

class PolicyMaps {
 public:
  // Opens maps the agent pinned, checking type and key/value sizes against the ABI header.
  [[nodiscard]] static Result<PolicyMaps> open_pinned(const PinnedPolicyMaps& paths);
  // Creates empty maps and counters (the embedded agent's job; also what tests do).
  [[nodiscard]] static Result<PolicyMaps> create(uint32_t max_endpoints, uint32_t max_prefixes);
  // Pins all three; on failure unpins what it pinned.
  [[nodiscard]] Result<void> pin(const PinnedPolicyMaps& paths) const;

  // The change counters (endpoints, ipcache), or nothing when the agent keeps none.
  [[nodiscard]] Result<std::optional<std::array<uint64_t, 2>>> read_generations() const;

  [[nodiscard]] Result<std::vector<policy::EndpointEntry>> read_endpoints(MapReadStats& stats) const;
  [[nodiscard]] Result<std::vector<policy::IpCacheEntry>> read_ipcache(MapReadStats& stats) const;

  [[nodiscard]] Result<void> update_endpoint(const policy::EndpointEntry& entry) const;
  [[nodiscard]] Result<void> delete_endpoint(const policy::IpAddress& address) const;
  [[nodiscard]] Result<void> update_prefix(const policy::IpCacheEntry& entry) const;
  [[nodiscard]] Result<void> delete_prefix(const policy::IpPrefix& prefix) const;

 private:
  PolicyMaps(Fd endpoints, Fd ipcache, Fd generations)
      : endpoints_(std::move(endpoints)), ipcache_(std::move(ipcache)),
        generations_(std::move(generations)) {}
  [[nodiscard]] Result<void> bump_generation(uint32_t slot) const;
  Fd endpoints_;
  Fd ipcache_;
  Fd generations_;  // -1 when absent
};

class PolicyMirror {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{20};

  PolicyMirror(PolicyMaps maps, policy::SnapshotStore& store)
      : maps_(std::move(maps)), store_(store) {}

  // Control thread. Reads both maps; publishes what changed. Returns whether it published.
  // On a read error nothing is published: the workers keep the last good tables.
  [[nodiscard]] Result<bool> poll();

  [[nodiscard]] const MapReadStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const PolicyMaps& maps() const noexcept { return maps_; }

 private:
  PolicyMaps maps_;
  policy::SnapshotStore& store_;
  MapReadStats stats_;
  // Order-independent digests of the last published contents (count + sum of entry hashes):
  // an unchanged map costs a read, never a rebuild or a publish.
  struct Digest {
    size_t count = SIZE_MAX;
    uint64_t sum = 0;
    friend bool operator==(const Digest&, const Digest&) = default;
  };
  Digest endpoints_digest_;
  Digest ipcache_digest_;
  std::optional<std::array<uint64_t, 2>> generations_seen_;  // empty until the first read
};

}  // namespace dnsproxy::datapath
