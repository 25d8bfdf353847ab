// The control-thread side of the pipeline: from the workers' mapping notices to plumbing batches
// for the agent, and from the agent's batch ACKs back to the workers' parked frames.
//
//   notice (worker w, ticket t, endpoint, name, IP, TTL)
//     -> FqdnCache::learn; the (endpoint, name) goes into the open batch (coalesced: one entry
//        per (endpoint, name), its IPs merged, the latest expiry kept)
//     -> if the (endpoint, IP) is not plumbed: ticket (w, t) waits for it. An (endpoint, IP) is
//        sent once: a later ticket waits for the batch already carrying it.
//     -> the ticket's last notice: a ticket that waits for nothing is ACKed at once.
//   cut(now): the open batch goes to the agent when it holds batch_max addresses or its
//     batch_delay passed since its first notice (short: a batch trades a little latency for fewer
//     agent round trips under load).
//   batch ACK (id): every (endpoint, IP) it carried is marked plumbed, the PlumbedSet is
//     republished into the SnapshotStore (so the next response for those names is released at
//     once), and every ticket now waiting for nothing becomes a TicketAck for its worker.
//   expire(now): mappings past their TTL leave the cache (republished), and tickets and pending
//     addresses older than stale_after are forgotten (their frames were released at the max
//     delay long ago; a batch the agent never answered).
//
// Pure: no syscalls, no clocks (time is a parameter), unit-tested as data. Control thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/counters.h"
#include "common/histogram.h"
#include "datapath/pipeline/channel.h"
#include "policy/fqdn_cache.h"
#include "policy/snapshot.h"

namespace dnsproxy::datapath::pipeline {

using Clock = policy::Clock;

struct CoordinatorConfig {
  size_t batch_max = 256;                       // addresses per batch (--plumb-batch-max)
  std::chrono::microseconds batch_delay{0};     // how long the first notice of a batch waits
  std::chrono::milliseconds stale_after{5000};  // forget tickets / sends older than this
  policy::FqdnCacheLimits cache;  // at start; set_cache_limits() replaces them (the cache's own)
};

// One address of a name in a batch, plumbed until `expires` (the agent adds its grace period).
struct PlumbAddress {
  policy::IpAddress ip;
  Clock::time_point expires;
};

struct PlumbName {
  uint32_t endpoint_id = 0;
  std::string name;  // lowercased wire form
  std::vector<PlumbAddress> addresses;
};

struct PlumbBatch {
  uint64_t id = 0;
  std::vector<PlumbName> names;
  [[nodiscard]] size_t address_count() const noexcept;
};

enum class CoordinatorCounter : uint8_t {
  kNotices,           // mapping notices drained from the workers
  kNoticesPlumbed,    // ... whose (endpoint, IP) was plumbed already (a stale worker snapshot)
  kBatchesSent,       // batches cut for the agent
  kBatchAddresses,    // addresses in them
  kBatchesAcked,      // batch ACKs from the agent
  kBatchesFailed,     // batches the agent refused or lost
  kUnknownBatchAck,   // an ACK for no batch in flight
  kTicketsAcked,      // ACKs fanned out to parked frames
  kTicketsStale,      // tickets forgotten after stale_after
  kAckRingFull,       // an ACK that waited for room in a worker's ACK ring (retried)
  kRepublished,       // PlumbedSet publications
  kFqdnMappings,      // a gauge: the (endpoint, name, IP) mappings in the cache now (set on
                      // every learn and expiry; readable from any thread, unlike the cache)
  kInheritedPlumbed,  // pairs taken over at start from the allow map an agent kept
  kCount,
};

constexpr std::array<std::string_view, 13> counter_names(CoordinatorCounter) {
  return {"notices",          "notices_plumbed", "batches_sent",      "batch_addresses",
          "batches_acked",    "batches_failed",  "unknown_batch_ack", "tickets_acked",
          "tickets_stale",    "ack_ring_full",   "republished",       "fqdn_mappings",
          "inherited_plumbed"};
}

class Coordinator {
 public:
  Coordinator(CoordinatorConfig config, policy::SnapshotStore& store, size_t workers);

  // A notice from worker `worker` (drained from its Channel::notices).
  void on_notice(size_t worker, const MappingNotice& notice, Clock::time_point now);
  // Drains one worker's ring; returns how many notices it took.
  size_t drain(size_t worker, SpscRing<MappingNotice>& ring, Clock::time_point now);

  // The open batch, when it is due at `now` (or at all, with `force`).
  [[nodiscard]] std::optional<PlumbBatch> cut(Clock::time_point now, bool force = false);
  // When the open batch falls due; nullopt when none is open.
  [[nodiscard]] std::optional<Clock::time_point> next_deadline() const noexcept;

  void on_batch_acked(uint64_t batch_id, Clock::time_point now);
  // The agent could not plumb the batch: its tickets are left to the worker's max delay.
  void on_batch_failed(uint64_t batch_id);
  void expire(Clock::time_point now);
  // The FQDN cache's bounds from an agent's policy (FqdnCache::set_limits); what they evict
  // leaves the published PlumbedSet.
  void set_cache_limits(const policy::FqdnCacheLimits& limits);
  // The pairs an agent had plumbed before this process started (its pinned allow map), those
  // still valid at `now`: released at once until their time (FqdnCache::inherit_plumbed).
  // Returns how many were taken; publishes them.
  size_t inherit_plumbed(std::span<const policy::PlumbedSet::Change> pairs, Clock::time_point now);

  // Hands worker `worker`'s pending ACKs to `push(TicketAck) -> bool` until it refuses (a full
  // ring: the rest stay for the next call). Returns how many it took.
  template <class Push>
  size_t deliver_acks(size_t worker, Push&& push) {
    std::deque<uint32_t>& pending = acks_[worker];
    size_t n = 0;
    while (!pending.empty()) {
      if (!push(TicketAck{pending.front()})) {
        counters_.add(CoordinatorCounter::kAckRingFull);
        break;
      }
      pending.pop_front();
      ++n;
    }
    return n;
  }
  [[nodiscard]] size_t pending_acks(size_t worker) const noexcept { return acks_[worker].size(); }

  [[nodiscard]] const CounterSet<CoordinatorCounter>& counters() const noexcept {
    return counters_;
  }
  [[nodiscard]] const policy::FqdnCache& cache() const noexcept { return cache_; }
  // Per plumbed (endpoint, IP): from its first notice reaching the control thread to the ACK of
  // the batch that carried it (the batch delay, the agent's work and its round trip).
  [[nodiscard]] const LatencyHistogram& mapping_to_ack() const noexcept { return mapping_to_ack_; }
  [[nodiscard]] size_t tickets_waiting() const noexcept { return tickets_.size(); }
  [[nodiscard]] size_t batches_in_flight() const noexcept { return in_flight_.size(); }

 private:
  using TicketKey = std::pair<size_t, uint32_t>;  // (worker, ticket)
  using PairKey = std::pair<uint32_t, policy::IpAddress>;
  struct Ticket {
    size_t waiting_for = 0;  // (endpoint, IP) pairs not plumbed yet
    bool complete = false;   // its last notice arrived
    Clock::time_point since;
  };
  struct Pending {  // an (endpoint, IP) sent (or about to be) and not ACKed yet
    uint64_t batch_id = 0;
    Clock::time_point since;
    std::vector<TicketKey> tickets;
  };
  struct OpenBatch {
    uint64_t id = 0;
    Clock::time_point deadline;
    size_t addresses = 0;
    std::map<std::pair<uint32_t, std::string>, std::vector<PlumbAddress>> names;
  };

  void resolve(const TicketKey& key);  // one pair of the ticket got plumbed
  void republish_if_changed();         // also refreshes the kFqdnMappings gauge

  CoordinatorConfig config_;
  policy::SnapshotStore& store_;
  policy::FqdnCache cache_;
  uint64_t next_batch_id_ = 1;
  std::optional<OpenBatch> open_;
  struct InFlight {
    Clock::time_point since;
    std::vector<PairKey> resolves;  // the pairs whose pending entry this batch carries
  };
  std::map<uint64_t, InFlight> in_flight_;
  std::map<PairKey, Pending> pending_;
  std::map<TicketKey, Ticket> tickets_;
  std::vector<std::deque<uint32_t>> acks_;  // per worker
  CounterSet<CoordinatorCounter> counters_;
  LatencyHistogram mapping_to_ack_;
};

}  // namespace dnsproxy::datapath::pipeline
