// The packet I/O seam between the worker (datapath/worker.h) and a backend. The worker is a
// template over these concepts, so the hot path calls concrete types with no virtual dispatch.
// xsk::XskPacketIo (AF_XDP) implements PacketIo; a DPDK backend would implement the same members.
//
// A backend exposes numbered ports (for AF_XDP: one socket per interface and queue) sharing one
// frame pool, and keeps the frame ledger (where every frame is). Frame ownership across a worker
// iteration:
//   service()   completed TX frames -> free; free -> each port's receive side (its fair share)
//   receive()   kernel/device -> worker (the packets returned are the caller's until handed on)
//   transmit()  worker -> TX for the packets accepted; the rest stay the caller's
//   release()   worker -> free (a dropped packet, or one whose bytes were copied elsewhere)
//   park()      worker -> parked (the handler keeps the frame past this iteration)
//   unpark()    parked -> worker (the handler hands a parked frame back)
// At the end of an iteration the worker holds nothing: frames_in_worker() must be 0.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace dnsproxy::datapath {

// A frame handle as the worker sees it: a backend address (for AF_XDP the UMEM offset of the
// Ethernet header) and the packet length. Plain data: a handler may store it while parked.
struct Packet {
  uint64_t addr = 0;
  uint32_t len = 0;
};

// Where a port receives: for the handler (which interface and queue a packet came in on).
struct PortInfo {
  uint32_t ifindex = 0;
  uint32_t queue = 0;
};

template <class Io>
concept PacketIo = requires(Io io, const Io cio, size_t port, std::span<Packet> rx,
                            std::span<const Packet> tx, Packet packet, uint32_t ifindex,
                            int timeout_ms, int wake_fd) {
  { cio.port_count() }
  noexcept->std::same_as<size_t>;
  { cio.port_info(port) }
  noexcept->std::same_as<PortInfo>;
  // The first port on interface `ifindex`, or -1: where a packet for that egress goes.
  { cio.port_for_ifindex(ifindex) }
  noexcept->std::same_as<int>;
  { io.service() }
  noexcept;
  { io.receive(port, rx) }
  noexcept->std::same_as<uint32_t>;
  { io.transmit(port, tx) }
  noexcept->std::same_as<uint32_t>;
  { io.release(packet) }
  noexcept;
  { io.park(packet) }
  noexcept;
  { io.unpark(packet) }
  noexcept;
  { io.bytes(packet) }
  noexcept->std::same_as<std::span<std::byte>>;
  // Kicks the kernel/device to send what transmit() queued.
  { io.flush() }
  noexcept;
  // Idle: blocks up to timeout_ms until a port has packets or `wake_fd` (when >= 0) is readable.
  { io.wait_for_packets(timeout_ms, wake_fd) }
  noexcept;
  { cio.frames_in_worker() }
  noexcept->std::same_as<uint64_t>;
  { cio.frames_parked() }
  noexcept->std::same_as<uint64_t>;
};

// The node's own network stack, for packets the handler gives up on forwarding itself (e.g. the
// FIB's next-hop neighbour is unresolved: the kernel resolves it and queues the packet). send()
// takes the IP packet (from its IP header on); the bytes are copied, so the caller releases the
// frame afterwards. False when the kernel refused it (counted by the worker).
template <class K>
concept KernelPath = requires(K kernel, std::span<const std::byte> ip_packet) {
  { kernel.send(ip_packet) }
  noexcept->std::same_as<bool>;
};

}  // namespace dnsproxy::datapath
