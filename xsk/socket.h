// One AF_XDP socket: one (interface, queue), bound to a worker's shared Umem, with its own RX,
// TX, fill and completion rings. Hot-path methods move descriptors between the rings and the
// Umem's FramePool and record every move there; they never allocate, lock or throw.
//
// Binding: zero-copy when the driver supports it, else copy mode (always the case on veth and
// for a program attached in generic/SKB mode). XDP_USE_NEED_WAKEUP is always requested so the
// worker only makes a syscall when the kernel asks for one.
#pragma once

#include <xdp/xsk.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "datapath/packet_io.h"
#include "xsk/umem.h"

namespace dnsproxy::xsk {

enum class BindMode { kAuto, kZeroCopy, kCopy };

struct SocketConfig {
  std::string interface;
  uint32_t queue = 0;
  BindMode bind_mode = BindMode::kAuto;
  uint32_t ring_size = 2048;  // RX and TX rings (power of two)
  // SO_PREFER_BUSY_POLL + SO_BUSY_POLL: the worker's syscalls run the driver's NAPI loop.
  bool busy_poll = false;
  uint32_t busy_poll_budget = 64;
};

// A packet as the worker sees it: the backend-neutral frame handle of datapath/packet_io.h.
using Packet = datapath::Packet;

class Socket {
 public:
  // Creates and binds the socket. The XDP program is not touched (the loader owns it); the
  // caller inserts fd() into the program's XSKMAP afterwards.
  [[nodiscard]] static Result<std::unique_ptr<Socket>> create(Umem& umem,
                                                              const SocketConfig& config);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  [[nodiscard]] int fd() const noexcept;
  [[nodiscard]] uint32_t ifindex() const noexcept { return ifindex_; }
  [[nodiscard]] uint32_t queue() const noexcept { return config_.queue; }
  [[nodiscard]] const std::string& interface() const noexcept { return config_.interface; }
  [[nodiscard]] bool zero_copy() const noexcept { return zero_copy_; }
  [[nodiscard]] bool busy_poll() const noexcept { return config_.busy_poll; }

  // Tops the frames this socket holds in its fill and RX rings up to its fill share, from the
  // free list (frames: free -> fill/rx). Returns frames added.
  [[nodiscard]] uint32_t refill() noexcept;
  // At most `frames` (and never more than the fill ring holds) wait in this socket's fill and RX
  // rings. The worker's sockets share one UMEM: without a share the first sockets serviced would
  // take every frame and the later ones none. Default: the fill ring's size.
  void set_fill_share(uint32_t frames) noexcept {
    fill_share_ = std::min(frames, config_.ring_size);
  }
  [[nodiscard]] uint32_t fill_share() const noexcept { return fill_share_; }
  // Reads up to out.size() packets from the RX ring (frames: fill/rx -> worker).
  [[nodiscard]] uint32_t receive(std::span<Packet> out) noexcept;
  // Queues as many packets as the TX ring takes (frames: worker -> tx/completion) and returns
  // how many; the rest stay in the caller's hands.
  [[nodiscard]] uint32_t transmit(std::span<const Packet> packets) noexcept;
  // Returns every completed TX frame to the free list (tx/completion -> free).
  uint32_t reclaim_completions() noexcept;
  // Tells the kernel to send what is queued when it asked for a wakeup (need_wakeup; copy mode
  // always asks), until the kernel took it all. No syscall when nothing is outstanding.
  void kick_tx() noexcept;
  // Wakes the driver when it asked for a syscall before it fills the RX ring again (need_wakeup
  // on the fill ring: zero-copy drivers set it once their fill ring ran dry; copy mode never
  // does). Without it a busy worker that never sleeps in poll() would starve the queue.
  void wake_rx() noexcept;
  // Frames queued on TX and not yet completed (for teardown: wait until it drains).
  [[nodiscard]] uint32_t tx_outstanding() const noexcept { return tx_outstanding_; }

  // Kernel statistics for this socket (drops for a full RX ring or an empty fill ring, ...).
  struct KernelStats {
    uint64_t rx_dropped = 0, rx_invalid_descs = 0, tx_invalid_descs = 0, rx_ring_full = 0,
             rx_fill_ring_empty = 0, tx_ring_empty = 0;
  };
  [[nodiscard]] KernelStats kernel_stats() const noexcept;

 private:
  Socket(Umem& umem, SocketConfig config);
  [[nodiscard]] Result<void> bind(uint16_t bind_flags);
  [[nodiscard]] Result<void> enable_busy_poll();

  Umem& umem_;
  FramePool& pool_;
  SocketConfig config_;
  uint32_t ifindex_ = 0;
  bool zero_copy_ = false;
  uint32_t tx_outstanding_ = 0;
  uint32_t fill_share_ = 0;  // set to the ring size by the constructor
  uint32_t rx_held_ = 0;     // frames given to the fill ring and not yet read from the RX ring
  xsk_socket* xsk_ = nullptr;
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  xsk_ring_prod fill_{};
  xsk_ring_cons completion_{};
};

// "auto" | "zerocopy" | "copy" (command-line spelling).
[[nodiscard]] Result<BindMode> parse_bind_mode(std::string_view text);

// How many receive queues `interface` has (ethtool channels: combined or RX), i.e. how many
// sockets serve it. 1 for a device that does not report channels.
[[nodiscard]] Result<uint32_t> receive_queue_count(const std::string& interface);

}  // namespace dnsproxy::xsk
