// The worker: one thread, a group of (interface, queue) ports, run to completion.
//
//   loop: service (completions -> free, free -> fill) ; begin_batch ; sweep(now) ;
//         parked frames the handler hands back ; for each port: receive a batch, decide each
//         packet, transmit per egress port ; kick TX ; end_batch ; idle -> offline, wait, online
//
// Worker is a template over the packet I/O backend (PacketIo), the per-packet decision
// (PacketHandler) and the node's stack (KernelPath), all concrete on the hot path. No locks, no
// allocation, no exceptions after construction; the control thread sees the worker only through
// `stop` and the relaxed counters.
//
// Frame ownership inside an iteration: received packets are the worker's (kWorker) until each is
// queued on a TX ring, copied into the node's stack and released, released to the free list with
// a drop reason, or parked (kParked: the handler's, until it hands the frame back through
// take_released, which puts it in the worker's hands again). When an iteration ends the worker
// holds no frame; any it still holds is counted as leaked.
#pragma once

#include <time.h>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/forward.h"
#include "datapath/packet_io.h"

namespace dnsproxy::datapath {

// What the handler decided for one packet. `Drop` is the handler's own drop-reason counter enum
// (common/counters.h): each handler defines the reasons it drops for, the worker counts them.
enum class VerdictKind : uint8_t {
  kForward,   // transmit on the port of egress_ifindex (the handler rewrote the packet for it)
  kReply,     // transmit out of the ingress port (the handler rewrote the packet in place)
  kToKernel,  // hand the IP packet (from l3_offset) to the node's stack, then free the frame
  kDrop,      // free the frame, count `drop`
  kPark,      // the handler keeps the frame past this batch (only from decide())
};

template <CounterEnum Drop>
struct Verdict {
  VerdictKind kind = VerdictKind::kDrop;
  Drop drop{};                  // kDrop
  uint16_t l3_offset = 0;       // kToKernel: bytes from the packet start to the IP header
  uint32_t egress_ifindex = 0;  // kForward
  // kForward, kReply: the packet's new length when the handler shortened it in place (an answer
  // cut after the question); 0 keeps the received length. Never longer than received.
  uint32_t length = 0;

  static constexpr Verdict forward(uint32_t ifindex, uint32_t new_length = 0) noexcept {
    return {VerdictKind::kForward, {}, 0, ifindex, new_length};
  }
  static constexpr Verdict reply(uint32_t new_length = 0) noexcept {
    return {VerdictKind::kReply, {}, 0, 0, new_length};
  }
  static constexpr Verdict to_kernel(uint16_t l3_offset) noexcept {
    return {VerdictKind::kToKernel, {}, l3_offset, 0, 0};
  }
  static constexpr Verdict dropped(Drop reason) noexcept {
    return {VerdictKind::kDrop, reason, 0, 0, 0};
  }
  static constexpr Verdict park() noexcept { return {VerdictKind::kPark, {}, 0, 0, 0}; }
};

// One received packet as the handler sees it. `frame` and `port` are what a handler keeps when it
// parks the packet, to hand it back later.
struct RxPacket {
  Packet frame;
  std::span<std::byte> bytes;  // the Ethernet frame, writable in place (XDP metadata in front)
  uint32_t port = 0;           // the worker's port index it came in on
  PortInfo ingress;            // that port's interface and queue
  uint64_t now_ns = 0;         // CLOCK_MONOTONIC at the start of this iteration
};

// A parked frame the handler hands back, with what to do with it now (not kPark).
template <CounterEnum Drop>
struct Released {
  Packet frame;
  uint32_t port = 0;  // its ingress port (where kReply sends it)
  Verdict<Drop> verdict;
};

// The per-packet decision step: the only place that looks into the packet.
//   decide(rx)          one verdict per received packet
//   begin_batch()       before the iteration's first decision (QSBR: read the current snapshot)
//   end_batch()         after its last (QSBR: quiescent point, no snapshot pointer kept)
//   offline()/online()  around the idle wait and at thread exit / start (QSBR: not blocking a
//                       grace period while asleep)
//   sweep(now_ns)       once per iteration, before the releases: time out parked frames
//   take_released(out)  parked frames to hand back this iteration (at most out.size(); the rest
//                       next time); each leaves kParked for the worker's hands
//   wake_fd()           an fd that becomes readable when the handler has frames to release, so
//                       an idle worker wakes for them (-1: none)
template <class H>
concept PacketHandler = CounterEnum<typename H::DropReason> &&
    requires(H handler, const H chandler, const RxPacket& rx,
             std::span<Released<typename H::DropReason>> out, uint64_t now_ns) {
  { handler.decide(rx) }
  noexcept->std::same_as<Verdict<typename H::DropReason>>;
  { handler.begin_batch() }
  noexcept;
  { handler.end_batch() }
  noexcept;
  { handler.offline() }
  noexcept;
  { handler.online() }
  noexcept;
  { handler.sweep(now_ns) }
  noexcept;
  { handler.take_released(out) }
  noexcept->std::same_as<uint32_t>;
  { chandler.wake_fd() }
  noexcept->std::same_as<int>;
};

// The hooks of a handler that never parks and reads no shared snapshot.
template <CounterEnum Drop>
struct StatelessHandler {
  using DropReason = Drop;
  void begin_batch() noexcept {}
  void end_batch() noexcept {}
  void offline() noexcept {}
  void online() noexcept {}
  void sweep(uint64_t) noexcept {}
  [[nodiscard]] uint32_t take_released(std::span<Released<Drop>>) noexcept { return 0; }
  [[nodiscard]] int wake_fd() const noexcept { return -1; }
};

// Why ForwardAllHandler drops: the ForwardVerdicts that send nothing.
enum class ForwardDrop : uint8_t { kNotForwarded, kTtlExceeded, kMalformed, kShortDns, kCount };
constexpr std::array<std::string_view, 4> counter_names(ForwardDrop) {
  return {"not_forwarded", "ttl_exceeded", "malformed", "short_dns"};
}

// Forwards every DNS packet dns_steer redirected, to the next hop from its XDP metadata; one whose
// next hop has no neighbour entry yet goes to the node's stack, which resolves it.
struct ForwardAllHandler : StatelessHandler<ForwardDrop> {
  using V = Verdict<ForwardDrop>;
  [[nodiscard]] V decide(const RxPacket& rx) noexcept {
    const dns_steer_meta meta = load_steer_meta(rx.bytes.data());
    switch (rewrite_for_forwarding(rx.bytes, meta)) {
      case ForwardVerdict::kForward:
        return V::forward(meta.egress_ifindex);
      case ForwardVerdict::kToKernel:
        return V::to_kernel(meta.l3_offset);
      case ForwardVerdict::kNotForwarded:
        return V::dropped(ForwardDrop::kNotForwarded);
      case ForwardVerdict::kTtlExceeded:
        return V::dropped(ForwardDrop::kTtlExceeded);
      case ForwardVerdict::kMalformed:
        return V::dropped(ForwardDrop::kMalformed);
      case ForwardVerdict::kShortDns:
        break;
    }
    return V::dropped(ForwardDrop::kShortDns);
  }
};
static_assert(PacketHandler<ForwardAllHandler>);

// The worker's own counters. Verdict counters count decisions (a forward still meets a full TX
// ring: that is a drop as well); tx_packets counts what a TX ring accepted.
enum class WorkerCounter : uint8_t {
  kRxPackets,
  kTxPackets,     // forwards and replies a TX ring accepted
  kForwarded,     // forward verdicts (from decide and from releases)
  kReplied,       // reply verdicts
  kToKernel,      // packets the node's stack took
  kParked,        // park verdicts
  kReleased,      // parked frames handed back
  kIterations,    // loop iterations: the watchdog's sign of progress (an idle worker still loops)
  kIdleWaits,     // iterations with nothing to do that waited for packets
  kLeakedFrames,  // gauge: frames in the worker's hands when the last iteration ended (a bug if >0:
                  // nobody holds their address any more, so it is the number leaked so far)
  kCount,
};
constexpr std::array<std::string_view, 10> counter_names(WorkerCounter) {
  return {"rx_packets", "tx_packets", "forwarded",  "replied",    "to_kernel",
          "parked",     "released",   "iterations", "idle_waits", "leaked_frames"};
}

// Why the worker itself dropped a packet the handler wanted sent.
enum class WorkerDrop : uint8_t {
  kNoEgressPort,    // the egress interface has no port in this worker
  kTxRingFull,      // the egress TX ring had no room
  kToKernelFailed,  // the node's stack refused it (or the IP header was not inside the packet)
  kInvalidRelease,  // the handler handed a parked frame back with a park verdict
  kInvalidLength,   // a forward or reply verdict's length was longer than the packet
  kCount,
};
constexpr std::array<std::string_view, 5> counter_names(WorkerDrop) {
  return {"no_egress_port", "tx_ring_full", "to_kernel_failed", "invalid_release",
          "invalid_length"};
}

template <CounterEnum HandlerDrop>
struct WorkerCounters {
  CounterSet<WorkerCounter> packets;
  CounterSet<WorkerDrop> worker_drops;
  CounterSet<HandlerDrop> handler_drops;

  [[nodiscard]] uint64_t get(WorkerCounter c) const noexcept { return packets.get(c); }
  [[nodiscard]] uint64_t drop(WorkerDrop reason) const noexcept { return worker_drops.get(reason); }
  [[nodiscard]] uint64_t drop(HandlerDrop reason) const noexcept {
    return handler_drops.get(reason);
  }
  // f(name, value) for every drop reason: the worker's, then the handler's (names are distinct).
  template <class F>
  void for_each_drop(F&& f) const {
    worker_drops.for_each(f);
    handler_drops.for_each(f);
  }
};

struct WorkerConfig {
  uint32_t batch_size = 64;
  int idle_timeout_ms = 100;  // idle wait timeout: bounds how long a stop request waits
};

template <PacketIo Io, PacketHandler Handler, KernelPath Kernel>
class Worker {
 public:
  using Drop = typename Handler::DropReason;
  using Counters = WorkerCounters<Drop>;

  // Allocates the per-port TX batches (cold path). Everything passed in outlives the worker.
  Worker(Io& io, Handler& handler, Kernel& kernel, Counters& counters, WorkerConfig config)
      : io_(io),
        handler_(handler),
        kernel_(kernel),
        counters_(counters),
        config_(config),
        rx_(config.batch_size),
        released_(config.batch_size),
        tx_(io.port_count(), std::vector<Packet>(config.batch_size)),
        tx_count_(io.port_count(), 0) {}

  // Runs until `stop` becomes true. The handler is online while the loop runs, offline after.
  void run(const std::atomic<bool>& stop) noexcept {
    handler_.online();
    while (!stop.load(std::memory_order_relaxed)) {
      if (run_once() == 0) {
        counters_.packets.add(WorkerCounter::kIdleWaits);
        handler_.offline();
        io_.wait_for_packets(config_.idle_timeout_ms, handler_.wake_fd());
        handler_.online();
      }
    }
    handler_.offline();
  }

  // One iteration; returns the number of packets handled (received plus released from parking).
  uint32_t run_once() noexcept {
    io_.service();
    const uint64_t now = monotonic_ns();
    handler_.begin_batch();
    handler_.sweep(now);
    const uint32_t released = release_parked();
    uint32_t received = 0;
    for (size_t port = 0; port < io_.port_count(); ++port) {
      const uint32_t n = io_.receive(port, rx_);
      received += n;
      const PortInfo ingress = io_.port_info(port);
      for (uint32_t i = 0; i < n; ++i) {
        const RxPacket rx{rx_[i], io_.bytes(rx_[i]), static_cast<uint32_t>(port), ingress, now};
        apply(rx.frame, rx.port, handler_.decide(rx));
      }
      transmit_batches();
    }
    io_.flush();
    handler_.end_batch();
    counters_.packets.add(WorkerCounter::kRxPackets, received);
    counters_.packets.add(WorkerCounter::kIterations);
    counters_.packets.set(WorkerCounter::kLeakedFrames, io_.frames_in_worker());
    return received + released;
  }

 private:
  [[nodiscard]] static uint64_t monotonic_ns() noexcept {
    timespec ts{};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  }

  // At most one batch of releases per iteration, so the TX batches below fit.
  uint32_t release_parked() noexcept {
    const uint32_t n = handler_.take_released(released_);
    for (uint32_t i = 0; i < n; ++i) {
      const Released<Drop>& r = released_[i];
      io_.unpark(r.frame);
      counters_.packets.add(WorkerCounter::kReleased);
      if (r.verdict.kind == VerdictKind::kPark) {
        drop(r.frame, WorkerDrop::kInvalidRelease);
        continue;
      }
      apply(r.frame, r.port, r.verdict);
    }
    if (n > 0) transmit_batches();
    return n;
  }

  void apply(Packet frame, uint32_t port, const Verdict<Drop>& verdict) noexcept {
    if (verdict.length != 0 &&
        (verdict.kind == VerdictKind::kForward || verdict.kind == VerdictKind::kReply)) {
      if (verdict.length > frame.len) return drop(frame, WorkerDrop::kInvalidLength);
      frame.len = verdict.length;
    }
    switch (verdict.kind) {
      case VerdictKind::kForward: {
        counters_.packets.add(WorkerCounter::kForwarded);
        const int egress = io_.port_for_ifindex(verdict.egress_ifindex);
        if (egress < 0) return drop(frame, WorkerDrop::kNoEgressPort);
        return queue_tx(static_cast<size_t>(egress), frame);
      }
      case VerdictKind::kReply:
        counters_.packets.add(WorkerCounter::kReplied);
        return queue_tx(port, frame);
      case VerdictKind::kToKernel:
        return to_kernel(frame, verdict.l3_offset);
      case VerdictKind::kDrop:
        counters_.handler_drops.add(verdict.drop);
        return io_.release(frame);
      case VerdictKind::kPark:
        counters_.packets.add(WorkerCounter::kParked);
        return io_.park(frame);
    }
  }

  // At most one batch (received or released) is pending before transmit_batches runs, so it fits.
  void queue_tx(size_t port, Packet frame) noexcept { tx_[port][tx_count_[port]++] = frame; }

  // The node's stack copies the packet; the frame goes back to the free list either way.
  void to_kernel(Packet frame, uint16_t l3_offset) noexcept {
    const std::span<std::byte> bytes = io_.bytes(frame);
    if (l3_offset >= bytes.size() || !kernel_.send(bytes.subspan(l3_offset)))
      return drop(frame, WorkerDrop::kToKernelFailed);
    counters_.packets.add(WorkerCounter::kToKernel);
    io_.release(frame);
  }

  void transmit_batches() noexcept {
    for (size_t port = 0; port < tx_.size(); ++port) {
      const uint32_t pending = tx_count_[port];
      if (pending == 0) continue;
      const std::span<const Packet> batch(tx_[port].data(), pending);
      const uint32_t sent = io_.transmit(port, batch);
      counters_.packets.add(WorkerCounter::kTxPackets, sent);
      for (uint32_t i = sent; i < pending; ++i) drop(batch[i], WorkerDrop::kTxRingFull);
      tx_count_[port] = 0;
    }
  }

  void drop(Packet frame, WorkerDrop reason) noexcept {
    counters_.worker_drops.add(reason);
    io_.release(frame);
  }

  Io& io_;
  Handler& handler_;
  Kernel& kernel_;
  Counters& counters_;
  WorkerConfig config_;
  std::vector<Packet> rx_;
  std::vector<Released<Drop>> released_;
  std::vector<std::vector<Packet>> tx_;  // per egress port, batch_size each
  std::vector<uint32_t> tx_count_;
};

// Pins the calling thread to one CPU (cold path, at worker start).
[[nodiscard]] Result<void> pin_current_thread(unsigned cpu);

}  // namespace dnsproxy::datapath
