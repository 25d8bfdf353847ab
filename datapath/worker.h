// The worker: one thread, a group of (interface, queue) ports, run to completion.
//
//   loop: service (completions -> free, free -> fill) ; for each port: receive a batch, decide
//         each packet, transmit per egress port ; kick TX if the kernel asked ; idle -> wait
//
// Worker is a template over the packet I/O backend (xsk::PacketIo) and the per-packet decision
// (PacketHandler), both concrete on the hot path. No locks, no allocation, no exceptions after
// construction; the control thread sees the worker only through `stop` and the relaxed counters.
//
// Frame ownership inside an iteration: received packets are the worker's (kWorker) until each is
// either queued on an egress TX ring or released to the free list with a drop reason. When an
// iteration ends the worker holds no frame; any it still holds is counted as leaked.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "datapath/forward.h"
#include "xsk/frame_pool.h"
#include "xsk/packet_io.h"

namespace dnsproxy::datapath {

// Why a packet was not transmitted; one counter each. The first four mirror ForwardVerdict.
enum class DropReason : uint8_t {
  kNotForwarded,
  kTtlExceeded,
  kMalformed,
  kShortDns,
  kNoEgressPort,  // the egress interface has no socket in this worker
  kTxRingFull,    // the egress TX ring had no room
};
inline constexpr size_t kDropReasonCount = 6;
[[nodiscard]] const char* drop_reason_name(DropReason reason) noexcept;

// What the handler decided for one packet.
struct Verdict {
  bool transmit = false;
  uint32_t egress_ifindex = 0;  // when transmit
  DropReason drop{};            // when !transmit

  static constexpr Verdict forward_to(uint32_t ifindex) noexcept {
    return Verdict{true, ifindex, {}};
  }
  static constexpr Verdict dropped(DropReason reason) noexcept { return Verdict{false, 0, reason}; }
};

// The per-packet decision step: the only place that looks into the packet. Forward-all today;
// the policy pipeline (later issue) is another type with the same member.
template <class H>
concept PacketHandler = requires(H handler, std::span<std::byte> packet) {
  { handler.decide(packet) }
  noexcept->std::same_as<Verdict>;
};

// Forwards every DNS packet dns_steer redirected, to the next hop from its XDP metadata.
struct ForwardAllHandler {
  [[nodiscard]] Verdict decide(std::span<std::byte> packet) noexcept {
    const dns_steer_meta meta = load_steer_meta(packet.data());
    const ForwardVerdict verdict = rewrite_for_forwarding(packet, meta);
    if (verdict == ForwardVerdict::kForward) return Verdict::forward_to(meta.egress_ifindex);
    return Verdict::dropped(static_cast<DropReason>(static_cast<uint8_t>(verdict) - 1));
  }
};
static_assert(static_cast<uint8_t>(ForwardVerdict::kShortDns) - 1 ==
              static_cast<uint8_t>(DropReason::kShortDns));

struct WorkerCounters {
  xsk::RelaxedCounter rx_packets;
  xsk::RelaxedCounter tx_packets;
  std::array<xsk::RelaxedCounter, kDropReasonCount> drops;
  // Frames still in the worker's hands when the last iteration ended. Such a frame was dropped on
  // the floor (nobody holds its address any more), so it stays there: the value is the number of
  // frames leaked so far, and anything but 0 is a bug.
  xsk::RelaxedCounter leaked_frames;
  xsk::RelaxedCounter idle_waits;

  [[nodiscard]] uint64_t drop(DropReason reason) const noexcept {
    return drops[static_cast<size_t>(reason)].get();
  }
};

struct WorkerConfig {
  uint32_t batch_size = 64;
  int idle_timeout_ms = 100;  // poll() timeout when idle: bounds how long a stop request waits
};

template <xsk::PacketIo Io, PacketHandler Handler>
class Worker {
 public:
  // Allocates the per-port TX batches (cold path). io, handler and counters outlive the worker.
  Worker(Io& io, Handler& handler, WorkerCounters& counters, WorkerConfig config)
      : io_(io),
        handler_(handler),
        counters_(counters),
        config_(config),
        rx_(config.batch_size),
        tx_(io.port_count(), std::vector<xsk::Packet>(config.batch_size)),
        tx_count_(io.port_count(), 0) {}

  // Runs until `stop` becomes true.
  void run(const std::atomic<bool>& stop) noexcept {
    while (!stop.load(std::memory_order_relaxed)) {
      if (run_once() == 0) {
        counters_.idle_waits.add(1);
        io_.wait_for_packets(config_.idle_timeout_ms);
      }
    }
  }

  // One iteration; returns the number of packets received.
  uint32_t run_once() noexcept {
    io_.service();
    uint32_t received = 0;
    for (size_t port = 0; port < io_.port_count(); ++port) {
      const uint32_t n = io_.receive(port, rx_);
      received += n;
      for (uint32_t i = 0; i < n; ++i) handle(rx_[i]);
      transmit_batches();
    }
    io_.flush();
    counters_.rx_packets.add(received);
    counters_.leaked_frames.set(io_.frames_in_worker());
    return received;
  }

 private:
  void handle(xsk::Packet packet) noexcept {
    const Verdict verdict = handler_.decide(io_.bytes(packet));
    if (!verdict.transmit) return drop(packet, verdict.drop);
    const int port = io_.port_for_ifindex(verdict.egress_ifindex);
    if (port < 0) return drop(packet, DropReason::kNoEgressPort);
    // At most one RX batch is pending per port (transmit_batches runs after each), so it fits.
    tx_[static_cast<size_t>(port)][tx_count_[static_cast<size_t>(port)]++] = packet;
  }

  void transmit_batches() noexcept {
    for (size_t port = 0; port < tx_.size(); ++port) {
      const uint32_t pending = tx_count_[port];
      if (pending == 0) continue;
      const std::span<const xsk::Packet> batch(tx_[port].data(), pending);
      const uint32_t sent = io_.transmit(port, batch);
      counters_.tx_packets.add(sent);
      for (uint32_t i = sent; i < pending; ++i) drop(batch[i], DropReason::kTxRingFull);
      tx_count_[port] = 0;
    }
  }

  void drop(xsk::Packet packet, DropReason reason) noexcept {
    counters_.drops[static_cast<size_t>(reason)].add(1);
    io_.release(packet);
  }

  Io& io_;
  Handler& handler_;
  WorkerCounters& counters_;
  WorkerConfig config_;
  std::vector<xsk::Packet> rx_;
  std::vector<std::vector<xsk::Packet>> tx_;  // per egress port, batch_size each
  std::vector<uint32_t> tx_count_;
};

// Pins the calling thread to one CPU (cold path, at worker start).
[[nodiscard]] Result<void> pin_current_thread(unsigned cpu);

}  // namespace dnsproxy::datapath
