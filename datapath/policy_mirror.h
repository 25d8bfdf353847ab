// The agent's endpoint and ipcache BPF maps, read into policy/'s plain tables (issue 5).
//
// The agent (cilium-agent's role; the embedded agent in dnsproxyd) owns pinned maps whose
// layouts are in datapath/bpf/dnsproxy_abi.h: a hash map endpoint_key -> endpoint_value, an
// LPM trie ipcache_key -> ipcache_value, an array of change counters, and a change log (queue) of
// the ipcache writes. PolicyMaps is the typed accessor over them (open pinned, or create +
// pin for the embedded agent and tests; read all; update/delete one entry, which follows the
// ABI's protocol: trie, log, counter). PolicyMirror is the control-thread side: poll() re-reads
// the endpoint map when its counter moved, applies the logged ipcache writes as deltas (walking the
// whole trie only at start, after the log overflowed, or when the agent keeps no log), and
// publishes a new endpoint table / ipcache into the SnapshotStore when the content changed.
//
// Threading: poll() publishes, so it runs on the control thread that owns the SnapshotStore,
// every kPollInterval. A map change is therefore in the workers' snapshot within one interval
// plus one read of the maps (measured in bench/RESULTS.md).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "datapath/bpf/dnsproxy_abi.h"
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
  // Gives the descriptor up to a new owner (one that closes it itself, such as gRPC).
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// Entries the maps held that policy cannot use (bad family, prefix length out of range):
// skipped, counted, never fatal, since the maps are written by another process.
struct MapReadStats {
  size_t invalid_endpoints = 0;
  size_t invalid_prefixes = 0;
  size_t endpoint_map_reads = 0;  // full reads; a poll with an unchanged counter does none
  size_t ipcache_map_reads = 0;   // full trie walks
  size_t ipcache_log_reads = 0;   // polls that applied logged changes instead of a walk
  size_t ipcache_changes = 0;     // logged changes applied
};

struct PinnedPolicyMaps {
  std::string endpoints;
  std::string ipcache;
  std::string generations;  // empty: the agent keeps no counters; every poll reads everything
  // Empty or not pinned: the agent keeps no ipcache change log; every change walks the trie.
  // Needs the counters.
  std::string ipcache_log;
};

class PolicyMaps {
 public:
  // Opens maps the agent pinned, checking type and key/value sizes against the ABI header.
  [[nodiscard]] static Result<PolicyMaps> open_pinned(const PinnedPolicyMaps& paths);
  // Room for the ipcache changes the agent makes between two polls (20 ms): 4096 is ~200k/s.
  static constexpr uint32_t kDefaultIpcacheLogCapacity = 4096;
  // Creates empty maps, counters and change log (the embedded agent's job; also what tests do).
  [[nodiscard]] static Result<PolicyMaps> create(
      uint32_t max_endpoints, uint32_t max_prefixes,
      uint32_t ipcache_log_capacity = kDefaultIpcacheLogCapacity);
  // Pins all four (those with a path); on failure unpins what it pinned.
  [[nodiscard]] Result<void> pin(const PinnedPolicyMaps& paths) const;

  // Counters indexed by enum dnsproxy_policy_generation.
  using Generations = std::array<uint64_t, DNSPROXY_GENERATION__COUNT>;
  // The change counters, or nothing when the agent keeps none.
  [[nodiscard]] Result<std::optional<Generations>> read_generations() const;
  [[nodiscard]] bool has_ipcache_log() const noexcept { return ipcache_log_.get() >= 0; }

  [[nodiscard]] Result<std::vector<policy::EndpointEntry>> read_endpoints(
      MapReadStats& stats) const;
  [[nodiscard]] Result<std::vector<policy::IpCacheEntry>> read_ipcache(MapReadStats& stats) const;
  // Pops the logged changes, in write order (at most the log's capacity, so a busy agent cannot
  // keep the caller here). Invalid ones (key or op) are counted as invalid prefixes, skipped.
  [[nodiscard]] Result<std::vector<policy::IpCacheChange>> read_ipcache_changes(
      MapReadStats& stats) const;
  // Pops the logged changes and drops them: the caller is about to walk the whole trie.
  [[nodiscard]] Result<void> discard_ipcache_changes() const;

  [[nodiscard]] Result<void> update_endpoint(const policy::EndpointEntry& entry) const;
  [[nodiscard]] Result<void> delete_endpoint(const policy::IpAddress& address) const;
  [[nodiscard]] Result<void> update_prefix(const policy::IpCacheEntry& entry) const;
  [[nodiscard]] Result<void> delete_prefix(const policy::IpPrefix& prefix) const;

 private:
  PolicyMaps(Fd endpoints, Fd ipcache, Fd generations, Fd ipcache_log, uint32_t log_capacity)
      : endpoints_(std::move(endpoints)),
        ipcache_(std::move(ipcache)),
        generations_(std::move(generations)),
        ipcache_log_(std::move(ipcache_log)),
        ipcache_log_capacity_(log_capacity) {}
  [[nodiscard]] Result<void> bump_generation(uint32_t slot) const;
  // Steps 2 and 3 of the ABI's protocol, after the trie write.
  [[nodiscard]] Result<void> log_ipcache_change(const ipcache_change& change) const;
  // Pops up to the log's capacity of changes, handing each to `use`.
  template <class Use>
  [[nodiscard]] Result<void> pop_ipcache_log(Use&& use) const;
  Fd endpoints_;
  Fd ipcache_;
  Fd generations_;  // -1 when absent
  Fd ipcache_log_;  // -1 when absent
  uint32_t ipcache_log_capacity_ = 0;
};

class PolicyMirror {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{20};

  PolicyMirror(PolicyMaps maps, policy::SnapshotStore& store)
      : maps_(std::move(maps)), store_(store) {}

  // Control thread. Reads what changed; publishes it. Returns whether it published.
  // On a read error nothing is published: the workers keep the last good tables (and the next
  // poll walks the trie, since popped log entries may be lost).
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
  // The ipcache read by a full walk (returned when its digest changed, else null) or by
  // applying the log to ipcache_ (returned when a change differs from it, else null).
  [[nodiscard]] Result<std::shared_ptr<const policy::IpCache>> walk_ipcache();
  [[nodiscard]] Result<std::shared_ptr<const policy::IpCache>> apply_ipcache_log();

  Digest endpoints_digest_;
  Digest ipcache_digest_;  // of the last walk; reset by a delta (the next walk then publishes)
  // The last ipcache this mirror published, which the log's deltas apply to; null until the
  // first walk, and after a failed pop of the log (so the next poll walks).
  std::shared_ptr<const policy::IpCache> ipcache_;
  std::optional<PolicyMaps::Generations> generations_seen_;  // empty until the first read
};

}  // namespace dnsproxy::datapath
