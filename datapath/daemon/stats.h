// The daemon's counters as one snapshot, collected on the control thread from the counter tables
// (common/counters.h) of every worker, its frame ledger and sockets, and dns_steer's map. The
// same snapshot feeds the log report (SIGUSR1, exit) and the machine-readable stats file
// (--stats-file, README "Stats file" for the schema); later Prometheus and the admin CLI.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/histogram.h"
#include "common/result.h"
#include "datapath/l3_guard.h"
#include "datapath/steer_maps.h"
#include "xsk/frame_pool.h"
#include "xsk/socket.h"

namespace dnsproxy::daemon {

using NamedCounters = std::vector<std::pair<std::string_view, uint64_t>>;

struct SocketSnapshot {
  std::string interface;
  uint32_t ifindex = 0;
  uint32_t queue = 0;
  bool zero_copy = false;
  std::string_view xdp_mode;  // how dns_steer is attached on the interface
  bool busy_poll = false;
  uint64_t rx_packets = 0;  // received on this socket (its interface and queue)
  uint64_t tx_packets = 0;  // queued for transmission on it
  xsk::Socket::KernelStats kernel;
};

struct WorkerSnapshot {
  unsigned cpu = 0;
  NamedCounters counters;  // the worker's counter table, in table order
  NamedCounters drops;     // the worker's drop reasons, then the handler's
  xsk::FrameCounts frames;
  std::vector<SocketSnapshot> sockets;
};

// What SIGHUP did so far.
struct ReloadState {
  uint64_t applied = 0;                     // reloads that read a valid configuration
  uint64_t failed = 0;                      // reloads refused (bad file): nothing changed
  std::vector<std::string> restart_needed;  // keys the last applied reload changed but cannot apply
};

// A LatencyHistogram's counts at one moment (common/histogram.h), named.
struct HistogramSnapshot {
  std::string_view name;  // snake_case, e.g. "mapping_to_ack"
  uint64_t count = 0;
  uint64_t sum_us = 0;
  std::array<uint64_t, LatencyHistogram::kBuckets> buckets{};  // per bucket, not cumulative
  [[nodiscard]] static HistogramSnapshot of(std::string_view name, const LatencyHistogram& h);
  void add(const LatencyHistogram& h);  // another thread's histogram of the same thing
  // The upper bound (us) of the bucket holding quantile q; UINT64_MAX past the last bound.
  [[nodiscard]] uint64_t quantile_us(double q) const noexcept {
    return bucket_quantile_us(buckets, q);
  }
};

// Policy mode: who plumbs, and the policy in force.
struct AgentSnapshot {
  std::string_view kind;  // "embedded", "grpc"
  std::string_view link;  // "up", "connecting", "down"
  uint64_t policy_version = 0;
  uint64_t policy_reloads_failed = 0;  // SIGHUPs whose policy file was refused
};

// Policy mode: where the policy in force came from.
struct PolicySnapshot {
  std::string_view source;  // "file"; with --agent "none" (yet), "persisted" or "agent"
  std::string version;      // the agent's version of it (system_version_info); a file's count
  uint64_t resources = 0;   // with --agent: the resources held
  std::string last_nack;    // with --agent: why the last refused update was refused ("": none)
};

struct Snapshot {
  // Final: the workers are joined, so the frame counts are consistent and the frame check is
  // meaningful (while they run, frames move between the reads).
  bool final = false;
  uint64_t sequence = 0;    // 1 for the first snapshot written, +1 for each after it
  std::string_view reason;  // why it was taken: "start", "interval", "signal" (SIGUSR1), "exit"
  std::string_view mode;    // "forward_all" or "policy"
  uint64_t uptime_ms = 0;
  std::vector<WorkerSnapshot> workers;
  // Policy mode: the control thread's pipeline counters (datapath/pipeline/coordinator.h).
  NamedCounters control;
  std::vector<HistogramSnapshot> histograms;
  std::optional<AgentSnapshot> agent;
  std::optional<PolicySnapshot> policy;
  std::optional<datapath::SteerCounters> dns_steer;   // absent if the map could not be read
  std::optional<datapath::L3GuardCounters> l3_guard;  // policy mode with l3_guard loaded
  bool frames_ok = true;                              // final only: every worker's check passed
  ReloadState reloads;
};

// Appends `counters` (a CounterSet) to `out` by name.
template <class Set>
void append_counters(const Set& counters, NamedCounters& out) {
  counters.for_each([&](std::string_view name, uint64_t value) { out.emplace_back(name, value); });
}

// The kernel's AF_XDP statistics (XDP_STATISTICS), named once for every output.
using KernelStatField = std::pair<std::string_view, uint64_t xsk::Socket::KernelStats::*>;
[[nodiscard]] std::span<const KernelStatField> kernel_stat_fields();

// Calls use(name, value) for every counter of a BPF program's counter array (SteerCounters,
// L3GuardCounters: each has `values` indexed by its stat enum and a static name(stat)).
template <class Stat, class Counters, class Use>
void for_each_bpf_counter(const Counters& counters, Use&& use) {
  for (size_t i = 0; i < counters.values.size(); ++i)
    use(Counters::name(static_cast<Stat>(i)), counters.values[i]);
}

[[nodiscard]] nlohmann::json to_json(const Snapshot& snapshot);
// The log report, one line per item.
[[nodiscard]] std::vector<std::string> report_lines(const Snapshot& snapshot);
// Writes `text` to `path` through `path.tmp` and a rename, so a reader sees the old file or the
// new one, never half of one. `durable`: fsync'd (the file, then its directory) before it
// returns, so a crash or power loss keeps the old file or the new one, too.
[[nodiscard]] Result<void> write_file_atomically(const std::string& path, std::string_view text,
                                                 bool durable = false);

}  // namespace dnsproxy::daemon
