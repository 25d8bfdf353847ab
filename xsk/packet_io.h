// xsk::XskPacketIo: the AF_XDP backend of the packet I/O seam (datapath/packet_io.h, where the
// frame ownership of each call is described). One Umem is shared by a worker's sockets, so
// forwarding between interfaces is a descriptor move, not a copy. service() also wakes a driver
// that asked for it (Socket::wake_rx) and tops each socket's fill ring up to its fair share of the
// UMEM (fill_share() below).
#pragma once

#include <poll.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/packet_io.h"
#include "xsk/socket.h"
#include "xsk/umem.h"

namespace dnsproxy::xsk {

// The frames each of `sockets` sockets on a UMEM of `frame_count` frames may hold in its fill
// and RX rings (before the ring-size cap): an equal share, so no socket starves the others.
[[nodiscard]] constexpr uint32_t fill_share(uint32_t frame_count, size_t sockets) noexcept {
  return sockets == 0 ? frame_count : static_cast<uint32_t>(frame_count / sockets);
}
// Fewer frames than this per socket leaves a queue without room for one RX batch.
inline constexpr uint32_t kMinFillShare = 64;

// AF_XDP backend: one Umem shared by a worker's sockets.
class XskPacketIo {
 public:
  // Takes the worker's Umem and binds one socket per entry on it, in order (port i =
  // sockets[i]). The Umem is created apart so its registration error stays distinguishable.
  [[nodiscard]] static Result<std::unique_ptr<XskPacketIo>> create(
      std::unique_ptr<Umem> umem, std::span<const SocketConfig> sockets);
  ~XskPacketIo();
  XskPacketIo(const XskPacketIo&) = delete;
  XskPacketIo& operator=(const XskPacketIo&) = delete;

  [[nodiscard]] size_t port_count() const noexcept { return sockets_.size(); }
  [[nodiscard]] Socket& socket(size_t port) noexcept { return *sockets_[port]; }
  [[nodiscard]] const Socket& socket(size_t port) const noexcept { return *sockets_[port]; }
  [[nodiscard]] datapath::PortInfo port_info(size_t port) const noexcept {
    return {sockets_[port]->ifindex(), sockets_[port]->queue()};
  }
  // The first port on interface `ifindex`, or -1: where a packet for that egress goes.
  [[nodiscard]] int port_for_ifindex(uint32_t ifindex) const noexcept;

  void service() noexcept;
  [[nodiscard]] uint32_t receive(size_t port, std::span<Packet> out) noexcept {
    const uint32_t n = sockets_[port]->receive(out);
    port_counters_[port].rx_packets.add(n);
    return n;
  }
  [[nodiscard]] uint32_t transmit(size_t port, std::span<const Packet> packets) noexcept {
    const uint32_t n = sockets_[port]->transmit(packets);
    port_counters_[port].tx_packets.add(n);
    return n;
  }
  // Packets received from and queued for transmission on one socket (its interface and queue),
  // written by the worker, read by the control thread.
  struct PortCounters {
    RelaxedCounter rx_packets;
    RelaxedCounter tx_packets;
  };
  [[nodiscard]] const PortCounters& port_counters(size_t port) const noexcept {
    return port_counters_[port];
  }
  void release(Packet packet) noexcept { umem_->pool().release(packet.addr, FramePlace::kWorker); }
  void park(Packet packet) noexcept {
    umem_->pool().move(packet.addr, FramePlace::kWorker, FramePlace::kParked);
  }
  void unpark(Packet packet) noexcept {
    umem_->pool().move(packet.addr, FramePlace::kParked, FramePlace::kWorker);
  }
  [[nodiscard]] std::span<std::byte> bytes(Packet packet) noexcept {
    return {umem_->data(packet.addr), packet.len};
  }
  void flush() noexcept;
  // Idle: poll() every socket for RX (which also wakes a driver that asked for it) and `wake_fd`
  // (when >= 0) up to timeout_ms, or with busy polling one non-blocking recvfrom per socket to
  // run its NAPI loop.
  void wait_for_packets(int timeout_ms, int wake_fd) noexcept;

  [[nodiscard]] uint64_t frames_in_worker() const noexcept {
    return umem_->pool().count(FramePlace::kWorker);
  }
  [[nodiscard]] uint64_t frames_parked() const noexcept {
    return umem_->pool().count(FramePlace::kParked);
  }
  [[nodiscard]] FrameCounts frame_counts() const noexcept { return umem_->pool().snapshot(); }

  // Teardown: reclaims completions until no TX is outstanding or `timeout_ms` passed. Returns
  // true when everything sent came back.
  bool drain_tx(int timeout_ms) noexcept;

 private:
  explicit XskPacketIo(std::unique_ptr<Umem> umem) : umem_(std::move(umem)) {}

  std::unique_ptr<Umem> umem_;
  std::vector<std::unique_ptr<Socket>> sockets_;   // destroyed before umem_ (see ~XskPacketIo)
  std::vector<pollfd> poll_fds_;                   // one per socket, then a slot for the wake fd
  std::unique_ptr<PortCounters[]> port_counters_;  // one per socket
  bool busy_poll_ = false;
};

static_assert(datapath::PacketIo<XskPacketIo>);

}  // namespace dnsproxy::xsk
