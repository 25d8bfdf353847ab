// dnsproxy-loadgen's engine: DNS queries out of AF_XDP sockets on one interface, answers back
// through its own XDP program (datapath/bpf/loadgen_rx.bpf.c), matched by (source port, ID).
//
// Two modes. Closed loop (rate 0): keep `max_outstanding` queries in flight, as dnsperf -q does;
// what it completes per second is the path's capacity. Open loop (rate > 0): query i is due at
// start + i / rate whatever the answers do, so a slow path shows as latency and loss, not as a
// lower offered rate; when the generator itself cannot keep the schedule (TX ring full, no free
// frame, CPU) the result says so (`rate_reached` false).
//
// Matching: the n-th query gets slot n mod (ports * ids): source port first_port + slot % ports,
// DNS ID slot / ports. A slot is free, in flight (with its send time) or timed out; an answer to
// an in-flight slot completes it, to a timed-out slot it counts as late (timed_out), to anything
// else as unmatched. Queries still unanswered at the end are lost.
//
// Frames: one UMEM, shared by one socket per receive queue; a query frame goes free -> worker
// (built) -> TX -> completion -> free, an answer fill -> RX -> worker (read) -> free. With
// --tx xdp the queries are built in frames of the kernel's (xdp_program.h), none of the UMEM's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "tools/loadgen/histogram.h"
#include "tools/loadgen/next_hop.h"

namespace dnsproxy::loadgen {

// How queries leave: the AF_XDP sockets' TX rings, or XDP frames the kernel builds
// (xdp_program.h).
enum class TxPath { kAfXdp, kXdp };

struct Config {
  std::string interface;
  IpAddress server;
  uint16_t port = 53;
  std::vector<std::vector<uint8_t>> queries;  // DNS messages (ID patched per packet)
  double seconds = 10;
  double rate = 0;                 // queries per second; 0: closed loop
  uint32_t max_outstanding = 100;  // closed loop only
  double timeout_seconds = 1;
  uint32_t queues = 0;       // sockets (receive queues) to use; 0: every RX queue of the interface
  bool generic_xdp = false;  // attach in SKB mode instead of native
  TxPath tx = TxPath::kAfXdp;
  bool threaded_napi = false;  // receive NAPI in a kernel thread while running (napi.h)
};

inline constexpr uint16_t kFirstPort = 32768;
inline constexpr uint32_t kPorts = 1024;
inline constexpr uint32_t kIdsPerPort = 1024;

struct Report {
  uint64_t sent = 0, completed = 0, lost = 0, timed_out = 0, unmatched = 0;
  uint64_t send_stalls = 0;         // batches the TX ring or the frame pool could not take whole
  uint64_t xdp_build_failures = 0;  // --tx xdp: queries the program could not build (lost)
  uint64_t xdp_run_errors = 0;      // --tx xdp: test_run calls the kernel refused
  double elapsed_seconds = 0;       // the sending phase
  double offered_rate = 0;          // the configured rate (0: closed loop)
  bool rate_reached = true;         // open loop: sent >= 99 % of rate * seconds
  bool interrupted = false;         // stopped early by SIGINT / SIGTERM
  std::array<uint64_t, 16> rcodes{};
  LatencyHistogram latency;
  std::string setup;  // what was set up: queues, modes, addresses (for the text report)
};

// Runs one measurement; `stop` (set from a signal handler) ends the sending phase early.
[[nodiscard]] Result<Report> run(const Config& config, const std::atomic<bool>& stop);

[[nodiscard]] std::string text_report(const Report& report);
[[nodiscard]] std::string json_report(const Report& report);

}  // namespace dnsproxy::loadgen
